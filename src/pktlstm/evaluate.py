"""Evaluation: per-packet and per-flow (first k packets) metrics of a model on a dataset split.

``evaluate(artifact, dataset, config) -> Evaluation``: scores every packet of the split
(``score = 1 - P(benign)``, higher = more malicious) and flags ``score >= threshold``, where
the threshold is the artifact's, chosen on the validation split at training (never on test).
``Evaluation.metrics`` is JSON-ready (see its docstring); ``pktlstm.report`` writes it out
with plots.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pktlstm.dataset import SPLITS, Dataset
from pktlstm.errors import ArtifactError, ConfigError
from pktlstm.model import ModelArtifact, load_artifact, malicious_score
from pktlstm.train import binary_metrics

log = logging.getLogger(__name__)

FLOW_RULES = ("any", "mean")  # flow verdicts: any packet over threshold / mean score over it


@dataclass(frozen=True)
class EvalConfig:
    """Evaluation settings.

    Fields:
        split: dataset split to score (``test``; ``validation`` to inspect the threshold).
        max_k: flow verdict curves for k = 1..max_k first packets of each flow.
        threshold: override the artifact's threshold (None = the one chosen on validation).
        batch_size: packets per inference batch (memory only; results do not depend on it).
    """

    split: str = "test"
    max_k: int = 10
    threshold: float | None = None
    batch_size: int = 4096

    def __post_init__(self) -> None:
        if self.split not in SPLITS:
            raise ConfigError(f"eval.split={self.split!r}: choose one of {', '.join(SPLITS)}")
        if self.max_k < 1:
            raise ConfigError(f"eval.max_k={self.max_k}: must be at least 1")
        if self.threshold is not None and not 0.0 <= self.threshold <= 1.0:
            raise ConfigError(f"eval.threshold={self.threshold}: must be in [0, 1]")
        if self.batch_size < 1:
            raise ConfigError(f"eval.batch_size={self.batch_size}: must be at least 1")


@dataclass
class Evaluation:
    """Scores and metrics of one model on one split.

    Arrays (n packets of the split): ``label`` dataset class index, ``score`` malicious
    score, ``probs`` ``(n, C)`` model class probabilities, ``flow`` flow keys, ``rank``
    0-based position of the packet among its flow's packets in this split.

    ``metrics`` keys: ``packets`` (overall binary metrics at the threshold + ``roc_auc``,
    ``pr_auc``), ``per_class`` (per dataset class: packets, flagged fraction, AUCs vs benign,
    and one-vs-rest metrics when the model has that class), ``confusion`` (rows: dataset
    classes, columns: model classes), ``binary_confusion`` ([[tn, fp], [fn, tp]]),
    ``flows`` (per rule, a list over k = 1..max_k of binary flow metrics), ``threshold``,
    ``model``, ``dataset``, ``split``.
    """

    classes: list[str]
    model_classes: list[str]
    threshold: float
    label: NDArray[np.int64]
    score: NDArray[np.float32]
    probs: NDArray[np.float32]
    flow: NDArray[np.uint64]
    rank: NDArray[np.int64]
    metrics: dict[str, Any]

    @property
    def malicious(self) -> NDArray[np.bool_]:
        return self.label > 0


def roc_pr_auc(
    y: NDArray[np.bool_], s: NDArray[np.floating[Any]]
) -> tuple[float | None, float | None]:
    """ROC-AUC and PR-AUC (average precision); None when only one class is present."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    if y.size == 0 or y.all() or not y.any():
        return None, None
    return float(roc_auc_score(y, s)), float(average_precision_score(y, s))


def flow_ranks(flow: NDArray[np.uint64], order_key: NDArray[np.integer[Any]]) -> NDArray[np.int64]:
    """0-based rank of each packet within its flow, ordered by ``order_key`` (e.g. flow_pos).

    Robust to packets removed from the split (duplicates): ranks are consecutive.
    """
    flow = np.asarray(flow)
    n = flow.shape[0]
    order = np.lexsort((np.asarray(order_key), flow))
    f_sorted = flow[order]
    starts = np.r_[True, f_sorted[1:] != f_sorted[:-1]] if n else np.zeros(0, bool)
    start_idx = np.maximum.accumulate(np.where(starts, np.arange(n), 0)) if n else starts
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n) - start_idx
    return rank


def flow_curves(
    flow: NDArray[np.uint64],
    rank: NDArray[np.int64],
    score: NDArray[np.floating[Any]],
    malicious: NDArray[np.bool_],
    threshold: float,
    max_k: int,
) -> dict[str, list[dict[str, float]]]:
    """Binary flow metrics when each flow is judged from its first k packets, k = 1..max_k.

    Rules: ``any`` flags a flow when any of its first k packets scores >= threshold;
    ``mean`` when the mean score of its first k packets is >= threshold. A flow with fewer
    than k packets is judged on all of them. A flow is malicious when any packet is.
    """
    _, inverse = np.unique(flow, return_inverse=True)
    n_flows = int(inverse.max()) + 1 if inverse.size else 0
    truth = np.zeros(n_flows, dtype=bool)
    np.logical_or.at(truth, inverse, malicious)
    curves: dict[str, list[dict[str, float]]] = {rule: [] for rule in FLOW_RULES}
    for k in range(1, max_k + 1):
        use = rank < k
        idx, s = inverse[use], np.asarray(score, dtype=np.float64)[use]
        top = np.full(n_flows, -math.inf)
        np.maximum.at(top, idx, s)
        total = np.bincount(idx, weights=s, minlength=n_flows)
        count = np.bincount(idx, minlength=n_flows)
        mean = total / np.maximum(count, 1)
        for rule, flagged in (("any", top >= threshold), ("mean", mean >= threshold)):
            m = binary_metrics(truth, flagged)
            curves[rule].append({"k": k, "flows": n_flows, **m})
    return curves


def open_matching(
    artifact: ModelArtifact | str | Path, dataset: Dataset | str | Path
) -> tuple[ModelArtifact, Dataset]:
    """Load a model and a dataset (or take them as given) and check their tokens agree."""
    art = artifact if isinstance(artifact, ModelArtifact) else load_artifact(artifact)
    ds = dataset if isinstance(dataset, Dataset) else Dataset.open(dataset)
    if ds.tokenizer != art.tokenizer:
        raise ArtifactError(
            f"{ds.path}: dataset tokens ({ds.tokenizer}) differ from the model's "
            f"({art.tokenizer}); build the dataset with the model's tokenizer settings"
        )
    return art, ds


def evaluate(
    artifact: ModelArtifact | str | Path,
    dataset: Dataset | str | Path,
    config: EvalConfig | None = None,
) -> Evaluation:
    """Score ``config.split`` of ``dataset`` with ``artifact`` and compute every metric."""
    config = config or EvalConfig()
    art, ds = open_matching(artifact, dataset)
    part = ds.split(config.split)
    if len(part) == 0:
        raise ConfigError(f"{ds.path}: the {config.split} split is empty")
    if ds.classes[0] != "benign":
        raise ArtifactError(f"{ds.path}: class 0 is {ds.classes[0]!r}, expected 'benign'")
    threshold = art.threshold if config.threshold is None else config.threshold
    probs = art.predict_proba(part.tokens, config.batch_size)  # (n, C)
    score = malicious_score(probs)
    label = np.asarray(part.label, dtype=np.int64)
    mal = label > 0
    flagged = score >= threshold
    rank = flow_ranks(part.flow, part.flow_pos)

    overall: dict[str, Any] = binary_metrics(mal, flagged)
    overall["roc_auc"], overall["pr_auc"] = roc_pr_auc(mal, score)
    overall["packets"] = int(label.size)
    overall["malicious"] = int(mal.sum())

    model_classes = art.classes
    pred = probs.argmax(axis=1)
    multi = len(model_classes) > 2 or model_classes != ["benign", "malicious"]
    per_class: dict[str, dict[str, Any]] = {}
    for c, name in enumerate(ds.classes):
        rows = label == c
        entry: dict[str, Any] = {
            "packets": int(rows.sum()),
            "flagged": float(flagged[rows].mean()) if rows.any() else None,
        }
        if c > 0:
            pair = rows | (label == 0)
            entry["roc_auc_vs_benign"], entry["pr_auc_vs_benign"] = roc_pr_auc(
                rows[pair], score[pair]
            )
        if multi and name in model_classes and rows.any():
            j = model_classes.index(name)
            m = binary_metrics(rows, pred == j)
            entry.update({k: m[k] for k in ("precision", "recall", "f1", "fpr", "fnr")})
            entry["roc_auc"], entry["pr_auc"] = roc_pr_auc(rows, probs[:, j])
        per_class[name] = entry

    if multi:
        confusion = np.zeros((len(ds.classes), len(model_classes)), dtype=np.int64)
        np.add.at(confusion, (label, pred), 1)
        pred_names = model_classes
    else:
        confusion = np.zeros((len(ds.classes), 2), dtype=np.int64)
        np.add.at(confusion, (label, flagged.astype(np.int64)), 1)
        pred_names = ["benign", "malicious"]
    b = binary_metrics(mal, flagged)
    metrics: dict[str, Any] = {
        "model": str(art.path),
        "dataset": str(ds.path),
        "split": config.split,
        "threshold": float(threshold),
        "threshold_source": "artifact (validation split)" if config.threshold is None else "user",
        "packets": overall,
        "argmax_accuracy": float(np.mean(pred == _map_labels(label, ds.classes, model_classes)))
        if multi
        else None,
        "per_class": per_class,
        "confusion": {"true": ds.classes, "predicted": pred_names, "matrix": confusion.tolist()},
        "binary_confusion": [[b["tn"], b["fp"]], [b["fn"], b["tp"]]],
        "flows": flow_curves(part.flow, rank, score, mal, threshold, config.max_k),
    }
    return Evaluation(
        classes=ds.classes,
        model_classes=model_classes,
        threshold=float(threshold),
        label=label,
        score=score,
        probs=probs,
        flow=np.asarray(part.flow),
        rank=rank,
        metrics=json_safe(metrics),
    )


def _map_labels(
    label: NDArray[np.int64], classes: list[str], model_classes: list[str]
) -> NDArray[np.int64]:
    """Dataset class indices -> model class indices by name (-1 when the model lacks it)."""
    table = np.array([model_classes.index(c) if c in model_classes else -1 for c in classes])
    return table[label]


def json_safe(value: Any) -> Any:
    """NaN/inf -> None, numpy scalars -> Python, recursively (metrics.json stays valid JSON)."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
