"""Training: dataset folder -> model artifact, with early stopping, checkpoints and resume.

``train(dataset, config, out)`` fits the vocabulary on the train split only, trains the
``config.preset`` model with mini-batches in a seeded order (same seed, same weights on CPU),
stops early on the validation loss, chooses the alert threshold on the validation split
(best F1 of ``score >= threshold``) and writes the artifact folder ``out`` (see
``pktlstm.model``). A checkpoint is written into ``out`` after every epoch and on Ctrl-C;
``resume=True`` continues from it at the next batch, with the same batch order and random
state (a resume from an epoch boundary ends with the same weights as an uninterrupted run).
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pktlstm.dataset import Dataset
from pktlstm.errors import ArtifactError, ConfigError, PktlstmError
from pktlstm.model import (
    PRESETS,
    ModelConfig,
    build_model,
    malicious_score,
    model_inputs,
    predict_proba,
    preset,
    save_artifact,
    varying_positions,
)
from pktlstm.tokens.vocab import Vocabulary

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pt"
OPTIMIZERS = ("adam", "rmsprop")
CLASS_WEIGHTS = ("none", "balanced")
DEVICES = ("auto", "cpu", "cuda")

# Per-preset training defaults (fields of TrainConfig); explicit arguments override them.
PRESET_DEFAULTS: dict[str, dict[str, Any]] = {
    "hwang2019": {"batch_size": 100, "lr": 1e-3},  # paper: mini-batch 100; lr not given
    # batch 256: 1.5x faster epochs than 100 on 2 cores. min_count 2: words seen once in training
    # (TCP sequence numbers, ...) get no embedding of their own, as unseen words at test time;
    # on the demo data this cut the packet FPR from 8.8% to 1.9% (README, "The demo").
    "fast": {"batch_size": 256, "lr": 3e-3, "min_count": 2},
}


@dataclass(frozen=True)
class TrainConfig:
    """Training settings; stored in the artifact.

    Fields:
        preset: model preset (``hwang2019`` as published, or ``fast``).
        epochs: maximum epochs (paper: up to 200).
        batch_size: packets per mini-batch (paper: 100).
        optimizer: ``adam`` or ``rmsprop`` (the paper names both).
        lr: learning rate (the paper gives none).
        patience: stop after this many epochs without a lower validation loss; 0 = never.
        class_weights: ``none`` or ``balanced`` (loss weight ~ 1 / class frequency).
        binary: collapse the dataset's classes to benign / malicious.
        seed: seeds weights, batch order and dropout (same seed, same result on CPU).
        device: ``auto`` (GPU when present), ``cpu`` or ``cuda``.
        threads: CPU threads for torch; 0 = all cores.
        max_train_packets: train on a seeded random sample of at most this many packets.
        min_count: words seen fewer times in training map to UNK.
    """

    preset: str = "hwang2019"
    epochs: int = 200
    batch_size: int = 100
    optimizer: str = "adam"
    lr: float = 1e-3
    patience: int = 5
    class_weights: str = "none"
    binary: bool = False
    seed: int = 0
    device: str = "auto"
    threads: int = 0
    max_train_packets: int | None = None
    min_count: int = 1

    def __post_init__(self) -> None:
        checks: list[tuple[str, Any, bool, str]] = [
            ("preset", self.preset, self.preset in PRESETS, f"one of {', '.join(PRESETS)}"),
            ("epochs", self.epochs, self.epochs >= 1, "at least 1"),
            ("batch_size", self.batch_size, self.batch_size >= 1, "at least 1"),
            ("optimizer", self.optimizer, self.optimizer in OPTIMIZERS, "adam or rmsprop"),
            ("lr", self.lr, self.lr > 0 and math.isfinite(self.lr), "a positive number"),
            ("patience", self.patience, self.patience >= 0, "0 (off) or more"),
            ("class_weights", self.class_weights, self.class_weights in CLASS_WEIGHTS,
             "none or balanced"),
            ("device", self.device, self.device in DEVICES, "auto, cpu or cuda"),
            ("threads", self.threads, self.threads >= 0, "0 (all cores) or more"),
            ("max_train_packets", self.max_train_packets,
             self.max_train_packets is None or self.max_train_packets >= 1, "at least 1"),
            ("min_count", self.min_count, self.min_count >= 1, "at least 1"),
        ]  # fmt: skip
        for name, value, ok, allowed in checks:
            if not ok:
                raise ConfigError(f"train.{name}={value!r}: must be {allowed}")

    @classmethod
    def for_preset(cls, preset_name: str = "hwang2019", **overrides: Any) -> TrainConfig:
        """The preset's defaults (``PRESET_DEFAULTS``) with non-None ``overrides`` applied."""
        values = dict(PRESET_DEFAULTS.get(preset_name, {}))
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(preset=preset_name, **values)


@dataclass(frozen=True)
class EpochLog:
    """One epoch's figures: losses are mean cross-entropy per packet; val_* on validation."""

    epoch: int
    train_loss: float
    val_loss: float
    val_accuracy: float
    val_f1: float
    seconds: float


@dataclass
class TrainResult:
    """What ``train`` produced: the artifact folder and the figures behind it."""

    artifact: Path
    history: list[EpochLog]
    best_epoch: int
    threshold: float
    validation: dict[str, float]
    seconds: float
    stopped_early: bool
    model_config: ModelConfig
    extra: dict[str, Any] = field(default_factory=dict)


class TrainingInterrupted(PktlstmError):
    """Ctrl-C during training: the checkpoint was saved; the message says how to resume."""


# --- metrics shared with evaluation --------------------------------------------------------


def binary_metrics(y_true: NDArray[np.bool_], flagged: NDArray[np.bool_]) -> dict[str, float]:
    """Accuracy, precision, recall, F1, FPR, FNR (fractions) of binary verdicts.

    ``y_true``: True where malicious; ``flagged``: True where the detector says malicious.
    Ratios with an empty denominator are 0.0 (e.g. precision with nothing flagged).
    """
    y = np.asarray(y_true, dtype=bool)
    f = np.asarray(flagged, dtype=bool)
    tp = int(np.sum(y & f))
    fp = int(np.sum(~y & f))
    fn = int(np.sum(y & ~f))
    tn = int(np.sum(~y & ~f))

    def ratio(a: float, b: float) -> float:
        return a / b if b else 0.0

    precision, recall = ratio(tp, tp + fp), ratio(tp, tp + fn)
    return {
        "accuracy": ratio(tp + tn, tp + tn + fp + fn),
        "precision": precision,
        "recall": recall,
        "f1": ratio(2 * precision * recall, precision + recall) if precision + recall else 0.0,
        "fpr": ratio(fp, fp + tn),
        "fnr": ratio(fn, fn + tp),
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
    }


def choose_threshold(scores: NDArray[np.floating[Any]], y_true: NDArray[np.bool_]) -> float:
    """Threshold with the best F1 of ``score >= threshold`` on (validation) scores.

    The threshold is placed halfway between the best cut's score and the next lower score, so
    that it does not sit on a training value. Ties prefer the higher threshold (fewer false
    alarms). With one class only, returns 0.5.
    """
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(y_true, dtype=bool)
    if s.size == 0 or y.all() or not y.any():
        return 0.5
    order = np.argsort(-s, kind="stable")
    s_sorted, y_sorted = s[order], y[order]
    # Cut after each run of equal scores: flag everything with score >= s_sorted[i].
    last_of_run = np.r_[s_sorted[1:] != s_sorted[:-1], True]
    tp = np.cumsum(y_sorted)[last_of_run]
    fp = np.cumsum(~y_sorted)[last_of_run]
    cut_scores = s_sorted[last_of_run]
    f1 = 2 * tp / (tp + fp + y.sum())  # 2TP / (2TP + FP + FN), with TP + FN = positives
    best = int(np.argmax(f1))  # first maximum = highest threshold
    above = cut_scores[best]
    below = cut_scores[best + 1] if best + 1 < cut_scores.size else 0.0
    return float((above + below) / 2)


# --- training ------------------------------------------------------------------------------


def _labels(label: NDArray[np.integer[Any]], binary: bool) -> NDArray[np.int64]:
    y = np.asarray(label, dtype=np.int64)
    return (y > 0).astype(np.int64) if binary else y


def _class_weights(y: NDArray[np.int64], n_classes: int, kind: str) -> NDArray[np.float32]:
    if kind == "none":
        return np.ones(n_classes, dtype=np.float32)
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    weights = np.where(counts > 0, counts.sum() / (n_classes * np.maximum(counts, 1)), 1.0)
    return weights.astype(np.float32)


def _device(kind: str) -> str:
    import torch

    if kind == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device='cuda': no CUDA GPU is available here")
    if kind == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return kind


def _evaluate_loss(
    model: Any, x: Any, y: Any, batch_size: int = 4096
) -> tuple[float, NDArray[np.float32]]:
    """Mean unweighted cross-entropy and class probabilities ``(n, C)`` (eval mode)."""
    import torch

    model.eval()
    total = 0.0
    probs = []
    with torch.inference_mode():
        for start in range(0, x.shape[0], batch_size):
            logits = model(x[start : start + batch_size])  # (B, C)
            total += float(
                torch.nn.functional.cross_entropy(
                    logits, y[start : start + batch_size], reduction="sum"
                )
            )
            probs.append(torch.softmax(logits, dim=1).cpu().numpy())
    model.train()
    n = max(int(x.shape[0]), 1)
    out = np.concatenate(probs) if probs else np.zeros((0, 2), dtype=np.float32)
    return total / n, out.astype(np.float32)


def _atomic_save(obj: Any, path: Path) -> None:
    import torch

    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def train(
    dataset: Dataset | str | Path,
    config: TrainConfig,
    out: str | Path,
    *,
    resume: bool = False,
    on_epoch: Callable[[EpochLog], None] | None = None,
    on_batch: Callable[[int, int, int, float], None] | None = None,
    model_overrides: dict[str, Any] | None = None,
) -> TrainResult:
    """Train ``config.preset`` on ``dataset`` and write the artifact folder ``out``.

    ``model_overrides``: ModelConfig fields replacing the preset's (e.g. ``{"hidden": (64,)}``;
    ``{"positions": None}`` reads every word); used by benchmarks/models.py to compare variants.

    ``on_batch(epoch, batch, n_batches, mean_loss_so_far)`` and ``on_epoch(log)`` report
    progress (1-based epochs). Raises ``TrainingInterrupted`` on Ctrl-C after saving the
    checkpoint; ``resume=True`` continues from ``out/checkpoint.pt``.
    """
    import torch

    started = time.perf_counter()
    ds = dataset if isinstance(dataset, Dataset) else Dataset.open(dataset)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / CHECKPOINT

    tr = ds.split("train")
    va = ds.split("validation")
    if len(tr) == 0:
        raise ConfigError(f"{ds.path}: the train split is empty; nothing to train on")
    classes = ["benign", "malicious"] if config.binary else ds.classes
    if classes[0] != "benign":
        raise ArtifactError(f"{ds.path}: class 0 is {classes[0]!r}, expected 'benign'")

    rows = np.arange(len(tr))
    if config.max_train_packets is not None and len(tr) > config.max_train_packets:
        pick = np.random.default_rng(config.seed).choice(
            len(tr), config.max_train_packets, replace=False
        )
        rows = np.sort(pick)
    tr_words = np.asarray(tr.tokens)[rows]
    tr_y = _labels(np.asarray(tr.label)[rows], config.binary)
    va_y = _labels(va.label, config.binary)

    vocab = Vocabulary(min_count=config.min_count).fit(tr_words)
    seq_len = int(tr_words.shape[1])
    positions = varying_positions(tr_words) if config.preset == "fast" else None
    model_config = preset(config.preset, len(vocab), len(classes), seq_len, positions)
    if model_overrides:
        model_config = replace(model_config, **model_overrides)

    torch.set_num_threads(config.threads or os.cpu_count() or 1)
    device = _device(config.device)
    torch.manual_seed(config.seed)
    model = build_model(model_config).to(device)
    opt_cls = torch.optim.Adam if config.optimizer == "adam" else torch.optim.RMSprop
    optimizer = opt_cls(model.parameters(), lr=config.lr)
    weights = torch.from_numpy(_class_weights(tr_y, len(classes), config.class_weights))
    loss_fn = torch.nn.CrossEntropyLoss(weight=weights.to(device))

    x_tr = torch.from_numpy(model_inputs(tr_words, vocab, model_config)).to(device)
    y_tr = torch.from_numpy(tr_y).to(device)
    x_va = torch.from_numpy(model_inputs(va.tokens, vocab, model_config)).to(device)
    y_va = torch.from_numpy(va_y).to(device)
    n = int(x_tr.shape[0])
    n_batches = math.ceil(n / config.batch_size)

    state: dict[str, Any] = {
        "epoch": 0,  # completed epochs
        "batch": 0,  # completed batches of the current epoch
        "loss_sum": 0.0,
        "history": [],
        "best_loss": math.inf,
        "best_epoch": 0,
        "best_state": None,
        "bad_epochs": 0,
    }
    comparable = {k: v for k, v in asdict(config).items() if k not in ("epochs", "patience")}
    comparable["model"] = model_config.to_dict()
    if resume:
        if not ckpt_path.is_file():
            raise ArtifactError(f"{ckpt_path}: no checkpoint to resume from")
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        if ckpt.get("config") != comparable or ckpt.get("n_train") != n:
            raise ConfigError(
                f"{ckpt_path}: the checkpoint was made with other settings or data "
                f"({ckpt.get('config')}); resume with the same dataset and options"
            )
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        torch.set_rng_state(ckpt["rng"])
        state.update(ckpt["state"])
        log.info("resuming at epoch %d batch %d", state["epoch"] + 1, state["batch"])
    elif ckpt_path.exists():
        ckpt_path.unlink()

    def checkpoint() -> None:
        _atomic_save(
            {
                "config": comparable,
                "n_train": n,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "rng": torch.get_rng_state(),
                "state": state,
            },
            ckpt_path,
        )

    stopped_early = False
    model.train()
    try:
        while state["epoch"] < config.epochs:
            if config.patience and state["bad_epochs"] >= config.patience:
                stopped_early = True
                break
            epoch = state["epoch"] + 1
            t0 = time.perf_counter()
            gen = torch.Generator().manual_seed(config.seed * 1_000_003 + epoch)
            perm = torch.randperm(n, generator=gen).to(device)
            for b in range(state["batch"], n_batches):
                idx = perm[b * config.batch_size : (b + 1) * config.batch_size]
                optimizer.zero_grad(set_to_none=True)
                loss = loss_fn(model(x_tr[idx]), y_tr[idx])
                loss.backward()
                optimizer.step()
                state["loss_sum"] += float(loss.detach()) * int(idx.shape[0])
                state["batch"] = b + 1
                if on_batch is not None:
                    seen = min(state["batch"] * config.batch_size, n)
                    on_batch(epoch, b + 1, n_batches, state["loss_sum"] / seen)
            val_loss, val_probs = _evaluate_loss(model, x_va, y_va)
            val_flag = malicious_score(val_probs) >= 0.5 if len(va) else np.zeros(0, bool)
            vm = binary_metrics(va_y > 0, val_flag)
            entry = EpochLog(
                epoch=epoch,
                train_loss=state["loss_sum"] / n,
                val_loss=val_loss if len(va) else float("nan"),
                val_accuracy=float(np.mean(val_probs.argmax(1) == va_y)) if len(va) else 0.0,
                val_f1=vm["f1"],
                seconds=time.perf_counter() - t0,
            )
            state["history"].append(asdict(entry))
            state["epoch"], state["batch"], state["loss_sum"] = epoch, 0, 0.0
            if len(va) == 0 or val_loss < state["best_loss"]:
                state["best_loss"] = val_loss if len(va) else math.inf
                state["best_epoch"] = epoch
                state["best_state"] = {
                    k: v.detach().cpu().clone() for k, v in model.state_dict().items()
                }
                state["bad_epochs"] = 0
            else:
                state["bad_epochs"] += 1
            checkpoint()
            if on_epoch is not None:
                on_epoch(entry)
    except KeyboardInterrupt:
        checkpoint()
        raise TrainingInterrupted(
            f"interrupted in epoch {state['epoch'] + 1} (batch {state['batch']}/{n_batches}); "
            f"checkpoint saved in {ckpt_path}; run the same command with --resume to continue"
        ) from None

    if state["best_state"] is not None:
        model.load_state_dict(state["best_state"])
    model = model.cpu()
    va_inputs = model_inputs(va.tokens, vocab, model_config)
    va_scores = malicious_score(predict_proba(model, va_inputs)) if len(va) else np.zeros(0)
    threshold = choose_threshold(va_scores, va_y > 0)
    validation = binary_metrics(va_y > 0, va_scores >= threshold)
    seconds = time.perf_counter() - started
    history = [EpochLog(**h) for h in state["history"]]
    metrics = {
        "validation": validation,
        "threshold_rule": "best F1 of score >= threshold on the validation split",
        "best_epoch": state["best_epoch"],
        "epochs_run": state["epoch"],
        "stopped_early": stopped_early,
        "train_packets": n,
        "validation_packets": len(va),
        "train_seconds": round(seconds, 2),
        "history": state["history"],
    }
    train_record = {
        **asdict(config),
        "dataset": str(ds.path),
        "device": device,
        "model_overrides": {k: str(v) for k, v in (model_overrides or {}).items()},
    }
    save_artifact(
        out,
        model,
        tokenizer=ds.tokenizer,
        vocab=vocab,
        classes=classes,
        threshold=threshold,
        train_config=train_record,
        metrics=metrics,
        dataset_card=ds.card,
    )
    if ckpt_path.exists():
        ckpt_path.unlink()
    log.info("trained %s in %.1f s; artifact %s", config.preset, seconds, out)
    return TrainResult(
        artifact=out,
        history=history,
        best_epoch=state["best_epoch"],
        threshold=threshold,
        validation=validation,
        seconds=seconds,
        stopped_early=stopped_early,
        model_config=model_config,
    )
