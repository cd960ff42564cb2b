"""Capture summaries for `pktlstm inspect`: packets, bytes, duration, link types, protocols, flows."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pktlstm.io.batch import PacketBatch
from pktlstm.io.decode import LINKTYPE_NAMES
from pktlstm.io.reader import CaptureConfig, open_capture

# Names for the protocol mix: IP protocol numbers, then ethertypes of non-IP packets.
IP_PROTO_NAMES = {
    1: "icmp",
    2: "igmp",
    6: "tcp",
    17: "udp",
    47: "gre",
    50: "esp",
    51: "ah",
    58: "icmpv6",
    89: "ospf",
    103: "pim",
    112: "vrrp",
    132: "sctp",
}
ETHERTYPE_NAMES = {
    0x0806: "arp",
    0x8035: "rarp",
    0x88CC: "lldp",
    0x8863: "pppoe-discovery",
    0x8864: "pppoe",
    0x888E: "eapol",
    0x8847: "mpls",
    0x88E5: "macsec",
}


def linktype_name(linktype: int) -> str:
    return LINKTYPE_NAMES.get(linktype, f"linktype-{linktype}")


def protocol_name(code: int) -> str:
    """Name of a protocol-mix code: ``proto`` for IP packets, ``0x10000 | ethertype`` else."""
    if code < 0x10000:
        return IP_PROTO_NAMES.get(code, f"ip-proto-{code}")
    ethertype = code & 0xFFFF
    return ETHERTYPE_NAMES.get(ethertype, f"ethertype-0x{ethertype:04x}")


@dataclass
class CaptureSummary:
    """What one capture holds. Byte counts are captured bytes (``bytes``) and bytes on the
    wire (``wire_bytes``) of decoded packets; times are nanoseconds since the epoch."""

    path: str
    format: str = ""
    compressed: bool = False
    packets: int = 0
    bytes: int = 0
    wire_bytes: int = 0
    first_ts_ns: int | None = None
    last_ts_ns: int | None = None
    linktypes: Counter[str] = field(default_factory=Counter)  # packets per link type
    protocols: Counter[str] = field(default_factory=Counter)  # packets per protocol
    ip_versions: Counter[str] = field(default_factory=Counter)  # "ipv4", "ipv6", "non-ip"
    flows: int = 0  # distinct bidirectional flow ids
    skipped: Counter[str] = field(default_factory=Counter)  # records skipped, by reason

    @property
    def duration_s(self) -> float:
        """Seconds between the earliest and the latest packet (0 for fewer than two)."""
        if self.first_ts_ns is None or self.last_ts_ns is None:
            return 0.0
        return (self.last_ts_ns - self.first_ts_ns) / 1e9

    def add(self, batch: PacketBatch) -> None:
        """Fold one decoded batch into the summary (flows are counted by the caller)."""
        n = len(batch)
        if n == 0:
            return
        self.packets += n
        self.bytes += int(batch.caplen.sum(dtype=np.int64))
        self.wire_bytes += int(batch.wirelen.sum(dtype=np.int64))
        lo, hi = int(batch.ts_ns.min()), int(batch.ts_ns.max())
        self.first_ts_ns = lo if self.first_ts_ns is None else min(self.first_ts_ns, lo)
        self.last_ts_ns = hi if self.last_ts_ns is None else max(self.last_ts_ns, hi)
        _count(self.linktypes, batch.linktype, linktype_name)
        is_ip = batch.ip_version > 0
        codes = np.where(is_ip, batch.proto, 0x10000 | batch.ethertype.astype(np.int64))
        _count(self.protocols, codes, protocol_name)
        _count(self.ip_versions, batch.ip_version, lambda v: f"ipv{v}" if v else "non-ip")

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "format": self.format,
            "compressed": self.compressed,
            "packets": self.packets,
            "bytes": self.bytes,
            "wire_bytes": self.wire_bytes,
            "first_ts_ns": self.first_ts_ns,
            "last_ts_ns": self.last_ts_ns,
            "duration_s": self.duration_s,
            "linktypes": dict(self.linktypes.most_common()),
            "protocols": dict(self.protocols.most_common()),
            "ip_versions": dict(self.ip_versions.most_common()),
            "flows": self.flows,
            "skipped": dict(self.skipped.most_common()),
            "skipped_total": self.skipped.total(),
        }


def _count(counter: Counter[str], values: np.ndarray, name: Callable[[int], str]) -> None:
    uniq, counts = np.unique(values, return_counts=True)
    for value, count in zip(uniq.tolist(), counts.tolist(), strict=True):
        counter[name(value)] += count


def summarize_capture(
    path: str | Path,
    config: CaptureConfig | None = None,
    progress: Callable[[int], None] | None = None,
) -> CaptureSummary:
    """Read a whole capture and summarise it.

    Args:
        path: pcap or pcapng file, gzip-compressed or not.
        config: reader settings (chunk size bounds memory).
        progress: called after each chunk with the bytes of the file read so far.

    Raises:
        CaptureError: the file is missing or not a capture.
    """
    flows: set[int] = set()
    with open_capture(path, config) as reader:
        summary = CaptureSummary(
            path=str(path), format=reader.info.format, compressed=reader.info.compressed
        )
        for batch in reader:
            summary.add(batch)
            flows.update(np.unique(batch.flow_id).tolist())
            if progress is not None:
                progress(reader.bytes_read)
        summary.skipped.update(reader.stats.skipped)
    summary.flows = len(flows)
    return summary


def total(summaries: Sequence[CaptureSummary]) -> CaptureSummary:
    """All files together; flows are summed per file (a flow id belongs to its capture)."""
    out = CaptureSummary(path=f"{len(summaries)} files")
    for s in summaries:
        out.packets += s.packets
        out.bytes += s.bytes
        out.wire_bytes += s.wire_bytes
        out.flows += s.flows
        for mine, theirs in (
            (out.linktypes, s.linktypes),
            (out.protocols, s.protocols),
            (out.ip_versions, s.ip_versions),
            (out.skipped, s.skipped),
        ):
            mine.update(theirs)
        if s.first_ts_ns is not None and s.last_ts_ns is not None:
            first, last = out.first_ts_ns, out.last_ts_ns
            out.first_ts_ns = s.first_ts_ns if first is None else min(first, s.first_ts_ns)
            out.last_ts_ns = s.last_ts_ns if last is None else max(last, s.last_ts_ns)
    return out


def inspect_report(summaries: Sequence[CaptureSummary]) -> dict[str, Any]:
    """The ``--json`` document: ``{"files": [...], "total": {...}}``."""
    whole = total(summaries).as_dict()
    for key in ("path", "format", "compressed"):
        whole.pop(key)
    whole["files"] = len(summaries)
    return {"files": [s.as_dict() for s in summaries], "total": whole}


def _human_bytes(n: int) -> str:
    value = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{n} B"


def _human_duration(seconds: float) -> str:
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("min", 60.0)):
        if seconds >= size:
            return f"{seconds / size:,.1f} {unit}"
    return f"{seconds:.1f} s"


def _mix(counter: Counter[str], packets: int, top: int = 2) -> str:
    if not counter:
        return "-"
    parts = [f"{k} {100 * v / max(packets, 1):.0f}%" for k, v in counter.most_common(top)]
    if len(counter) > top:
        parts.append(f"+{len(counter) - top}")
    return ", ".join(parts)


TABLE_COLUMNS = (
    "file",
    "format",
    "packets",
    "bytes",
    "duration",
    "link types",
    "protocols",
    "flows",
    "skipped",
)


def table_row(summary: CaptureSummary) -> list[str]:
    """One human-readable row per TABLE_COLUMNS for a rich table."""
    fmt = summary.format + (".gz" if summary.compressed else "")
    skipped = ", ".join(f"{k.split('.')[-1]} {v}" for k, v in summary.skipped.most_common(3))
    return [
        Path(summary.path).name if fmt else summary.path,
        fmt or "-",
        f"{summary.packets:,}",
        _human_bytes(summary.bytes),
        _human_duration(summary.duration_s),
        ", ".join(summary.linktypes) or "-",
        _mix(summary.protocols, summary.packets),
        f"{summary.flows:,}",
        skipped or "0",
    ]
