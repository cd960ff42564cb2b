"""Vectorised packet bytes: columns of header fields -> Ethernet/IPv4/TCP/UDP/ICMP frames."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from numpy.typing import NDArray

MAX_OPTS = 40  # TCP options area, bytes
_L4_MAX = 20 + MAX_OPTS  # widest transport header built here (TCP with full options)
_ETH, _IP = 14, 20
_CHUNK = 32768  # packets per assembly chunk (bounds temporary memory)


@dataclass
class Packets:
    """Header fields of ``n`` packets as parallel arrays, plus ragged payloads.

    Field meaning by ``proto``: TCP (6) uses sport, dport, seq, ack, flags, win and
    ``opts[:, :opt_len]``; UDP (17) uses sport, dport; ICMP (1) takes its type from
    ``flags``, its code from ``ack & 0xff`` and bytes 4..7 (identifier, sequence) from
    ``seq``; any other protocol (GRE 47) has no transport header: the payload is
    everything after the IPv4 header. Shapes are ``(n,)`` except ``opts`` ``(n, 40)``;
    packet i's payload is ``pay_len[i]`` bytes long on the wire: its first ``pay_cap[i]``
    (<= ``pay_len[i]``) are ``payload[pay_start[i]:][:pay_cap[i]]``, the rest are zeros.
    ``ts`` is in microseconds from the start of the capture.
    """

    ts: NDArray[np.int64]
    smac: NDArray[np.uint64]
    dmac: NDArray[np.uint64]
    src: NDArray[np.uint32]
    dst: NDArray[np.uint32]
    proto: NDArray[np.uint8]
    ttl: NDArray[np.uint8]
    tos: NDArray[np.uint8]
    df: NDArray[np.uint8]
    ip_id: NDArray[np.uint16]
    sport: NDArray[np.uint16]
    dport: NDArray[np.uint16]
    seq: NDArray[np.uint32]
    ack: NDArray[np.uint32]
    flags: NDArray[np.uint8]
    win: NDArray[np.uint16]
    opt_len: NDArray[np.uint8]
    opts: NDArray[np.uint8]
    pay_len: NDArray[np.int64]
    pay_cap: NDArray[np.int64]
    pay_start: NDArray[np.int64]
    payload: NDArray[np.uint8]

    def __len__(self) -> int:
        return int(self.ts.shape[0])

    def take(self, index: NDArray[np.int64]) -> Packets:
        """Rows in the order of ``index`` (the payload buffer is shared, not copied)."""
        cols = {f.name: getattr(self, f.name)[index] for f in fields(self) if f.name != "payload"}
        return Packets(**cols, payload=self.payload)


# dtype of every column except the ragged payload.
DTYPES: dict[str, Any] = {f.name: None for f in fields(Packets)}
DTYPES.update(
    ts=np.int64,
    smac=np.uint64,
    dmac=np.uint64,
    src=np.uint32,
    dst=np.uint32,
    proto=np.uint8,
    ttl=np.uint8,
    tos=np.uint8,
    df=np.uint8,
    ip_id=np.uint16,
    sport=np.uint16,
    dport=np.uint16,
    seq=np.uint32,
    ack=np.uint32,
    flags=np.uint8,
    win=np.uint16,
    opt_len=np.uint8,
    opts=np.uint8,
    pay_len=np.int64,
    pay_cap=np.int64,
    pay_start=np.int64,
    payload=np.uint8,
)


def _be(values: NDArray[Any], nbytes: int) -> NDArray[np.uint8]:
    """Big-endian bytes of each value, shape ``(n, nbytes)`` (nbytes <= 8)."""
    v = np.asarray(values).astype(">u8")
    return v.view(np.uint8).reshape(-1, 8)[:, 8 - nbytes :]


def _fold(total: NDArray[np.int64]) -> NDArray[np.uint16]:
    """One's complement checksum from a sum of 16-bit words."""
    s = total.astype(np.int64)
    for _ in range(3):
        s = (s & 0xFFFF) + (s >> 16)
    return (~s & 0xFFFF).astype(np.uint16)


def _word_sums(mat: NDArray[np.uint8]) -> NDArray[np.int64]:
    """Sum of the big-endian 16-bit words of each row (row width even)."""
    words = np.ascontiguousarray(mat).view(">u2")
    return words.sum(axis=1, dtype=np.int64)


def _payload_matrix(p: Packets, width: NDArray[np.int64]) -> NDArray[np.uint8]:
    """The first ``width[i]`` payload bytes of each packet as rows of a ``(n, w)`` matrix
    (``w`` = even max width); zero past the stored bytes (``pay_cap``) and past ``width``."""
    n = len(p)
    w = int(width.max()) if n else 0
    w += w & 1
    if w == 0 or p.payload.shape[0] == 0:
        return np.zeros((n, w), dtype=np.uint8)
    # Gather only the bytes used: runs of ``take[i]`` bytes from ``pay_start[i]``.
    take = np.minimum(width, p.pay_cap)
    out = np.zeros((n, w), dtype=np.uint8)
    total = int(take.sum())
    if total:
        src = np.repeat(p.pay_start - (np.cumsum(take) - take), take) + np.arange(total)
        out[np.arange(w) < take[:, None]] = p.payload[src]
    return out


def _headers(p: Packets, pay: NDArray[np.uint8]) -> tuple[NDArray[np.uint8], NDArray[np.int64]]:
    """Ethernet + IPv4 + transport header of each packet, ``(n, 94)`` and header lengths.

    ``pay`` holds the payload bytes the transport checksum covers (zeros past them).
    """
    n = len(p)
    pay_sum = _word_sums(pay) if pay.shape[1] else np.zeros(n, dtype=np.int64)
    proto = p.proto
    tcp, udp, icmp = proto == 6, proto == 17, proto == 1
    opt_len = p.opt_len.astype(np.int64)
    l4 = np.where(tcp, 20 + opt_len, np.where(udp | icmp, 8, 0))
    hdr = np.zeros((n, _ETH + _IP + _L4_MAX), dtype=np.uint8)
    hdr[:, 0:6] = _be(p.dmac, 6)
    hdr[:, 6:12] = _be(p.smac, 6)
    hdr[:, 12] = 0x08
    ip = hdr[:, _ETH : _ETH + _IP]
    ip[:, 0] = 0x45
    ip[:, 1] = p.tos
    ip[:, 2:4] = _be(_IP + l4 + p.pay_len, 2)
    ip[:, 4:6] = _be(p.ip_id, 2)
    ip[:, 6] = p.df * 0x40
    ip[:, 8] = p.ttl
    ip[:, 9] = proto
    ip[:, 12:16] = _be(p.src, 4)
    ip[:, 16:20] = _be(p.dst, 4)
    ip[:, 10:12] = _be(_fold(_word_sums(ip)), 2)
    l4h = hdr[:, _ETH + _IP :]
    if tcp.any():
        t = l4h[tcp]
        t[:, 0:2] = _be(p.sport[tcp], 2)
        t[:, 2:4] = _be(p.dport[tcp], 2)
        t[:, 4:8] = _be(p.seq[tcp], 4)
        t[:, 8:12] = _be(p.ack[tcp], 4)
        t[:, 12] = ((20 + opt_len[tcp]) // 4 * 16).astype(np.uint8)
        t[:, 13] = p.flags[tcp]
        t[:, 14:16] = _be(p.win[tcp], 2)
        t[:, 20:] = np.where(np.arange(MAX_OPTS) < opt_len[tcp][:, None], p.opts[tcp], 0)
        l4h[tcp] = t
    if udp.any():
        u = l4h[udp]
        u[:, 0:2] = _be(p.sport[udp], 2)
        u[:, 2:4] = _be(p.dport[udp], 2)
        u[:, 4:6] = _be(8 + p.pay_len[udp], 2)
        l4h[udp] = u
    if icmp.any():
        c = l4h[icmp]
        c[:, 0] = p.flags[icmp]
        c[:, 1] = (p.ack[icmp] & 0xFF).astype(np.uint8)
        c[:, 4:8] = _be(p.seq[icmp], 4)
        l4h[icmp] = c
    # Transport checksums: header words (zeros past the header) + payload words (+ pseudo).
    total = _word_sums(l4h) + pay_sum
    pseudo = (
        (p.src.astype(np.int64) >> 16)
        + (p.src.astype(np.int64) & 0xFFFF)
        + (p.dst.astype(np.int64) >> 16)
        + (p.dst.astype(np.int64) & 0xFFFF)
        + proto.astype(np.int64)
        + l4
        + p.pay_len
    )
    csum = _fold(np.where(icmp, total, total + pseudo))
    csum = np.where(udp & (csum == 0), 0xFFFF, csum).astype(np.uint16)
    cb = _be(csum, 2)
    l4h[tcp, 16:18] = cb[tcp]
    l4h[udp, 6:8] = cb[udp]
    l4h[icmp, 2:4] = cb[icmp]
    return hdr, _ETH + _IP + l4


def _chunks(n: int) -> list[slice]:
    return [slice(i, min(n, i + _CHUNK)) for i in range(0, n, _CHUNK)]


def _l4_len(p: Packets) -> NDArray[np.int64]:
    tcp, udp, icmp = p.proto == 6, p.proto == 17, p.proto == 1
    return np.where(tcp, 20 + p.opt_len.astype(np.int64), np.where(udp | icmp, 8, 0))


def _rows_bytes(parts: list[tuple[NDArray[np.uint8], NDArray[np.int64]]]) -> bytes:
    """Row i of each ``(matrix, used)`` part, its first ``used[i]`` bytes, parts side by side."""
    full = np.concatenate([m for m, _ in parts], axis=1)
    mask = np.concatenate([np.arange(m.shape[1]) < u[:, None] for m, u in parts], axis=1)
    return full[mask].tobytes()


def ip_packets(p: Packets) -> tuple[NDArray[np.uint8], NDArray[np.int64]]:
    """IPv4 packets (no Ethernet), concatenated, and their lengths: for encapsulation."""
    parts, lens = [], []
    for sl in _chunks(len(p)):
        q = p.take(np.arange(sl.start, sl.stop))
        pay = _payload_matrix(q, q.pay_len)
        hdr, hlen = _headers(q, pay)
        parts.append(_rows_bytes([(hdr[:, _ETH:], hlen - _ETH), (pay, q.pay_len)]))
        lens.append(hlen - _ETH + q.pay_len)
    if not parts:
        return np.zeros(0, dtype=np.uint8), np.zeros(0, dtype=np.int64)
    return np.frombuffer(b"".join(parts), dtype=np.uint8), np.concatenate(lens)


def pcap_records(
    p: Packets, ts_sec: NDArray[np.int64], ts_frac: NDArray[np.int64], snaplen: int = 65535
) -> list[bytes]:
    """Classic pcap records (16-byte little-endian record header + Ethernet frame) as byte chunks.

    Frames longer than ``snaplen`` bytes are cut there (caplen < wirelen, as a capture with
    that snaplen records them); checksums count the bytes not captured as zeros.
    """
    out = []
    for sl in _chunks(len(p)):
        q = p.take(np.arange(sl.start, sl.stop))
        hlen = _ETH + _IP + _l4_len(q)
        vis = np.clip(snaplen - hlen, 0, q.pay_len)
        pay = _payload_matrix(q, vis)
        hdr, hlen = _headers(q, pay)
        rec = np.empty((len(q), 4), dtype="<u4")
        rec[:, 0] = ts_sec[sl]
        rec[:, 1] = ts_frac[sl]
        rec[:, 2] = hlen + vis
        rec[:, 3] = hlen + q.pay_len
        rec_b = rec.view(np.uint8).reshape(-1, 16)
        out.append(_rows_bytes([(rec_b, np.full(len(q), 16)), (hdr, hlen), (pay, vis)]))
    return out
