"""Streaming capture reader: pcap / pcapng (optionally gzip) files -> PacketBatch chunks."""

from __future__ import annotations

import io
import logging
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, cast

import numpy as np

from pktlstm.errors import CaptureError, ConfigError
from pktlstm.io.batch import DecodeStats, PacketBatch
from pktlstm.io.decode import FRAME_PAD, decode_frames
from pktlstm.io.pcap import (
    GLOBAL_HEADER_BYTES,
    PCAP_MAGICS,
    SCAN_NEED_DATA,
    PcapHeader,
    parse_pcap_header,
    scan_pcap,
)
from pktlstm.io.pcapng import (
    BLOCK_SHB,
    SCAN_IDB,
    SCAN_SECTION,
    InterfaceTable,
    parse_idb,
    scan_pcapng,
)

log = logging.getLogger(__name__)

GZIP_MAGIC = b"\x1f\x8b"
GZIP_READ_BYTES = 1 << 18  # compressed bytes read from a gzip file at a time


class _Gunzip:
    """Incremental gzip decompression that, unlike GzipFile, hands out every byte it could
    decompress before a truncated or corrupt stream ends (multi-member files included)."""

    def __init__(self, raw: io.BufferedIOBase) -> None:
        self._raw = raw
        self._d = zlib.decompressobj(31)
        self._input = b""
        self._in_member = False
        self._done = False
        self.damage: str | None = None  # why the stream ended early, if it did

    def readinto(self, view: memoryview) -> int:
        """Decompress into ``view``; returns bytes written, 0 at the end of the stream."""
        while not self._done:
            if not self._input:
                self._input = self._raw.read(GZIP_READ_BYTES)
                if not self._input:
                    if self._in_member:
                        self.damage = "compressed stream ends early"
                    self._done = True
                    break
            try:
                out = self._d.decompress(self._input, len(view))
            except zlib.error as exc:
                self.damage = f"corrupt compressed data ({exc})"
                self._done = True
                break
            self._in_member = True
            self._input = self._d.unconsumed_tail
            if self._d.eof:  # end of one gzip member; another may follow
                self._input = self._d.unused_data
                self._d = zlib.decompressobj(31)
                self._in_member = False
                if self._input[:1] == b"\0":  # zero padding after the last member
                    self._done = True
            if out:
                view[: len(out)] = out
                return len(out)
        return 0

    def close(self) -> None:
        self._done = True


@dataclass(frozen=True)
class CaptureConfig:
    """How captures are read.

    Attributes:
        chunk_packets: packets per yielded PacketBatch (the last one may be shorter);
            bounds memory to about ``chunk_packets * 300`` bytes of decoded columns.
        read_bytes: bytes read from the file at a time (the raw buffer's size).
        max_caplen: a record claiming more captured bytes than this is impossible
            (``decoder.invalid_length``); libpcap's own limit is 262144.
        max_block_bytes: a pcapng block longer than this is corrupt (``decoder.bad_block``).
    """

    chunk_packets: int = 65536
    read_bytes: int = 2 << 20
    max_caplen: int = 262144
    max_block_bytes: int = 16 << 20

    def __post_init__(self) -> None:
        limits = {
            "chunk_packets": (1, 1 << 24),
            "read_bytes": (1 << 16, 1 << 30),
            "max_caplen": (64, 1 << 26),
            "max_block_bytes": (1 << 12, 1 << 30),
        }
        for name, (lo, hi) in limits.items():
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
                raise ConfigError(
                    f"CaptureConfig.{name}={value!r}: must be an integer in [{lo}, {hi}]"
                )


@dataclass
class CaptureInfo:
    """What the reader learned about a capture file (pcapng fields fill in while reading)."""

    path: str
    format: str  # "pcap" or "pcapng"
    compressed: bool  # gzip-compressed file
    snaplen: int = 0  # pcap header snaplen, or the largest pcapng interface snaplen
    nanosecond: bool = False  # pcap: nanosecond-resolution magic
    version: tuple[int, int] = (0, 0)
    linktypes: list[int] = field(default_factory=list)  # declared link types, first seen first
    sections: int = 0  # pcapng sections
    interfaces: int = 0  # pcapng interfaces, all sections together

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "format": self.format,
            "compressed": self.compressed,
            "snaplen": self.snaplen,
            "nanosecond": self.nanosecond,
            "version": list(self.version),
            "linktypes": list(self.linktypes),
            "sections": self.sections,
            "interfaces": self.interfaces,
        }


def _describe(head: bytes) -> str:
    """A short description of what a non-capture file starts with, for error messages."""
    if not head:
        return "the file is empty"
    shown = head[:8].hex(" ")
    if all(32 <= b < 127 or b in (9, 10, 13) for b in head[:64]):
        return f"found bytes {shown} (looks like text)"
    return f"found bytes {shown}"


class CaptureReader:
    """Iterates over a capture file in PacketBatch chunks; use as a context manager.

    One pass only: iterating again continues where the last pass stopped. ``stats``
    and ``info`` are updated while reading. Malformed records are skipped and counted
    in ``stats.skipped``; only opening the file can raise (CaptureError).
    """

    def __init__(self, path: str | Path, config: CaptureConfig, capture_id: int = 0) -> None:
        self.path = Path(path)
        self.config = config
        self.capture_id = capture_id
        self.stats = DecodeStats()
        self._raw: io.BufferedIOBase | None = None
        try:
            self._raw = open(self.path, "rb")  # noqa: SIM115 - closed by close()
        except FileNotFoundError:
            raise CaptureError(f"{self.path}: no such capture file") from None
        except IsADirectoryError:
            raise CaptureError(f"{self.path}: is a directory, not a capture file") from None
        except OSError as exc:
            raise CaptureError(f"{self.path}: cannot open: {exc.strerror or exc}") from None
        try:
            self._open_stream()
        except BaseException:
            self.close()
            raise

    def _open_stream(self) -> None:
        assert self._raw is not None
        head = self._raw.read(4)
        compressed = head[:2] == GZIP_MAGIC
        self._raw.seek(0)
        self._stream: io.BufferedIOBase | _Gunzip = self._raw
        if compressed:
            gunzip = _Gunzip(self._raw)
            self._stream = gunzip
            got = bytearray(4)
            k = n = 0
            while n < 4 and (k := gunzip.readinto(memoryview(got)[n:])):
                n += k
            head = bytes(got[:n])
            if gunzip.damage and n < 4:
                raise CaptureError(f"{self.path}: gzip-compressed but {gunzip.damage}")
        else:
            head = self._raw.read(4)
        magic = int.from_bytes(head, "little") if len(head) == 4 else -1
        buf = np.zeros(self.config.read_bytes + FRAME_PAD, dtype=np.uint8)
        buf[: len(head)] = np.frombuffer(head, dtype=np.uint8)
        self._buf, self._start, self._end, self._eof = buf, 0, len(head), False
        self._pcap: PcapHeader | None = None
        if magic in PCAP_MAGICS:
            self._fill()
            if self._end < GLOBAL_HEADER_BYTES:
                raise CaptureError(
                    f"{self.path}: pcap global header cut short ({self._end} of 24 bytes)"
                )
            self._pcap = parse_pcap_header(self._buf[:GLOBAL_HEADER_BYTES].tobytes())
            self._start = GLOBAL_HEADER_BYTES
            self.info = CaptureInfo(
                path=str(self.path),
                format="pcap",
                compressed=compressed,
                snaplen=self._pcap.snaplen,
                nanosecond=self._pcap.nanosecond,
                version=self._pcap.version,
                linktypes=[self._pcap.linktype],
            )
        elif magic == BLOCK_SHB:
            self.info = CaptureInfo(path=str(self.path), format="pcapng", compressed=compressed)
        else:
            more = bytearray(60)
            what = _describe(head + bytes(more[: self._stream.readinto(memoryview(more))]))
            kind = "gzip-compressed file holds no" if compressed else "not a"
            raise CaptureError(f"{self.path}: {kind} pcap or pcapng capture: {what}")

    @property
    def bytes_read(self) -> int:
        """Bytes of the file on disk consumed so far (compressed bytes for gzip files)."""
        try:
            return self._raw.tell() if self._raw is not None and not self._raw.closed else 0
        except (OSError, ValueError):
            return 0

    def _fill(self) -> None:
        """Move unread bytes to the front of the buffer and read more; grow it if full."""
        start, end = self._start, self._end
        if start:
            self._buf[: end - start] = self._buf[start:end]
            end -= start
            self._start = 0
        capacity = self._buf.shape[0] - FRAME_PAD
        if end == capacity:
            grown = np.zeros(2 * capacity + FRAME_PAD, dtype=np.uint8)
            grown[:end] = self._buf[:end]
            self._buf, capacity = grown, 2 * capacity
        view = memoryview(self._buf)[end:capacity]  # type: ignore[arg-type]
        got = 0
        while got < len(view):
            try:
                k = self._stream.readinto(view[got:])
            except OSError as exc:
                log.warning("%s: read error after %d bytes: %s", self.path, self.bytes_read, exc)
                self.stats.skipped["capture.read_error"] += 1
                k = 0
            if not k:
                self._eof = True
                break
            got += k
        damage = getattr(self._stream, "damage", None)
        if self._eof and damage:
            log.warning("%s: gzip %s; read what came before", self.path, damage)
            self.stats.skipped["capture.read_error"] += 1
        self._end = end + got

    def __iter__(self) -> Iterator[PacketBatch]:
        if self._pcap is not None:
            yield from self._iter_pcap(self._pcap)
        else:
            yield from self._iter_pcapng()

    def _out(self, k: int) -> list[np.ndarray]:
        return [np.empty(self.config.chunk_packets, dtype=np.int64) for _ in range(k)]

    def _emit(
        self, pending: list[PacketBatch], outs: list[np.ndarray], n: int, linktype: Any
    ) -> int:
        """Decode ``n`` scanned frames into ``pending``; returns the packets added."""
        if not n:
            return 0
        off, cap, wire, ts, idx = (a[:n] for a in outs[:5])
        batch, skipped = decode_frames(
            self._buf, off, cap, wire, ts, linktype, idx, self.capture_id
        )
        self.stats.skipped.update(skipped)
        self.stats.packets += len(batch)
        self.stats.bytes += int(batch.caplen.sum(dtype=np.int64))
        pending.append(batch)
        return len(batch)

    def _iter_pcap(self, hdr: PcapHeader) -> Iterator[PacketBatch]:
        cfg = self.config
        outs = self._out(5)
        pending: list[PacketBatch] = []
        have, index, resync = 0, 0, False
        while True:
            want = cfg.chunk_packets - have
            n, pos, index, status, resync, invalid, truncated = cast(Any, scan_pcap)(
                self._buf,
                self._start,
                self._end,
                self._eof,
                resync,
                hdr.big_endian,
                hdr.nanosecond,
                hdr.record_header_bytes,
                cfg.max_caplen,
                index,
                *(a[:want] for a in outs),
            )
            self._count(invalid=invalid, truncated=truncated)
            have += self._emit(pending, outs, n, hdr.linktype)
            self._start = pos
            if have >= cfg.chunk_packets:
                yield PacketBatch.concat(pending)
                pending, have = [], 0
            if status == SCAN_NEED_DATA:
                self._fill()
            elif n < want:
                break
        if pending:
            yield PacketBatch.concat(pending)

    def _iter_pcapng(self) -> Iterator[PacketBatch]:
        cfg = self.config
        outs = self._out(6)
        counts = np.zeros(4, dtype=np.int64)
        pending: list[PacketBatch] = []
        table = InterfaceTable()
        arrays = table.arrays()
        have, index, resync, big = 0, 0, False, False
        while True:
            want = cfg.chunk_packets - have
            counts[:] = 0
            n, pos, index, status, resync, big = cast(Any, scan_pcapng)(
                self._buf,
                self._start,
                self._end,
                self._eof,
                resync,
                big,
                *arrays,
                len(table.linktype),
                cfg.max_block_bytes,
                index,
                *(a[:want] for a in outs),
                counts,
            )
            self._count(
                bad_block=int(counts[0]),
                invalid=int(counts[1]),
                truncated=int(counts[2]),
                bad_header=int(counts[3]),
            )
            have += self._emit(pending, outs, n, outs[5][:n])
            self._start = pos
            if have >= cfg.chunk_packets:
                yield PacketBatch.concat(pending)
                pending, have = [], 0
            if status == SCAN_NEED_DATA:
                self._fill()
            elif status == SCAN_SECTION:
                table = InterfaceTable()
                arrays = table.arrays()
                self.info.sections += 1
            elif status == SCAN_IDB:
                blen = int.from_bytes(
                    self._buf[pos + 4 : pos + 8].tobytes(), "big" if big else "little"
                )
                parse_idb(self._buf[pos : pos + blen].tobytes(), big, table)
                arrays = table.arrays()
                self.info.interfaces += 1
                self.info.snaplen = max(self.info.snaplen, table.snaplen[-1])
                if table.linktype[-1] not in self.info.linktypes:
                    self.info.linktypes.append(table.linktype[-1])
                self._start = pos + blen
            elif n < want:
                break
        if pending:
            yield PacketBatch.concat(pending)

    def _count(
        self, invalid: int = 0, truncated: int = 0, bad_block: int = 0, bad_header: int = 0
    ) -> None:
        for reason, k in (
            ("decoder.invalid_length", invalid),
            ("decoder.truncated", truncated),
            ("decoder.bad_block", bad_block),
            ("decoder.bad_header", bad_header),
        ):
            if k:
                self.stats.skipped[reason] += k

    def close(self) -> None:
        """Close the file; safe to call twice."""
        stream = getattr(self, "_stream", None)
        if stream is not None and stream is not self._raw:
            stream.close()
        if self._raw is not None:
            self._raw.close()

    def __enter__(self) -> CaptureReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def open_capture(
    path: str | Path, config: CaptureConfig | None = None, capture_id: int = 0
) -> CaptureReader:
    """Open a pcap or pcapng file (gzip-compressed or not, detected by magic) for reading.

    Example:
        >>> with open_capture("trace.pcap") as reader:  # doctest: +SKIP
        ...     for batch in reader:
        ...         print(len(batch), reader.stats.skipped)

    Raises:
        CaptureError: the file is missing, unreadable or not a capture.
    """
    return CaptureReader(path, config or CaptureConfig(), capture_id)


def read_capture(
    path: str | Path, config: CaptureConfig | None = None, capture_id: int = 0
) -> tuple[PacketBatch, DecodeStats]:
    """Read a whole capture into one PacketBatch; returns it with the decode statistics."""
    with open_capture(path, config, capture_id) as reader:
        batches = list(reader)
        return PacketBatch.concat(batches), reader.stats
