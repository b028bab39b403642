"""DATAGRAM / DATAGRAM_BINARY round trips with Python UDP peers, and MUD framing."""
import json
import socket
import struct


def test_datagram_round_trip(host):
    host.ok("create 1 DATAGRAM")
    host.ok("bind 1 0 127.0.0.1")
    port = int(host.ok("address 1 local")["value"].split()[1])
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    peer.settimeout(5)
    pport = peer.getsockname()[1]
    peer.sendto("hallo ümlaut".encode(), ("127.0.0.1", port))
    ev = host.event("read", 1)
    assert ev["data"] == "hallo ümlaut"
    assert ev["addr"] == f"127.0.0.1 {pport}"
    host.ok(f'write 1 "answer" 127.0.0.1 {pport}')
    data, addr = peer.recvfrom(100)
    assert data == b"answer" and addr[1] == port
    # Invalid UTF-8 arrives as a buffer even in text mode.
    peer.sendto(b"\xff\xfe", ("127.0.0.1", port))
    assert host.event("read", 1)["data"] == {"buffer": [255, 254]}
    assert host.call('write 1 "x"')["ee"] == -13  # EENOADDR: datagrams need a target
    assert host.call('write 1 "x" nonsense')["ee"] == -21  # EEBADADDR
    assert host.call("listen 1")["ee"] == -12  # EEMODENOTSUPP
    peer.close()


def test_datagram_binary_always_buffers(host):
    host.ok("create 1 DATAGRAM_BINARY")
    host.ok("bind 1 0 127.0.0.1")
    port = int(host.ok("address 1 local")["value"].split()[1])
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    peer.settimeout(5)
    peer.sendto(b"abc", ("127.0.0.1", port))
    assert host.event("read", 1)["data"] == {"buffer": [97, 98, 99]}
    host.ok(f'write 1 {{"buffer":[1,2,3]}} 127.0.0.1 {peer.getsockname()[1]}')
    assert peer.recvfrom(10)[0] == b"\x01\x02\x03"
    peer.close()


def test_unbound_datagram_can_send(host):
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    peer.settimeout(5)
    host.ok("create 1 DATAGRAM")
    host.ok(f'write 1 "hi" 127.0.0.1 {peer.getsockname()[1]}')
    assert peer.recvfrom(10)[0] == b"hi"
    peer.close()


def mud_frame(text):
    b = text.encode()
    return struct.pack(">I", len(b)) + b


def test_mud_mode_frames_both_ways(host):
    port = host.listen_port(1, "MUD")
    host.ok("autoaccept 1")
    host.ok("create 2 MUD")
    host.ok(f"connect 2 127.0.0.1 {port}")
    host.event("write", 2)
    server_side = host.accepted()
    value = '([\"name\":\"Gandalf\",\"items\":({1,2,\"staff\",}),])'
    host.ok("write 2 " + json_str(value))
    assert host.event("read", server_side)["data"] == value
    # A raw peer speaking the framing: several frames in one send, one split across sends.
    with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
        peer_id = host.accepted()
        wire = mud_frame('"one"') + mud_frame("2") + mud_frame('"three"')
        c.sendall(wire[:7])
        c.sendall(wire[7:])
        got = [host.event("read", peer_id)["data"] for _ in range(3)]
        assert got == ['"one"', "2", '"three"']
        host.ok("write " + str(peer_id) + " " + json_str('"back"'))
        c.settimeout(5)
        hdr = c.recv(4, socket.MSG_WAITALL)
        (n,) = struct.unpack(">I", hdr)
        assert c.recv(n, socket.MSG_WAITALL) == b'"back"'
        # A zero length is a protocol error: upstream closes the connection.
        c.sendall(b"\x00\x00\x00\x00")
        host.event("close", peer_id)


def json_str(s):
    return json.dumps(s)
