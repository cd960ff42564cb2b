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
        """One EVE alert line per verdict row.

        Built from string templates (strings escaped once with json.dumps) rather than one
        json.dumps per record: ~3x cheaper, which matters in floods where every flow alerts.
        """
        n = len(v)
        if n == 0:
            return []
        js = json.dumps
        sec = (v.ts_ns // 1_000_000_000).tolist()
        usec = ((v.ts_ns % 1_000_000_000) // 1000).tolist()
        stamps = {t: time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) for t in set(sec)}
        flow_ids = (v.key & np.uint64(_INT63)).tolist()
        src_b, dst_b = v.src.tobytes(), v.dst.tobytes()
        proto, sport, dport = v.proto.tolist(), v.sport.tolist(), v.dport.tolist()
        caps, pkt = v.capture_id.tolist(), v.pkt_index.tolist()
        klass, packets = v.klass.tolist(), v.packets.tolist()
        scores = v.score.astype(np.float64).round(6).tolist()
        model = js(self.model_id)
        sources = {
            c: (self.sources[c] if c < len(self.sources) else Source("?")) for c in set(caps)
        }
        where = {
            c: (f'"in_iface":{js(src.name)},', "")
            if src.live
            else ("", f',"pcap_filename":{js(src.name)}')
            for c, src in sources.items()
        }
        raw = {k: self.classes[k] if 0 <= k < len(self.classes) else str(k) for k in set(klass)}
        names = {k: js(name) for k, name in raw.items()}
        signatures = {k: js(f"PKTLSTM malicious traffic: {name}") for k, name in raw.items()}
        protos = {p: js(PROTO_NAMES.get(p, str(p))) for p in set(proto)}
        lines = []
        for i in range(n):
            c, k, p, score = caps[i], klass[i], proto[i], scores[i]
            head, tail = where[c]
            src = ip_text(src_b[16 * i : 16 * i + 16])
            dst = ip_text(dst_b[16 * i : 16 * i + 16])
            ported = p in _PORTED
            ends = (f'"src_ip":"{src}",' if src is not None else "") + (
                f'"src_port":{sport[i]},' if ported else ""
            )
            ends += (f'"dest_ip":"{dst}",' if dst is not None else "") + (
                f'"dest_port":{dport[i]},' if ported else ""
            )
            count = "" if head else f'"pcap_cnt":{pkt[i] + 1},'
            lines.append(
                f'{{"timestamp":"{stamps[sec[i]]}.{usec[i]:06d}+0000",'
                f'"flow_id":{flow_ids[i] or 1},{head}{count}"event_type":"alert",{ends}'
                f'"proto":{protos[p]},"alert":{{"action":"allowed","gid":1,'
                f'"signature_id":{SID_BASE + k},"rev":1,'
                f'"signature":{signatures[k]},'
                f'"category":"Malicious traffic (packet LSTM)","severity":{severity(score)},'
                f'"score":{score},"class":{names[k]},"packets":{packets[i]},'
                f'"model_id":{model}}}{tail}}}'
            )
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
