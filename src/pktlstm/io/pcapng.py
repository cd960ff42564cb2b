"""pcapng files: section and interface blocks, and the serial block scan (numba)."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

import numba
import numpy as np
from numpy.typing import NDArray

from pktlstm.io.pcap import SCAN_NEED_DATA, SCAN_OK, _u32

BLOCK_SHB = 0x0A0D0D0A  # section header block (same bytes in both byte orders)
BLOCK_IDB = 0x00000001  # interface description block
BLOCK_PB = 0x00000002  # obsolete packet block
BLOCK_SPB = 0x00000003  # simple packet block
BLOCK_NRB = 0x00000004  # name resolution block
BLOCK_ISB = 0x00000005  # interface statistics block
BLOCK_EPB = 0x00000006  # enhanced packet block
BLOCK_DSB = 0x0000000A  # decryption secrets block
BYTE_ORDER_MAGIC = 0x1A2B3C4D  # in the SHB, as written by the file's byte order
OPT_IF_TSRESOL = 9  # IDB option: timestamp resolution (1 byte)
OPT_IF_TSOFFSET = 14  # IDB option: seconds added to every timestamp (8 bytes)

SCAN_SECTION = 2  # a new section began: interfaces must be reset
SCAN_IDB = 3  # an interface description block lies complete at ``pos``

# Timestamp conversion modes per interface (see InterfaceTable).
TS_MUL = 0  # ns = ts * param
TS_DIV = 1  # ns = ts // param
TS_BIN = 2  # ns = ts * 1e9 / 2**param


@dataclass
class InterfaceTable:
    """Interfaces of the current section, as arrays the numba scanner reads."""

    linktype: list[int] = field(default_factory=list)
    snaplen: list[int] = field(default_factory=list)
    ts_mode: list[int] = field(default_factory=list)
    ts_param: list[int] = field(default_factory=list)
    ts_offset_ns: list[int] = field(default_factory=list)

    def arrays(self) -> tuple[NDArray[np.int64], ...]:
        """``(linktype, snaplen, ts_mode, ts_param, ts_offset_ns)``, each ``(n_interfaces,)``."""
        cols = (self.linktype, self.snaplen, self.ts_mode, self.ts_param, self.ts_offset_ns)
        return tuple(np.array(c if c else [0], dtype=np.int64) for c in cols)


def parse_idb(block: bytes, big: bool, table: InterfaceTable) -> None:
    """Append the interface described by a complete IDB ``block`` to ``table``."""
    e = ">" if big else "<"
    (block_len,) = struct.unpack_from(e + "I", block, 4)
    linktype, _reserved, snaplen = struct.unpack_from(e + "HHI", block, 8)
    mode, param, offset_ns = TS_MUL, 1000, 0  # default resolution: microseconds
    p = 16
    stop = min(block_len - 4, len(block))
    while p + 4 <= stop:
        code, length = struct.unpack_from(e + "HH", block, p)
        value = block[p + 4 : p + 4 + length]
        if code == 0:
            break
        if code == OPT_IF_TSRESOL and length >= 1:
            res = value[0]
            if res & 0x80:
                mode, param = TS_BIN, min(res & 0x7F, 63)
            elif res <= 9:
                mode, param = TS_MUL, 10 ** (9 - res)
            else:
                mode, param = TS_DIV, 10 ** min(res - 9, 18)
        elif code == OPT_IF_TSOFFSET and length == 8:
            (offset_s,) = struct.unpack_from(e + "q", value, 0)
            offset_ns = max(min(offset_s, 2**32), -(2**32)) * 1_000_000_000
        p += 4 + ((length + 3) & ~3)
    table.linktype.append(linktype)
    table.snaplen.append(snaplen)
    table.ts_mode.append(mode)
    table.ts_param.append(param)
    table.ts_offset_ns.append(offset_ns)


@numba.njit(cache=True)
def _ts_ns(ts: int, mode: int, param: int, offset: int) -> Any:
    """Convert a raw pcapng timestamp in interface units to nanoseconds."""
    if mode == TS_MUL:
        return ts * param + offset
    if mode == TS_DIV:
        return ts // param + offset
    whole = ts >> param
    frac = ts & ((np.int64(1) << param) - 1)
    if param > 33:
        frac = frac >> (param - 33)
        return whole * 1000000000 + ((frac * 1000000000) >> 33) + offset
    return whole * 1000000000 + ((frac * 1000000000) >> param) + offset


@numba.njit(cache=True)
def _block_ok(buf: NDArray[np.uint8], p: int, end: int, big: bool, max_block: int) -> int:
    """Length of a plausible complete block at ``p``; 0 if implausible, -1 if not all in buf."""
    if p + 12 > end:
        return -1
    btype = _u32(buf, p, big)
    if btype == BLOCK_SHB:
        magic = _u32(buf, p + 8, False)
        if magic == BYTE_ORDER_MAGIC:
            big = False
        elif magic == 0x4D3C2B1A:
            big = True
        else:
            return 0
    elif not (1 <= btype <= 10):
        return 0
    blen = _u32(buf, p + 4, big)
    if blen < 12 or blen % 4 != 0 or blen > max_block:
        return 0
    if p + blen > end:
        return -1
    if _u32(buf, p + blen - 4, big) != blen:
        return 0
    return blen


@numba.njit(cache=True)
def scan_pcapng(
    buf: NDArray[np.uint8],
    pos: int,
    end: int,
    eof: bool,
    resync: bool,
    big: bool,
    if_linktype: NDArray[np.int64],
    if_snaplen: NDArray[np.int64],
    if_ts_mode: NDArray[np.int64],
    if_ts_param: NDArray[np.int64],
    if_ts_offset: NDArray[np.int64],
    n_ifaces: int,
    max_block: int,
    first_index: int,
    out_off: NDArray[np.int64],
    out_cap: NDArray[np.int64],
    out_wire: NDArray[np.int64],
    out_ts: NDArray[np.int64],
    out_idx: NDArray[np.int64],
    out_link: NDArray[np.int64],
    counts: NDArray[np.int64],
) -> tuple[int, int, int, int, bool, bool]:
    """Walk blocks in ``buf[pos:end]``, writing one output row per packet block.

    Returns ``(n, pos, next_index, status, resync, big)``. ``status`` is SCAN_OK (output
    full or input consumed), SCAN_NEED_DATA, SCAN_SECTION (a section header was consumed:
    reset interfaces, ``big`` is the new byte order) or SCAN_IDB (an interface block lies
    complete at ``pos`` for the caller to parse and step over). ``counts`` accumulates
    skipped records: [0] corrupt blocks, [1] impossible lengths, [2] truncated,
    [3] unknown interface.
    """
    n = 0
    idx = first_index
    cap_out = out_off.shape[0]
    while n < cap_out:
        if resync:
            found = False
            while pos + 12 <= end:
                blen = _block_ok(buf, pos, end, big, max_block)
                if blen == -1 and not eof:
                    return n, pos, idx, SCAN_NEED_DATA, True, big
                if blen > 0:
                    found = True
                    break
                pos += 1
            if not found:
                if eof:
                    return n, end, idx, SCAN_OK, False, big
                return n, pos, idx, SCAN_NEED_DATA, True, big
            resync = False
        if pos + 12 > end:
            if eof and pos < end:
                counts[2] += 1
                pos = end
            return n, pos, idx, SCAN_OK if eof else SCAN_NEED_DATA, False, big
        btype = _u32(buf, pos, big)
        if btype == BLOCK_SHB:
            magic = _u32(buf, pos + 8, False)
            if magic == BYTE_ORDER_MAGIC or magic == 0x4D3C2B1A:
                nbig = magic != BYTE_ORDER_MAGIC
                blen = _u32(buf, pos + 4, nbig)
                if blen >= 28 and blen % 4 == 0 and blen <= max_block:
                    if pos + blen > end and not eof:
                        return n, pos, idx, SCAN_NEED_DATA, False, big
                    return n, min(pos + blen, end), idx, SCAN_SECTION, False, nbig
            counts[0] += 1
            pos += 1
            resync = True
            continue
        blen = _u32(buf, pos + 4, big)
        if blen < 12 or blen % 4 != 0 or blen > max_block:
            counts[0] += 1
            pos += 1
            resync = True
            continue
        if pos + blen > end:
            if eof:
                if btype in (BLOCK_EPB, BLOCK_SPB, BLOCK_PB):
                    idx += 1
                counts[2] += 1
                return n, end, idx, SCAN_OK, False, big
            return n, pos, idx, SCAN_NEED_DATA, False, big
        if _u32(buf, pos + blen - 4, big) != blen:
            counts[0] += 1
            pos += 1
            resync = True
            continue
        if btype == BLOCK_IDB:
            if blen < 20:
                counts[0] += 1
                pos += blen
                continue
            return n, pos, idx, SCAN_IDB, False, big
        if btype in (BLOCK_EPB, BLOCK_PB):
            if blen < 32:
                counts[0] += 1
                pos += blen
                idx += 1
                continue
            if btype == BLOCK_EPB:
                iface = _u32(buf, pos + 8, big)
            elif big:
                iface = _u32(buf, pos + 8, big) >> 16  # 16-bit interface id
            else:
                iface = _u32(buf, pos + 8, big) & 0xFFFF
            cap = _u32(buf, pos + 20, big)
            wire = _u32(buf, pos + 24, big)
            if iface >= n_ifaces:
                counts[3] += 1
            elif cap > blen - 32:
                counts[1] += 1
            else:
                ts = (_u32(buf, pos + 12, big) << 32) | _u32(buf, pos + 16, big)
                out_off[n] = pos + 28
                out_cap[n] = cap
                out_wire[n] = wire
                out_ts[n] = _ts_ns(ts, if_ts_mode[iface], if_ts_param[iface], if_ts_offset[iface])
                out_idx[n] = idx
                out_link[n] = if_linktype[iface]
                n += 1
            idx += 1
            pos += blen
            continue
        if btype == BLOCK_SPB:
            if blen < 16:
                counts[0] += 1
            elif n_ifaces < 1:
                counts[3] += 1
            else:
                wire = _u32(buf, pos + 8, big)
                cap = min(wire, blen - 16)
                if if_snaplen[0] > 0:
                    cap = min(cap, if_snaplen[0])
                out_off[n] = pos + 12
                out_cap[n] = cap
                out_wire[n] = wire
                out_ts[n] = 0
                out_idx[n] = idx
                out_link[n] = if_linktype[0]
                n += 1
            idx += 1
            pos += blen
            continue
        pos += blen  # any other block: skipped
    return n, pos, idx, SCAN_OK, False, big
