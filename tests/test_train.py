"""Tests of pktlstm.train: config, metrics helpers, learning, determinism, checkpoints, resume."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from pktlstm.dataset import Dataset, write_columns
from pktlstm.errors import ArtifactError, ConfigError
from pktlstm.model import load_artifact
from pktlstm.train import (
    CHECKPOINT,
    TrainConfig,
    TrainingInterrupted,
    binary_metrics,
    choose_threshold,
    train,
)


def make_dataset(
    path: Path, n_flows: int = 120, per_flow: int = 5, seed: int = 0, learnable: bool = True
) -> Dataset:
    """Three classes; the class shows in word 30 (10% noise) and words 0 and 31 are constant."""
    rng = np.random.default_rng(seed)
    n = n_flows * per_flow
    flow_class = rng.integers(0, 3, n_flows)
    label = np.repeat(flow_class, per_flow).astype(np.int16)
    tokens = rng.integers(0, 30, (n, 33)).astype(np.uint16)
    tokens[:, 0] = 7
    tokens[:, 31] = 9
    if learnable:
        noisy = rng.random(n) < 0.1
        tokens[:, 30] = np.where(noisy, 100 + rng.integers(0, 3, n), 100 + label)
    split = np.repeat(rng.choice(3, n_flows, p=[0.6, 0.2, 0.2]), per_flow).astype(np.uint8)
    columns = {
        "tokens": tokens,
        "label": label,
        "split": split,
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


def quick(**overrides: Any) -> TrainConfig:
    values: dict[str, Any] = {"epochs": 2, "batch_size": 32, "threads": 1, "device": "cpu"}
    return TrainConfig.for_preset("fast", **{**values, **overrides})


def test_config_validation_names_the_field() -> None:
    for field, value in [("epochs", 0), ("optimizer", "sgd"), ("lr", -1.0),
                         ("class_weights", "x"), ("preset", "big"), ("device", "tpu")]:  # fmt: skip
        with pytest.raises(ConfigError, match=field):
            TrainConfig(**{field: value})


def test_for_preset_applies_defaults_then_overrides() -> None:
    assert TrainConfig.for_preset("hwang2019").batch_size == 100
    assert TrainConfig.for_preset("fast").batch_size == 256
    assert TrainConfig.for_preset("fast", batch_size=None, lr=0.1).lr == 0.1


def test_binary_metrics_on_literal_verdicts() -> None:
    y = np.array([1, 1, 1, 0, 0, 0, 0, 0], dtype=bool)
    f = np.array([1, 1, 0, 1, 0, 0, 0, 0], dtype=bool)
    m = binary_metrics(y, f)
    assert (m["tp"], m["fp"], m["fn"], m["tn"]) == (2, 1, 1, 4)
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(2 / 3)
    assert m["fpr"] == pytest.approx(1 / 5)
    assert m["fnr"] == pytest.approx(1 / 3)
    assert m["accuracy"] == pytest.approx(6 / 8)
    assert binary_metrics(y, np.zeros(8, bool))["precision"] == 0.0


def test_choose_threshold_takes_best_f1_between_scores() -> None:
    scores = np.array([0.1, 0.2, 0.4, 0.6, 0.7, 0.9])
    y = np.array([0, 0, 1, 0, 1, 1], dtype=bool)
    # Cutting at 0.4 gives tp=3 fp=1 (F1 6/7), better than at 0.7 (tp=2, F1 0.8).
    assert choose_threshold(scores, y) == pytest.approx(0.3)
    assert choose_threshold(np.array([0.2, 0.8]), np.array([0, 1], bool)) == pytest.approx(0.5)
    assert choose_threshold(np.array([0.2, 0.8]), np.array([1, 1], bool)) == 0.5


def test_train_learns_and_writes_a_complete_artifact(tmp_path: Path) -> None:
    ds = make_dataset(tmp_path / "ds")
    epochs: list[int] = []
    result = train(
        ds, quick(epochs=4, lr=0.01), tmp_path / "m", on_epoch=lambda e: epochs.append(e.epoch)
    )
    assert epochs == list(range(1, len(result.history) + 1))
    assert result.validation["f1"] > 0.85
    art = load_artifact(tmp_path / "m")
    assert art.classes == ["benign", "a", "b"]
    assert art.threshold == pytest.approx(result.threshold)
    assert art.model_config.positions is not None and 0 not in art.model_config.positions
    assert art.train_config["preset"] == "fast"
    assert art.metrics["validation"]["f1"] == pytest.approx(result.validation["f1"])
    assert art.dataset_card["classes"] == ["benign", "a", "b"]
    assert not (tmp_path / "m" / CHECKPOINT).exists()
    val = ds.split("validation")
    flagged = art.score_tokens(val.tokens) >= art.threshold
    assert binary_metrics(val.malicious, flagged)["f1"] == pytest.approx(result.validation["f1"])


def test_binary_option_collapses_classes(tmp_path: Path) -> None:
    ds = make_dataset(tmp_path / "ds")
    train(ds, quick(epochs=1, binary=True, class_weights="balanced"), tmp_path / "m")
    art = load_artifact(tmp_path / "m")
    assert art.classes == ["benign", "malicious"]
    assert art.model_config.n_classes == 2


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path / "weights.pt", weights_only=True)


def test_same_seed_same_weights_other_seed_other_weights(tmp_path: Path) -> None:
    ds = make_dataset(tmp_path / "ds")
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        train(ds, quick(seed=seed, optimizer="rmsprop"), tmp_path / name)
    a, b, c = (_weights(tmp_path / n) for n in "abc")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_interrupt_saves_checkpoint_and_resume_matches_uninterrupted(tmp_path: Path) -> None:
    ds = make_dataset(tmp_path / "ds")
    config = quick(epochs=3, patience=0)
    train(ds, config, tmp_path / "full")

    def stop_at(epoch: int, batch: int, n_batches: int, loss: float) -> None:
        if (epoch, batch) == (2, 3):
            raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted, match="--resume"):
        train(ds, config, tmp_path / "cut", on_batch=stop_at)
    assert (tmp_path / "cut" / CHECKPOINT).is_file()
    assert not (tmp_path / "cut" / "weights.pt").exists()
    seen: list[tuple[int, int]] = []
    result = train(ds, config, tmp_path / "cut", resume=True,
                   on_batch=lambda e, b, n, loss: seen.append((e, b)))  # fmt: skip
    assert seen[0] == (2, 4)
    assert len(result.history) == 3
    full, cut = _weights(tmp_path / "full"), _weights(tmp_path / "cut")
    assert all(torch.equal(full[k], cut[k]) for k in full)


def test_resume_needs_a_matching_checkpoint(tmp_path: Path) -> None:
    ds = make_dataset(tmp_path / "ds")
    with pytest.raises(ArtifactError, match="no checkpoint"):
        train(ds, quick(), tmp_path / "m", resume=True)

    def stop(epoch: int, batch: int, n_batches: int, loss: float) -> None:
        raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted):
        train(ds, quick(), tmp_path / "m", on_batch=stop)
    with pytest.raises(ConfigError, match="other settings"):
        train(ds, quick(lr=0.5), tmp_path / "m", resume=True)


def test_early_stopping_on_unlearnable_data(tmp_path: Path) -> None:
    ds = make_dataset(tmp_path / "ds", learnable=False)
    result = train(ds, quick(epochs=30, patience=1, lr=0.05), tmp_path / "m")
    assert result.stopped_early
    assert len(result.history) < 30
    assert result.best_epoch == len(result.history) - 1


def test_empty_train_split_is_a_user_error(tmp_path: Path) -> None:
    path = tmp_path / "ds"
    make_dataset(path)
    np.save(path / "split.npy", np.full(600, 2, dtype=np.uint8))
    with pytest.raises(ConfigError, match="train split is empty"):
        train(Dataset.open(path), quick(), tmp_path / "m")
