"""Classic libpcap files: global header parsing and the serial record-offset scan (numba)."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np
from numpy.typing import NDArray

# Magic numbers as read little-endian from the first 4 bytes of the file.
MAGIC_US_LE = 0xA1B2C3D4  # microsecond timestamps, little-endian file
MAGIC_US_BE = 0xD4C3B2A1  # microsecond timestamps, big-endian file
MAGIC_NS_LE = 0xA1B23C4D  # nanosecond timestamps, little-endian file
MAGIC_NS_BE = 0x4D3CB2A1  # nanosecond timestamps, big-endian file
MAGIC_KUZ_LE = 0xA1B2CD34  # Kuznetsov's patched libpcap: 24-byte record headers
MAGIC_KUZ_BE = 0x34CDB2A1
PCAP_MAGICS = frozenset(
    {MAGIC_US_LE, MAGIC_US_BE, MAGIC_NS_LE, MAGIC_NS_BE, MAGIC_KUZ_LE, MAGIC_KUZ_BE}
)
GLOBAL_HEADER_BYTES = 24
# The link type field's low 28 bits; the upper bits carry FCS length flags.
LINKTYPE_MASK = 0x0FFFFFFF

# Status codes returned by the scanners.
SCAN_OK = 0  # stopped because the output arrays are full or the input is consumed
SCAN_NEED_DATA = 1  # the next record is not completely in the buffer


@dataclass(frozen=True)
class PcapHeader:
    """The 24-byte global header of a classic pcap file."""

    big_endian: bool
    nanosecond: bool
    record_header_bytes: int  # 16, or 24 for Kuznetsov's format
    version: tuple[int, int]
    snaplen: int
    linktype: int


def parse_pcap_header(data: bytes) -> PcapHeader:
    """Parse the global header from the first 24 bytes; ``data`` must start with a pcap magic."""
    (magic,) = struct.unpack_from("<I", data, 0)
    big = magic in (MAGIC_US_BE, MAGIC_NS_BE, MAGIC_KUZ_BE)
    e = ">" if big else "<"
    major, minor, _zone, _sigfigs, snaplen, network = struct.unpack_from(e + "HHiIII", data, 4)
    return PcapHeader(
        big_endian=big,
        nanosecond=magic in (MAGIC_NS_LE, MAGIC_NS_BE),
        record_header_bytes=24 if magic in (MAGIC_KUZ_LE, MAGIC_KUZ_BE) else 16,
        version=(major, minor),
        snaplen=snaplen,
        linktype=network & LINKTYPE_MASK,
    )


@numba.njit(cache=True, inline="always")
def _u32(buf: NDArray[np.uint8], p: int, big: bool) -> Any:
    """Unsigned 32-bit integer at ``buf[p:p+4]`` in the given byte order."""
    if big:
        return (
            (np.int64(buf[p]) << 24)
            | (np.int64(buf[p + 1]) << 16)
            | (np.int64(buf[p + 2]) << 8)
            | np.int64(buf[p + 3])
        )
    return (
        (np.int64(buf[p + 3]) << 24)
        | (np.int64(buf[p + 2]) << 16)
        | (np.int64(buf[p + 1]) << 8)
        | np.int64(buf[p])
    )


@numba.njit(cache=True)
def _plausible(
    buf: NDArray[np.uint8],
    p: int,
    end: int,
    big: bool,
    frac_limit: int,
    max_caplen: int,
    hdr_bytes: int,
) -> bool:
    """Whether a record header at ``p`` looks valid (used to resynchronise after garbage)."""
    if p + hdr_bytes > end:
        return False
    frac = _u32(buf, p + 4, big)
    cap = _u32(buf, p + 8, big)
    wire = _u32(buf, p + 12, big)
    return bool(frac < frac_limit and 0 < cap <= max_caplen and cap <= wire < 1 << 20)


@numba.njit(cache=True)
def scan_pcap(
    buf: NDArray[np.uint8],
    pos: int,
    end: int,
    eof: bool,
    resync: bool,
    big: bool,
    nanosecond: bool,
    hdr_bytes: int,
    max_caplen: int,
    first_index: int,
    out_off: NDArray[np.int64],
    out_cap: NDArray[np.int64],
    out_wire: NDArray[np.int64],
    out_ts: NDArray[np.int64],
    out_idx: NDArray[np.int64],
) -> tuple[int, int, int, int, bool, int, int]:
    """Find complete records in ``buf[pos:end]`` and write their frame offsets and metadata.

    Returns ``(n, pos, next_index, status, resync, invalid, truncated)``: ``n`` records
    written, the position to resume from, the record index after the last one scanned,
    SCAN_OK or SCAN_NEED_DATA, whether the next call must first resynchronise, and counts
    of records skipped for an impossible length (the scan then looks for the next
    plausible record header) and for being cut short by the end of the file.
    """
    n = 0
    idx = first_index
    invalid = 0
    truncated = 0
    cap_out = out_off.shape[0]
    frac_limit = 1000000000 if nanosecond else 1000000
    scale = 1 if nanosecond else 1000
    while n < cap_out:
        if resync:
            found = False
            while pos + hdr_bytes <= end:
                if _plausible(buf, pos, end, big, frac_limit, max_caplen, hdr_bytes):
                    nxt = pos + hdr_bytes + _u32(buf, pos + 8, big)
                    if nxt + hdr_bytes > end or _plausible(
                        buf, nxt, end, big, frac_limit, max_caplen, hdr_bytes
                    ):
                        found = True
                        break
                pos += 1
            if not found:
                if eof:
                    return n, end, idx, SCAN_OK, False, invalid, truncated
                return n, pos, idx, SCAN_NEED_DATA, True, invalid, truncated
            resync = False
        if pos + hdr_bytes > end:
            if eof and pos < end:
                truncated += 1
                idx += 1
                pos = end
            return n, pos, idx, SCAN_OK if eof else SCAN_NEED_DATA, False, invalid, truncated
        sec = _u32(buf, pos, big)
        frac = _u32(buf, pos + 4, big)
        cap = _u32(buf, pos + 8, big)
        wire = _u32(buf, pos + 12, big)
        if cap > max_caplen:
            # Impossible length: skip this record, then look for the next plausible header.
            invalid += 1
            idx += 1
            pos += 1
            resync = True
            continue
        if pos + hdr_bytes + cap > end:
            if eof:
                truncated += 1
                idx += 1
                return n, end, idx, SCAN_OK, False, invalid, truncated
            return n, pos, idx, SCAN_NEED_DATA, False, invalid, truncated
        out_off[n] = pos + hdr_bytes
        out_cap[n] = cap
        out_wire[n] = wire
        out_ts[n] = sec * 1000000000 + frac * scale
        out_idx[n] = idx
        n += 1
        idx += 1
        pos += hdr_bytes + cap
    return n, pos, idx, SCAN_OK, False, invalid, truncated
