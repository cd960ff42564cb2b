"""Two-way conversations between hosts: TCP connections step by step, and UDP/ICMP exchanges."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pktlstm.synth.flows import ID_MODES, Recorder
from pktlstm.synth.hosts import Host, Network

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

    def rand_bytes(self, n: int) -> bytes:
        """``n`` random-looking bytes (slices of a seeded 1 MiB pool: cheap and deterministic)."""
        if not self._pool:
            self._pool = self.rng.integers(0, 256, 1 << 20, dtype=np.uint8).tobytes()
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
