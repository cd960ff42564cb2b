"""Two-way conversations between hosts: TCP connections step by step, and UDP/ICMP exchanges."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pktlstm.synth.flows import ID_MODES, Recorder
from pktlstm.synth.hosts import STACK_IDS, Host, Network

FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10


@dataclass
class Ctx:
    """What every traffic generator needs: randomness, the network, the recorder, the clock."""

    rng: np.random.Generator
    net: Network
    rec: Recorder
    duration_us: int
    snaplen: int = 65535  # bytes of each frame the capture keeps (payload past it: zeros)

    _pool: bytes = b""

    def pool(self) -> NDArray[np.uint8]:
        """The seeded 1 MiB pool of random bytes that payloads are cut from."""
        if not self._pool:
            self._pool = self.rng.integers(0, 256, 1 << 20, dtype=np.uint8).tobytes()
        return np.frombuffer(self._pool, dtype=np.uint8)

    def rand_bytes(self, n: int) -> bytes:
        """``n`` random-looking bytes (slices of a seeded 1 MiB pool: cheap and deterministic)."""
        self.pool()
        if n > len(self._pool):
            return (self._pool * (n // len(self._pool) + 1))[:n]
        start = int(self.rng.integers(0, len(self._pool) - n + 1))
        return self._pool[start : start + n]


def emit_pair(
    ctx: Ctx,
    flow: int | NDArray[np.int64],
    a: Host,
    b: Host,
    sport: int | NDArray[np.int64],
    dport: int,
    proto: int,
    ts: NDArray[np.int64],
    rev: NDArray[np.bool_] | NDArray[np.int64],
    payload: list[bytes] | tuple[NDArray[np.uint8], NDArray[np.int64]],
    tcp: tuple[Any, ...] | None = None,
    **cols: Any,
) -> int:
    """Record a block of packets between ``a`` (port ``sport``) and ``b`` (``dport``).

    ``rev[i]`` is True when packet i goes b -> a. Addresses, ports, MACs, TTL, DF and
    IP ids follow from the hosts (resolved later, vectorised over all blocks); ``cols``
    overrides or adds Packets columns. ``sport`` may be an array (one per packet).
    """
    amac, a_dmac = ctx.net.macs(a, b)
    bmac, b_dmac = ctx.net.macs(b, a)
    rev_ = np.asarray(rev, dtype=np.int64)
    if isinstance(sport, np.ndarray):
        cols["sport"] = np.where(rev_, dport, sport)
        cols["dport"] = np.where(rev_, sport, dport)
        sport = 0
    pair = (
        a.ip, b.ip, a.ttl, b.ttl, int(a.stack.df), int(b.stack.df), amac, a_dmac, bmac, b_dmac,
        sport, dport, ID_MODES[a.stack.ip_id], ID_MODES[b.stack.ip_id],
    )  # fmt: skip
    return ctx.rec.add(flow, ts, payload, pair=pair, tcp=tcp, rev=rev_, proto=proto, **cols)


class TcpConv:
    """One TCP connection, built step by step in time order, then emitted as one block.

    Steps append packets with a direction (0 client -> server, 1 server -> client),
    flags and payload; sequence/ack numbers, windows, timestamps and options follow
    from the two hosts' stacks when the block is emitted.
    """

    def __init__(
        self, ctx: Ctx, client: Host, server: Host, sport: int, dport: int, t0: int, rtt: int
    ) -> None:
        self.ctx, self.c, self.s = ctx, client, server
        self.sport, self.dport = sport, dport
        self.t, self.rtt = t0, max(rtt, 50)
        self.dirs: list[int] = []
        self.flags: list[int] = []
        self.pay: list[bytes] = []
        self.ts: list[int] = []

    def pkt(self, d: int, flags: int, payload: bytes = b"", dt: int = 0) -> None:
        """One packet from side ``d`` after ``dt`` microseconds."""
        self.t += max(int(dt), 1)
        self.dirs.append(d)
        self.flags.append(flags)
        self.pay.append(payload)
        self.ts.append(self.t)

    def handshake(self, dt: int = 0) -> None:
        self.pkt(0, SYN, dt=dt)
        self.pkt(1, SYN | ACK, dt=self.rtt)
        self.pkt(0, ACK, dt=int(self.ctx.rng.integers(20, 200)))

    def write(self, d: int, data: bytes | int, dt: int = 0, mss: int = 1448) -> None:
        """Send ``data`` (bytes, or a length of random bytes) from side ``d`` in MSS segments;
        the receiver acknowledges every second segment and the last one."""
        if isinstance(data, int):
            data = self.ctx.rand_bytes(data)
        rng = self.ctx.rng
        segs = [data[i : i + mss] for i in range(0, len(data), mss)] or [b""]
        self.t += max(int(dt), 1) - 1
        for i, seg in enumerate(segs):
            last = i == len(segs) - 1
            self.pkt(d, (PSH | ACK) if last else ACK, seg, dt=int(rng.integers(5, 120)))
            if i % 2 == 1 or last:
                delay = int(rng.integers(30, 400)) if not last else int(rng.integers(200, 40000))
                self.pkt(1 - d, ACK, dt=delay)

    def close(self, d: int, dt: int = 0) -> None:
        """Orderly FIN teardown started by side ``d``."""
        rng = self.ctx.rng
        self.pkt(d, FIN | ACK, dt=dt)
        self.pkt(1 - d, FIN | ACK, dt=int(rng.integers(50, 3000)) + (self.rtt if d == 0 else 0))
        self.pkt(d, ACK, dt=int(rng.integers(20, 300)) + (self.rtt if d == 1 else 0))

    def reset(self, d: int, dt: int = 0) -> None:
        self.pkt(d, RST | ACK, dt=dt)

    def emit(self, flow: int) -> int:
        """Record the connection's packets; returns how many were kept (budget).

        Sequence numbers, windows and options are filled in later, vectorised over all
        connections (``Recorder.add(tcp=...)``); ``nxt`` is known right away.
        """
        c, s = self.c, self.s
        rng = self.ctx.rng
        self.isn = [int(rng.integers(0, 1 << 32)), int(rng.integers(0, 1 << 32))]
        tcp = (
            self.rtt, c.clock_ms, s.clock_ms, c.stack.data_window, s.stack.data_window,
            c.stack.syn_window, s.stack.syn_window, int(c.stack.timestamps and s.stack.timestamps),
            self.isn[0], self.isn[1], c.stack, s.stack,
        )  # fmt: skip
        ts = np.asarray(self.ts, dtype=np.int64)
        rev = np.asarray(self.dirs, dtype=np.int64)
        flags = np.asarray(self.flags, dtype=np.int64)
        return emit_pair(
            self.ctx, flow, c, s, self.sport, self.dport, 6, ts, rev, self.pay, tcp=tcp, flags=flags
        )

    def next_seq(self) -> tuple[int, int]:
        """(client, server) next sequence numbers after the packets so far (after emit)."""
        nxt = [self.isn[0] + 1, self.isn[1] + 1]
        for d, p in zip(self.dirs, self.pay, strict=True):
            nxt[d] += len(p)
        return nxt[0] & 0xFFFFFFFF, nxt[1] & 0xFFFFFFFF


def open_tcp(
    ctx: Ctx, client: Host, server: Host, dport: int, t0: int, rtt: int
) -> tuple[TcpConv, int] | None:
    """A new connection from an ephemeral client port (None if no free 5-tuple was found)."""
    for _ in range(8):
        sport = client.ephemeral_port()
        flow = ctx.rec.new_flow(client.ip, sport, server.ip, dport, 6)
        if flow is not None:
            return TcpConv(ctx, client, server, sport, dport, t0, rtt), flow
    return None


def new_flow_port(
    ctx: Ctx, src: Host, dst: Host, dport: int, proto: int, sport: int | None = None
) -> tuple[int, int] | None:
    """Register a flow from ``src`` (given or ephemeral source port); (flow, sport) or None."""
    for _ in range(8):
        sp = src.ephemeral_port() if sport is None else sport
        flow = ctx.rec.new_flow(src.ip, sp, dst.ip, dport, proto)
        if flow is not None:
            return flow, sp
        if sport is not None:
            return None
    return None


Values = int | NDArray[np.int64]
Sel = NDArray[np.bool_] | NDArray[np.int64] | None


class TcpBatch:
    """Many TCP connections of one kind built at once: a vectorised ``TcpConv``.

    Each step call applies to the connections ``sel`` (a mask or indices; default all)
    of the ``n``; values are scalars or arrays of length ``n`` (indexed by ``sel``). Steps
    of one connection happen in call order. ``text`` gives the first bytes of a message
    (one bytes for all, or a list with one per selected connection); the rest of its ``nbytes`` look random.
    ``emit`` expands writes into MSS segments and ACKs, places each connection so that it
    fits in the capture (or at the given start), registers flows and records one block.
    """

    def __init__(self, ctx: Ctx, n: int, mss: int = 1448) -> None:
        self.ctx, self.n, self.mss = ctx, n, mss
        self._steps: list[dict[str, NDArray[np.int64]]] = []
        self._texts: list[bytes] = [b""]

    def _sel(self, sel: Sel) -> NDArray[np.int64]:
        if sel is None:
            return np.arange(self.n)
        arr = np.asarray(sel)
        return np.flatnonzero(arr) if arr.dtype == bool else arr.astype(np.int64)

    def _text(self, idx: NDArray[np.int64], text: bytes | list[bytes] | None) -> NDArray[np.int64]:
        if text is None:
            return np.zeros(idx.size, dtype=np.int64)
        first = len(self._texts)
        if isinstance(text, bytes):
            self._texts.append(text)
            return np.full(idx.size, first, dtype=np.int64)
        if len(text) != idx.size:
            raise ValueError(f"text: {len(text)} messages for {idx.size} connections")
        self._texts.extend(text)
        return np.arange(first, first + idx.size, dtype=np.int64)

    def _add(
        self, write: bool, d: Values, flags: int, nbytes: Values | None, dt: Values, sel: Sel,
        text: bytes | list[bytes] | None,
    ) -> None:  # fmt: skip
        idx = self._sel(sel)
        if idx.size == 0:
            return
        tid = self._text(idx, text)
        tlen = np.array([len(self._texts[t]) for t in tid.tolist()], dtype=np.int64)

        def pick(v: Values) -> NDArray[np.int64]:
            a = np.asarray(v, dtype=np.int64)
            return np.broadcast_to(a if a.ndim == 0 else a[idx], idx.shape)

        size = tlen if nbytes is None else np.maximum(pick(nbytes), tlen)
        self._steps.append({
            "conn": idx, "order": np.full(idx.size, len(self._steps)), "write": np.full(idx.size, int(write)),
            "d": pick(d), "flags": np.full(idx.size, flags), "nbytes": size, "dt": pick(dt), "text": tid,
        })  # fmt: skip

    def pkt(
        self, d: Values, flags: int, nbytes: Values = 0, dt: Values = 0, sel: Sel = None,
        text: bytes | list[bytes] | None = None,
    ) -> None:  # fmt: skip
        """One packet from side ``d`` (0 client, 1 server) ``dt`` microseconds after the last."""
        self._add(False, d, flags, nbytes, dt, sel, text)

    def write(
        self, d: Values, nbytes: Values | None = None, dt: Values = 0, sel: Sel = None,
        text: bytes | list[bytes] | None = None,
    ) -> None:  # fmt: skip
        """A message of ``nbytes`` (default: the text's length) in MSS segments; the receiver
        acknowledges every second segment and the last one (as ``TcpConv.write``)."""
        self._add(True, d, PSH | ACK, nbytes, dt, sel, text)

    def handshake(self, rtt: Values, sel: Sel = None) -> None:
        k = self.n
        self.pkt(0, SYN, sel=sel)
        self.pkt(1, SYN | ACK, dt=rtt, sel=sel)
        self.pkt(0, ACK, dt=self.ctx.rng.integers(20, 200, k), sel=sel)

    def close(self, d: Values, rtt: Values, dt: Values = 0, sel: Sel = None) -> None:
        """Orderly FIN teardown started by side ``d``."""
        rng, k = self.ctx.rng, self.n
        d_ = np.asarray(d, dtype=np.int64)
        rtt_ = np.asarray(rtt, dtype=np.int64)
        self.pkt(d_, FIN | ACK, dt=dt, sel=sel)
        self.pkt(1 - d_, FIN | ACK, dt=rng.integers(50, 3000, k) + rtt_ * (d_ == 0), sel=sel)
        self.pkt(d_, ACK, dt=rng.integers(20, 300, k) + rtt_ * (d_ == 1), sel=sel)

    def reset(self, d: Values, dt: Values = 0, sel: Sel = None) -> None:
        self.pkt(d, RST | ACK, dt=dt, sel=sel)

    def _expand(self) -> dict[str, NDArray[np.int64]]:
        """Per-packet arrays (connection, direction, flags, length, step time, text id,
        offset in the message) sorted by connection then time."""
        rng = self.ctx.rng
        st = {k: np.concatenate([s[k] for s in self._steps]) for k in self._steps[0]}
        o = np.lexsort((st["order"], st["conn"]))
        st = {k: v[o] for k, v in st.items()}
        w = st["write"] != 0
        nseg = np.where(w, np.maximum(1, -(-st["nbytes"] // self.mss)), 1)
        step = np.repeat(np.arange(nseg.size), nseg)
        i = np.arange(step.size) - (np.cumsum(nseg) - nseg)[step]
        last = i == nseg[step] - 1
        sw = w[step]
        seg_len = np.where(
            sw, np.minimum(self.mss, st["nbytes"][step] - i * self.mss), st["nbytes"][step]
        )
        seg_flags = np.where(sw & ~last, ACK, st["flags"][step])
        dt0 = np.maximum(st["dt"][step], 1)
        seg_dt = np.where(sw, np.where(i == 0, dt0 - 1, 0) + rng.integers(5, 120, step.size), dt0)
        has_ack = sw & ((i % 2 == 1) | last)
        seg = np.repeat(np.arange(step.size), 1 + has_ack)
        is_ack = np.r_[False, seg[1:] == seg[:-1]]
        m = seg.size
        ack_dt = np.where(last[seg], rng.integers(200, 40000, m), rng.integers(30, 400, m))
        d = st["d"][step][seg]
        return {
            "conn": st["conn"][step][seg],
            "d": np.where(is_ack, 1 - d, d),
            "flags": np.where(is_ack, ACK, seg_flags[seg]),
            "len": np.where(is_ack, 0, seg_len[seg]),
            "dt": np.where(is_ack, ack_dt, seg_dt[seg]),
            "text": np.where(is_ack, 0, st["text"][step][seg]),
            "off": i[seg] * self.mss,
        }

    def emit(
        self, clients: list[Host], servers: list[Host], dport: Values, rtt: Values,
        t0: NDArray[np.int64] | None = None,
    ) -> int:  # fmt: skip
        """Record the connections (one block); returns how many packets were kept.

        ``t0`` (per connection, microseconds) defaults to a random start at which the
        connection ends inside the capture; packets past the capture's end are dropped.
        """
        ctx, rng, n = self.ctx, self.ctx.rng, self.n
        if not self._steps or n == 0:
            return 0
        p = self._expand()
        conn = p["conn"]
        head = np.r_[True, conn[1:] != conn[:-1]]
        c = np.cumsum(p["dt"])
        t_rel = c - (c - p["dt"])[np.maximum.accumulate(np.where(head, np.arange(c.size), 0))]
        span = np.zeros(n, dtype=np.int64)
        span[conn] = t_rel  # the last packet of each connection wins
        if t0 is None:
            t0 = rng.integers(0, np.maximum(1, ctx.duration_us - span))
        ts = np.asarray(t0, dtype=np.int64)[conn] + t_rel
        dports = np.broadcast_to(np.asarray(dport, dtype=np.int64), (n,))
        flows = np.full(n, -1, dtype=np.int64)
        sports = np.zeros(n, dtype=np.int64)
        for j in range(n):
            got = new_flow_port(ctx, clients[j], servers[j], int(dports[j]), 6)
            if got is not None:
                flows[j], sports[j] = got
        keep = (flows[conn] >= 0) & (ts < ctx.duration_us)
        if not keep.any():
            return 0
        p = {k: v[keep] for k, v in p.items()}
        ts, conn = ts[keep], p["conn"]
        pair = np.array([pair_row(ctx, clients[j], servers[j], int(sports[j]), int(dports[j]))
                         for j in range(n)], dtype=np.int64)  # fmt: skip
        isn = rng.integers(0, 1 << 32, (n, 2))
        tcp = np.array([_tcp_info(clients[j], servers[j]) for j in range(n)], dtype=np.int64)
        tcp[:, 0] = np.maximum(np.broadcast_to(np.asarray(rtt, dtype=np.int64), (n,)), 50)
        tcp[:, 8:10] = isn
        return ctx.rec.add(
            flows[conn], ts, self._payload(p), pair=pair, tcp=tcp, conn=conn,
            wire_len=p["len"], rev=p["d"], flags=p["flags"], proto=6,
        )  # fmt: skip

    def _payload(
        self, p: dict[str, NDArray[np.int64]]
    ) -> tuple[NDArray[np.uint8], NDArray[np.int64]]:
        """Stored payload bytes (only what a capture of ``snaplen`` can show): the message
        text at the segment's offset, then bytes from the random pool."""
        ctx = self.ctx
        keep = max(0, ctx.snaplen - 54)
        stored = np.minimum(p["len"], keep)
        tlens = np.array([len(t) for t in self._texts], dtype=np.int64)
        tstart = np.cumsum(tlens) - tlens
        tl = np.clip(tlens[p["text"]] - p["off"], 0, stored)
        rl = stored - tl
        pool = ctx.pool()
        src = np.concatenate([np.frombuffer(b"".join(self._texts), dtype=np.uint8), pool])
        base = int(tlens.sum())
        rstart = base + ctx.rng.integers(0, pool.size - keep, stored.size)
        lens = np.stack([tl, rl], axis=1).ravel()
        starts = np.stack([tstart[p["text"]] + p["off"], rstart], axis=1).ravel()
        total = int(lens.sum())
        idx = np.repeat(starts - (np.cumsum(lens) - lens), lens) + np.arange(total)
        return src[idx], stored


def pair_row(ctx: Ctx, a: Host, b: Host, sport: int, dport: int) -> tuple[int, ...]:
    """PAIR_FIELDS of a conversation between ``a`` (port ``sport``) and ``b``."""
    amac, a_dmac = ctx.net.macs(a, b)
    bmac, b_dmac = ctx.net.macs(b, a)
    return (
        a.ip, b.ip, a.ttl, b.ttl, int(a.stack.df), int(b.stack.df), amac, a_dmac, bmac, b_dmac,
        sport, dport, ID_MODES[a.stack.ip_id], ID_MODES[b.stack.ip_id],
    )  # fmt: skip


def _tcp_info(c: Host, s: Host) -> tuple[int, ...]:
    """TCP_FIELDS of a connection (rtt and ISNs left 0 for the caller)."""
    return (
        0, c.clock_ms, s.clock_ms, c.stack.data_window, s.stack.data_window,
        c.stack.syn_window, s.stack.syn_window, int(c.stack.timestamps and s.stack.timestamps),
        0, 0, STACK_IDS[c.stack.name], STACK_IDS[s.stack.name],
    )  # fmt: skip
