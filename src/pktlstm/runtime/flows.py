"""FlowTable: bounded per-flow state (LRU, idle timeout) and the first-k-packet flow verdict."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pktlstm.errors import ConfigError
from pktlstm.io.batch import PacketBatch

AGGREGATES = ("max", "mean")
# Multiplier mixing the capture id into the reader's flow id (golden-ratio constant), so
# that two captures' flows never share a table entry.
_CAPTURE_MIX = np.uint64(0x9E3779B97F4A7C15)
# Verdict states of a flow slot.
_OPEN, _ALERTED, _BENIGN = 0, 1, 2


@dataclass(frozen=True)
class FlowConfig:
    """How flows are tracked and judged.

    max_flows: most flows tracked at once (bounds memory: ~100 bytes each with the key
        dictionary); past it the least recently used flows are evicted in bulk.
    idle_timeout_s: a flow not seen for this long (capture time, seconds) is expired.
    verdict_packets: k, the flow verdict is taken from the flow's first k packets.
    aggregate: ``max``: the flow alerts at the first of its first k packets whose score
        reaches the threshold (no wait); ``mean``: the mean score of the first k packets
        is compared with the threshold at the k-th packet (or when a shorter flow expires).
    per_packet: alert on every packet at or above the threshold instead of once per flow.
    """

    max_flows: int = 500_000
    idle_timeout_s: float = 120.0
    verdict_packets: int = 3
    aggregate: str = "max"
    per_packet: bool = False

    def __post_init__(self) -> None:
        if not 1024 <= self.max_flows <= 100_000_000:
            raise ConfigError(f"max_flows={self.max_flows}: must be in 1024..100000000")
        if not self.idle_timeout_s > 0:
            raise ConfigError(f"idle_timeout_s={self.idle_timeout_s}: must be > 0 seconds")
        if not 1 <= self.verdict_packets <= 1000:
            raise ConfigError(f"verdict_packets={self.verdict_packets}: must be in 1..1000")
        if self.aggregate not in AGGREGATES:
            raise ConfigError(
                f"aggregate={self.aggregate!r}: choose one of {', '.join(AGGREGATES)}"
            )


@dataclass
class Verdicts:
    """Flow verdicts that raise an alert, one row each (arrays of length ``m``).

    ``key`` is the table's flow key; ``src``/``dst`` ``(m, 16)`` and ports are those of the
    packet that decided (or, for flows decided at expiry, of the flow's first packet);
    ``score`` is the aggregated score, ``klass`` the class index; ``packets`` how many of the
    flow's packets the verdict used; ``row`` the row in the batch passed to ``update`` that
    decided (-1 when decided at expiry).
    """

    key: NDArray[np.uint64]
    ts_ns: NDArray[np.int64]
    src: NDArray[np.uint8]
    dst: NDArray[np.uint8]
    sport: NDArray[np.uint16]
    dport: NDArray[np.uint16]
    proto: NDArray[np.uint8]
    capture_id: NDArray[np.uint32]
    pkt_index: NDArray[np.uint64]
    score: NDArray[np.float32]
    klass: NDArray[np.int16]
    packets: NDArray[np.uint32]
    row: NDArray[np.int64]

    def __len__(self) -> int:
        return int(self.key.shape[0])

    @classmethod
    def empty(cls) -> Verdicts:
        return cls.concat([])

    @classmethod
    def concat(cls, parts: list[Verdicts]) -> Verdicts:
        if not parts:
            return cls(**{name: np.zeros(shape, dt) for name, (dt, shape) in _VERDICT.items()})
        return cls(
            **{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(cls)}
        )


_VERDICT: dict[str, tuple[type, tuple[int, ...]]] = {
    "key": (np.uint64, (0,)),
    "ts_ns": (np.int64, (0,)),
    "src": (np.uint8, (0, 16)),
    "dst": (np.uint8, (0, 16)),
    "sport": (np.uint16, (0,)),
    "dport": (np.uint16, (0,)),
    "proto": (np.uint8, (0,)),
    "capture_id": (np.uint32, (0,)),
    "pkt_index": (np.uint64, (0,)),
    "score": (np.float32, (0,)),
    "klass": (np.int16, (0,)),
    "packets": (np.uint32, (0,)),
    "row": (np.int64, (0,)),
}


def flow_keys(batch: PacketBatch) -> NDArray[np.uint64]:
    """Table keys ``(n,)``: the reader's bidirectional flow id mixed with the capture id."""
    with np.errstate(over="ignore"):
        return batch.flow_id ^ (batch.capture_id.astype(np.uint64) * _CAPTURE_MIX)


class FlowTable:
    """Per-flow state in preallocated numpy slots; a dict maps flow keys to slots.

    Memory is bounded by ``config.max_flows``: when full, the least recently updated flows
    are evicted in bulk (1/64 of the table at a time, so the O(max_flows) scan is amortised).
    ``update`` is vectorised over the batch; only one dict look-up per distinct flow per batch
    is done in Python.

    >>> table = FlowTable(FlowConfig(max_flows=1024, verdict_packets=2), threshold=0.5)
    >>> b = PacketBatch.empty()
    >>> len(table.update(b, np.zeros(0, np.float32), np.zeros(0, np.int16)))
    0
    """

    def __init__(self, config: FlowConfig, threshold: float) -> None:
        self.config = config
        self.threshold = float(threshold)
        cap = config.max_flows
        self._index: dict[int, int] = {}
        self._free = np.arange(cap - 1, -1, -1, dtype=np.int64)  # stack of free slots
        self._n_free = cap
        self._key = np.zeros(cap, np.uint64)
        self._used = np.zeros(cap, np.bool_)
        self._tick = np.zeros(cap, np.int64)  # recency: packet count at the flow's last packet
        self._last_ts = np.zeros(cap, np.int64)
        self._count = np.zeros(cap, np.uint32)
        self._state = np.zeros(cap, np.uint8)
        self._sum = np.zeros(cap, np.float32)  # score sum over the first k packets
        self._best = np.zeros(cap, np.float32)  # max score over the first k packets
        self._best_class = np.zeros(cap, np.int16)
        self._src = np.zeros((cap, 16), np.uint8)  # first packet's endpoints
        self._dst = np.zeros((cap, 16), np.uint8)
        self._sport = np.zeros(cap, np.uint16)
        self._dport = np.zeros(cap, np.uint16)
        self._proto = np.zeros(cap, np.uint8)
        self._capture = np.zeros(cap, np.uint32)
        self._pkt_index = np.zeros(cap, np.uint64)
        self._now = 0
        self.created = 0
        self.evicted = 0
        self.expired = 0

    def __len__(self) -> int:
        """Flows tracked now."""
        return len(self._index)

    def stats(self) -> dict[str, int]:
        return {
            "tracked": len(self),
            "created": self.created,
            "evicted": self.evicted,
            "expired": self.expired,
        }

    def update(
        self,
        batch: PacketBatch,
        scores: NDArray[np.float32],
        classes: NDArray[np.int16],
        keys: NDArray[np.uint64] | None = None,
    ) -> Verdicts:
        """Add a batch of scored packets (in arrival order) and return the alerting verdicts.

        scores ``(n,)``: malicious score per packet (higher = more malicious); classes
        ``(n,)``: the most likely malicious class per packet. Verdicts of flows evicted to make
        room come first (``aggregate="mean"`` only), then those decided by this batch.
        """
        n = len(batch)
        if n == 0:
            return Verdicts.empty()
        step = self.config.max_flows // 2
        if n > step:  # a batch larger than half the table is processed in pieces
            return Verdicts.concat(
                [
                    self._shift_rows(
                        self.update(
                            batch[i : i + step],
                            scores[i : i + step],
                            classes[i : i + step],
                            None if keys is None else keys[i : i + step],
                        ),
                        i,
                    )
                    for i in range(0, n, step)
                ]
            )
        keys = flow_keys(batch) if keys is None else keys
        self._now += n  # packets seen so far: the recency clock
        uniq, first, inv = np.unique(keys, return_index=True, return_inverse=True)
        get = self._index.get
        slot_u = np.fromiter((get(k, -1) for k in uniq.tolist()), np.int64, len(uniq))
        self._tick[slot_u[slot_u >= 0]] = self._now  # protects them from eviction below
        new = slot_u < 0
        out: list[Verdicts] = []
        n_new = int(new.sum())
        if n_new:
            if n_new > self._n_free:
                out.append(self._evict(n_new - self._n_free, n))
            slots = self._free[self._n_free - n_new : self._n_free][::-1].copy()
            self._n_free -= n_new
            self._claim(slots, uniq[new], batch, first[new])
            slot_u[new] = slots
            self._index.update(zip(uniq[new].tolist(), slots.tolist(), strict=True))
        slot = slot_u[inv]  # (n,) slot of each packet
        # Position of each packet within its flow: packets before this batch + rank inside it.
        order = np.argsort(inv, kind="stable")
        counts_b = np.bincount(inv, minlength=len(uniq))
        starts = np.concatenate(([0], np.cumsum(counts_b)[:-1]))
        rank = np.empty(n, np.int64)
        rank[order] = np.arange(n) - starts[inv[order]]
        pos = self._count[slot].astype(np.int64) + rank
        self._count[slot_u] += counts_b.astype(np.uint32)
        last_row = order[np.cumsum(counts_b) - 1]  # each flow's last packet in the batch
        self._tick[slot_u] = self._now - n + last_row
        last = np.zeros(len(uniq), np.int64)
        np.maximum.at(last, inv, batch.ts_ns)
        self._last_ts[slot_u] = np.maximum(self._last_ts[slot_u], last)
        out.append(self._judge(batch, scores, classes, keys, slot, pos))
        return Verdicts.concat(out)

    def _claim(
        self,
        slots: NDArray[np.int64],
        keys: NDArray[np.uint64],
        batch: PacketBatch,
        rows: NDArray[np.int64],
    ) -> None:
        self._key[slots] = keys
        self._used[slots] = True
        self._tick[slots] = self._now
        self._last_ts[slots] = batch.ts_ns[rows]
        self._count[slots] = 0
        self._state[slots] = _OPEN
        self._sum[slots] = 0.0
        self._best[slots] = -1.0
        self._best_class[slots] = 0
        self._src[slots] = batch.src[rows]
        self._dst[slots] = batch.dst[rows]
        self._sport[slots] = batch.sport[rows]
        self._dport[slots] = batch.dport[rows]
        self._proto[slots] = batch.proto[rows]
        self._capture[slots] = batch.capture_id[rows]
        self._pkt_index[slots] = batch.pkt_index[rows]
        self.created += len(slots)

    def _judge(
        self,
        batch: PacketBatch,
        scores: NDArray[np.float32],
        classes: NDArray[np.int16],
        keys: NDArray[np.uint64],
        slot: NDArray[np.int64],
        pos: NDArray[np.int64],
    ) -> Verdicts:
        k = self.config.verdict_packets
        thr = self.threshold
        scores = np.asarray(scores, np.float32)
        early = (pos < k) & (self._state[slot] == _OPEN)  # packets that count for the verdict
        es, ev, ec = slot[early], scores[early], classes[early]
        np.add.at(self._sum, es, ev)
        np.maximum.at(self._best, es, ev)
        is_best = ev == self._best[es]
        self._best_class[es[is_best]] = ec[is_best]
        hit = scores >= thr
        if self.config.per_packet:
            rows = np.flatnonzero(hit)
            self._state[slot[early & (pos == k - 1)]] = _BENIGN
            self._state[slot[rows]] = _ALERTED
            return self._from_rows(batch, keys, rows, scores[rows], classes[rows], pos[rows] + 1)
        if self.config.aggregate == "max":
            cand = np.flatnonzero(early & hit)
            _, firsts = np.unique(slot[cand], return_index=True)
            rows = np.sort(cand[firsts])  # in packet order
            done = slot[early & (pos == k - 1)]
            self._state[done] = _BENIGN
            self._state[slot[rows]] = _ALERTED
            return self._from_rows(batch, keys, rows, scores[rows], classes[rows], pos[rows] + 1)
        at_k = np.flatnonzero(early & (pos == k - 1))
        s = slot[at_k]
        mean = self._sum[s] / np.float32(k)
        alert = mean >= thr
        self._state[s] = np.where(alert, _ALERTED, _BENIGN).astype(np.uint8)
        rows = at_k[alert]
        return self._from_rows(
            batch, keys, rows, mean[alert], self._best_class[s[alert]], np.full(len(rows), k)
        )

    def _from_rows(
        self,
        batch: PacketBatch,
        keys: NDArray[np.uint64],
        rows: NDArray[np.int64],
        score: NDArray[Any],
        klass: NDArray[Any],
        packets: NDArray[Any],
    ) -> Verdicts:
        return Verdicts(
            key=keys[rows],
            ts_ns=batch.ts_ns[rows],
            src=batch.src[rows],
            dst=batch.dst[rows],
            sport=batch.sport[rows],
            dport=batch.dport[rows],
            proto=batch.proto[rows],
            capture_id=batch.capture_id[rows],
            pkt_index=batch.pkt_index[rows],
            score=np.asarray(score, np.float32),
            klass=np.asarray(klass, np.int16),
            packets=np.asarray(packets, np.uint32),
            row=rows.astype(np.int64),
        )

    @staticmethod
    def _shift_rows(v: Verdicts, offset: int) -> Verdicts:
        v.row = np.where(v.row >= 0, v.row + offset, v.row)
        return v

    def _release(self, slots: NDArray[np.int64]) -> Verdicts:
        """Free ``slots``; verdicts of open flows there (``mean`` only) are returned."""
        verdicts = Verdicts.empty()
        if self.config.aggregate == "mean" and not self.config.per_packet:
            open_ = slots[(self._state[slots] == _OPEN) & (self._count[slots] > 0)]
            used = np.minimum(self._count[open_], self.config.verdict_packets)
            mean = self._sum[open_] / used.astype(np.float32)
            alert = mean >= self.threshold
            s = open_[alert]
            verdicts = Verdicts(
                key=self._key[s],
                ts_ns=self._last_ts[s],
                src=self._src[s],
                dst=self._dst[s],
                sport=self._sport[s],
                dport=self._dport[s],
                proto=self._proto[s],
                capture_id=self._capture[s],
                pkt_index=self._pkt_index[s],
                score=mean[alert].astype(np.float32),
                klass=self._best_class[s],
                packets=used[alert].astype(np.uint32),
                row=np.full(len(s), -1, np.int64),
            )
        pop = self._index.pop
        for k in self._key[slots].tolist():
            pop(k, None)
        self._used[slots] = False
        self._free[self._n_free : self._n_free + len(slots)] = slots
        self._n_free += len(slots)
        return verdicts

    def _evict(self, needed: int, n_batch: int) -> Verdicts:
        """Evict at least ``needed`` least recently seen flows (never this batch's)."""
        cap = self.config.max_flows
        n = min(max(needed, cap // 64), cap)
        used = np.flatnonzero(self._used & (self._tick < self._now - n_batch))
        n = min(n, len(used))
        if n < needed:  # cannot happen: update() splits batches larger than max_flows / 2
            raise RuntimeError("flow table: not enough evictable flows")
        part = np.argpartition(self._tick[used], n - 1)[:n] if n < len(used) else slice(None)
        victims = used[part]
        self.evicted += len(victims)
        return self._release(victims)

    def expire(self, now_ns: int | None = None) -> Verdicts:
        """Expire flows idle for ``idle_timeout_s`` at capture time ``now_ns`` (all if None).

        Call it every second or so of capture time; it scans the whole table.
        """
        if now_ns is None:
            victims = np.flatnonzero(self._used)
        else:
            limit = now_ns - int(self.config.idle_timeout_s * 1e9)
            victims = np.flatnonzero(self._used & (self._last_ts < limit))
        self.expired += len(victims)
        return self._release(victims)
