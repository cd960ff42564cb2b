"""Dataset builder: whole flows per split, duplicates removed, caps, atomic output, card."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pktlstm.dataset import REMOVED, SPLIT_CODES, BuildConfig, Dataset, build
from pktlstm.errors import ArtifactError, CaptureError, ConfigError, LabelError
from pktlstm.labels import FlowLabels, RuleLabels, SessionLabels

from .conftest import tcp_frame, udp_frame, write_pcap

T0 = 1_700_000_000.0


def make_capture(tmp_path: Path, name: str, flows: int = 60, seed: int = 0) -> Path:
    """Benign TCP flows from 10.0.0.x and attack UDP flows from 6.6.6.x, a few packets each."""
    rng = np.random.default_rng(seed)
    frames = []
    for f in range(flows):
        attack = f % 3 == 0
        size = int(rng.integers(1, 6))
        for p in range(size):
            t = T0 + f + p * 0.01
            if attack:
                frames.append((t, udp_frame("6.6.6.6", 1000 + f, "10.0.0.99", 53, bytes([p]) * 5)))
            else:
                win = int(rng.integers(100, 60000))
                frames.append((t, tcp_frame(f"10.0.0.{f % 50 + 1}", 2000 + f, "10.9.9.9", 443,
                                            win=win, payload=bytes([p]) * (f % 7))))  # fmt: skip
    return write_pcap(tmp_path / name, sorted(frames))


@pytest.fixture
def rules(tmp_path: Path) -> RuleLabels:
    path = tmp_path / "rules.csv"
    path.write_text("src,dst,proto,dport,start,end,label\n6.6.6.6,,17,,,,udp_flood\n")
    return RuleLabels(path)


def split_of_flows(ds: Dataset) -> dict[int, set[int]]:
    flows, split = np.asarray(ds.column("flow")), np.asarray(ds.column("split"))
    seen: dict[int, set[int]] = {}
    for f, s in zip(flows.tolist(), split.tolist(), strict=True):
        if s != REMOVED:
            seen.setdefault(f, set()).add(s)
    return seen


def test_build_splits_whole_flows(tmp_path, rules):
    cap = make_capture(tmp_path, "a.pcap")
    ds = build([cap], rules, BuildConfig(), tmp_path / "ds")
    assert ds.classes == ["benign", "udp_flood"]
    assert all(len(s) == 1 for s in split_of_flows(ds).values())
    assert ds.card["flows_in_more_than_one_split"] == 0
    for name in ("train", "validation", "test"):
        part = ds.split(name)
        assert len(part) > 0
        assert part.tokens.shape[1] == 33
        assert set(np.unique(part.label)) <= {0, 1}
    train = ds.split("train")
    assert (train.flow_pos[train.flow_pos > 0] > 0).all()
    card = json.loads((tmp_path / "ds" / "card.json").read_text())
    assert card["sources"][0]["sha256"] and card["sources"][0]["packets"] == len(ds.column("label"))
    assert card["tokenizer"]["policy"] == "ids"


def test_flow_positions_count_packets_in_order(tmp_path, rules):
    ds = build([make_capture(tmp_path, "a.pcap")], rules, BuildConfig(), tmp_path / "ds")
    flow, pos = np.asarray(ds.column("flow")), np.asarray(ds.column("flow_pos"))
    for f in np.unique(flow)[:20]:
        assert pos[flow == f].tolist() == list(range((flow == f).sum()))


def test_duplicates_across_splits_are_removed_from_evaluation(tmp_path, rules):
    cap = make_capture(tmp_path, "a.pcap", flows=120)
    # strict masking makes the attack packets identical across flows -> duplicates.
    ds = build([cap], rules, BuildConfig(policy="strict"), tmp_path / "ds")
    removed = sum(
        sum(ds.card["splits"][s]["duplicates_removed"].values()) for s in ("validation", "test")
    )
    assert removed > 0
    tokens = np.asarray(ds.column("tokens"))
    split = np.asarray(ds.column("split"))
    train_rows = {r.tobytes() for r in tokens[split == SPLIT_CODES["train"]]}
    for name in ("validation", "test"):
        assert not any(r.tobytes() in train_rows for r in tokens[split == SPLIT_CODES[name]])


def test_same_seed_same_dataset_other_seed_other_split(tmp_path, rules):
    cap = make_capture(tmp_path, "a.pcap")
    a = build([cap], rules, BuildConfig(seed=1), tmp_path / "a")
    b = build([cap], rules, BuildConfig(seed=1), tmp_path / "b")
    c = build([cap], rules, BuildConfig(seed=2), tmp_path / "c")
    np.testing.assert_array_equal(a.column("split"), b.column("split"))
    np.testing.assert_array_equal(a.column("tokens"), b.column("tokens"))
    assert not np.array_equal(a.column("split"), c.column("split"))


def test_split_by_capture_and_time(tmp_path, rules):
    caps = [make_capture(tmp_path, f"{i}.pcap", flows=30, seed=i) for i in range(4)]
    ds = build(caps, rules, BuildConfig(split_by="capture"), tmp_path / "bycap")
    capture, split = np.asarray(ds.column("capture")), np.asarray(ds.column("split"))
    for c in range(4):
        assert len(set(split[(capture == c) & (split != REMOVED)].tolist())) == 1
    ds = build(caps[:1], rules, BuildConfig(split_by="time"), tmp_path / "bytime")
    ts, split = np.asarray(ds.column("ts_ns")), np.asarray(ds.column("split"))
    pos = np.asarray(ds.column("flow_pos"))
    first = (pos == 0) & (split != REMOVED)
    assert ts[first & (split == 0)].max() <= ts[first & (split == 2)].min()


def test_caps_and_balance(tmp_path, rules):
    cap = make_capture(tmp_path, "a.pcap", flows=150)
    ds = build([cap], rules, BuildConfig(max_per_class=40), tmp_path / "cap")
    label, split = np.asarray(ds.column("label")), np.asarray(ds.column("split"))
    kept = np.bincount(label[split != REMOVED], minlength=2)
    assert kept.max() <= 40 + 5  # whole flows: at most one flow over
    ds = build([cap], rules, BuildConfig(balance=True), tmp_path / "bal")
    label, split = np.asarray(ds.column("label")), np.asarray(ds.column("split"))
    counts = np.bincount(label[split != REMOVED], minlength=2)
    assert abs(int(counts[0]) - int(counts[1])) <= 5


def test_unknown_default_excludes_unmatched(tmp_path, rules):
    cap = make_capture(tmp_path, "a.pcap")
    ds = build([cap], rules, BuildConfig(default_label="unknown"), tmp_path / "ds")
    assert ds.classes == ["benign", "udp_flood"]
    assert set(np.unique(ds.column("label")).tolist()) == {1}
    assert ds.card["unlabelled_excluded"] > 0


def test_errors_leave_nothing_behind(tmp_path, rules):
    with pytest.raises(CaptureError, match="missing.pcap"):
        build([tmp_path / "missing.pcap"], rules, BuildConfig(), tmp_path / "ds")
    not_a_capture = tmp_path / "notes.pcap"
    not_a_capture.write_text("hello, this is text\n")
    with pytest.raises(CaptureError, match="notes.pcap"):
        build([not_a_capture], rules, BuildConfig(), tmp_path / "ds")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.pcap", "rules.csv"]
    with pytest.raises(ConfigError, match="fractions"):
        BuildConfig(fractions=(0.5, 0.5, 0.5))
    cap = make_capture(tmp_path, "a.pcap")
    build([cap], rules, BuildConfig(), tmp_path / "ds")
    with pytest.raises(ArtifactError, match="already exists"):
        build([cap], rules, BuildConfig(), tmp_path / "ds")


def test_open_rejects_other_versions(tmp_path, rules):
    build([make_capture(tmp_path, "a.pcap")], rules, BuildConfig(), tmp_path / "ds")
    card = tmp_path / "ds" / "card.json"
    data = json.loads(card.read_text())
    data["format_version"] = 99
    card.write_text(json.dumps(data))
    with pytest.raises(ArtifactError, match="version 99"):
        Dataset.open(tmp_path / "ds")


def test_bad_label_row_names_line(tmp_path):
    bad = tmp_path / "flows.csv"
    bad.write_text("src_ip,src_port,dst_ip,dst_port,proto,label\n1.1.1.1,x,2.2.2.2,3,6,a\n")
    with pytest.raises(LabelError, match=r"flows\.csv:2"):
        FlowLabels(bad)


def test_ustc_split_by_session(shared_data, tmp_path):
    root = shared_data / "ustc-tfc2016-t10k"
    caps = [root / "benign" / "FTP.pcap", root / "malware" / "Zeus.pcap"]
    ds = build(caps, SessionLabels(root / "sessions.csv"), BuildConfig(), tmp_path / "ds")
    assert ds.classes == ["benign", "zeus"]
    assert ds.card["flows_in_more_than_one_split"] == 0
    assert all(len(s) == 1 for s in split_of_flows(ds).values())
