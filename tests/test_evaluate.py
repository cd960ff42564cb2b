"""Tests of pktlstm.evaluate: flow ranks and first-k curves on literal data, metrics of a model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pktlstm.dataset import Dataset, write_columns
from pktlstm.errors import ArtifactError, ConfigError
from pktlstm.evaluate import EvalConfig, evaluate, flow_curves, flow_ranks
from pktlstm.model import load_artifact
from pktlstm.train import TrainConfig, binary_metrics, train


def make_dataset(path: Path, n_flows: int = 120, per_flow: int = 5, seed: int = 0) -> Dataset:
    """Three classes; the class shows in word 30 (10% noise); flows are whole in one split."""
    rng = np.random.default_rng(seed)
    n = n_flows * per_flow
    label = np.repeat(rng.integers(0, 3, n_flows), per_flow).astype(np.int16)
    tokens = rng.integers(0, 30, (n, 33)).astype(np.uint16)
    noisy = rng.random(n) < 0.1
    tokens[:, 30] = np.where(noisy, 100 + rng.integers(0, 3, n), 100 + label)
    columns = {
        "tokens": tokens,
        "label": label,
        "split": np.repeat(rng.choice(3, n_flows, p=[0.6, 0.2, 0.2]), per_flow),
        "flow": np.repeat(np.arange(n_flows), per_flow),
        "capture": np.zeros(n),
        "ts_ns": np.arange(n),
        "flow_pos": np.tile(np.arange(per_flow), n_flows),
        "pkt_index": np.arange(n),
    }
    path.mkdir(parents=True, exist_ok=True)
    card = {"tokenizer": {"words": "fields", "policy": "ids"}, "classes": ["benign", "a", "b"]}
    write_columns(path, columns, card)
    return Dataset.open(path)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Dataset]:
    root = tmp_path_factory.mktemp("eval")
    ds = make_dataset(root / "ds")
    config = TrainConfig.for_preset("fast", epochs=3, batch_size=32, lr=0.01, threads=1)
    train(ds, config, root / "model")
    return root / "model", ds


def test_flow_ranks_are_consecutive_within_each_flow() -> None:
    flow = np.array([5, 3, 5, 3, 5, 9], dtype=np.uint64)
    pos = np.array([4, 7, 1, 2, 9, 0], dtype=np.uint32)  # gaps: rows removed from the split
    assert flow_ranks(flow, pos).tolist() == [1, 1, 0, 0, 2, 0]


def test_flow_curves_any_and_mean_rules_by_hand() -> None:
    # Flow 1 (malicious): scores 0.2, 0.9, 0.9; flow 2 (benign): 0.6, 0.1; flow 3 (benign): 0.1.
    flow = np.array([1, 1, 1, 2, 2, 3], dtype=np.uint64)
    rank = np.array([0, 1, 2, 0, 1, 0])
    score = np.array([0.2, 0.9, 0.9, 0.6, 0.1, 0.1])
    mal = np.array([1, 1, 1, 0, 0, 0], dtype=bool)
    curves = flow_curves(flow, rank, score, mal, threshold=0.5, max_k=3)
    anyk = [(c["tp"], c["fp"]) for c in curves["any"]]
    meank = [(c["tp"], c["fp"]) for c in curves["mean"]]
    assert anyk == [(0, 1), (1, 1), (1, 1)]  # benign flow 2 is flagged by its first packet
    assert meank == [(0, 1), (1, 0), (1, 0)]  # means: k=2 -> 0.55, 0.35; k=3 -> 0.667
    assert all(c["flows"] == 3 for c in curves["any"])


def test_eval_config_validation() -> None:
    with pytest.raises(ConfigError, match="split"):
        EvalConfig(split="dev")
    with pytest.raises(ConfigError, match="max_k"):
        EvalConfig(max_k=0)
    with pytest.raises(ConfigError, match="threshold"):
        EvalConfig(threshold=2.0)


def test_packet_metrics_match_an_independent_recount(trained: tuple[Path, Dataset]) -> None:
    model, ds = trained
    ev = evaluate(model, ds)
    art = load_artifact(model)
    test = ds.split("test")
    flagged = art.score_tokens(test.tokens) >= art.threshold
    expected = binary_metrics(test.malicious, flagged)
    p = ev.metrics["packets"]
    for key in ("tp", "fp", "fn", "tn", "precision", "recall", "f1", "fpr", "fnr"):
        assert p[key] == pytest.approx(expected[key])
    assert ev.metrics["threshold"] == art.threshold
    assert p["packets"] == len(test)
    assert 0.5 < p["roc_auc"] <= 1.0 and 0.0 < p["pr_auc"] <= 1.0
    (tn, fp), (fn, tp) = ev.metrics["binary_confusion"]
    assert (tn, fp, fn, tp) == (p["tn"], p["fp"], p["fn"], p["tp"])
    matrix = np.asarray(ev.metrics["confusion"]["matrix"])
    assert matrix.shape == (3, 3) and matrix.sum() == len(test)
    assert matrix.sum(axis=1).tolist() == [int((test.label == c).sum()) for c in range(3)]
    per = ev.metrics["per_class"]
    assert per["benign"]["flagged"] == pytest.approx(p["fpr"])
    assert set(per["a"]) >= {"precision", "recall", "f1", "roc_auc", "roc_auc_vs_benign"}
    assert len(ev.metrics["flows"]["any"]) == 10
    json.dumps(ev.metrics, allow_nan=False)  # metrics.json stays strict JSON


def test_flow_recall_any_rule_never_drops_as_k_grows(trained: tuple[Path, Dataset]) -> None:
    model, ds = trained
    curve = evaluate(model, ds, EvalConfig(max_k=5)).metrics["flows"]["any"]
    recalls = [c["recall"] for c in curve]
    assert recalls == sorted(recalls)


def test_threshold_override_and_validation_split(trained: tuple[Path, Dataset]) -> None:
    model, ds = trained
    ev = evaluate(model, ds, EvalConfig(split="validation", threshold=0.0))
    assert ev.metrics["threshold_source"] == "user"
    assert ev.metrics["packets"]["recall"] == 1.0
    assert ev.metrics["packets"]["packets"] == len(ds.split("validation"))


def test_dataset_with_other_tokens_is_rejected(
    trained: tuple[Path, Dataset], tmp_path: Path
) -> None:
    model, _ = trained
    other = make_dataset(tmp_path / "other")
    card = json.loads((other.path / "card.json").read_text())
    card["tokenizer"]["policy"] = "strict"
    (other.path / "card.json").write_text(json.dumps(card))
    with pytest.raises(ArtifactError, match="tokenizer"):
        evaluate(model, Dataset.open(other.path))
