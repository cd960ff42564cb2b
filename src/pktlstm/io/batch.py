"""The columnar PacketBatch: one row per packet, numpy arrays only, shared by every stage."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
from numpy.typing import NDArray

# Width of the normalised header window kept per packet, in bytes, from the (possibly
# synthetic) Ethernet header on: 14 Ethernet + up to 60 IPv4 or 40 IPv6 (+ extension
# headers) + the first 20 bytes of the transport header fit for all common packets.
HEADER_BYTES = 128
# Offset of the network header inside the normalised window: always right after Ethernet.
L3_OFFSET = 14


@dataclass
class PacketBatch:
    """A batch of decoded packets as parallel numpy arrays of length ``n``.

    The header window is *normalised*: VLAN tags are removed and non-Ethernet link
    layers get a synthetic Ethernet header (zero MACs, the right ethertype), so that
    the network header always starts at byte 14 and every packet tokenises the same way.

    Attributes (shapes are ``(n,)`` unless given):
        ts_ns: capture timestamp, nanoseconds since the Unix epoch.
        caplen, wirelen: captured and original length of the frame on the wire, bytes.
        linktype: the capture's link type (pcap LINKTYPE_* value) for this packet.
        header: ``(n, HEADER_BYTES)`` normalised header bytes, zero past the captured data.
        ethertype: ethertype after VLAN removal (0x0800 IPv4, 0x86DD IPv6, ...).
        ip_version: 4, 6, or 0 when the packet is not IP.
        proto: IP protocol / final IPv6 next header (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6, 47 GRE).
        l4_off: offset of the transport header in ``header`` (-1 when there is none or
            it lies past the window, e.g. non-first fragments).
        src, dst: ``(n, 16)`` addresses; IPv4 as IPv4-mapped IPv6 (``::ffff:a.b.c.d``).
        sport, dport: transport ports (0 when the protocol has none).
        tcp_flags: TCP flag byte (FIN=0x01 SYN=0x02 RST=0x04 PSH=0x08 ACK=0x10 URG=0x20 ...).
        flow_id: bidirectional flow id: the same for both directions of a 5-tuple.
        direction: 0 when (src, sport) sorts before (dst, dport) as bytes, else 1.
        capture_id: which capture (file or interface) the packet came from.
        pkt_index: 0-based index of the packet's record within its capture (counts
            skipped records too, so it matches Wireshark's frame number minus one).
    """

    ts_ns: NDArray[np.int64]
    caplen: NDArray[np.uint32]
    wirelen: NDArray[np.uint32]
    linktype: NDArray[np.uint16]
    header: NDArray[np.uint8]
    ethertype: NDArray[np.uint16]
    ip_version: NDArray[np.uint8]
    proto: NDArray[np.uint8]
    l4_off: NDArray[np.int16]
    src: NDArray[np.uint8]
    dst: NDArray[np.uint8]
    sport: NDArray[np.uint16]
    dport: NDArray[np.uint16]
    tcp_flags: NDArray[np.uint8]
    flow_id: NDArray[np.uint64]
    direction: NDArray[np.uint8]
    capture_id: NDArray[np.uint32]
    pkt_index: NDArray[np.uint64]

    def __len__(self) -> int:
        return int(self.ts_ns.shape[0])

    def __getitem__(self, index: Any) -> PacketBatch:
        """Rows selected by a slice, an index array or a boolean mask."""
        return PacketBatch(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    @classmethod
    def empty(cls) -> PacketBatch:
        return cls(**{name: np.zeros(shape, dtype) for name, (dtype, shape) in _SCHEMA.items()})

    @classmethod
    def concat(cls, batches: list[PacketBatch]) -> PacketBatch:
        if not batches:
            return cls.empty()
        return cls(
            **{f.name: np.concatenate([getattr(b, f.name) for b in batches]) for f in fields(cls)}
        )


# dtype and per-row shape of each column, for empty batches and validation.
_SCHEMA: dict[str, tuple[type, tuple[int, ...]]] = {
    "ts_ns": (np.int64, (0,)),
    "caplen": (np.uint32, (0,)),
    "wirelen": (np.uint32, (0,)),
    "linktype": (np.uint16, (0,)),
    "header": (np.uint8, (0, HEADER_BYTES)),
    "ethertype": (np.uint16, (0,)),
    "ip_version": (np.uint8, (0,)),
    "proto": (np.uint8, (0,)),
    "l4_off": (np.int16, (0,)),
    "src": (np.uint8, (0, 16)),
    "dst": (np.uint8, (0, 16)),
    "sport": (np.uint16, (0,)),
    "dport": (np.uint16, (0,)),
    "tcp_flags": (np.uint8, (0,)),
    "flow_id": (np.uint64, (0,)),
    "direction": (np.uint8, (0,)),
    "capture_id": (np.uint32, (0,)),
    "pkt_index": (np.uint64, (0,)),
}


@dataclass
class DecodeStats:
    """Counts of what a reader saw, with skipped packets by reason (Suricata-style names).

    Reasons include ``decoder.truncated`` (record or header cut short),
    ``decoder.bad_header`` (impossible field values), ``decoder.unsupported_linktype``
    and ``capture.kernel_drops`` for live capture.
    """

    packets: int = 0
    bytes: int = 0
    skipped: Counter[str] = field(default_factory=Counter)

    def merge(self, other: DecodeStats) -> None:
        self.packets += other.packets
        self.bytes += other.bytes
        self.skipped.update(other.skipped)

    def as_dict(self) -> dict[str, Any]:
        return {"packets": self.packets, "bytes": self.bytes, "skipped": dict(self.skipped)}
