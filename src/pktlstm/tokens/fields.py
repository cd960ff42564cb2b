"""The paper's field words: 33 words of at most 16 bits per packet (Ethernet 7, IP 14, L4 12).

Layout (word index: meaning). Ethernet and IPv4/TCP/UDP are exactly Hwang et al. (2019); the
paper describes nothing else, so the other layers reuse the slots whose meaning is closest, to keep
a fixed 33 words per packet and let one model read every packet:

- 0-6 Ethernet: dst MAC (3 words), src MAC (3 words), ethertype (after VLAN removal).
- 7-20 IPv4: version, ihl, tos, total length, id, flags, fragment offset, ttl, protocol,
  checksum, src address (2 words), dst address (2 words).
- 7-20 IPv6, in the IPv4 slots of the same meaning: version (6), header length incl. extension
  headers in 4-byte units, traffic class, total length (payload + 40), flow label low 16 bits (the
  id slot: a per-flow identifier), flow label high 4 bits (flags slot), 0, hop limit (ttl slot),
  final next header (protocol slot), 0 (IPv6 has no checksum), src and dst address each folded to
  32 bits by XOR of its four 32-bit words (2 words each).
- 7-20 non-IP (ARP, LLDP, ...): all zero; the ethertype word tells them apart.
- 21-32 TCP: sport, dport, seq (2 words), ack (2 words), data offset, reserved (low 4 bits of byte
  12, NS included), flags, window, checksum, urgent pointer.
- 21-32 UDP: sport, dport, length, checksum, then 8 zero words.
- 21-32 ICMP and ICMPv6: type, code, checksum, rest of header (2 words: id and sequence for echo),
  then 7 zero words.
- 21-32 GRE: flags and version, protocol type, then 10 zero words.
- 21-32 anything else, and non-first fragments: 12 zero words.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from pktlstm.io.batch import PacketBatch

N_FIELD_WORDS = 33

ETH_NAMES = ["eth.dst0", "eth.dst1", "eth.dst2", "eth.src0", "eth.src1", "eth.src2", "eth.type"]
IPV4_NAMES = [
    "ip.version", "ip.ihl", "ip.tos", "ip.len", "ip.id", "ip.flags", "ip.frag", "ip.ttl",
    "ip.proto", "ip.checksum", "ip.src0", "ip.src1", "ip.dst0", "ip.dst1",
]  # fmt: skip
IPV6_NAMES = [
    "ip6.version", "ip6.hlen", "ip6.tclass", "ip6.len", "ip6.flow_lo", "ip6.flow_hi", "ip6.zero",
    "ip6.hlim", "ip6.nxt", "ip6.zero", "ip6.src0", "ip6.src1", "ip6.dst0", "ip6.dst1",
]  # fmt: skip
TCP_NAMES = [
    "tcp.sport", "tcp.dport", "tcp.seq0", "tcp.seq1", "tcp.ack0", "tcp.ack1", "tcp.offset",
    "tcp.reserved", "tcp.flags", "tcp.window", "tcp.checksum", "tcp.urgent",
]  # fmt: skip
UDP_NAMES = ["udp.sport", "udp.dport", "udp.len", "udp.checksum"] + ["pad"] * 8
ICMP_NAMES = ["icmp.type", "icmp.code", "icmp.checksum", "icmp.rest0", "icmp.rest1"] + ["pad"] * 7
GRE_NAMES = ["gre.flags", "gre.proto"] + ["pad"] * 10


def word_names(ip_version: int, proto: int, has_l4: bool = True) -> list[str]:
    """Names of the 33 words of a packet with this IP version and transport protocol."""
    net = IPV4_NAMES if ip_version == 4 else IPV6_NAMES if ip_version == 6 else ["pad"] * 14
    l4: list[str] = ["pad"] * 12
    if ip_version and has_l4:
        l4 = {6: TCP_NAMES, 17: UDP_NAMES, 1: ICMP_NAMES, 58: ICMP_NAMES, 47: GRE_NAMES}.get(
            proto, l4
        )
    return ETH_NAMES + net + l4


def _be16(header: NDArray[np.uint8], col: int | NDArray[np.int64]) -> NDArray[np.uint16]:
    """Big-endian 16-bit values at column ``col`` (scalar or per-row) of ``header``."""
    if isinstance(col, int):
        hi, lo = header[:, col], header[:, col + 1]
    else:
        rows = np.arange(header.shape[0])
        hi, lo = header[rows, col], header[rows, col + 1]
    return ((hi.astype(np.uint16) << 8) | lo).astype(np.uint16)


def field_words(batch: PacketBatch, header: NDArray[np.uint8]) -> NDArray[np.uint16]:
    """Field words (n, 33) uint16 of ``batch``, read from ``header`` (the batch's, maybe masked)."""
    n = len(batch)
    words = np.zeros((n, N_FIELD_WORDS), dtype=np.uint16)
    if n == 0:
        return words
    h = header
    # Ethernet: bytes 0..13 as 7 big-endian words.
    words[:, 0:7] = (h[:, 0:14:2].astype(np.uint16) << 8) | h[:, 1:14:2]

    v4 = batch.ip_version == 4
    v6 = batch.ip_version == 6
    b14 = h[:, 14].astype(np.uint16)
    b15 = h[:, 15].astype(np.uint16)
    ip = np.zeros((n, 14), dtype=np.uint16)
    # IPv4
    ip4 = np.stack(
        [
            b14 >> 4,
            b14 & 0x0F,
            b15,
            _be16(h, 16),
            _be16(h, 18),
            h[:, 20].astype(np.uint16) >> 5,
            _be16(h, 20) & 0x1FFF,
            h[:, 22].astype(np.uint16),
            h[:, 23].astype(np.uint16),
            _be16(h, 24),
            _be16(h, 26),
            _be16(h, 28),
            _be16(h, 30),
            _be16(h, 32),
        ],
        axis=1,
    )
    ip[v4] = ip4[v4]
    if v6.any():
        r = np.flatnonzero(v6)
        g = h[r]
        l4 = batch.l4_off[r].astype(np.int64)
        hlen = np.where(l4 >= 0, (l4 - 14) // 4, 10).astype(np.uint16)
        src = g[:, 22:38].reshape(-1, 4, 4)
        dst = g[:, 38:54].reshape(-1, 4, 4)
        src_fold = np.bitwise_xor.reduce(src, axis=1).astype(np.uint16)  # (m, 4) bytes
        dst_fold = np.bitwise_xor.reduce(dst, axis=1).astype(np.uint16)
        g14 = g[:, 14].astype(np.uint16)
        g15 = g[:, 15].astype(np.uint16)
        plen = (g[:, 18].astype(np.uint16) << 8) | g[:, 19]
        ip[r] = np.stack(
            [
                g14 >> 4,
                hlen,
                ((g14 & 0x0F) << 4) | (g15 >> 4),
                (plen.astype(np.uint32) + 40).clip(max=0xFFFF).astype(np.uint16),
                (g[:, 16].astype(np.uint16) << 8) | g[:, 17],
                g15 & 0x0F,
                np.zeros(len(r), dtype=np.uint16),
                g[:, 21].astype(np.uint16),
                batch.proto[r].astype(np.uint16),
                np.zeros(len(r), dtype=np.uint16),
                (src_fold[:, 0] << 8) | src_fold[:, 1],
                (src_fold[:, 2] << 8) | src_fold[:, 3],
                (dst_fold[:, 0] << 8) | dst_fold[:, 1],
                (dst_fold[:, 2] << 8) | dst_fold[:, 3],
            ],
            axis=1,
        )
    words[:, 7:21] = ip

    # Transport: gather the 20-byte transport header window of every packet that has one.
    has_l4 = (batch.l4_off >= 0) & (batch.ip_version > 0)
    if has_l4.any():
        r = np.flatnonzero(has_l4)
        cols = batch.l4_off[r].astype(np.int64)[:, None] + np.arange(20)
        t = h[r[:, None], np.minimum(cols, h.shape[1] - 1)].astype(np.uint16)  # (m, 20)
        t[cols >= h.shape[1]] = 0
        be = (t[:, 0:20:2] << 8) | t[:, 1:20:2]  # (m, 10) big-endian words at even offsets
        proto = batch.proto[r]
        l4 = np.zeros((len(r), 12), dtype=np.uint16)
        tcp = proto == 6
        l4[tcp] = np.stack(
            [
                be[:, 0], be[:, 1], be[:, 2], be[:, 3], be[:, 4], be[:, 5],
                t[:, 12] >> 4, t[:, 12] & 0x0F, t[:, 13], be[:, 7], be[:, 8], be[:, 9],
            ],
            axis=1,
        )[tcp]  # fmt: skip
        udp = proto == 17
        l4[udp, 0:4] = be[udp, 0:4]
        icmp = (proto == 1) | (proto == 58)
        l4[icmp, 0] = t[icmp, 0]
        l4[icmp, 1] = t[icmp, 1]
        l4[icmp, 2:5] = be[icmp, 1:4]
        gre = proto == 47
        l4[gre, 0:2] = be[gre, 0:2]
        words[r, 21:33] = l4
    return words
