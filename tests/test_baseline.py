"""Flow baseline: features by hand on literal flows, timeouts, the dataset's flow split, the model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pktlstm.baseline import (
    FEATURES,
    FlowBaseline,
    FlowConfig,
    flow_records,
    flow_verdicts,
    packet_facts,
)
from pktlstm.dataset import REMOVED, BuildConfig, Dataset, build
from pktlstm.errors import ArtifactError, ConfigError
from pktlstm.labels import RuleLabels

from .conftest import tcp_frame, udp_frame, write_pcap

T0 = 1_700_000_000.0
SYN, FIN, RST, PSH, ACK = 0x02, 0x01, 0x04, 0x08, 0x10
ATTACKER = "6.6.6.6"


def rules(tmp_path: Path) -> RuleLabels:
    """Everything from the attacker is ``telnet_scan``; the rest is benign by default."""
    path = tmp_path / "rules.csv"
    path.write_text(f"src,dst,proto,dport,start,end,label\n{ATTACKER},,,,,,telnet_scan\n")
    return RuleLabels(path)


def make_capture(path: Path, flows: int = 60, seed: int = 0, gap: float = 0.5) -> Path:
    """Benign TCP flows to 443 and attack TCP flows from ATTACKER to 23, 4 packets each.

    Attack flows: packet 0 has window 1000, packets 1-3 window 666 (what the test oracle
    flags); benign windows are never 666. Packets of a flow are ``gap`` seconds apart.
    """
    rng = np.random.default_rng(seed)
    frames = []
    for f in range(flows):
        attack = f % 3 == 0
        start = T0 + 10 * f
        for p in range(4):
            t = start + p * gap
            if attack:
                frame = tcp_frame(ATTACKER, 3000 + f, "10.9.9.9", 23, flags=SYN if p == 0 else ACK,
                                  win=1000 if p == 0 else 666)  # fmt: skip
            else:
                win = int(rng.integers(100, 600))
                frame = tcp_frame(f"10.0.0.{f % 50 + 1}", 2000 + f, "10.9.9.9", 443,
                                  win=win, payload=bytes([p]) * int(rng.integers(0, 40)))  # fmt: skip
            frames.append((t, frame))
    return write_pcap(path, sorted(frames))


def tiny_dataset(tmp_path: Path, name: str = "ds", flows: int = 60, seed: int = 0) -> Dataset:
    cap = make_capture(tmp_path / f"{name}.pcap", flows=flows, seed=seed)
    return build([cap], rules(tmp_path), BuildConfig(seed=seed), tmp_path / name)


def feature(records, name: str) -> np.ndarray:
    return records.features[:, FEATURES.index(name)]


def literal_dataset(tmp_path: Path) -> Dataset:
    c, s = "10.0.0.1", "10.9.9.9"
    frames = [
        # flow A: a TCP handshake, data and FIN, 1 s long
        (T0 + 0.0, tcp_frame(c, 1111, s, 443, flags=SYN, win=1000)),
        (T0 + 0.1, tcp_frame(s, 443, c, 1111, flags=SYN | ACK, win=2000)),
        (T0 + 0.3, tcp_frame(c, 1111, s, 443, flags=ACK, payload=b"a" * 10, win=1000)),
        (T0 + 0.6, tcp_frame(c, 1111, s, 443, flags=PSH | ACK, payload=b"b" * 20, win=1000)),
        (T0 + 1.0, tcp_frame(s, 443, c, 1111, flags=FIN | ACK, win=2000)),
        # flow B: UDP with an idle gap of 200 s (idle timeout 120 s: two records)
        (T0 + 2.0, udp_frame(c, 5353, s, 53, b"q" * 5)),
        (T0 + 3.0, udp_frame(s, 53, c, 5353, b"r" * 30)),
        (T0 + 203.0, udp_frame(c, 5353, s, 53, b"q" * 5)),
    ]
    # flow C: one packet every 50 s for 400 s (active timeout 120 s)
    frames += [(T0 + 4.0 + 50 * i, tcp_frame(c, 7777, s, 22, flags=ACK)) for i in range(9)]
    cap = write_pcap(tmp_path / "literal.pcap", sorted(frames))
    return build([cap], rules(tmp_path), BuildConfig(), tmp_path / "literal")


@pytest.fixture(scope="module")
def literal(tmp_path_factory) -> Dataset:
    return literal_dataset(tmp_path_factory.mktemp("literal"))


def test_features_of_a_literal_tcp_flow(literal):
    rec = flow_records(literal, FlowConfig(idle_timeout_s=120, active_timeout_s=1800))
    a = np.flatnonzero(feature(rec, "dst_port") == 443)
    assert a.size == 1
    got = {name: rec.features[a[0], i] for i, name in enumerate(FEATURES)}
    expected = {
        "protocol": 6, "dst_port": 443, "duration": 1.0,
        "fwd_packets": 3, "bwd_packets": 2, "fwd_bytes": 54 * 3 + 30, "bwd_bytes": 108,
        "len_min": 54, "len_max": 74, "len_mean": (192 + 108) / 5,
        "fwd_len_mean": 64, "fwd_len_max": 74, "bwd_len_mean": 54, "bwd_len_max": 54,
        "iat_mean": 0.25, "iat_min": 0.1, "iat_max": 0.4,
        "fwd_iat_mean": 0.3, "bwd_iat_mean": 0.9,
        "bytes_per_s": 300, "packets_per_s": 5, "down_up_ratio": 2 / 3,
        "init_win_fwd": 1000, "init_win_bwd": 2000,
        "fin_count": 1, "syn_count": 2, "rst_count": 0, "psh_count": 1, "ack_count": 4,
        "urg_count": 0,
    }  # fmt: skip
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, abs=1e-5), name
    sizes = np.array([54, 54, 64, 74, 54], dtype=float)
    assert got["len_std"] == pytest.approx(sizes.std(), abs=1e-6)
    assert got["iat_std"] == pytest.approx(np.std([0.1, 0.2, 0.3, 0.4]), abs=1e-5)
    # FIN closes the record: an exporter emits it at its last packet
    assert rec.expire_ns[a[0]] == rec.end_ns[a[0]]
    assert rec.packets[a[0]] == 5


def test_idle_and_active_timeouts_cut_records(literal):
    rec = flow_records(literal, FlowConfig(idle_timeout_s=120, active_timeout_s=120))
    udp = np.flatnonzero(feature(rec, "protocol") == 17)
    assert sorted(rec.packets[udp].tolist()) == [1, 2]  # cut by the 200 s gap
    first = udp[np.argmax(rec.packets[udp])]
    # not closed by FIN/RST: emitted at the earlier of idle expiry and active timeout
    assert rec.expire_ns[first] - rec.start_ns[first] == 120 * 10**9
    assert np.isnan(feature(rec, "init_win_fwd")[first])  # no TCP window
    ssh = np.flatnonzero(feature(rec, "dst_port") == 22)
    # packets at 0, 50, ..., 400 s; a record older than 120 s ends at its next packet
    assert rec.packets[ssh[np.argsort(rec.start_ns[ssh])]].tolist() == [3, 3, 3]
    assert (rec.end_ns[ssh] - rec.start_ns[ssh] <= 120 * 10**9).all()
    assert len(np.unique(rec.flow[ssh])) == 1  # still one dataset flow
    longer = flow_records(literal, FlowConfig(idle_timeout_s=120, active_timeout_s=1800))
    assert (feature(longer, "dst_port") == 22).sum() == 1
    udp = np.flatnonzero(feature(longer, "protocol") == 17)
    first = udp[np.argmax(longer.packets[udp])]
    assert longer.expire_ns[first] - longer.end_ns[first] == 120 * 10**9


def test_records_follow_the_dataset_flows_and_split(tmp_path):
    ds = tiny_dataset(tmp_path)
    rec = flow_records(ds)
    flow = np.asarray(ds.column("flow"))
    split = np.asarray(ds.column("split"))
    assert set(rec.flow.tolist()) == set(flow.tolist())
    for key, code in zip(rec.flow.tolist(), rec.split.tolist(), strict=True):
        codes = set(split[flow == key].tolist()) - {REMOVED}
        assert codes == ({code} if code != REMOVED else set())
    label = np.asarray(ds.column("label"))
    for key, mal in zip(rec.flow.tolist(), rec.malicious.tolist(), strict=True):
        assert mal == bool((label[flow == key] > 0).any())
    assert rec.packets.sum() == flow.size


def test_baseline_separates_and_is_seeded(tmp_path):
    ds = tiny_dataset(tmp_path, flows=120)
    rec = flow_records(ds)
    cfg = FlowConfig(max_iter=30)
    one = FlowBaseline(cfg).fit(rec)
    two = FlowBaseline(cfg).fit(rec)
    test = rec.select(rec.split == 2)
    assert len(test) > 0
    s1, s2 = one.score(test), two.score(test)
    assert np.array_equal(s1, s2)
    assert 0.0 < one.threshold_ < 1.0
    keys, best, alert = flow_verdicts(test, s1, one.threshold_)
    truth = np.array([test.malicious[test.flow == k].any() for k in keys])
    assert np.array_equal(best >= one.threshold_, truth)
    assert ((alert >= 0) == truth).all()
    assert one.train_records_ == int((rec.split == 0).sum())


def test_one_class_training_is_refused(literal):
    with pytest.raises(ConfigError, match="one class"):
        FlowBaseline().fit(flow_records(literal))


def test_missing_capture_is_a_clear_error(tmp_path):
    ds = tiny_dataset(tmp_path)
    Path(ds.card["sources"][0]["path"]).rename(tmp_path / "moved.pcap")
    with pytest.raises(ArtifactError, match="not found"):
        packet_facts(ds)


@pytest.mark.parametrize(
    ("field", "value"),
    [("idle_timeout_s", 0), ("active_timeout_s", -1), ("max_iter", 0), ("learning_rate", 2.0),
     ("max_train_records", 0)],
)  # fmt: skip
def test_config_errors_name_the_field(field, value):
    with pytest.raises(ConfigError, match=field):
        FlowConfig(**{field: value})
