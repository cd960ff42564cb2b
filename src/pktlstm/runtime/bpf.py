"""Classic BPF filters on capture files: tcpdump-compiled programs run over PacketBatch headers."""

from __future__ import annotations

import numba
import numpy as np
from numpy.typing import NDArray

from pktlstm.io.batch import HEADER_BYTES, PacketBatch
from pktlstm.io.live import compile_bpf

# Instruction classes, sizes, modes and operations of classic BPF (linux/bpf_common.h).
_LD, _LDX, _ST, _STX, _ALU, _JMP, _RET, _MISC = range(8)
_W, _H, _B = 0x00, 0x08, 0x10
_IMM, _ABS, _IND, _MEM, _LEN, _MSH = 0x00, 0x20, 0x40, 0x60, 0x80, 0xA0
_SRC_X = 0x08


@numba.njit(cache=True, inline="always")
def _load(data: NDArray[np.uint8], valid: int, at: int, size: int) -> tuple[bool, int]:
    """Big-endian load of ``size`` bytes at ``at``; (False, 0) when outside the data."""
    if at < 0 or at + size > valid:
        return False, 0
    v = 0
    for i in range(size):
        v = (v << 8) | int(data[at + i])
    return True, v


@numba.njit(cache=True)
def _run(
    prog: NDArray[np.uint32], header: NDArray[np.uint8], valid: NDArray[np.int64],
    wirelen: NDArray[np.int64],
) -> NDArray[np.bool_]:  # fmt: skip
    n = header.shape[0]
    out = np.zeros(n, np.bool_)
    mem = np.zeros(16, np.int64)
    m = prog.shape[0]
    for p in range(n):
        a = 0
        x = 0
        pc = 0
        data = header[p]
        lim = valid[p]
        accept = False
        while pc < m:
            code = int(prog[pc, 0])
            jt = int(prog[pc, 1])
            jf = int(prog[pc, 2])
            k = int(prog[pc, 3])
            cls = code & 0x07
            pc += 1
            if cls <= _LDX:  # LD or LDX
                mode = code & 0xE0
                size = 4 if (code & 0x18) == _W else 2 if (code & 0x18) == _H else 1
                if mode == _IMM:
                    v = k
                elif mode == _LEN:
                    v = int(wirelen[p])
                elif mode == _MEM:
                    v = int(mem[k & 15])
                elif mode == _ABS:
                    ok, v = _load(data, lim, k, size)
                    if not ok:
                        break
                elif mode == _IND:
                    ok, v = _load(data, lim, x + k, size)
                    if not ok:
                        break
                elif mode == _MSH:
                    ok, v = _load(data, lim, k, 1)
                    if not ok:
                        break
                    v = 4 * (v & 0x0F)
                else:
                    break
                if cls == _LD:
                    a = v
                else:
                    x = v
            elif cls == _ST:
                mem[k & 15] = a
            elif cls == _STX:
                mem[k & 15] = x
            elif cls == _ALU:
                op = code & 0xF0
                b = x if code & _SRC_X else k
                if op == 0x00:
                    a = a + b
                elif op == 0x10:
                    a = a - b
                elif op == 0x20:
                    a = a * b
                elif op == 0x30:
                    if b == 0:
                        break
                    a = a // b
                elif op == 0x40:
                    a = a | b
                elif op == 0x50:
                    a = a & b
                elif op == 0x60:
                    a = a << (b & 31)
                elif op == 0x70:
                    a = a >> (b & 31)
                elif op == 0x80:
                    a = -a
                elif op == 0x90:
                    if b == 0:
                        break
                    a = a % b
                elif op == 0xA0:
                    a = a ^ b
                a &= 0xFFFFFFFF
            elif cls == _JMP:
                op = code & 0xF0
                b = x if code & _SRC_X else k
                if op == 0x00:
                    pc += k
                    continue
                if op == 0x10:
                    t = a == b
                elif op == 0x20:
                    t = a > b
                elif op == 0x30:
                    t = a >= b
                elif op == 0x40:
                    t = (a & b) != 0
                else:
                    break
                pc += jt if t else jf
            elif cls == _RET:
                rv = code & 0x18
                r = k if rv == 0x00 else x if rv == 0x08 else a
                accept = r != 0
                break
            else:  # MISC: TAX / TXA
                if code & 0xF8 == 0x80:
                    a = x
                else:
                    x = a
        out[p] = accept
    return out


class BpfFilter:
    """A tcpdump filter expression applied to decoded packets (for files; live capture
    filters in the kernel).

    The program is compiled for Ethernet and runs on the normalised header window, so
    VLAN tags are already gone (``vlan`` primitives never match) and loads past the first
    ``HEADER_BYTES`` (128) bytes reject the packet, as the kernel does past the frame's end.
    """

    def __init__(self, expr: str) -> None:
        self.expr = expr
        self.program = np.asarray(compile_bpf(expr, "EN10MB"), np.uint32).reshape(-1, 4)

    def match(self, batch: PacketBatch) -> NDArray[np.bool_]:
        """``(n,)`` True where the filter accepts the packet."""
        if len(batch) == 0:
            return np.zeros(0, np.bool_)
        valid = np.minimum(batch.caplen.astype(np.int64), HEADER_BYTES)
        return _run(self.program, batch.header, valid, batch.wirelen.astype(np.int64))
