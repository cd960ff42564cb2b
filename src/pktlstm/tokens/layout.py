"""Packet layouts (network kind x transport kind) and the per-layout mask tables of a policy.

A packet's layout decides which words it has and where a field's bytes lie; masks are
compiled once per configuration into small tables that the tokenising kernels index by layout.
"""

from __future__ import annotations

import numba
import numpy as np
from numpy.typing import NDArray

from pktlstm.io.batch import L3_OFFSET
from pktlstm.tokens.masking import FIELDS, MASK_WORDS

NET_KINDS = ("other", "ipv4", "ipv6")
L4_KINDS = ("none", "tcp", "udp", "icmp", "gre")
N_LAYOUTS = len(NET_KINDS) * len(L4_KINDS)
BASE_FRAME, BASE_L3, BASE_L4 = 0, 1, 2  # where a masked byte span is counted from

# MaskField.layer -> predicate on (network kind, transport kind)
_LAYER_TEST = {
    "eth": lambda net, l4: True,
    "ipv4": lambda net, l4: net == 1,
    "ipv6": lambda net, l4: net == 2,
    "tcp": lambda net, l4: l4 == 1,
    "udp": lambda net, l4: l4 == 2,
    "tcp_udp": lambda net, l4: l4 in (1, 2),
    "icmp": lambda net, l4: l4 == 3,
}
_BASES = {"frame": BASE_FRAME, "l3": BASE_L3, "l4": BASE_L4}


def layout_of(net: int, l4: int) -> int:
    return net * len(L4_KINDS) + l4


def word_mask_table(names: list[str], word_names_of: object) -> NDArray[np.bool_]:
    """(N_LAYOUTS, n_words) table: True where a masked field's word sits in that layout.

    ``word_names_of(net, l4)`` gives the names of the words of a layout (fields.py).
    """
    masked = set().union(*(MASK_WORDS[n] for n in names)) if names else set()
    rows = []
    for net in range(len(NET_KINDS)):
        for l4 in range(len(L4_KINDS)):
            words = word_names_of(net, l4)  # type: ignore[operator]
            rows.append([w in masked for w in words])
    return np.array(rows, dtype=np.bool_)


def byte_span_table(names: list[str]) -> tuple[NDArray[np.int32], NDArray[np.int32]]:
    """Masked byte spans per layout: spans (N_LAYOUTS, S, 3) of (base, start, stop); counts."""
    per_layout: list[list[tuple[int, int, int]]] = []
    for net in range(len(NET_KINDS)):
        for l4 in range(len(L4_KINDS)):
            spans = []
            for name in names:
                for place in FIELDS[name]:
                    if _LAYER_TEST[place.layer](net, l4):
                        spans += [(_BASES[place.base], a, b) for a, b in place.spans]
            per_layout.append(spans)
    width = max(1, max(len(s) for s in per_layout))
    table = np.zeros((N_LAYOUTS, width, 3), dtype=np.int32)
    counts = np.zeros(N_LAYOUTS, dtype=np.int32)
    for i, spans in enumerate(per_layout):
        counts[i] = len(spans)
        if spans:
            table[i, : len(spans)] = spans
    return table, counts


@numba.njit(cache=True, inline="always")
def packet_layout(ip_version: int, proto: int, l4_off: int) -> int:
    """Layout index of one packet (see NET_KINDS, L4_KINDS)."""
    net = 1 if ip_version == 4 else 2 if ip_version == 6 else 0
    l4 = 0
    if net != 0 and l4_off >= 0:
        if proto == 6:
            l4 = 1
        elif proto == 17:
            l4 = 2
        elif proto == 1 or proto == 58:
            l4 = 3
        elif proto == 47:
            l4 = 4
    return net * 5 + l4


@numba.njit(cache=True)
def byte_words_kernel(
    header: NDArray[np.uint8],
    ip_version: NDArray[np.uint8],
    proto: NDArray[np.uint8],
    l4_off: NDArray[np.int16],
    spans: NDArray[np.int32],
    counts: NDArray[np.int32],
    out: NDArray[np.uint16],
) -> None:
    """out[i, j] = header[i, j] for j < out.shape[1], with the layout's masked spans zeroed."""
    n, width = out.shape
    hwidth = header.shape[1]
    for i in range(n):
        for j in range(width):
            out[i, j] = header[i, j]
        layout = packet_layout(ip_version[i], proto[i], l4_off[i])
        for s in range(counts[layout]):
            base = spans[layout, s, 0]
            start = spans[layout, s, 1]
            stop = spans[layout, s, 2]
            if base == 1:
                offset = L3_OFFSET
            elif base == 2:
                offset = l4_off[i]
            else:
                offset = 0
            for j in range(offset + start, min(offset + stop, width, hwidth)):
                out[i, j] = 0
