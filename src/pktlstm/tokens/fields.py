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

from typing import Any

import numba
import numpy as np
from numpy.typing import NDArray

from pktlstm.io.batch import PacketBatch
from pktlstm.tokens.layout import L4_KINDS, packet_layout, word_mask_table

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


def layout_word_names(net: int, l4: int) -> list[str]:
    """Names of the 33 words of a layout (net: 0 other, 1 IPv4, 2 IPv6; l4 as in layout.py)."""
    net_names = [["pad"] * 14, IPV4_NAMES, IPV6_NAMES][net]
    l4_names = [["pad"] * 12, TCP_NAMES, UDP_NAMES, ICMP_NAMES, GRE_NAMES][l4] if net else []
    return ETH_NAMES + net_names + (l4_names or ["pad"] * 12)


def word_names(ip_version: int, proto: int, has_l4: bool = True) -> list[str]:
    """Names of the 33 words of a packet with this IP version and transport protocol."""
    layout = packet_layout(ip_version, proto, 0 if has_l4 else -1)
    return layout_word_names(layout // len(L4_KINDS), layout % len(L4_KINDS))


def field_words(batch: PacketBatch, masked: list[str] | None = None) -> NDArray[np.uint16]:
    """Field words (n, 33) uint16 of ``batch``, the words of ``masked`` fields zeroed."""
    table = word_mask_table(masked or [], layout_word_names)
    out = np.empty((len(batch), N_FIELD_WORDS), dtype=np.uint16)
    _field_words_kernel(batch.header, batch.ip_version, batch.proto, batch.l4_off, table, out)
    return out


@numba.njit(cache=True, inline="always")
def _be16(h: NDArray[np.uint8], i: Any, j: Any) -> Any:
    return (np.uint16(h[i, j]) << 8) | np.uint16(h[i, j + 1])


@numba.njit(cache=True)
def _field_words_kernel(
    h: NDArray[np.uint8],
    ip_version: NDArray[np.uint8],
    proto: NDArray[np.uint8],
    l4_off: NDArray[np.int16],
    mask: NDArray[np.bool_],
    out: NDArray[np.uint16],
) -> None:
    """One pass over the packets: the module docstring's layout, then the layout's mask."""
    n = out.shape[0]
    width = h.shape[1]
    for i in range(n):
        for j in range(N_FIELD_WORDS):
            out[i, j] = 0
        for j in range(7):
            out[i, j] = _be16(h, i, 2 * j)
        v = ip_version[i]
        if v == 4:
            out[i, 7] = h[i, 14] >> 4
            out[i, 8] = h[i, 14] & 0x0F
            out[i, 9] = h[i, 15]
            out[i, 10] = _be16(h, i, 16)
            out[i, 11] = _be16(h, i, 18)
            out[i, 12] = h[i, 20] >> 5
            out[i, 13] = _be16(h, i, 20) & 0x1FFF
            out[i, 14] = h[i, 22]
            out[i, 15] = h[i, 23]
            out[i, 16] = _be16(h, i, 24)
            out[i, 17] = _be16(h, i, 26)
            out[i, 18] = _be16(h, i, 28)
            out[i, 19] = _be16(h, i, 30)
            out[i, 20] = _be16(h, i, 32)
        elif v == 6:
            off = l4_off[i]
            out[i, 7] = h[i, 14] >> 4
            out[i, 8] = (off - 14) // 4 if off >= 0 else 10
            out[i, 9] = ((h[i, 14] & 0x0F) << 4) | (h[i, 15] >> 4)
            out[i, 10] = min(_be16(h, i, 18) + 40, 0xFFFF)
            out[i, 11] = _be16(h, i, 16)
            out[i, 12] = h[i, 15] & 0x0F
            out[i, 14] = h[i, 21]
            out[i, 15] = proto[i]
            # addresses folded to 32 bits: XOR of their four 32-bit words
            for a in range(2):
                base = 22 + 16 * a
                b0 = h[i, base] ^ h[i, base + 4] ^ h[i, base + 8] ^ h[i, base + 12]
                b1 = h[i, base + 1] ^ h[i, base + 5] ^ h[i, base + 9] ^ h[i, base + 13]
                b2 = h[i, base + 2] ^ h[i, base + 6] ^ h[i, base + 10] ^ h[i, base + 14]
                b3 = h[i, base + 3] ^ h[i, base + 7] ^ h[i, base + 11] ^ h[i, base + 15]
                out[i, 17 + 2 * a] = (np.uint16(b0) << 8) | b1
                out[i, 18 + 2 * a] = (np.uint16(b2) << 8) | b3
        layout = packet_layout(v, proto[i], l4_off[i])
        l4 = layout % 5
        o = np.int64(l4_off[i])
        if l4 != 0 and o + 20 <= width:
            if l4 == 1:  # TCP
                for j in range(6):
                    out[i, 21 + j] = _be16(h, i, o + 2 * j)
                out[i, 27] = h[i, o + 12] >> 4
                out[i, 28] = h[i, o + 12] & 0x0F
                out[i, 29] = h[i, o + 13]
                out[i, 30] = _be16(h, i, o + 14)
                out[i, 31] = _be16(h, i, o + 16)
                out[i, 32] = _be16(h, i, o + 18)
            elif l4 == 2:  # UDP
                for j in range(4):
                    out[i, 21 + j] = _be16(h, i, o + 2 * j)
            elif l4 == 3:  # ICMP, ICMPv6
                out[i, 21] = h[i, o]
                out[i, 22] = h[i, o + 1]
                out[i, 23] = _be16(h, i, o + 2)
                out[i, 24] = _be16(h, i, o + 4)
                out[i, 25] = _be16(h, i, o + 6)
            else:  # GRE
                out[i, 21] = _be16(h, i, o)
                out[i, 22] = _be16(h, i, o + 2)
        for j in range(N_FIELD_WORDS):
            if mask[layout, j]:
                out[i, j] = 0
