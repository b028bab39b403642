#!/usr/bin/env python3
"""Writes the seeds of ws_frames, ws_server and ws_client (docs/FUZZING.md).

Built frames (the targets' `ws::build_frames`): per frame a flags byte
(bits 0-2: 0 text, 1 binary, 2 continuation, 3 ping, 4 pong, 5 close;
bit 3: not final; bit 4: RSV1) and a length byte, then the payload.
Run from fuzz/: python3 seeds/make-ws-seeds.py
"""
import os
import struct

LIMITS = struct.pack("<HH", 3968, 3968)  # 4096 each
SMALL = struct.pack("<HH", 0, 0)  # 128 each

def f(flags, payload):
    return bytes([flags, len(payload)]) + payload

TEXT = f(0x00, b"hello")
BINARY = f(0x01, b"\x01\x02\x03")
FRAG = f(0x08, b"hel") + f(0x0C, b"p") + f(0x02, "lo é".encode())
PING = f(0x03, b"ping")
PONG = f(0x04, b"pong")
CLOSE = f(0x05, b"\x03\xe8bye")
BIG = bytes([0x01, 0xFF, ord("a")])  # 5120 bytes: over any limit
# RFC 7692 section 7.2.3.1: "Hello" compressed.
DEFLATED = f(0x10, bytes.fromhex("f248cdc9c90700"))

# A frame of WS_FRAME_SIZE_LIMIT bytes, then a continuation bringing the
# message to exactly WS_MAX_MESSAGE_SIZE (length bytes 0xD0 and 0xF0), and
# the same one byte over each limit.
AT_LIMITS = bytes([0x09, 0xD0, ord("x"), 0x02, 0xF0, ord("y")])
OVER_FRAME = bytes([0x01, 0xD1, ord("x")])
OVER_MESSAGE = bytes([0x09, 0xD0, ord("x"), 0x02, 0xF1, ord("y")])

exchanges = {
    "at-limits": AT_LIMITS + CLOSE,
    "over-frame": OVER_FRAME,
    "over-message": OVER_MESSAGE,
    "text": TEXT + CLOSE,
    "binary": BINARY + CLOSE,
    "fragmented": FRAG + CLOSE,
    "ping": PING + PONG + TEXT,
    "close": CLOSE,
    "big": BIG,
    "all": TEXT + BINARY + PING + FRAG + PONG + CLOSE,
}

def write(target, name, data):
    os.makedirs(f"seeds/{target}", exist_ok=True)
    with open(f"seeds/{target}/{name}", "wb") as fh:
        fh.write(data)

for name, frames in exchanges.items():
    for auto in (0, 1):
        # ws_frames: bit 0 role, bit 1 auto, bits 3-5 cuts (one cut at 3).
        write("ws_frames", f"{name}-server-{auto}", bytes([auto << 1 | 1 << 3]) + LIMITS + b"\x03\x00" + frames)
        write("ws_frames", f"{name}-client-{auto}", bytes([1 | auto << 1]) + LIMITS + frames)
        # ws_server / ws_client: bit 2 auto, bits 4-6 cuts.
        for t in ("ws_server", "ws_client"):
            write(t, f"{name}-{auto}", bytes([auto << 2 | 1 << 4]) + LIMITS + b"\x05\x00" + frames)
    for t in ("ws_server", "ws_client"):
        write(t, f"{name}-small", bytes([0]) + SMALL + frames)

# Limits 1000 (message) and 300 (frame).
MIXED = struct.pack("<HH", 872, 172)
for name in ("at-limits", "over-frame", "over-message"):
    write("ws_frames", f"{name}-mixed", bytes([0]) + MIXED + exchanges[name])
    for t in ("ws_server", "ws_client"):
        write(t, f"{name}-mixed", bytes([0]) + MIXED + exchanges[name])

# ws_frames with permessage-deflate agreed (bit 6; bit 7: no context takeover).
for ctx in (0, 0x80):
    write("ws_frames", f"deflate-server-{ctx}", bytes([0x40 | ctx]) + LIMITS + DEFLATED + DEFLATED + CLOSE)
    write("ws_frames", f"deflate-client-{ctx}", bytes([0x41 | ctx | 1 << 3]) + LIMITS + b"\x04\x00" + DEFLATED + TEXT + CLOSE)

# Compressed, with WS_COMPRESSION 1 (bit 1).
for t in ("ws_server", "ws_client"):
    write(t, "deflate", bytes([2]) + LIMITS + DEFLATED + CLOSE)
    write(t, "deflate-off", bytes([0]) + LIMITS + DEFLATED)

# The fuzzer's own head (bit 0).
HEAD = (b"GET /p HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        b"Sec-WebSocket-Protocol: chat\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n")
write("ws_server", "head", bytes([1]) + LIMITS + HEAD + TEXT + CLOSE)
write("ws_server", "head-v12", bytes([1]) + LIMITS + HEAD.replace(b"n: 13", b"n: 12") + TEXT)
write("ws_server", "head-post", bytes([1]) + LIMITS + HEAD.replace(b"GET", b"POST") + TEXT)
# ws_client: the "server's" head; a 101 whose accept key is wrong, a 200, a 101 with an extension.
RESP = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
write("ws_client", "head-bad-accept", bytes([1]) + LIMITS + RESP + TEXT)
write("ws_client", "head-200", bytes([1]) + LIMITS + b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
write("ws_client", "head-ext", bytes([3]) + LIMITS + RESP.replace(b"\r\n\r\n", b"\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n") + TEXT)
# A masked frame from the server (bits 5+6 of the flags: the wrong masking).
write("ws_client", "masked", bytes([0]) + LIMITS + f(0x60, b"hi"))
write("ws_server", "unmasked", bytes([0]) + LIMITS + f(0x60, b"hi"))
