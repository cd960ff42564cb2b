"""Maskable header fields (identifiers, TTL, ports...), the policies, and where each field lies.

A field is described twice, once per word type: by its byte spans in the normalised header
(byte words) and by the names of its field words (field words). The tokenising kernels zero
both from tables compiled per configuration (layout.py), so masking costs nothing extra.
"""

from __future__ import annotations

from dataclasses import dataclass

POLICIES = ("none", "ids", "strict")


@dataclass(frozen=True)
class MaskField:
    """A maskable header field: where its bytes lie for the packets it applies to.

    ``layer`` selects packets (``eth`` all, ``ipv4``/``ipv6`` by IP version, ``tcp``/``udp``/
    ``tcp_udp``/``l4`` by transport); ``base`` is ``frame`` (offset 0), ``l3`` (offset 14) or
    ``l4`` (the packet's transport offset); ``spans`` are (start, stop) byte ranges from the base.
    """

    layer: str
    base: str
    spans: tuple[tuple[int, int], ...]


# name -> the places it occupies; a name may cover IPv4 and IPv6 through two entries.
FIELDS: dict[str, tuple[MaskField, ...]] = {
    "eth.dst": (MaskField("eth", "frame", ((0, 6),)),),
    "eth.src": (MaskField("eth", "frame", ((6, 12),)),),
    "ip.tos": (MaskField("ipv4", "l3", ((1, 2),)), MaskField("ipv6", "l3", ((0, 2),))),
    "ip.len": (MaskField("ipv4", "l3", ((2, 4),)), MaskField("ipv6", "l3", ((4, 6),))),
    # IPv4 identification; for IPv6 the flow label, its per-flow counterpart
    "ip.id": (MaskField("ipv4", "l3", ((4, 6),)), MaskField("ipv6", "l3", ((1, 4),))),
    "ip.flags": (MaskField("ipv4", "l3", ((6, 8),)),),
    "ip.ttl": (MaskField("ipv4", "l3", ((8, 9),)), MaskField("ipv6", "l3", ((7, 8),))),
    "ip.checksum": (MaskField("ipv4", "l3", ((10, 12),)),),
    "ip.src": (MaskField("ipv4", "l3", ((12, 16),)), MaskField("ipv6", "l3", ((8, 24),))),
    "ip.dst": (MaskField("ipv4", "l3", ((16, 20),)), MaskField("ipv6", "l3", ((24, 40),))),
    "l4.sport": (MaskField("tcp_udp", "l4", ((0, 2),)),),
    "l4.dport": (MaskField("tcp_udp", "l4", ((2, 4),)),),
    "l4.checksum": (
        MaskField("tcp", "l4", ((16, 18),)),
        MaskField("udp", "l4", ((6, 8),)),
        MaskField("icmp", "l4", ((2, 4),)),
    ),
    "tcp.seq": (MaskField("tcp", "l4", ((4, 8),)),),
    "tcp.ack": (MaskField("tcp", "l4", ((8, 12),)),),
    "tcp.offset": (MaskField("tcp", "l4", ((12, 13),)),),
    "tcp.window": (MaskField("tcp", "l4", ((14, 16),)),),
    "udp.len": (MaskField("udp", "l4", ((4, 6),)),),
}

# name -> the field words (fields.py names) it covers, for field words.
MASK_WORDS: dict[str, set[str]] = {
    "eth.dst": {"eth.dst0", "eth.dst1", "eth.dst2"},
    "eth.src": {"eth.src0", "eth.src1", "eth.src2"},
    "ip.tos": {"ip.tos", "ip6.tclass"},
    "ip.len": {"ip.len", "ip6.len"},
    "ip.id": {"ip.id", "ip6.flow_lo", "ip6.flow_hi"},
    "ip.flags": {"ip.flags", "ip.frag"},
    "ip.ttl": {"ip.ttl", "ip6.hlim"},
    "ip.checksum": {"ip.checksum"},
    "ip.src": {"ip.src0", "ip.src1", "ip6.src0", "ip6.src1"},
    "ip.dst": {"ip.dst0", "ip.dst1", "ip6.dst0", "ip6.dst1"},
    "l4.sport": {"tcp.sport", "udp.sport"},
    "l4.dport": {"tcp.dport", "udp.dport"},
    "l4.checksum": {"tcp.checksum", "udp.checksum", "icmp.checksum"},
    "tcp.seq": {"tcp.seq0", "tcp.seq1"},
    "tcp.ack": {"tcp.ack0", "tcp.ack1"},
    "tcp.offset": {"tcp.offset", "tcp.reserved"},
    "tcp.window": {"tcp.window"},
    "udp.len": {"udp.len"},
}

# Fields each policy masks: `ids` removes identifiers of hosts and packets (what a model must not
# memorise), `strict` also the TTL/hop limit and ports (host stacks and services).
POLICY_FIELDS: dict[str, tuple[str, ...]] = {
    "none": (),
    "ids": ("eth.dst", "eth.src", "ip.src", "ip.dst", "ip.id", "ip.checksum", "l4.checksum"),
    "strict": (
        "eth.dst",
        "eth.src",
        "ip.src",
        "ip.dst",
        "ip.id",
        "ip.checksum",
        "l4.checksum",
        "ip.ttl",
        "l4.sport",
        "l4.dport",
    ),
}


def masked_fields(
    policy: str, add: tuple[str, ...] = (), remove: tuple[str, ...] = ()
) -> list[str]:
    """The field names masked by ``policy`` with per-field overrides applied, in a stable order."""
    names = [f for f in POLICY_FIELDS[policy] if f not in remove]
    names += [f for f in add if f not in names]
    return names
