"""Literal Ethernet frames as PacketBatch rows, built without the reader (dpkt finds layers)."""

from __future__ import annotations

import dpkt
import numpy as np
import pytest

from pktlstm.io.batch import HEADER_BYTES, PacketBatch


def batch_of(frames: list[bytes]) -> PacketBatch:
    """A PacketBatch of untagged Ethernet frames; dpkt tells each frame's layers."""
    b = PacketBatch.empty()
    rows = []
    for frame in frames:
        eth = dpkt.ethernet.Ethernet(frame)
        ip = eth.data
        version, proto, l4 = 0, 0, -1
        if isinstance(ip, dpkt.ip.IP):
            version, proto, l4 = 4, ip.p, 14 + ip.hl * 4
        elif isinstance(ip, dpkt.ip6.IP6):
            version, proto = 6, ip.p
            l4 = 14 + 40 + sum(len(bytes(h)) for h in ip.extension_hdrs.values() if h)
        rows.append((frame, eth.type, version, proto, l4))
    n = len(rows)
    header = np.zeros((n, HEADER_BYTES), dtype=np.uint8)
    for i, (frame, *_rest) in enumerate(rows):
        data = frame[:HEADER_BYTES]
        header[i, : len(data)] = np.frombuffer(data, dtype=np.uint8)
    z = np.zeros(n)
    return (
        PacketBatch(
            ts_ns=z.astype(np.int64),
            caplen=np.array([len(r[0]) for r in rows], dtype=np.uint32),
            wirelen=np.array([len(r[0]) for r in rows], dtype=np.uint32),
            linktype=np.ones(n, dtype=np.uint16),
            header=header,
            ethertype=np.array([r[1] for r in rows], dtype=np.uint16),
            ip_version=np.array([r[2] for r in rows], dtype=np.uint8),
            proto=np.array([r[3] for r in rows], dtype=np.uint8),
            l4_off=np.array([r[4] for r in rows], dtype=np.int16),
            src=np.zeros((n, 16), dtype=np.uint8),
            dst=np.zeros((n, 16), dtype=np.uint8),
            sport=z.astype(np.uint16),
            dport=z.astype(np.uint16),
            tcp_flags=z.astype(np.uint8),
            flow_id=z.astype(np.uint64),
            direction=z.astype(np.uint8),
            capture_id=z.astype(np.uint32),
            pkt_index=np.arange(n, dtype=np.uint64),
        )
        if n
        else b
    )


MAC_A = bytes.fromhex("021ac5000001")
MAC_B = bytes.fromhex("080027aabbcc")


def eth(payload: dpkt.Packet, etype: int) -> bytes:
    return bytes(dpkt.ethernet.Ethernet(dst=MAC_A, src=MAC_B, type=etype, data=payload))


def tcp_v4() -> bytes:
    tcp = dpkt.tcp.TCP(
        sport=51000, dport=443, seq=0x11223344, ack=0x55667788, flags=0x18, win=29200, urp=7
    )
    tcp.data = b"hello"
    ip = dpkt.ip.IP(
        src=bytes([10, 1, 2, 3]), dst=bytes([192, 168, 9, 8]), p=6, ttl=64, id=0xBEEF, tos=0x10,
        df=1, data=tcp,
    )  # fmt: skip
    ip.len = len(bytes(ip))
    return eth(ip, 0x0800)


def udp_v4() -> bytes:
    udp = dpkt.udp.UDP(sport=5353, dport=53, data=b"x" * 12)
    ip = dpkt.ip.IP(src=bytes([1, 1, 1, 1]), dst=bytes([2, 2, 2, 2]), p=17, ttl=32, data=udp)
    return eth(ip, 0x0800)


def icmp_v6() -> bytes:
    icmp = dpkt.icmp6.ICMP6(type=128, code=0, data=dpkt.icmp6.ICMP6.Echo(id=0x1234, seq=9))
    ip = dpkt.ip6.IP6(
        src=bytes(range(16)), dst=bytes(range(16, 32)), nxt=58, hlim=255, flow=0xABCDE, data=icmp
    )
    ip.plen = len(bytes(icmp))
    return eth(ip, 0x86DD)


def arp() -> bytes:
    return eth(dpkt.arp.ARP(), 0x0806)


@pytest.fixture
def frames() -> dict[str, bytes]:
    return {"tcp4": tcp_v4(), "udp4": udp_v4(), "icmp6": icmp_v6(), "arp": arp()}
