"""Packet model vs flow baseline: flow verdicts, delays and per-capture rates with a known oracle."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from pktlstm.baseline import FlowConfig
from pktlstm.cli import app
from pktlstm.compare import (
    BASELINE_END,
    BASELINE_EXPIRY,
    CompareConfig,
    compare,
    summary_markdown,
    write_comparison,
)
from pktlstm.dataset import REMOVED, SPLIT_CODES, Dataset
from pktlstm.errors import ArtifactError, ConfigError
from pktlstm.model import ModelArtifact, ModelConfig
from pktlstm.tokens.vocab import Vocabulary

from .test_baseline import tiny_dataset

WINDOW = 30  # field word position of tcp.window
FAST = FlowConfig(max_iter=30)


class Oracle(ModelArtifact):
    """A stand-in model: score 1 for packets with TCP window 666 (attack packets 1-3), else 0."""

    def score_tokens(self, words: Any, batch_size: int = 4096) -> Any:
        return (np.asarray(words)[:, WINDOW] == 666).astype(np.float32)


def oracle(ds: Dataset, threshold: float = 0.5) -> Oracle:
    return Oracle(
        path=Path("oracle"), tokenizer=ds.tokenizer, vocab=Vocabulary(), classes=["benign", "m"],
        threshold=threshold, model_config=ModelConfig(vocab_size=2), train_config={},
        metrics={}, dataset_card={},
    )  # fmt: skip


@pytest.fixture(scope="module")
def ds(tmp_path_factory) -> Dataset:
    return tiny_dataset(tmp_path_factory.mktemp("cmp"), flows=120)


def by_name(result, name):
    return next(m for m in result.methods if m.name == name)


def test_first_packet_vs_first_k_vs_baseline(ds):
    result = compare(
        oracle(ds), ds, CompareConfig(ks=(1, 3), packet_threshold="artifact", flow=FAST)
    )
    truth = result.truth
    assert truth.any() and not truth.all()
    first1, first3 = by_name(result, "packet, first 1"), by_name(result, "packet, first 3")
    # packet 0 of an attack flow looks benign to the oracle; packets 1-3 do not
    assert first1.metrics["recall"] == 0.0
    assert first3.metrics["recall"] == 1.0 and first3.metrics["fpr"] == 0.0
    assert np.allclose(first3.delays(truth), 0.5, atol=1e-5)  # the 2nd packet, 0.5 s later
    end, expiry = by_name(result, BASELINE_END), by_name(result, BASELINE_EXPIRY)
    assert end.metrics["f1"] == 1.0  # attack flows are easy for flow features too
    assert np.array_equal(end.flagged, expiry.flagged)
    assert np.allclose(end.delays(truth), 1.5, atol=1e-5)  # the flow's last packet
    assert np.allclose(expiry.delays(truth), 1.5 + 120, atol=1e-5)  # + idle timeout
    rows = {r["method"]: r for r in result.table()}
    assert rows["packet, first 3"]["delay_median_s"] == pytest.approx(0.5, abs=1e-5)
    assert rows["packet, first 1"]["detected"] == 0
    (cap,) = result.per_capture()
    assert cap["packet, first 3"] == {"alert": 1.0, "false_alarm": 0.0}
    assert cap["packet, first 1"]["alert"] == 0.0
    classes = {c["class"]: c for c in result.per_class()}
    assert classes["telnet_scan"]["packet, first 3"] == 1.0
    assert classes["benign"]["packet, first 3"] == 0.0


def test_judged_flows_are_the_test_flows_with_all_their_packets(ds):
    result = compare(oracle(ds), ds, CompareConfig(ks=(1,), flow=FAST))
    flow, split = np.asarray(ds.column("flow")), np.asarray(ds.column("split"))
    test_flows = set(flow[split == SPLIT_CODES["test"]].tolist())
    assert set(result.flow.tolist()) == test_flows
    rows = np.isin(flow, list(test_flows))
    assert result.info["packets"] == int(rows.sum())
    assert set(split[rows].tolist()) <= {SPLIT_CODES["test"], REMOVED}


def test_flow_threshold_is_chosen_on_validation_flows(ds):
    result = compare(oracle(ds, threshold=0.99), ds, CompareConfig(ks=(1, 3), flow=FAST))
    thresholds = result.info["thresholds"]
    # k=3: validation flows separate perfectly, the best cut lies between 0 and 1
    assert thresholds["packet, first 3"] == pytest.approx(0.5)
    assert by_name(result, "packet, first 3").metrics["f1"] == 1.0
    fixed = compare(oracle(ds), ds, CompareConfig(ks=(3,), threshold=1.0, flow=FAST))
    assert fixed.info["thresholds"]["packet, first 3"] == 1.0


def test_other_dataset_all_flows(tmp_path, ds):
    other = tiny_dataset(tmp_path, name="other", flows=30, seed=1)
    result = compare(oracle(ds), ds, CompareConfig(split="all", flow=FAST), eval_dataset=other)
    assert set(result.flow.tolist()) == set(np.asarray(other.column("flow")).tolist())
    assert result.info["eval_dataset"] == str(other.path)


def test_outputs(tmp_path, ds):
    result = compare(oracle(ds), ds, CompareConfig(ks=(1, 3), flow=FAST))
    out = write_comparison(result, tmp_path / "cmp")
    metrics = json.loads((out / "metrics.json").read_text())
    assert [m["method"] for m in metrics["methods"]] == [
        "packet, first 1", "packet, first 3", BASELINE_END, BASELINE_EXPIRY,
    ]  # fmt: skip
    assert (out / "delay_cdf.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = summary_markdown(result)
    assert "| packet, first 3 |" in md and "Per capture" in md


def test_errors(tmp_path, ds):
    art = oracle(ds)
    art.tokenizer = {**ds.tokenizer, "policy": "none"}
    with pytest.raises(ArtifactError, match="tokens"):
        compare(art, ds)
    with pytest.raises(ConfigError, match="ks"):
        CompareConfig(ks=(0,))
    with pytest.raises(ConfigError, match="split"):
        CompareConfig(split="train")
    with pytest.raises(ConfigError, match="packet_threshold"):
        CompareConfig(packet_threshold="best")


@pytest.mark.slow
def test_cli_compare_and_audit_with_a_trained_model(tmp_path, ds):
    from pktlstm.train import TrainConfig, train

    model = train(ds, TrainConfig.for_preset("fast", epochs=1, threads=1), tmp_path / "m")
    runner = CliRunner()
    res = runner.invoke(app, ["compare", str(model.artifact), str(ds.path), "--out",
                              str(tmp_path / "c"), "--k", "1,2"])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert (
        "packet, first 2" in json.loads((tmp_path / "c" / "metrics.json").read_text())["thresholds"]
    )
    res = runner.invoke(app, ["audit", str(model.artifact), str(ds.path), "--out",
                              str(tmp_path / "a")])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert (tmp_path / "a" / "importance.png").is_file()
