"""Label sources: map every packet of a capture to a class from the labels users actually have.

Four shapes of labels are supported, each a ``LabelSource`` whose ``assign`` returns one class
name index per packet (``-1`` where the source says nothing):

- ``FileLabels``: one class per capture file (folder name, file name, or a manifest CSV);
- ``FlowLabels``: a CSV of 5-tuples with optional time windows (CIC-IDS2017 style), matched in
  both directions;
- ``SessionLabels``: per-session packet ranges of a file (the USTC-TFC2016 ``sessions.csv``);
  sessions also become the flow keys, so a dataset split by flow is split by session;
- ``RuleLabels``: address/CIDR, protocol, port and time window -> class, first match wins.

Class names are normalised to lower case; ``benign`` (also ``normal``, ``benign``) is the
benign class. Any other name is an attack class; the binary view is benign vs malicious.
"""

from __future__ import annotations

import csv
import hashlib
import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from pktlstm.errors import LabelError
from pktlstm.io.batch import PacketBatch
from pktlstm.io.decode import ip_flow_id

BENIGN = "benign"
_BENIGN_ALIASES = {"benign", "normal", "background", "legitimate"}
_PROTOS = {"tcp": 6, "udp": 17, "icmp": 1, "icmpv6": 58, "ipv6-icmp": 58, "gre": 47}


def normalise_label(name: str) -> str:
    """Lower-case class name; benign aliases (normal, background, ...) become ``benign``."""
    label = name.strip().lower().replace(" ", "_").replace("-", "_")
    return BENIGN if label in _BENIGN_ALIASES else label


@dataclass
class Assignment:
    """Labels of one batch: ``codes`` index ``names`` (-1 = unlabelled); ``group`` optional keys.

    group: (n,) uint64 keys that replace the reader's flow id as the unit of splitting (sessions),
    or None to keep flows.
    """

    codes: NDArray[np.int32]
    names: list[str]
    group: NDArray[np.uint64] | None = None


class LabelSource(Protocol):
    """Anything that labels the packets of a batch read from ``capture``."""

    def describe(self) -> dict[str, Any]:
        """What the source is (kind, path, sha256...) for the dataset card."""
        ...

    def assign(self, batch: PacketBatch, capture: Path) -> Assignment: ...


def _open_csv(path: Path) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """Rows of a CSV as (line number, row dict) with stripped lower-case header names."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None:
                raise LabelError(f"{path}: empty label file (no header line)")
            keys = [h.strip().lower() for h in header]
            rows = []
            for i, values in enumerate(reader, start=2):
                if not values or all(not v.strip() for v in values):
                    continue
                if len(values) != len(keys):
                    raise LabelError(
                        f"{path}:{i}: {len(values)} columns, the header has {len(keys)}"
                    )
                rows.append((i, {k: v.strip() for k, v in zip(keys, values, strict=True)}))
    except FileNotFoundError as exc:
        raise LabelError(f"{path}: label file not found") from exc
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise LabelError(f"{path}: unreadable label file: {exc}") from exc
    return keys, rows


def _column(keys: Sequence[str], path: Path, *names: str, required: bool = True) -> str | None:
    for name in names:
        if name in keys:
            return name
    if required:
        raise LabelError(f"{path}: no column {names[0]!r} (also accepted: {', '.join(names[1:])})")
    return None


def parse_time_ns(text: str, where: str) -> int | None:
    """Epoch seconds (``1700000000.123456``) or ISO 8601 -> integer ns; empty -> None."""
    text = text.strip()
    if not text:
        return None
    try:
        return int(Decimal(text) * 1_000_000_000)
    except InvalidOperation:
        pass
    try:
        stamp = datetime.fromisoformat(text)
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=UTC)
        return int(stamp.timestamp() * 1_000_000) * 1000
    except ValueError as exc:
        raise LabelError(f"{where}: bad time {text!r} (epoch seconds or ISO 8601)") from exc


def _proto(text: str, where: str) -> int | None:
    text = text.strip().lower()
    if not text:
        return None
    if text in _PROTOS:
        return _PROTOS[text]
    try:
        value = int(text)
    except ValueError as exc:
        raise LabelError(f"{where}: bad protocol {text!r} (a number or tcp/udp/icmp/gre)") from exc
    if not 0 <= value <= 255:
        raise LabelError(f"{where}: protocol {value} out of range 0..255")
    return value


def _port(text: str, where: str) -> int | None:
    text = text.strip()
    if not text:
        return None
    try:
        value = int(float(text))
    except ValueError as exc:
        raise LabelError(f"{where}: bad port {text!r}") from exc
    if not 0 <= value <= 65535:
        raise LabelError(f"{where}: port {value} out of range 0..65535")
    return value


def _addr16(text: str, where: str) -> bytes:
    try:
        ip = ipaddress.ip_address(text.strip())
    except ValueError as exc:
        raise LabelError(f"{where}: bad IP address {text!r}") from exc
    if isinstance(ip, ipaddress.IPv4Address):
        return ipaddress.IPv6Address(f"::ffff:{ip}").packed
    return ip.packed


class _Names:
    """Interning of class names to codes, in order of first appearance."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self._index: dict[str, int] = {}

    def code(self, name: str) -> int:
        label = normalise_label(name)
        if label not in self._index:
            self._index[label] = len(self.names)
            self.names.append(label)
        return self._index[label]


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks (recorded in dataset cards)."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class FileLabels:
    """One class per capture file.

    ``mapping`` maps a file path (or any parent folder of it) to a class. Without a mapping,
    ``by="folder"`` takes the name of the file's parent folder and ``by="file"`` the file name
    without extension.

    >>> FileLabels(by="folder").label_of(Path("data/malware/Zeus.pcap"))
    'malware'
    """

    def __init__(self, mapping: dict[Path, str] | None = None, by: str = "folder") -> None:
        if by not in ("folder", "file"):
            raise LabelError(f"by={by!r}: choose folder or file")
        self.mapping = {Path(k).resolve(): normalise_label(v) for k, v in (mapping or {}).items()}
        self.by = by
        self._names = _Names()
        self._manifest: Path | None = None

    @classmethod
    def from_manifest(cls, path: Path, root: Path | None = None) -> FileLabels:
        """A CSV with columns ``path`` and ``label`` (paths relative to ``root`` or the CSV)."""
        keys, rows = _open_csv(path)
        pcol = _column(keys, path, "path", "file", "filename")
        lcol = _column(keys, path, "label", "class")
        base = root if root is not None else path.parent
        mapping: dict[Path, str] = {}
        for line, row in rows:
            assert pcol is not None and lcol is not None
            if not row[pcol] or not row[lcol]:
                raise LabelError(f"{path}:{line}: empty path or label")
            mapping[base / row[pcol]] = row[lcol]
        labels = cls(mapping)
        labels._manifest = path
        return labels

    def label_of(self, capture: Path) -> str | None:
        if self.mapping:
            resolved = capture.resolve()
            for candidate in (resolved, *resolved.parents):
                if candidate in self.mapping:
                    return self.mapping[candidate]
            return None
        return normalise_label(capture.parent.name if self.by == "folder" else capture.stem)

    def describe(self) -> dict[str, Any]:
        if self._manifest is not None:
            return {
                "kind": "manifest",
                "path": str(self._manifest),
                "sha256": file_sha256(self._manifest),
            }
        return {"kind": "files", "by": self.by if not self.mapping else "mapping"}

    def assign(self, batch: PacketBatch, capture: Path) -> Assignment:
        label = self.label_of(capture)
        code = -1 if label is None else self._names.code(label)
        return Assignment(np.full(len(batch), code, dtype=np.int32), self._names.names)


@dataclass(frozen=True)
class _FlowRow:
    key: int
    start: int | None
    end: int | None
    code: int


class FlowLabels:
    """Per-flow labels from a CSV of 5-tuples, matched in both directions.

    Columns (case-insensitive; CIC-IDS2017 names accepted): ``src_ip`` (Source IP),
    ``src_port`` (Source Port), ``dst_ip`` (Destination IP), ``dst_port`` (Destination Port),
    ``proto`` (Protocol: number or name), optional ``start``/``end`` (epoch seconds or ISO 8601;
    empty = any time), ``label``. When several rows match a packet, the first in file order whose
    time window holds the packet wins.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        keys, rows = _open_csv(self.path)
        c_src = _column(keys, self.path, "src_ip", "source ip", "src", "saddr")
        c_sport = _column(keys, self.path, "src_port", "source port", "sport")
        c_dst = _column(keys, self.path, "dst_ip", "destination ip", "dst", "daddr")
        c_dport = _column(keys, self.path, "dst_port", "destination port", "dport")
        c_proto = _column(keys, self.path, "proto", "protocol")
        c_start = _column(keys, self.path, "start", "start_time", required=False)
        c_end = _column(keys, self.path, "end", "end_time", required=False)
        c_label = _column(keys, self.path, "label", "class")
        self._names = _Names()
        n = len(rows)
        src = np.zeros((n, 16), dtype=np.uint8)
        dst = np.zeros((n, 16), dtype=np.uint8)
        sport = np.zeros(n, dtype=np.uint16)
        dport = np.zeros(n, dtype=np.uint16)
        proto = np.zeros(n, dtype=np.uint8)
        start = np.full(n, np.iinfo(np.int64).min, dtype=np.int64)
        end = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
        codes = np.zeros(n, dtype=np.int32)
        for i, (line, row) in enumerate(rows):
            where = f"{self.path}:{line}"
            assert c_src and c_dst and c_sport and c_dport and c_proto and c_label
            src[i] = np.frombuffer(_addr16(row[c_src], where), dtype=np.uint8)
            dst[i] = np.frombuffer(_addr16(row[c_dst], where), dtype=np.uint8)
            sport[i] = _port(row[c_sport], where) or 0
            dport[i] = _port(row[c_dport], where) or 0
            proto[i] = _proto(row[c_proto], where) or 0
            if c_start and (t := parse_time_ns(row[c_start], where)) is not None:
                start[i] = t
            if c_end and (t := parse_time_ns(row[c_end], where)) is not None:
                end[i] = t
            if not row[c_label]:
                raise LabelError(f"{where}: empty label")
            codes[i] = self._names.code(row[c_label])
        key = ip_flow_id(src, sport, dst, dport, proto)
        # Stable sort by key keeps file order among rows of the same 5-tuple.
        order = np.argsort(key, kind="stable")
        self._key, self._start, self._end, self._codes = (
            key[order],
            start[order],
            end[order],
            codes[order],
        )
        self.rows = n

    def describe(self) -> dict[str, Any]:
        return {"kind": "flows", "path": str(self.path), "sha256": file_sha256(self.path)}

    def assign(self, batch: PacketBatch, capture: Path) -> Assignment:
        del capture  # flows are matched by 5-tuple and time, whatever the file
        key = batch.flow_id  # the reader's id is the same for both directions of a 5-tuple
        lo = np.searchsorted(self._key, key, side="left")
        hi = np.searchsorted(self._key, key, side="right")
        codes = np.full(len(batch), -1, dtype=np.int32)
        most = int((hi - lo).max()) if len(batch) else 0
        for j in range(most):
            idx = lo + j
            candidate = (idx < hi) & (codes < 0)
            rows = np.flatnonzero(candidate)
            if rows.size == 0:
                break
            r = idx[rows]
            ts = batch.ts_ns[rows]
            inside = (ts >= self._start[r]) & (ts <= self._end[r])
            codes[rows[inside]] = self._codes[r[inside]]
        return Assignment(codes, self._names.names)


class SessionLabels:
    """Per-session packet ranges of capture files (``file,session,label,class,first_packet,packets``).

    The class is the ``class`` column for malicious sessions and ``benign`` for benign ones.
    Sessions become the flow keys of the dataset, so splitting by flow splits by session.
    Files are matched by their path relative to the CSV's folder.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        keys, rows = _open_csv(self.path)
        c_file = _column(keys, self.path, "file", "path")
        c_sess = _column(keys, self.path, "session", "session_id")
        c_label = _column(keys, self.path, "label")
        c_class = _column(keys, self.path, "class", required=False)
        c_first = _column(keys, self.path, "first_packet", "first")
        c_count = _column(keys, self.path, "packets", "count")
        self._names = _Names()
        per_file: dict[Path, list[tuple[int, int, int, int]]] = {}
        for line, row in rows:
            where = f"{self.path}:{line}"
            assert c_file and c_sess and c_label and c_first and c_count
            try:
                first, count = int(row[c_first]), int(row[c_count])
            except ValueError as exc:
                raise LabelError(f"{where}: first_packet and packets must be integers") from exc
            if first < 0 or count < 1:
                raise LabelError(f"{where}: bad packet range first={first} packets={count}")
            label = normalise_label(row[c_label])
            if label != BENIGN and c_class and row[c_class]:
                label = normalise_label(row[c_class])
            # Sessions are the flows of this source: a stable 64-bit key per (file, session).
            digest = hashlib.blake2b(f"{row[c_file]}\0{row[c_sess]}".encode(), digest_size=8)
            group = int.from_bytes(digest.digest(), "little")
            file = (self.path.parent / row[c_file]).resolve()
            per_file.setdefault(file, []).append((first, count, self._names.code(label), group))
        self._files = {}
        for file, sessions in per_file.items():
            sessions.sort()
            arr = np.array(sessions, dtype=np.uint64).reshape(-1, 4)
            self._files[file] = arr
        self.sessions = len(rows)

    def describe(self) -> dict[str, Any]:
        return {"kind": "sessions", "path": str(self.path), "sha256": file_sha256(self.path)}

    def assign(self, batch: PacketBatch, capture: Path) -> Assignment:
        n = len(batch)
        codes = np.full(n, -1, dtype=np.int32)
        group = np.zeros(n, dtype=np.uint64)
        table = self._files.get(capture.resolve())
        if table is None or n == 0:
            return Assignment(codes, self._names.names, group)
        first, count = table[:, 0].astype(np.int64), table[:, 1].astype(np.int64)
        index = batch.pkt_index.astype(np.int64)
        s = np.searchsorted(first, index, side="right") - 1
        ok = (s >= 0) & (index < first[np.maximum(s, 0)] + count[np.maximum(s, 0)])
        codes[ok] = table[s[ok], 2].astype(np.int32)
        group[ok] = table[s[ok], 3]
        return Assignment(codes, self._names.names, group)


@dataclass(frozen=True)
class Rule:
    """One labelling rule; None fields match anything. Addresses match in either direction."""

    src: ipaddress.IPv6Network | None
    dst: ipaddress.IPv6Network | None
    proto: int | None
    port: int | None
    start: int | None
    end: int | None
    code: int


def _network(text: str, where: str) -> ipaddress.IPv6Network | None:
    text = text.strip()
    if not text:
        return None
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError as exc:
        raise LabelError(f"{where}: bad address or CIDR {text!r}") from exc
    if isinstance(net, ipaddress.IPv4Network):
        return ipaddress.IPv6Network(f"::ffff:{net.network_address}/{96 + net.prefixlen}")
    return net


def _in_network(addr: NDArray[np.uint8], net: ipaddress.IPv6Network) -> NDArray[np.bool_]:
    """Which 16-byte addresses (n, 16) lie in ``net``."""
    prefix = np.frombuffer(net.network_address.packed, dtype=np.uint8)
    mask = np.frombuffer(net.netmask.packed, dtype=np.uint8)
    return np.all((addr & mask) == prefix, axis=1)


class RuleLabels:
    """Rules from a CSV ``src,dst,proto,dport,start,end,label`` (empty cell = any).

    A packet matches a rule when its addresses match (src, dst) in either direction (so replies
    to an attacker are labelled too), its protocol matches, ``dport`` equals its destination port
    or, for replies, its source port, and its time lies within [start, end]. First rule wins.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        keys, rows = _open_csv(self.path)
        c_src = _column(keys, self.path, "src", "src_ip", "saddr", required=False)
        c_dst = _column(keys, self.path, "dst", "dst_ip", "daddr", required=False)
        c_proto = _column(keys, self.path, "proto", "protocol", required=False)
        c_port = _column(keys, self.path, "dport", "port", "dst_port", required=False)
        c_start = _column(keys, self.path, "start", required=False)
        c_end = _column(keys, self.path, "end", required=False)
        c_label = _column(keys, self.path, "label", "class")
        self._names = _Names()
        self.rules: list[Rule] = []
        for line, row in rows:
            where = f"{self.path}:{line}"
            assert c_label
            if not row[c_label]:
                raise LabelError(f"{where}: empty label")
            self.rules.append(
                Rule(
                    src=_network(row[c_src], where) if c_src else None,
                    dst=_network(row[c_dst], where) if c_dst else None,
                    proto=_proto(row[c_proto], where) if c_proto else None,
                    port=_port(row[c_port], where) if c_port else None,
                    start=parse_time_ns(row[c_start], where) if c_start else None,
                    end=parse_time_ns(row[c_end], where) if c_end else None,
                    code=self._names.code(row[c_label]),
                )
            )

    def describe(self) -> dict[str, Any]:
        return {"kind": "rules", "path": str(self.path), "sha256": file_sha256(self.path)}

    def assign(self, batch: PacketBatch, capture: Path) -> Assignment:
        del capture
        n = len(batch)
        codes = np.full(n, -1, dtype=np.int32)
        for rule in self.rules:
            free = codes < 0
            if not free.any():
                break
            ok = free.copy()
            if rule.proto is not None:
                ok &= batch.proto == rule.proto
            if rule.start is not None:
                ok &= batch.ts_ns >= rule.start
            if rule.end is not None:
                ok &= batch.ts_ns <= rule.end
            forward = ok.copy()
            backward = ok.copy()
            if rule.src is not None:
                forward &= _in_network(batch.src, rule.src)
                backward &= _in_network(batch.dst, rule.src)
            if rule.dst is not None:
                forward &= _in_network(batch.dst, rule.dst)
                backward &= _in_network(batch.src, rule.dst)
            if rule.port is not None:
                forward &= batch.dport == rule.port
                backward &= batch.sport == rule.port
            codes[forward | backward] = rule.code
        return Assignment(codes, self._names.names)


def open_labels(spec: str, root: Path | None = None) -> LabelSource:
    """A label source from a command-line spec.

    ``folder`` / ``file`` (class from each capture's folder or file name), or a CSV path whose
    header tells the kind: ``path,label`` manifest, ``file,session,...`` sessions,
    ``src,dst,...,label`` rules, or ``src_ip,...,label`` flows. ``KIND:PATH`` forces a kind
    (``manifest:``, ``flows:``, ``sessions:``, ``rules:``).
    """
    if spec in ("folder", "file"):
        return FileLabels(by=spec)
    kind, sep, rest = spec.partition(":")
    if sep and kind in ("manifest", "flows", "sessions", "rules"):
        path = Path(rest)
    else:
        kind, path = "", Path(spec)
    if not path.is_file():
        raise LabelError(f"{path}: label file not found")
    if not kind:
        keys, _ = _open_csv(path)
        kind = _guess_kind(keys, path)
    if kind == "manifest":
        return FileLabels.from_manifest(path, root)
    if kind == "sessions":
        return SessionLabels(path)
    if kind == "rules":
        return RuleLabels(path)
    return FlowLabels(path)


def _guess_kind(keys: Iterable[str], path: Path) -> str:
    k = set(keys)
    if {"session", "first_packet"} <= k:
        return "sessions"
    if k & {"src_port", "source port", "sport"}:
        return "flows"
    if k & {"src", "dst", "dport"} and "label" in k:
        return "rules"
    if k & {"path", "file", "filename"} and k & {"label", "class"}:
        return "manifest"
    raise LabelError(
        f"{path}: cannot tell the kind of label file from its header ({', '.join(sorted(k))}); "
        "prefix it with manifest:, flows:, sessions: or rules:"
    )
