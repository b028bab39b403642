#!/usr/bin/env python3
"""Writes the seed inputs of the ipc_frame fuzz target into fuzz/seeds/ipc_frame/.

Each seed is the target's input layout: byte 0 = number of cuts, 2 bytes per
cut (little endian), then the payload: MessagePack bytes as a peer of the bus
sends them, made with Python's msgpack (the seeds' own library) where it can
make them and by hand where it cannot (invalid UTF-8 in a str, repeated keys,
the reserved byte 0xc1). Run it again after changing it:

    python3 fuzz/seeds/make-ipc-frame-seeds.py
"""
import os
import struct

import msgpack

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ipc_frame")


def msg(data, message_type="data", **extra):
    m = {
        "event_name": "bus",
        "timestamp_ms": 1795337502719,
        "timestamp_iso": "2026-11-22T08:51:42.719+01:00",
        "message_type": message_type,
        "data": data,
    }
    m.update(extra)
    return m


def pack(v, **kw):
    return msgpack.packb(v, use_bin_type=True, **kw)


def seed(name, payload, cuts=()):
    head = bytes([len(cuts)]) + b"".join(struct.pack("<H", c) for c in cuts)
    with open(os.path.join(out, name), "wb") as f:
        f.write(head + payload)


nested = {"a": [1, [2, [3, {"b": {"c": [None, True, False]}}]]], "m": {1: "one", -1: "minus"}}
deep = 0
for _ in range(30):
    deep = [deep]

seed("full", pack(msg({"progress": 42, "step": "resize"})))
seed("data-only", pack({"data": {"x": 1}}))
seed("empty-map", pack({}))
seed("nested", pack(msg(nested)))
seed("deep-30", pack(msg({"deep": deep})))
seed("big-ints", pack(msg({
    "i64max": 2**63 - 1, "u64max": 2**64 - 1, "i64min": -2**63, "u32": 2**32 - 1,
    "i8": -128, "i16": -32768, "i32": -2**31, "u8": 255, "u16": 65535, "neg": -1, "fix": 127,
})))
seed("floats64", pack(msg({"pi": 3.141592653589793, "tiny": 5e-324, "inf": float("inf"),
                           "nan": float("nan"), "negzero": -0.0})))
seed("floats32", pack(msg({"half": 1.5, "third": 1 / 3, "big": 3.4e38}), use_single_float=True))
seed("bin", pack(msg({"raw": b"\x00\xff\xfe binary", "empty": b""})))
# str8 of invalid UTF-8 (msgpack-python refuses to make one): a buffer for LPC.
bad_utf8 = b"\xd9\x04\xff\xfe\xc3\x28"
seed("invalid-utf8-str", pack({"data": {"s": 0}})[:-1] + bad_utf8)
seed("types", pack(msg({"t": 1}, "CONTROL")) + pack(msg({"e": "boom"}, "error")))
seed("client-id", pack(msg({"fwd": 1}, client_id="client-3")))
seed("extra-keys", pack(msg({"k": 1}, extra="kept", n=7)))
seed("odd-keys", pack({1: 2, b"bin": 3, 1.5: 4, None: 5, "data": {(1, 2): "tuple key"}}))
# {"data": {"a": 1, "a": 2}}: the repeated key keeps the last value.
seed("repeated-key", b"\x81\xa4data\x82\xa1a\x01\xa1a\x02")
seed("repeated-key-big", b"\x81\xa4data\x8c" + b"".join(bytes([0xa1, 0x61 + i % 10, i]) for i in range(12)))
seed("stream-3", pack(msg({"n": 1})) + pack(msg({"n": 2})) + pack({"data": {"n": 3}}), cuts=(7, 90, 91))
seed("stream-cut-everywhere", pack(msg({"s": "x" * 40})) * 2, cuts=(1, 2, 3, 50, 60, 61, 200))
seed("truncated", pack(msg({"long": "y" * 300}))[:150])
seed("truncated-header", b"\xdb\x00\x01")
seed("str16-array16-map16", pack(msg({"s": "z" * 300, "a": list(range(20)), "m": {str(i): i for i in range(20)}})))
too_deep = 0
for _ in range(70):
    too_deep = [too_deep]
seed("too-deep", pack({"data": {"d": too_deep}}))
seed("ext", pack({"data": {"x": msgpack.ExtType(5, b"abc")}}))
# bin32 / str32 lengths past the 1 MiB limit: refused before the bytes come.
seed("bin32-past-limit", pack({"data": {"b": 0}})[:-1] + b"\xc6\x00\x20\x00\x00" + b"x" * 20)
seed("str32-past-limit", b"\x81\xa4data\x81\xa1s\xdb\xff\xff\xff\xff")
seed("fixext-alone", b"\xd4")
seed("reserved-c1", pack(msg({"ok": 1})) + b"\xc1")
seed("not-a-map", pack([1, 2, 3]))
seed("data-not-map", pack({"data": [1, 2]}))
seed("bad-message-type", pack({"message_type": "nope", "data": {}}))
seed("message-type-int", pack({"message_type": 3, "data": {}}))
print(f"wrote {len(os.listdir(out))} seeds to {out}")
