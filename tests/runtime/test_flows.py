"""FlowTable: first-k verdicts, LRU eviction, idle expiry, bounded size."""

from __future__ import annotations

import numpy as np
import pytest

from pktlstm.errors import ConfigError
from pktlstm.io.batch import _SCHEMA, PacketBatch
from pktlstm.runtime.flows import FlowConfig, FlowTable, flow_keys


def make_batch(
    flow_ids: list[int], ts_s: list[float] | None = None, capture: int = 0
) -> PacketBatch:
    n = len(flow_ids)
    cols = {name: np.zeros((n, *shape[1:]), dt) for name, (dt, shape) in _SCHEMA.items()}
    cols["flow_id"] = np.asarray(flow_ids, np.uint64)
    cols["ts_ns"] = (np.asarray(ts_s if ts_s is not None else np.arange(n), float) * 1e9).astype(
        np.int64
    )
    cols["capture_id"] = np.full(n, capture, np.uint32)
    cols["pkt_index"] = np.arange(n, dtype=np.uint64)
    cols["sport"] = (np.asarray(flow_ids) % 65536).astype(np.uint16)
    cols["proto"] = np.full(n, 6, np.uint8)
    return PacketBatch(**cols)


def run(table: FlowTable, ids: list[int], scores: list[float], ts: list[float] | None = None):
    b = make_batch(ids, ts)
    return table.update(b, np.asarray(scores, np.float32), np.ones(len(ids), np.int16))


def test_max_alerts_once_per_flow_at_first_hit() -> None:
    t = FlowTable(FlowConfig(max_flows=1024, verdict_packets=3), threshold=0.5)
    v = run(t, [1, 1, 2, 1, 1, 2], [0.1, 0.9, 0.2, 0.95, 0.99, 0.3])
    assert v.row.tolist() == [1]  # flow 1 alerts at its second packet, once
    assert v.packets.tolist() == [2]
    assert v.score.tolist() == pytest.approx([0.9])
    # flow 2 got 2 packets below the threshold; its third (pos 2) decides
    v = run(t, [2, 1], [0.8, 0.9])
    assert v.key.tolist() == [2]
    # fourth packet of flow 2: outside the first k, no more alerts
    assert len(run(t, [2], [0.99])) == 0


def test_max_benign_after_k_packets() -> None:
    t = FlowTable(FlowConfig(max_flows=1024, verdict_packets=2), threshold=0.5)
    assert len(run(t, [5, 5, 5], [0.1, 0.2, 0.9])) == 0


def test_mean_decides_at_kth_packet_and_at_expiry() -> None:
    t = FlowTable(FlowConfig(max_flows=1024, verdict_packets=2, aggregate="mean"), threshold=0.5)
    v = run(t, [1, 2, 1, 3], [0.9, 0.9, 0.3, 0.2], [0, 0, 1, 1])
    assert v.key.tolist() == [1] and v.row.tolist() == [2]
    assert v.score.tolist() == pytest.approx([0.6])
    v = t.expire(None)  # flows 2 (mean 0.9) and 3 (0.2) had one packet
    assert v.key.tolist() == [2] and v.row.tolist() == [-1]
    assert v.packets.tolist() == [1]
    assert len(t) == 0


def test_per_packet_mode() -> None:
    t = FlowTable(FlowConfig(max_flows=1024, per_packet=True), threshold=0.5)
    v = run(t, [1, 1, 1, 1, 2], [0.6, 0.7, 0.1, 0.8, 0.9])
    assert v.row.tolist() == [0, 1, 3, 4]


def test_lru_eviction_keeps_recent_flows_and_bounds_size() -> None:
    t = FlowTable(FlowConfig(max_flows=1024), threshold=0.5)
    run(t, list(range(1000)), [0.0] * 1000)
    run(t, [5], [0.0])  # touch flow 5: most recent
    run(t, list(range(1000, 1100)), [0.0] * 100)
    assert len(t) <= 1024
    assert t.evicted >= 76
    assert 5 in t._index and 1099 in t._index and 0 not in t._index
    # millions of distinct flows never grow the table
    for start in range(2000, 50_000, 4096):
        run(t, list(range(start, start + 4096)), [0.0] * 4096)
    assert len(t) <= 1024 and t.created == len(t) + t.evicted + t.expired


def test_batch_larger_than_table() -> None:
    t = FlowTable(FlowConfig(max_flows=1024), threshold=0.5)
    v = run(t, list(range(3000)), [0.9] * 3000)
    assert len(v) == 3000 and sorted(v.row.tolist()) == list(range(3000))
    assert len(t) <= 1024


def test_idle_expiry() -> None:
    t = FlowTable(FlowConfig(max_flows=1024, idle_timeout_s=10), threshold=0.5)
    run(t, [1, 2], [0.0, 0.0], [0, 8])
    t.expire(int(15e9))
    assert set(t._index) == {2} and t.expired == 1


def test_alerted_flow_evicted_and_back_is_new() -> None:
    t = FlowTable(FlowConfig(max_flows=1024, idle_timeout_s=1), threshold=0.5)
    assert len(run(t, [1], [0.9], [0])) == 1
    t.expire(int(5e9))
    assert len(run(t, [1], [0.9], [6])) == 1


def test_capture_id_separates_flows() -> None:
    a, b = make_batch([7], capture=0), make_batch([7], capture=1)
    assert flow_keys(a)[0] == 7 and flow_keys(b)[0] != 7


@pytest.mark.parametrize(
    "kwargs",
    [{"max_flows": 10}, {"idle_timeout_s": 0}, {"verdict_packets": 0}, {"aggregate": "median"}],
)
def test_config_validation(kwargs: dict) -> None:
    with pytest.raises(ConfigError, match=next(iter(kwargs))):
        FlowConfig(**kwargs)


def test_matches_a_dict_oracle() -> None:
    rng = np.random.default_rng(0)
    t = FlowTable(FlowConfig(max_flows=100_000, verdict_packets=3), threshold=0.7)
    seen: dict[int, int] = {}
    expected, got = [], []
    for _ in range(20):
        ids = rng.integers(0, 300, 500).tolist()
        sc = rng.random(500).astype(np.float32)
        v = run(t, ids, sc.tolist())
        got += [ids[r] for r in v.row.tolist()]
        for i, (f, s) in enumerate(zip(ids, sc, strict=True)):
            pos = seen.get(f, 0)
            seen[f] = pos + 1
            if pos < 3 and s >= 0.7 and f not in {x for x, _ in expected}:
                expected.append((f, i))
    assert sorted(got) == sorted(f for f, _ in expected)
