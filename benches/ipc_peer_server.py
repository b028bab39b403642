#!/usr/bin/env python3
"""The reference for scripts/bench-ipc: the seeds' socket module server
(seed 004, "Socket Module Architecture") re-created small, speaking the same
wire format as IPC_SERVER, so one load client measures both.

    python3 benches/ipc_peer_server.py SOCKET_DIR EVENT_NAME

The design is the seed's, written fresh:
- a Unix socket server at {socket_dir}/{event_name}.sock (mode 0600, a stale
  file removed at start and the file removed at stop);
- a background thread accepts connections, one thread per client reads its
  messages (msgpack.Unpacker) and hands each to the application;
- send(message, client_id=None) serialises a SocketMessage once with
  MessagePack and writes it to every connected client (broadcast) or to
  one (unicast); with no client connected it is queued (FIFO, bounded) and
  delivered to the next client that connects; max_connections is enforced
  (a refused client gets an ERROR message);
- SocketMessage {event_name, timestamp_ms, timestamp_iso, message_type,
  data}, timestamp_iso in the configured zone with milliseconds.
Pydantic validation and dynaconf settings are left out (the seed's
validation of an outgoing message is the dataclass below).

The application is the benchmark's: every DATA message a client sends is
echoed to that client (unicast, stamped anew), and commands on stdin drive
broadcasts:
    burst N JSON_DATA   broadcast N messages carrying JSON_DATA; prints
                        {"burst": N, "us": elapsed}
    clients             prints {"clients": n} (clients connected now)
    quit                stop and exit
It prints {"ready": path} when listening and {"connected": n} after each
accept (n = clients now connected).
"""
import json
import os
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any
from zoneinfo import ZoneInfo

import msgpack


class MessageType(Enum):
    DATA = "data"
    ERROR = "error"
    CONTROL = "control"


@dataclass
class SocketMessage:
    event_name: str
    message_type: MessageType
    data: dict[str, Any]
    timestamp_ms: int = 0
    timestamp_iso: str = ""
    tz: ZoneInfo = field(default=ZoneInfo("UTC"), repr=False)

    def __post_init__(self):
        if not self.timestamp_ms:
            now = time.time()
            self.timestamp_ms = int(now * 1000)
            self.timestamp_iso = datetime.fromtimestamp(now, self.tz).isoformat(timespec="milliseconds")

    def pack(self) -> bytes:
        return msgpack.packb({
            "event_name": self.event_name,
            "timestamp_ms": self.timestamp_ms,
            "timestamp_iso": self.timestamp_iso,
            "message_type": self.message_type.value,
            "data": self.data,
        }, use_bin_type=True)


class UnixSocketServer:
    def __init__(self, event_name, socket_dir, max_connections=10, queue_size=100,
                 allow_client_send=True, on_message=None):
        self.event_name = event_name
        self.path = os.path.join(socket_dir, f"{event_name}.sock")
        self.max_connections = max_connections
        self.queue_size = queue_size
        self.allow_client_send = allow_client_send
        self.on_message = on_message
        self.clients: dict[str, socket.socket] = {}
        self.lock = threading.Lock()  # the client table and the queue
        self.send_locks: dict[str, threading.Lock] = {}
        self.queue: list[bytes] = []
        self.next_id = 1
        self.running = False

    def start(self):
        if os.path.exists(self.path):
            os.unlink(self.path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.path)
        os.chmod(self.path, 0o600)
        self.sock.listen(128)
        self.running = True
        threading.Thread(target=self._accept_loop, daemon=True).start()

    def stop(self):
        self.running = False
        try:
            self.sock.close()
        finally:
            if os.path.exists(self.path):
                os.unlink(self.path)

    def get_connected_clients(self):
        with self.lock:
            return list(self.clients)

    def _accept_loop(self):
        while self.running:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                if len(self.clients) >= self.max_connections:
                    err = SocketMessage(self.event_name, MessageType.ERROR,
                                        {"error": "max_connections", "message": "too many clients"})
                    conn.sendall(err.pack())
                    conn.close()
                    continue
                cid = f"client-{self.next_id}"
                self.next_id += 1
                self.clients[cid] = conn
                self.send_locks[cid] = threading.Lock()
                queued, self.queue = self.queue, []
                n = len(self.clients)
            for b in queued:
                self._send_to(cid, b)
            print(json.dumps({"connected": n}), flush=True)
            threading.Thread(target=self._client_loop, args=(cid, conn), daemon=True).start()

    def _client_loop(self, cid, conn):
        unpacker = msgpack.Unpacker(raw=False)
        while self.running:
            try:
                chunk = conn.recv(65536)
            except OSError:
                break
            if not chunk:
                break
            unpacker.feed(chunk)
            for m in unpacker:
                if not self.allow_client_send:
                    self._send_to(cid, SocketMessage(self.event_name, MessageType.ERROR,
                                                     {"error": "client_send_disabled"}).pack())
                    continue
                if not isinstance(m, dict) or not isinstance(m.get("data", {}), dict):
                    continue
                if self.on_message:
                    self.on_message(self, cid, m)
        with self.lock:
            self.clients.pop(cid, None)
            self.send_locks.pop(cid, None)
        conn.close()

    def _send_to(self, cid, b):
        with self.lock:
            conn, lock = self.clients.get(cid), self.send_locks.get(cid)
        if conn is None:
            return
        try:
            with lock:
                conn.sendall(b)
        except OSError:
            pass

    def send(self, message: SocketMessage, client_id=None):
        b = message.pack()
        if client_id is not None:
            self._send_to(client_id, b)
            return
        with self.lock:
            targets = list(self.clients)
            if not targets:
                self.queue.append(b)
                del self.queue[:-self.queue_size]
                return
        for cid in targets:
            self._send_to(cid, b)


def echo(server, cid, m):
    try:
        kind = MessageType(str(m.get("message_type", "data")).lower())
    except ValueError:
        return
    if kind is MessageType.DATA:
        server.send(SocketMessage(server.event_name, kind, m.get("data", {})), client_id=cid)


def main():
    socket_dir, event_name = sys.argv[1], sys.argv[2]
    server = UnixSocketServer(event_name, socket_dir, on_message=echo)
    server.start()
    print(json.dumps({"ready": server.path}), flush=True)
    try:
        for line in sys.stdin:
            words = line.split(None, 2)
            if not words:
                continue
            if words[0] == "burst":
                n, data = int(words[1]), json.loads(words[2])
                t0 = time.perf_counter()
                for _ in range(n):
                    server.send(SocketMessage(event_name, MessageType.DATA, data))
                us = int((time.perf_counter() - t0) * 1e6)
                print(json.dumps({"burst": n, "us": us}), flush=True)
            elif words[0] == "clients":
                print(json.dumps({"clients": len(server.get_connected_clients())}), flush=True)
            elif words[0] == "quit":
                break
    finally:
        server.stop()


if __name__ == "__main__":
    main()
