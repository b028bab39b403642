#!/usr/bin/env python3
"""http_idle_client.py HOST PORT N [IN_FLIGHT]: opens N keep-alive HTTP
connections to HOST:PORT, sends one `GET /` on each, reads its whole
response (Content-Length framing), then leaves every connection open.

At most IN_FLIGHT (default 256) connections are being set up at once, so
the server's listen backlog is never flooded. One selector, non-blocking
sockets, one thread.

Prints one JSON line when all are set up:
  {"ready": N_OPEN, "ok": N_200, "failed": N_FAILED, "seconds": T}
then holds the connections until stdin reaches EOF (or a line arrives),
closes them all and prints {"closed": N_OPEN, "dropped_by_server": K},
where K counts connections the server had closed meanwhile (they read EOF).
Exit status 1 when any connection failed or got something other than 200.
"""
import errno
import json
import resource
import selectors
import socket
import sys
import time


def main():
    host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    in_flight = int(sys.argv[4]) if len(sys.argv) > 4 else 256
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    request = (f"GET / HTTP/1.1\r\nHost: {host}:{port}\r\n"
               "User-Agent: unisock-bench\r\nAccept: */*\r\n\r\n").encode()

    sel = selectors.DefaultSelector()
    held = []          # connections done with their one request
    failed = 0
    ok = 0
    started = 0
    active = 0
    t0 = time.monotonic()
    deadline = t0 + 120

    def start_one():
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        err = s.connect_ex((host, port))
        if err not in (0, errno.EINPROGRESS):
            s.close()
            return False
        st = {"sock": s, "phase": "connect", "buf": b"", "sent": 0}
        sel.register(s, selectors.EVENT_WRITE, st)
        return True

    def finish(st, good):
        nonlocal ok, failed, active
        sel.unregister(st["sock"])
        active -= 1
        if good:
            ok += 1
            held.append(st["sock"])
        else:
            failed += 1
            st["sock"].close()

    def response_done(buf):
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            return None
        head = buf[:end].decode("latin-1").split("\r\n")
        length = 0
        for line in head[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
        if len(buf) < end + 4 + length:
            return None
        return head[0].split(" ")[1] == "200"

    while (started < n or active) and time.monotonic() < deadline:
        while started < n and active < in_flight:
            started += 1
            if start_one():
                active += 1
            else:
                failed += 1
        for key, _ in sel.select(timeout=1.0):
            st = key.data
            s = st["sock"]
            try:
                if st["phase"] == "connect":
                    err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if err:
                        finish(st, False)
                        continue
                    st["phase"] = "send"
                if st["phase"] == "send":
                    st["sent"] += s.send(request[st["sent"]:])
                    if st["sent"] == len(request):
                        st["phase"] = "recv"
                        sel.modify(s, selectors.EVENT_READ, st)
                    continue
                data = s.recv(65536)
                if not data:
                    finish(st, False)
                    continue
                st["buf"] += data
                done = response_done(st["buf"])
                if done is not None:
                    finish(st, done)
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                finish(st, False)
    failed += active  # still unfinished at the deadline
    print(json.dumps({"ready": len(held), "ok": ok, "failed": failed,
                      "seconds": round(time.monotonic() - t0, 3)}), flush=True)

    sys.stdin.readline()
    # Connections the server closed meanwhile are readable (EOF) now.
    dropped = 0
    for s in held:
        try:
            if s.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b"":
                dropped += 1
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            dropped += 1
        s.close()
    print(json.dumps({"closed": len(held), "dropped_by_server": dropped}), flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
