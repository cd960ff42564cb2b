"""Two-way conversations between hosts: TCP connections step by step, and UDP/ICMP exchanges."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pktlstm.synth.frames import MAX_OPTS, _be
from pktlstm.synth.flows import Recorder
from pktlstm.synth.hosts import Host, Network

FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10


@dataclass
class Ctx:
    """What every traffic generator needs: randomness, the network, the recorder, the clock."""

    rng: np.random.Generator
    net: Network
    rec: Recorder
    duration_us: int

    def rand_bytes(self, n: int) -> bytes:
        return self.rng.bytes(n)


def ip_ids(ctx: Ctx, host: Host, k: int) -> NDArray[np.int64]:
    """IPv4 identification values for ``k`` consecutive packets sent by ``host``."""
    mode = host.stack.ip_id
    rng = ctx.rng
    if mode == "random":
        return rng.integers(0, 65536, k)
    if mode == "zero":
        return np.zeros(k, dtype=np.int64)
    if mode == "global":
        steps = rng.integers(1, 6, k)
        start = host.ip_id
        ids = (start + np.cumsum(steps)) & 0xFFFF
        host.ip_id = int(ids[-1]) if k else start
        return ids
    return (int(rng.integers(0, 65536)) + np.arange(k)) & 0xFFFF


def emit_pair(
    ctx: Ctx,
    flow: int,
    a: Host,
    b: Host,
    sport: int,
    dport: int,
    proto: int,
    ts: NDArray[np.int64],
    rev: NDArray[np.bool_],
    payload: list[bytes] | tuple[NDArray[np.uint8], NDArray[np.int64]],
    **cols: Any,
) -> int:
    """Record a block of packets between ``a`` (port ``sport``) and ``b`` (``dport``).

    ``rev[i]`` is True when packet i goes b -> a. Addresses, ports, MACs, TTL, DF and
    IP ids follow from the hosts; ``cols`` overrides or adds Packets columns.
    """
    k = int(ts.shape[0])
    rev = np.asarray(rev, dtype=bool)
    ids = np.empty(k, dtype=np.int64)
    nr = int(rev.sum())
    ids[~rev] = ip_ids(ctx, a, k - nr)
    ids[rev] = ip_ids(ctx, b, nr)
    amac, bmac_from_a = ctx.net.macs(a, b)
    bmac, amac_from_b = ctx.net.macs(b, a)
    base: dict[str, Any] = {
        "src": np.where(rev, b.ip, a.ip),
        "dst": np.where(rev, a.ip, b.ip),
        "smac": np.where(rev, bmac, amac),
        "dmac": np.where(rev, amac_from_b, bmac_from_a),
        "sport": np.where(rev, dport, sport),
        "dport": np.where(rev, sport, dport),
        "ttl": np.where(rev, b.ttl, a.ttl),
        "df": np.where(rev, b.stack.df, a.stack.df),
        "ip_id": ids,
        "proto": proto,
    }
    base.update(cols)
    return ctx.rec.add(flow, ts, payload, **base)


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
        self.nxt = [0, 0]

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
        """Record the connection's packets; returns how many were kept (budget)."""
        ctx, c, s = self.ctx, self.c, self.s
        rng = ctx.rng
        k = len(self.dirs)
        dirs = np.asarray(self.dirs, dtype=np.int64)
        flags = np.asarray(self.flags, dtype=np.int64)
        ts = np.asarray(self.ts, dtype=np.int64)
        isn = [int(rng.integers(0, 1 << 32)), int(rng.integers(0, 1 << 32))]
        nxt = list(isn)
        self.nxt = nxt  # next sequence number per side, after the last packet
        seq = np.empty(k, dtype=np.int64)
        ack = np.empty(k, dtype=np.int64)
        for i in range(k):
            d, f, n = self.dirs[i], self.flags[i], len(self.pay[i])
            if f & SYN:
                seq[i] = isn[d]
                nxt[d] = isn[d] + 1
            else:
                seq[i] = nxt[d]
                nxt[d] += n + (1 if f & FIN else 0)
            ack[i] = nxt[1 - d] if f & ACK else 0
        # Windows: SYNs announce syn_window; later segments the stack's base value + drift.
        base = np.where(dirs == 0, c.stack.data_window, s.stack.data_window)
        win = base + rng.integers(0, 1 + base // 16 + 1, k) * (rng.random(k) < 0.3)
        win = np.where(flags & SYN, np.where(dirs == 0, c.stack.syn_window, s.stack.syn_window), win)
        win = np.where(flags & RST, 0, win)
        opts = np.zeros((k, MAX_OPTS), dtype=np.uint8)
        opt_len = np.zeros(k, dtype=np.int64)
        both_ts = c.stack.timestamps and s.stack.timestamps
        clock = np.where(dirs == 0, c.clock_ms, s.clock_ms)
        other = np.where(dirs == 0, s.clock_ms, c.clock_ms)
        tsval = (clock + ts // 1000) & 0xFFFFFFFF
        tsecr = (other + np.maximum(ts - self.rtt // 2, 0) // 1000) & 0xFFFFFFFF
        if both_ts:
            opts[:, 0:2] = 1
            opts[:, 2] = 8
            opts[:, 3] = 10
            opts[:, 4:8] = _be(tsval, 4)
            opts[:, 8:12] = _be(tsecr, 4)
            opt_len[:] = 12
        opt_len[flags & RST != 0] = 0
        for i in np.flatnonzero(flags & SYN):
            if flags[i] & ACK:
                o = s.stack.syn_options(int(tsval[i]), int(tsval[i - 1]) if i else 0, reply_to=c.stack)
            else:
                o = (c if dirs[i] == 0 else s).stack.syn_options(int(tsval[i]))
            opts[i, :] = 0
            opts[i, : len(o)] = np.frombuffer(o, dtype=np.uint8)
            opt_len[i] = len(o)
        rev = dirs == 1
        return emit_pair(
            ctx, flow, c, s, self.sport, self.dport, 6, ts, rev, self.pay,
            seq=seq & 0xFFFFFFFF, ack=ack & 0xFFFFFFFF, flags=flags, win=win & 0xFFFF,
            opts=opts, opt_len=opt_len,
        )  # fmt: skip


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


def new_flow_port(ctx: Ctx, src: Host, dst: Host, dport: int, proto: int, sport: int | None = None) -> tuple[int, int] | None:
    """Register a flow from ``src`` (given or ephemeral source port); (flow, sport) or None."""
    for _ in range(8):
        sp = src.ephemeral_port() if sport is None else sport
        flow = ctx.rec.new_flow(src.ip, sp, dst.ip, dport, proto)
        if flow is not None:
            return flow, sp
        if sport is not None:
            return None
    return None
