"""Masking of header fields (identifiers, TTL, ports) in the normalised header window."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from pktlstm.io.batch import L3_OFFSET, PacketBatch

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


def _rows(batch: PacketBatch, layer: str) -> NDArray[np.bool_]:
    has_l4 = batch.l4_off >= 0
    if layer == "eth":
        return np.ones(len(batch), dtype=bool)
    if layer == "ipv4":
        return batch.ip_version == 4
    if layer == "ipv6":
        return batch.ip_version == 6
    if layer == "tcp":
        return has_l4 & (batch.proto == 6) & (batch.ip_version > 0)
    if layer == "udp":
        return has_l4 & (batch.proto == 17) & (batch.ip_version > 0)
    if layer == "tcp_udp":
        return has_l4 & ((batch.proto == 6) | (batch.proto == 17)) & (batch.ip_version > 0)
    if layer == "icmp":
        return has_l4 & ((batch.proto == 1) | (batch.proto == 58)) & (batch.ip_version > 0)
    raise ValueError(f"unknown layer {layer!r}")


def apply_mask(batch: PacketBatch, names: list[str]) -> NDArray[np.uint8]:
    """A copy of ``batch.header`` (n, HEADER_BYTES) with the bytes of the named fields zeroed."""
    header = batch.header.copy()
    width = header.shape[1]
    for name in names:
        for place in FIELDS[name]:
            rows = np.flatnonzero(_rows(batch, place.layer))
            if rows.size == 0:
                continue
            if place.base == "frame":
                base = np.zeros(rows.size, dtype=np.int64)
            elif place.base == "l3":
                base = np.full(rows.size, L3_OFFSET, dtype=np.int64)
            else:
                base = batch.l4_off[rows].astype(np.int64)
            for start, stop in place.spans:
                cols = base[:, None] + np.arange(start, stop)
                inside = cols < width
                header[np.broadcast_to(rows[:, None], cols.shape)[inside], cols[inside]] = 0
    return header
