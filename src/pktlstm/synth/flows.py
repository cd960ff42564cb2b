"""Flow registry and packet recorder: unique 5-tuples, per-class packet budgets, label rows."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pktlstm.synth.frames import DTYPES, MAX_OPTS, Packets, _be
from pktlstm.synth.hosts import STACK_IDS, STACK_LIST


@dataclass(frozen=True)
class Flow:
    """One label row: the 5-tuple as seen on the flow's first packet, and its class."""

    src: int
    sport: int
    dst: int
    dport: int
    proto: int
    label: str


class Recorder:
    """Collects packets in blocks, flow by flow, under a packet budget per class.

    A 5-tuple (in either direction) is given to one flow only, for the whole capture,
    so that matching label rows to packets by 5-tuple and time is unambiguous.
    """

    def __init__(self) -> None:
        self.flows: list[Flow] = []
        self._keys: set[tuple[int, int, int, int, int]] = set()
        self._blocks: list[dict[str, Any]] = []
        self.label = ""
        self.remaining = 0

    def begin(self, label: str, budget: int) -> None:
        """Start recording packets of class ``label``; at most ``budget`` more are kept."""
        self.label = label
        self.remaining = budget

    def new_flow(self, src: int, sport: int, dst: int, dport: int, proto: int) -> int | None:
        """Register a flow of the current class; None when the 5-tuple is already taken."""
        a, b = (src, sport), (dst, dport)
        key = (*min(a, b), *max(a, b), proto)
        if key in self._keys:
            return None
        self._keys.add(key)
        self.flows.append(Flow(src, sport, dst, dport, proto, self.label))
        return len(self.flows) - 1

    def add(
        self,
        flow: int | NDArray[np.int64],
        ts: NDArray[np.int64],
        payload: list[bytes] | tuple[NDArray[np.uint8], NDArray[np.int64]],
        opts: NDArray[np.uint8] | None = None,
        pair: tuple[int, ...] | NDArray[np.int64] | None = None,
        tcp: tuple[Any, ...] | NDArray[np.int64] | None = None,
        conn: NDArray[np.int64] | None = None,
        wire_len: NDArray[np.int64] | None = None,
        **cols: Any,
    ) -> int:
        """Add ``len(ts)`` packets (the rest of the class budget at most); returns how many.

        ``cols`` are Packets columns as arrays of length ``len(ts)`` or scalars; omitted
        columns are zero. ``payload`` is a list of bytes or (flat bytes, lengths); when
        ``wire_len`` is given the payloads are only the first stored bytes of payloads that
        long on the wire (the rest are zeros). ``opts`` is ``(k, 40)`` TCP option bytes
        (``opt_len`` gives the used length). A block may hold several connections:
        ``conn`` (per packet, 0..c-1, default all 0) says which; each connection's packets
        must be contiguous. ``pair`` (see ``PAIR_FIELDS``; one tuple, or a ``(c, 14)``
        array) derives addresses, ports, MACs, TTL, DF and IP ids from two hosts and the
        ``rev`` column (1: packet goes b -> a) for columns not given in ``cols``; ``tcp``
        (see ``TCP_FIELDS``; one tuple or a ``(c, 12)`` array) derives sequence and ack
        numbers, windows and options of TCP connections from flags, directions, payloads.
        """
        k = min(int(ts.shape[0]), self.remaining)
        if k <= 0:
            return 0
        if isinstance(payload, list):
            lens = np.fromiter((len(x) for x in payload[:k]), dtype=np.int64, count=k)
            flat = np.frombuffer(b"".join(payload[:k]), dtype=np.uint8)
        else:
            flat, lens = payload
            lens = lens[:k]
            flat = flat[: int(lens.sum())]
        block: dict[str, Any] = {"n": k, "ts": ts[:k], "flow": _cut(flow, k), "payload": flat}
        block["pay_cap"] = lens
        block["pay_len"] = lens if wire_len is None else wire_len[:k]
        block["opts"] = None if opts is None else opts[:k]
        block["pair"] = None if pair is None else np.asarray(pair, dtype=np.int64).reshape(-1, 14)
        if tcp is not None and isinstance(tcp, tuple):
            tcp = (*tcp[:10], STACK_IDS[tcp[10].name], STACK_IDS[tcp[11].name])
        block["tcp"] = None if tcp is None else np.asarray(tcp, dtype=np.int64).reshape(-1, 12)
        block["conn"] = 0 if conn is None else conn[:k]
        n_conn = [1] + [len(block[x]) for x in ("pair", "tcp") if block[x] is not None]
        block["n_conn"] = max(n_conn)
        for name, value in cols.items():
            block[name] = _cut(value, k)
        self._blocks.append(block)
        self.remaining -= k
        return k

    def packets(self, rng: np.random.Generator) -> tuple[Packets, NDArray[np.int64]]:
        """All recorded packets (in recording order) and the flow index of each."""
        blocks = self._blocks
        sizes = np.array([b["n"] for b in blocks], dtype=np.int64)
        ends = np.cumsum(sizes)
        starts = (ends - sizes).tolist()
        n = int(ends[-1]) if blocks else 0
        cols: dict[str, Any] = {}
        extra = [("flow", np.int64), ("rev", np.int64), ("conn", np.int64)]
        for name, dtype in [*DTYPES.items(), *extra]:
            if name in ("payload", "opts", "pay_start"):
                continue
            # Scalars of every block expanded at once, then array blocks copied in.
            scalars = [b.get(name, 0) for b in blocks]
            is_arr = [isinstance(v, np.ndarray) and v.ndim > 0 for v in scalars]
            base = np.array(
                [0 if a else v for v, a in zip(scalars, is_arr, strict=True)], dtype=np.int64
            )
            col = np.repeat(base, sizes).astype(dtype)
            for i in np.flatnonzero(is_arr).tolist():
                col[starts[i] : starts[i] + blocks[i]["n"]] = scalars[i]
            cols[name] = col
        flow = cols.pop("flow")
        rev = cols.pop("rev")
        # Global connection id of each packet: the block's first id + the local one.
        n_conn = np.array([b["n_conn"] for b in blocks], dtype=np.int64)
        block_of = np.repeat(np.arange(len(blocks)), sizes)
        conn = (np.cumsum(n_conn) - n_conn)[block_of] + cols.pop("conn")
        opts = np.zeros((n, MAX_OPTS), dtype=np.uint8)
        for b, s0 in zip(blocks, starts, strict=True):
            if b["opts"] is not None:
                opts[s0 : s0 + b["n"], : b["opts"].shape[1]] = b["opts"]
        cols["opts"] = opts
        _resolve_pairs(blocks, block_of, conn, cols, rev, rng)
        _resolve_tcp(blocks, block_of, conn, cols, rev, rng)
        opts = cols.pop("opts")
        parts = [b["payload"] for b in blocks]
        payload = np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint8)
        pay_start = np.cumsum(cols["pay_cap"]) - cols["pay_cap"]
        return Packets(**cols, opts=opts, pay_start=pay_start, payload=payload), flow


# Per-connection host facts for two-way blocks (Recorder.add(pair=...)), in this order.
PAIR_FIELDS = (
    "a_ip", "b_ip", "a_ttl", "b_ttl", "a_df", "b_df", "a_smac", "a_dmac", "b_smac", "b_dmac",
    "sport", "dport", "a_idmode", "b_idmode",
)  # fmt: skip
# IP id modes: per-flow counter, host counter (jumps), random, zero.
ID_MODES = {"inc": 0, "global": 1, "random": 2, "zero": 3}
# Per-connection facts of TCP blocks (Recorder.add(tcp=...)), in this order; the last two
# are the client and server stacks (Stack objects in a tuple, STACK_IDS in an array).
TCP_FIELDS = (
    "rtt", "c_clock", "s_clock", "c_win", "s_win", "c_syn_win", "s_syn_win", "both_ts",
    "c_isn", "s_isn", "c_stack", "s_stack",
)  # fmt: skip


def _conn_info(
    blocks: list[dict[str, Any]], key: str, block_of: NDArray[np.int64], conn: NDArray[np.int64]
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Rows of blocks that carry ``key`` info, and each row's info (one row per connection)."""
    has = np.array([b[key] is not None for b in blocks], dtype=bool)
    rows = np.flatnonzero(has[block_of])
    if rows.size == 0:
        return rows, np.zeros((0, 12), dtype=np.int64)
    table = np.concatenate([b[key] for b in blocks if b[key] is not None])
    n_conn = np.array([b["n_conn"] for b in blocks], dtype=np.int64)
    # Map global connection ids of these blocks to rows of ``table``.
    first_global = np.cumsum(n_conn) - n_conn
    first_table = np.cumsum(np.where(has, n_conn, 0)) - np.where(has, n_conn, 0)
    idx = conn[rows] - first_global[block_of[rows]] + first_table[block_of[rows]]
    return rows, table[idx]


def _resolve_pairs(
    blocks: list[dict[str, Any]], block_of: NDArray[np.int64], conn: NDArray[np.int64],
    cols: dict[str, Any], rev: NDArray[np.int64], rng: np.random.Generator,
) -> None:  # fmt: skip
    """Fill addresses, ports, MACs, TTL, DF and IP ids of two-way blocks, vectorised."""
    rows, info = _conn_info(blocks, "pair", block_of, conn)
    if rows.size == 0:
        return
    f = {name: info[:, j] for j, name in enumerate(PAIR_FIELDS)}
    r = rev[rows] != 0
    derived = {
        "src": np.where(r, f["b_ip"], f["a_ip"]),
        "dst": np.where(r, f["a_ip"], f["b_ip"]),
        "smac": np.where(r, f["b_smac"], f["a_smac"]),
        "dmac": np.where(r, f["b_dmac"], f["a_dmac"]),
        "sport": np.where(r, f["dport"], f["sport"]),
        "dport": np.where(r, f["sport"], f["dport"]),
        "ttl": np.where(r, f["b_ttl"], f["a_ttl"]),
        "df": np.where(r, f["b_df"], f["a_df"]),
        "ip_id": _ip_ids(conn[rows] * 2 + r, np.where(r, f["b_idmode"], f["a_idmode"]), rng),
    }
    for name, values in derived.items():
        given = np.array([name in b for b in blocks])[block_of[rows]]
        keep = ~given
        cols[name][rows[keep]] = values[keep]


def _ip_ids(
    group: NDArray[np.int64], mode: NDArray[np.int64], rng: np.random.Generator
) -> NDArray[np.int64]:
    """IPv4 ids: counters per (block, direction) group from a random start (steps of 1,
    or 1-5 for host-wide counters), random, or zero, by ``mode`` (see ID_MODES)."""
    m = group.shape[0]
    order = np.argsort(group, kind="stable")
    g = group[order]
    head = np.r_[True, g[1:] != g[:-1]] if m else np.zeros(0, dtype=bool)
    step = np.where(mode[order] == 1, rng.integers(1, 6, m), 1)
    c: NDArray[np.int64] = np.cumsum(step)
    head_pos = np.maximum.accumulate(np.where(head, np.arange(m), 0))
    start = np.asarray(rng.integers(0, 65536, m))[head_pos]
    val = start + c - (c - step)[head_pos]
    out = np.empty(m, dtype=np.int64)
    out[order] = val & 0xFFFF
    out = np.where(mode == 2, rng.integers(0, 65536, m), out)
    return np.where(mode == 3, 0, out)


def _resolve_tcp(
    blocks: list[dict[str, Any]], block_of: NDArray[np.int64], conn: NDArray[np.int64],
    cols: dict[str, Any], rev: NDArray[np.int64], rng: np.random.Generator,
) -> None:  # fmt: skip
    """Sequence/ack numbers, windows and options of TCP connection blocks, vectorised."""
    rows, info = _conn_info(blocks, "tcp", block_of, conn)
    if rows.size == 0:
        return
    f = {name: info[:, j] for j, name in enumerate(TCP_FIELDS)}
    m = rows.shape[0]
    d = rev[rows] != 0
    flags = cols["flags"][rows].astype(np.int64)
    syn, fin, ackf, rst = (flags & 2) != 0, (flags & 1) != 0, (flags & 16) != 0, (flags & 4) != 0
    adv = cols["pay_len"][rows] + fin
    g = conn[rows]
    head = np.r_[True, g[1:] != g[:-1]]
    head_pos = np.maximum.accumulate(np.where(head, np.arange(m), 0))

    def incl(v: NDArray[np.int64]) -> NDArray[np.int64]:  # cumulative within each connection
        c = np.cumsum(v)
        return c - (c - v)[head_pos]

    sent0, sent1 = incl(np.where(d, 0, adv)), incl(np.where(d, adv, 0))
    syn0, syn1 = incl((syn & ~d).astype(np.int64)) > 0, incl((syn & d).astype(np.int64)) > 0
    own_isn = np.where(d, f["s_isn"], f["c_isn"])
    oth_isn = np.where(d, f["c_isn"], f["s_isn"])
    own_sent, oth_sent = np.where(d, sent1, sent0), np.where(d, sent0, sent1)
    own_syn, oth_syn = np.where(d, syn1, syn0), np.where(d, syn0, syn1)
    seq = np.where(syn, own_isn, own_isn + own_syn + own_sent - adv)
    ack = np.where(ackf, oth_isn + oth_syn + oth_sent, 0)
    cols["seq"][rows] = seq & 0xFFFFFFFF
    cols["ack"][rows] = ack & 0xFFFFFFFF
    base = np.where(d, f["s_win"], f["c_win"])
    win = base + rng.integers(0, 1 + base // 16 + 1, m) * (rng.random(m) < 0.3)
    win = np.where(syn, np.where(d, f["s_syn_win"], f["c_syn_win"]), win)
    cols["win"][rows] = np.where(rst, 0, win) & 0xFFFF
    ts = cols["ts"][rows]
    tsval = (np.where(d, f["s_clock"], f["c_clock"]) + ts // 1000) & 0xFFFFFFFF
    half = f["rtt"] // 2
    tsecr = (
        np.where(d, f["c_clock"], f["s_clock"]) + np.maximum(ts - half, 0) // 1000
    ) & 0xFFFFFFFF
    opts = np.zeros((m, MAX_OPTS), dtype=np.uint8)
    opt_len = np.where((f["both_ts"] != 0) & ~rst, 12, 0)
    opts[:, 0:2] = 1
    opts[:, 2] = 8
    opts[:, 3] = 10
    opts[:, 4:8] = _be(tsval, 4)
    opts[:, 8:12] = _be(tsecr, 4)
    opts[opt_len == 0] = 0
    # SYN / SYN-ACK options from per-(stack, peer stack) templates; the SYN-ACK echoes
    # the tsval of the packet before it (the SYN).
    j = np.flatnonzero(syn)
    synack = ackf[j]
    own = np.where(synack | d[j], f["s_stack"][j], f["c_stack"][j])
    peer = np.where(synack, f["c_stack"][j], -1)
    echo = np.where(synack & ~head[j], tsval[np.maximum(j - 1, 0)], 0)
    key = own * (len(STACK_LIST) + 1) + peer + 1
    for kv in np.unique(key).tolist():
        sel = j[key == kv]
        o_id, p_id = divmod(kv, len(STACK_LIST) + 1)
        tmpl, ts_at = _syn_template(o_id, p_id - 1)
        opts[sel] = 0
        opts[sel, : len(tmpl)] = np.frombuffer(tmpl, dtype=np.uint8)
        opt_len[sel] = len(tmpl)
        if ts_at >= 0:
            opts[sel, ts_at : ts_at + 4] = _be(tsval[sel], 4)
            opts[sel, ts_at + 4 : ts_at + 8] = _be(echo[key == kv], 4)
    cols["opts"][rows] = opts
    cols["opt_len"][rows] = opt_len


@functools.cache
def _syn_template(stack: int, peer: int) -> tuple[bytes, int]:
    """SYN options of STACK_LIST[stack] (a SYN-ACK to ``peer`` when >= 0) with zero
    timestamps, and the offset of the tsval field (-1 without a timestamp option)."""
    o = STACK_LIST[stack].syn_options(0, 0, reply_to=STACK_LIST[peer] if peer >= 0 else None)
    i = 0
    while i < len(o) and o[i] != 0:
        if o[i] == 1:
            i += 1
            continue
        if o[i] == 8:
            return o, i + 2
        i += o[i + 1]
    return o, -1


def _cut(value: Any, k: int) -> Any:
    if isinstance(value, np.ndarray) and value.ndim > 0:
        return value[:k]
    if isinstance(value, list):
        return np.asarray(value[:k])
    return value
