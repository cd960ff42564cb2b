"""EVE JSON output (Suricata's shape): alert and stats records to stdout, a file or a Unix socket."""

from __future__ import annotations

import json
import os
import socket
import stat
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from pktlstm.errors import ConfigError
from pktlstm.runtime.flows import Verdicts

# Names Suricata uses in `proto` for the common IP protocols; others are written as numbers.
PROTO_NAMES = {1: "ICMP", 2: "IGMP", 6: "TCP", 17: "UDP", 47: "GRE", 58: "IPv6-ICMP", 132: "SCTP"}
# Protocols whose records carry src_port / dest_port.
_PORTED = frozenset({6, 17, 132})
# Signature ids: 1,990,000 + class index, inside Suricata's local-use range (1,000,000-1,999,999).
SID_BASE = 1_990_000
_V4_PREFIX = b"\x00" * 10 + b"\xff\xff"
_INT63 = (1 << 63) - 1


@dataclass(frozen=True)
class Source:
    """Where packets of one capture id come from: a pcap file or a live interface."""

    name: str
    live: bool = False


def eve_timestamp(ts_ns: int) -> str:
    """Suricata's timestamp format, UTC: ``2019-05-16T10:46:53.123456+0000``."""
    sec, ns = divmod(int(ts_ns), 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)) + f".{ns // 1000:06d}+0000"


def eve_flow_id(key: int) -> int:
    """A positive int64 from a flow-table key (Suricata's flow_id is a positive int64)."""
    return (int(key) & _INT63) or 1


def ip_text(addr: bytes) -> str | None:
    """16-byte address (IPv4 mapped into IPv6) -> text; None for the all-zero non-IP address."""
    if addr[:12] == _V4_PREFIX:
        return socket.inet_ntop(socket.AF_INET, addr[12:])
    if not any(addr):
        return None
    return socket.inet_ntop(socket.AF_INET6, addr)


def severity(score: float) -> int:
    """Suricata severity (1 = highest) from a malicious score."""
    return 1 if score >= 0.99 else 2 if score >= 0.9 else 3


def _nest(counters: dict[str, int]) -> dict[str, Any]:
    """``{"decoder.truncated": 3}`` -> ``{"decoder": {"truncated": 3}}`` (EVE stats shape)."""
    out: dict[str, Any] = {}
    for name, value in sorted(counters.items()):
        node = out
        *parents, leaf = name.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return out


class EveWriter:
    """Writes EVE JSON lines to ``target``: ``-`` (stdout), a file path (appended, as
    Suricata does), or an existing Unix socket (stream, else datagram).

    Opening checks the target at once, so an unwritable path fails before any packet is
    read (``ConfigError`` naming the path).
    """

    def __init__(
        self,
        target: str,
        *,
        classes: list[str],
        model_id: str,
        sources: list[Source],
    ) -> None:
        self.target = target
        self.classes = list(classes)
        self.model_id = model_id
        self.sources = list(sources)
        self.alerts_written = 0
        self._sock: socket.socket | None = None
        self._stream: IO[str] | None = None
        self._owns_stream = False
        self._open()

    def _open(self) -> None:
        if self.target in ("", "-"):
            self._stream = sys.stdout
            return
        path = Path(self.target)
        try:
            is_socket = stat.S_ISSOCK(os.stat(path).st_mode)
        except OSError:
            is_socket = False
        if is_socket:
            self._sock = self._connect(path)
            return
        try:
            self._stream = open(path, "a", encoding="utf-8", buffering=1 << 16)  # noqa: SIM115
        except OSError as exc:
            raise ConfigError(f"alerts={self.target}: cannot write: {exc.strerror}") from exc
        self._owns_stream = True

    def _connect(self, path: Path) -> socket.socket:
        last: OSError | None = None
        for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
            sock = socket.socket(socket.AF_UNIX, kind)
            try:
                sock.connect(str(path))
                return sock
            except OSError as exc:
                sock.close()
                last = exc
        raise ConfigError(
            f"alerts={self.target}: cannot connect to the Unix socket: "
            f"{last.strerror if last else 'unknown error'}"
        )

    def write_lines(self, lines: list[str]) -> None:
        """Write ready JSON lines (without newlines) and flush them."""
        if not lines:
            return
        if self._sock is not None:
            if self._sock.type == socket.SOCK_DGRAM:
                for line in lines:
                    self._sock.send(line.encode())
            else:
                self._sock.sendall(("\n".join(lines) + "\n").encode())
            return
        assert self._stream is not None
        self._stream.write("\n".join(lines) + "\n")
        self._stream.flush()

    def alert_lines(self, v: Verdicts) -> list[str]:
        """One EVE alert line per verdict row."""
        lines = []
        dumps = json.dumps
        for i in range(len(v)):
            cap = int(v.capture_id[i])
            source = self.sources[cap] if cap < len(self.sources) else Source("?")
            proto = int(v.proto[i])
            klass = int(v.klass[i])
            score = float(v.score[i])
            rec: dict[str, Any] = {
                "timestamp": eve_timestamp(int(v.ts_ns[i])),
                "flow_id": eve_flow_id(int(v.key[i])),
            }
            if source.live:
                rec["in_iface"] = source.name
            else:
                rec["pcap_cnt"] = int(v.pkt_index[i]) + 1
            rec["event_type"] = "alert"
            src, dst = ip_text(v.src[i].tobytes()), ip_text(v.dst[i].tobytes())
            if src is not None:
                rec["src_ip"] = src
            if proto in _PORTED:
                rec["src_port"] = int(v.sport[i])
            if dst is not None:
                rec["dest_ip"] = dst
            if proto in _PORTED:
                rec["dest_port"] = int(v.dport[i])
            rec["proto"] = PROTO_NAMES.get(proto, str(proto))
            name = self.classes[klass] if 0 <= klass < len(self.classes) else str(klass)
            rec["alert"] = {
                "action": "allowed",
                "gid": 1,
                "signature_id": SID_BASE + klass,
                "rev": 1,
                "signature": f"PKTLSTM malicious traffic: {name}",
                "category": "Malicious traffic (packet LSTM)",
                "severity": severity(score),
                "score": round(score, 6),
                "class": name,
                "packets": int(v.packets[i]),
                "model_id": self.model_id,
            }
            if not source.live:
                rec["pcap_filename"] = source.name
            lines.append(dumps(rec, separators=(",", ":")))
        return lines

    def alerts(self, v: Verdicts) -> None:
        """Write one alert per verdict row."""
        if len(v):
            self.write_lines(self.alert_lines(v))
            self.alerts_written += len(v)

    def stats(self, counters: dict[str, Any], ts_ns: int | None = None) -> None:
        """Write one ``event_type: "stats"`` record; dotted counter names are nested."""
        flat = {k: v for k, v in counters.items() if not isinstance(v, dict)}
        nested = _nest(flat)
        for k, v in counters.items():
            if isinstance(v, dict):
                nested.setdefault(k, {}).update(v)
        rec = {
            "timestamp": eve_timestamp(time.time_ns() if ts_ns is None else ts_ns),
            "event_type": "stats",
            "stats": nested,
        }
        self.write_lines([json.dumps(rec, separators=(",", ":"), default=_plain)])

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._stream is not None:
            if self._owns_stream:
                self._stream.close()
            else:
                self._stream.flush()
            self._stream = None

    def __enter__(self) -> EveWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _plain(value: Any) -> Any:
    """JSON fallback for numpy scalars."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
