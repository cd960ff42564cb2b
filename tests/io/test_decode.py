"""decode_frames on literal frames: every link type, VLAN removal, IP layers, flow ids, skips."""

from __future__ import annotations

import numpy as np
import pytest

from pktlstm.io import HEADER_BYTES, L3_OFFSET, PacketBatch, decode_frames
from pktlstm.io.decode import flow_hash
from tests.io import builders as b


def decode(frames: list[bytes], linktype: int | list[int] = 1) -> tuple[PacketBatch, dict]:
    """Decode frames laid end to end in one buffer (no padding: exercises the copy path)."""
    buf = np.frombuffer(b"".join(frames), dtype=np.uint8)
    lens = [len(f) for f in frames]
    offsets = np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64)
    n = len(frames)
    batch, skipped = decode_frames(
        buf, offsets, lens, lens, np.arange(n) * 10, linktype, np.arange(n), 7
    )
    return batch, dict(skipped)


def one(frame: bytes, linktype: int = 1) -> PacketBatch:
    batch, skipped = decode([frame], linktype)
    assert skipped == {} and len(batch) == 1
    return batch


def mapped(v4: bytes) -> list[int]:
    return list(bytes(10) + b"\xff\xff" + v4)


TCP4 = b.ipv4(6, b.tcp(1234, 80, 0x12))


def test_ethernet_ipv4_tcp_fields() -> None:
    frame = b.ether(TCP4, 0x0800)
    p = one(frame)
    assert p.ethertype[0] == 0x0800 and p.ip_version[0] == 4 and p.proto[0] == 6
    assert (p.sport[0], p.dport[0], p.tcp_flags[0]) == (1234, 80, 0x12)
    assert p.l4_off[0] == 34
    assert list(p.src[0]) == mapped(b.V4_A) and list(p.dst[0]) == mapped(b.V4_B)
    assert bytes(p.header[0, : len(frame)]) == frame
    assert not p.header[0, len(frame) :].any()
    assert p.header.shape == (1, HEADER_BYTES)
    assert (p.caplen[0], p.wirelen[0], p.linktype[0]) == (len(frame), len(frame), 1)
    assert (p.capture_id[0], p.pkt_index[0], p.ts_ns[0]) == (7, 0, 0)


def test_long_packet_window_is_the_first_header_bytes() -> None:
    frame = b.ether(b.ipv4(17, b.udp(payload=bytes(range(256)) * 2)), 0x0800)
    p = one(frame)
    assert bytes(p.header[0]) == frame[:HEADER_BYTES]


@pytest.mark.parametrize(
    "vlans",
    [[(0x8100, 10)], [(0x88A8, 10), (0x8100, 20)], [(0x9100, 1), (0x8100, 2)], [(0x8100, 5)] * 3],
)
def test_vlan_tags_are_removed(vlans: list[tuple[int, int]]) -> None:
    plain = one(b.ether(TCP4, 0x0800))
    tagged = one(b.ether(TCP4, 0x0800, vlans))
    np.testing.assert_array_equal(tagged.header, plain.header)
    assert tagged.l4_off[0] == plain.l4_off[0] and tagged.sport[0] == 1234
    assert tagged.flow_id[0] == plain.flow_id[0]


def synthetic(ip: bytes, ethertype: int) -> bytes:
    """The normalised window expected for a non-Ethernet link: zero MACs + ethertype + ip."""
    return (bytes(12) + ethertype.to_bytes(2, "big") + ip + bytes(HEADER_BYTES))[:HEADER_BYTES]


IP6_UDP = b.ipv6(17, b.udp(5000, 53))


@pytest.mark.parametrize(
    ("linktype", "frame", "ip", "ethertype"),
    [
        (101, TCP4, TCP4, 0x0800),
        (101, IP6_UDP, IP6_UDP, 0x86DD),
        (12, TCP4, TCP4, 0x0800),
        (14, IP6_UDP, IP6_UDP, 0x86DD),
        (228, TCP4, TCP4, 0x0800),
        (229, IP6_UDP, IP6_UDP, 0x86DD),
        (113, b.sll(TCP4, 0x0800), TCP4, 0x0800),
        (113, b.sll(IP6_UDP, 0x86DD), IP6_UDP, 0x86DD),
        (276, b.sll2(TCP4, 0x0800), TCP4, 0x0800),
        (276, b.sll2(IP6_UDP, 0x86DD), IP6_UDP, 0x86DD),
        (0, b.null(TCP4, 2), TCP4, 0x0800),
        (0, b.null(TCP4, 2, big=True), TCP4, 0x0800),
        (0, b.null(IP6_UDP, 24), IP6_UDP, 0x86DD),
        (0, b.null(IP6_UDP, 28, big=True), IP6_UDP, 0x86DD),
        (0, b.null(IP6_UDP, 30), IP6_UDP, 0x86DD),
        (108, b.null(TCP4, 2, big=True), TCP4, 0x0800),
    ],
    ids=lambda v: str(v) if isinstance(v, int) else None,
)
def test_link_types_give_a_synthetic_ethernet_header(
    linktype: int, frame: bytes, ip: bytes, ethertype: int
) -> None:
    p = one(frame, linktype)
    assert bytes(p.header[0]) == synthetic(ip, ethertype)
    assert p.ethertype[0] == ethertype and p.linktype[0] == linktype
    assert p.ip_version[0] == (4 if ethertype == 0x0800 else 6)
    assert p.sport[0] in (1234, 5000)


def test_sll_with_vlan_tag() -> None:
    inner = b"\x00\x64" + b"\x08\x00" + TCP4  # VID 100, then IPv4
    p = one(b.sll(inner, 0x8100), 113)
    assert bytes(p.header[0]) == synthetic(TCP4, 0x0800)


def test_null_unknown_family_is_kept_as_non_ip() -> None:
    p = one(b.null(TCP4, 99), 0)
    assert (p.ethertype[0], p.ip_version[0], p.l4_off[0]) == (0, 0, -1)


def test_ipv4_options_move_the_transport_header() -> None:
    p = one(b.ether(b.ipv4(17, b.udp(7, 9), options=b"\x01\x01\x01\x00"), 0x0800))
    assert (p.l4_off[0], p.sport[0], p.dport[0]) == (38, 7, 9)


def test_ipv4_fragments() -> None:
    first = one(b.ether(b.ipv4(17, b.udp(7, 9), more_fragments=True), 0x0800))
    later = one(b.ether(b.ipv4(17, b.udp(7, 9), frag_offset=185), 0x0800))
    assert (first.l4_off[0], first.sport[0]) == (34, 7)
    assert (later.l4_off[0], later.sport[0], later.dport[0], later.proto[0]) == (-1, 0, 0, 17)


@pytest.mark.parametrize(
    ("payload", "proto", "l4_off", "ports"),
    [
        (b.ipv6(0, b.ext(43) + b.ext(60) + b.ext(6, 1) + b.tcp(1, 2)), 6, 54 + 32, (1, 2)),
        (b.ipv6(51, b.ah(17) + b.udp(3, 4)), 17, 54 + 24, (3, 4)),
        (b.ipv6(44, b.frag6(17, 0, more=True) + b.udp(5, 6)), 17, 62, (5, 6)),
        (b.ipv6(44, b.frag6(17, offset=100) + b.udp(5, 6)), 17, -1, (0, 0)),
        (b.ipv6(60, b.ext(44) + b.frag6(6, offset=3) + b.tcp()), 6, -1, (0, 0)),
        (b.ipv6(58, b.icmp(128)), 58, 54, (0, 0)),
        (b.ipv6(59, b""), 59, -1, (0, 0)),
        # extension chain longer than the 128-byte window: protocol unknown, no l4
        (b.ipv6(0, b.ext(60, 12) + b.tcp()), 60, -1, (0, 0)),
    ],
    ids=["hop-route-dest", "ah", "frag-first", "frag-later", "dest-frag", "icmp6", "none", "long"],
)
def test_ipv6_extension_headers(
    payload: bytes, proto: int, l4_off: int, ports: tuple[int, int]
) -> None:
    p = one(b.ether(payload, 0x86DD))
    assert p.ip_version[0] == 6 and list(p.src[0]) == list(b.V6_A)
    assert (p.proto[0], p.l4_off[0], p.sport[0], p.dport[0]) == (proto, l4_off, *ports)


@pytest.mark.parametrize(
    ("proto", "l4"), [(1, b.icmp()), (47, b"\x00\x00\x08\x00"), (89, b"x" * 8)]
)
def test_other_ip_protocols_have_no_ports(proto: int, l4: bytes) -> None:
    p = one(b.ether(b.ipv4(proto, l4), 0x0800))
    assert (p.proto[0], p.l4_off[0], p.sport[0], p.dport[0], p.tcp_flags[0]) == (proto, 34, 0, 0, 0)


def test_arp_is_kept_with_a_mac_flow_id() -> None:
    arp = bytes(28)
    req = b.MAC_A + b.MAC_B + b"\x08\x06" + arp
    rep = b.MAC_B + b.MAC_A + b"\x08\x06" + arp
    p, skipped = decode([req, rep])
    assert skipped == {} and len(p) == 2
    assert list(p.ip_version) == [0, 0] and list(p.ethertype) == [0x0806, 0x0806]
    assert list(p.l4_off) == [-1, -1] and not p.src.any() and not p.dst.any()
    assert p.flow_id[0] == p.flow_id[1] and sorted(p.direction) == [0, 1]


def test_flow_id_is_bidirectional_and_direction_follows_endpoint_order() -> None:
    fwd = b.ether(b.ipv4(6, b.tcp(1234, 80)), 0x0800)
    rev = b.ether(b.ipv4(6, b.tcp(80, 1234), src=b.V4_B, dst=b.V4_A), 0x0800)
    other_port = b.ether(b.ipv4(6, b.tcp(1235, 80)), 0x0800)
    udp_same = b.ether(b.ipv4(17, b.udp(1234, 80)), 0x0800)
    p, _ = decode([fwd, rev, other_port, udp_same])
    assert p.flow_id[0] == p.flow_id[1]
    assert len(set(p.flow_id.tolist())) == 3
    # 10.0.0.1 sorts before 192.168.1.2
    assert list(p.direction[:2]) == [0, 1]
    # deterministic across calls and processes: a golden value
    again, _ = decode([rev])
    assert again.flow_id[0] == p.flow_id[0]
    assert int(p.flow_id[0]) == GOLDEN_FLOW_ID


GOLDEN_FLOW_ID = 8434346474831689171  # changing the hash changes every dataset's flows


def test_flow_hash_direction_with_equal_addresses_uses_ports() -> None:
    z = np.zeros(2, dtype=np.uint64)
    ports_a = np.array([1, 2], dtype=np.uint64)
    ports_b = np.array([2, 1], dtype=np.uint64)
    fid, direction = flow_hash(z + 6, z, z + 5, ports_a, z, z + 5, ports_b)
    assert fid[0] == fid[1] and list(direction) == [0, 1]


def test_padding_and_bytes_past_caplen_are_zero() -> None:
    frame = b.ether(b.ipv4(6, b.tcp()), 0x0800) + b"\xee" * 6  # 60-byte minimum frame
    p = one(frame)
    assert bytes(p.header[0, :54]) == frame[:54] and not p.header[0, 54:].any()
    # caplen shorter than the IP packet: the window ends at caplen
    buf = np.frombuffer(frame + b"\xff" * 200, dtype=np.uint8)
    q, _ = decode_frames(buf, [0], [40], [60], [0], 1, [0])
    assert bytes(q.header[0, :40]) == frame[:40] and not q.header[0, 40:].any()
    assert (q.l4_off[0], q.sport[0]) == (34, 1234)  # ports fit in 40 bytes, flags do not
    assert q.tcp_flags[0] == 0


def test_malformed_frames_are_counted_and_skipped() -> None:
    good = b.ether(TCP4, 0x0800)
    frames = [
        good[:10],  # Ethernet header cut short
        b.ether(TCP4[:12], 0x0800),  # IPv4 header cut short
        b.ether(b"\x65" + TCP4[1:], 0x0800),  # version 6 inside an IPv4 ethertype
        b.ether(b"\x43" + TCP4[1:], 0x0800),  # ihl 3
        b.ether(IP6_UDP[:30], 0x86DD),  # IPv6 header cut short
        b.ether(b"", 0x8100)[:14] + b"\x00",  # VLAN tag cut short
        good,
    ]
    p, skipped = decode(frames)
    assert skipped == {"decoder.truncated": 4, "decoder.bad_header": 2}
    assert len(p) == 1 and p.pkt_index[0] == 6


def test_unsupported_linktype_is_counted() -> None:
    frames = [b.ether(TCP4, 0x0800)] * 3
    p, skipped = decode(frames, [1, 9, 1])
    assert skipped == {"decoder.unsupported_linktype": 1}
    assert list(p.pkt_index) == [0, 2]


def test_empty_input_gives_the_empty_batch() -> None:
    p, skipped = decode_frames(np.zeros(0, np.uint8), [], [], [], [], 1, [])
    assert len(p) == 0 and p.header.shape == (0, HEADER_BYTES) and not skipped


def test_columns_have_the_contract_dtypes() -> None:
    p = one(b.ether(TCP4, 0x0800))
    empty = PacketBatch.empty()
    for name in vars(empty):
        assert getattr(p, name).dtype == getattr(empty, name).dtype, name
        assert getattr(p, name).shape[1:] == getattr(empty, name).shape[1:], name
    assert L3_OFFSET == 14
