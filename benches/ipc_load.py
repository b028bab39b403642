#!/usr/bin/env python3
"""The Python side of scripts/bench-ipc's load: CLIENTS clients of an IPC bus
(Unix socket) read with msgpack.Unpacker, as the seeds' SocketClient does,
until each has COUNT messages; every message is checked (a map with
event_name, timestamp_ms, timestamp_iso, message_type and data, data equal
to DATA_JSON); CONTROL messages (a server's greeting) are skipped.

    python3 benches/ipc_load.py PATH CLIENTS COUNT TIMEOUT_S DATA_JSON

Prints {"ready": CLIENTS} once connected, then one JSON line like
benches/ipc_load.c's flood mode. scripts/bench-ipc uses it to check both
servers' wire format with msgpack itself and to show how fast a Python
client can take the messages (the measurements use ipc_load.c: one Python
process reading 10 sockets is slower than the faster server; see
docs/PERFORMANCE.md).
"""
import json
import selectors
import socket
import sys
import time

import msgpack

KEYS = {"event_name", "timestamp_ms", "timestamp_iso", "message_type", "data"}


def main():
    path, nclients, count, timeout = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    want = json.loads(sys.argv[5])
    sel = selectors.DefaultSelector()
    got = {}
    for i in range(nclients):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(path)
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, (i, msgpack.Unpacker(raw=False)))
        got[i] = 0
    print(json.dumps({"ready": nclients}), flush=True)
    start = time.monotonic()
    first = last = None
    nbytes = 0
    bad = 0
    left = nclients
    while left and time.monotonic() - start < timeout:
        for key, _ in sel.select(timeout=1.0):
            i, unpacker = key.data
            t = time.monotonic()
            had = got[i]
            try:
                chunk = key.fileobj.recv(262144)
            except BlockingIOError:
                continue
            if not chunk:
                sel.unregister(key.fileobj)
                left -= 1
                continue
            nbytes += len(chunk)
            unpacker.feed(chunk)
            for m in unpacker:
                if isinstance(m, dict) and m.get("message_type") == "control":
                    continue  # a greeting or other CONTROL message: not part of the burst
                got[i] += 1
                if not isinstance(m, dict) or set(m) != KEYS or m["data"] != want \
                        or m["message_type"] != "data":
                    bad += 1
            if first is None and got[i] > had:
                first = t
            if got[i] >= count:
                last = time.monotonic()
                sel.unregister(key.fileobj)
                left -= 1
    secs = (last - first) if first and last else 0.0
    total = sum(got.values())
    print(json.dumps({
        "clients": nclients, "count": count, "messages": total, "bytes": nbytes,
        "secs": round(secs, 6), "msgs_per_s": round(total / secs, 1) if secs else 0.0,
        "clients_short": sum(1 for n in got.values() if n < count), "bad": bad,
    }), flush=True)
    return 0 if bad == 0 and all(n >= count for n in got.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
