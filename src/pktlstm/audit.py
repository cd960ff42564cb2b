"""Shortcut audit: how much of a model's result each header field explains (mask it at test time).

``audit(artifact, dataset, config) -> Audit`` scores the test split once as it is and once per
header field with that field's word positions set to 0 (what the ``ids``/``strict`` masking
policies do to a masked field), and reports the drop of PR-AUC, ROC-AUC, F1 and accuracy.
With ``single_field=True`` it also trains, per field, gradient-boosted trees on that field's
words alone (train split, threshold on validation) and scores them on the test split.

A warning is raised for a field when masking it costs more than half of the model's margin
over chance in any metric, or when the field alone reaches 95% or more of the model's score: the model (or
the data) leans on that field, e.g. the TTL of USTC-TFC2016 (benign 32, malware 64/128).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pktlstm.dataset import SPLITS, Dataset
from pktlstm.errors import ConfigError
from pktlstm.evaluate import json_safe, open_matching, roc_pr_auc
from pktlstm.model import ModelArtifact
from pktlstm.train import binary_metrics, choose_threshold

log = logging.getLogger(__name__)

# Field words (33): field -> word positions (layout in pktlstm.tokens.fields). Transport
# positions carry other meanings for UDP/ICMP/GRE; the name is the TCP one and ``ALIASES``
# says what else lives there.
FIELD_GROUPS: dict[str, tuple[int, ...]] = {
    "eth.dst": (0, 1, 2), "eth.src": (3, 4, 5), "eth.type": (6,),
    "ip.version": (7,), "ip.ihl": (8,), "ip.tos": (9,), "ip.len": (10,), "ip.id": (11,),
    "ip.flags": (12,), "ip.frag": (13,), "ip.ttl": (14,), "ip.proto": (15,),
    "ip.checksum": (16,), "ip.src": (17, 18), "ip.dst": (19, 20),
    "l4.sport": (21,), "l4.dport": (22,), "tcp.seq": (23, 24), "tcp.ack": (25, 26),
    "tcp.offset": (27,), "tcp.reserved": (28,), "tcp.flags": (29,), "tcp.window": (30,),
    "tcp.checksum": (31,), "tcp.urgent": (32,),
}  # fmt: skip
ALIASES: dict[str, str] = {
    "l4.sport": "ICMP type", "l4.dport": "ICMP code",
    "tcp.seq": "UDP length + checksum; ICMP checksum + id",
    "tcp.ack": "ICMP sequence", "ip.ttl": "IPv6 hop limit", "ip.id": "IPv6 flow label",
}  # fmt: skip
# Byte words (54): byte offsets of each field for Ethernet + 20-byte IPv4 + TCP (other
# layouts shift the transport bytes).
BYTE_GROUPS: dict[str, tuple[int, ...]] = {
    "eth.dst": tuple(range(0, 6)), "eth.src": tuple(range(6, 12)), "eth.type": (12, 13),
    "ip.version+ihl": (14,), "ip.tos": (15,), "ip.len": (16, 17), "ip.id": (18, 19),
    "ip.flags+frag": (20, 21), "ip.ttl": (22,), "ip.proto": (23,), "ip.checksum": (24, 25),
    "ip.src": (26, 27, 28, 29), "ip.dst": (30, 31, 32, 33), "l4.sport": (34, 35),
    "l4.dport": (36, 37), "tcp.seq": (38, 39, 40, 41), "tcp.ack": (42, 43, 44, 45),
    "tcp.offset": (46,), "tcp.flags": (47,), "tcp.window": (48, 49),
    "tcp.checksum": (50, 51), "tcp.urgent": (52, 53),
}  # fmt: skip

METRICS = ("pr_auc", "roc_auc", "f1", "accuracy")
DROP_WARN = 0.5  # masking costs more than this share of the margin over chance
SINGLE_WARN = 0.95  # one field alone reaches this share of the model's score


@dataclass(frozen=True)
class AuditConfig:
    """Audit settings.

    Fields:
        split: dataset split scored (``test``).
        metric: the metric fields are sorted and warned by (one of ``METRICS``).
        single_field: also train a model on each field alone (gradient-boosted trees).
        max_packets: score a seeded random sample of at most this many packets (None = all).
        max_train_packets: train each single-field model on at most this many packets.
        seed: seeds the samples and the single-field models.
        batch_size: packets per inference batch (memory only).
    """

    split: str = "test"
    metric: str = "pr_auc"
    single_field: bool = False
    max_packets: int | None = 50_000
    max_train_packets: int = 50_000
    seed: int = 0
    batch_size: int = 4096

    def __post_init__(self) -> None:
        if self.split not in SPLITS:
            raise ConfigError(f"audit.split={self.split!r}: choose one of {', '.join(SPLITS)}")
        if self.metric not in METRICS:
            raise ConfigError(f"audit.metric={self.metric!r}: choose one of {', '.join(METRICS)}")
        if self.max_packets is not None and self.max_packets < 1:
            raise ConfigError(f"audit.max_packets={self.max_packets}: must be >= 1 or None")
        if self.max_train_packets < 1:
            raise ConfigError(f"audit.max_train_packets={self.max_train_packets}: must be >= 1")
        if self.batch_size < 1:
            raise ConfigError(f"audit.batch_size={self.batch_size}: must be at least 1")


@dataclass
class FieldResult:
    """One field: its word positions, the metrics with it masked and the drop from the full
    model (positive = the model needs it); ``single`` the metrics of a model trained on it
    alone (None unless asked); ``constant``: the field has one value in the split (already
    masked at build time, or absent), so masking it changes nothing and it was not scored."""

    name: str
    positions: tuple[int, ...]
    masked: dict[str, float | None]
    drop: dict[str, float | None]
    single: dict[str, float | None] | None = None
    constant: bool = False


@dataclass
class Audit:
    """The audit of one model on one split; ``metrics()`` is JSON-ready."""

    full: dict[str, float | None]
    chance: dict[str, float]
    fields: list[FieldResult]
    warnings: list[str]
    info: dict[str, Any] = field(default_factory=dict)

    def metrics(self) -> dict[str, Any]:
        return {
            **self.info,
            "full": self.full,
            "chance": self.chance,
            "fields": [
                {
                    "field": f.name,
                    "positions": list(f.positions),
                    "also": ALIASES.get(f.name),
                    "constant": f.constant,
                    "masked": f.masked,
                    "drop": f.drop,
                    "single": f.single,
                }
                for f in self.fields
            ],
            "warnings": self.warnings,
        }


def _metrics(
    y: NDArray[np.bool_], score: NDArray[np.floating[Any]], threshold: float
) -> dict[str, float | None]:
    b = binary_metrics(y, np.asarray(score) >= threshold)
    roc, pr = roc_pr_auc(y, np.asarray(score))
    return {"pr_auc": pr, "roc_auc": roc, "f1": b["f1"], "accuracy": b["accuracy"]}


def _minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def _chance(y: NDArray[np.bool_]) -> dict[str, float]:
    """What a detector without information scores: prevalence, 0.5, flag-all F1, majority."""
    p = float(np.mean(y)) if y.size else 0.0
    return {
        "pr_auc": p,
        "roc_auc": 0.5,
        "f1": 2 * p / (1 + p) if p else 0.0,
        "accuracy": max(p, 1 - p),
    }


def _sample(n: int, cap: int | None, seed: int) -> NDArray[np.intp]:
    if cap is None or n <= cap:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, cap, replace=False))


def field_groups(words: str) -> dict[str, tuple[int, ...]]:
    """The audited fields of ``fields`` or ``bytes`` words: name -> word positions."""
    return dict(FIELD_GROUPS if words == "fields" else BYTE_GROUPS)


def audit(
    artifact: ModelArtifact | str | Path,
    dataset: Dataset | str | Path,
    config: AuditConfig | None = None,
) -> Audit:
    """Mask each header field of ``config.split`` in turn and measure what the model loses."""
    config = config or AuditConfig()
    art, ds = open_matching(artifact, dataset)
    part = ds.split(config.split)
    if len(part) == 0:
        raise ConfigError(f"{ds.path}: the {config.split} split is empty")
    rows = _sample(len(part), config.max_packets, config.seed)
    tokens = np.asarray(part.tokens)[rows]
    y = np.asarray(part.label)[rows] > 0
    thr = art.threshold
    full = _metrics(y, art.score_tokens(tokens, config.batch_size), thr)
    chance = _chance(y)
    groups = field_groups(ds.tokenizer.get("words", "fields"))
    singles = _single_field_data(ds, config) if config.single_field else None

    results = []
    for name, positions in groups.items():
        pos = [p for p in positions if p < tokens.shape[1]]
        if not pos:
            continue
        cols = tokens[:, pos]
        if (cols == cols[:1]).all():
            none: dict[str, float | None] = dict.fromkeys(METRICS, 0.0)
            results.append(FieldResult(name, tuple(pos), dict(full), none, None, True))
            continue
        masked_tokens = tokens.copy()
        masked_tokens[:, pos] = 0
        log.info("audit: masking %s (positions %s)", name, pos)
        masked = _metrics(y, art.score_tokens(masked_tokens, config.batch_size), thr)
        drop = {m: _minus(full[m], masked[m]) for m in METRICS}
        single = _single_field(singles, pos, tokens, y, config) if singles else None
        results.append(FieldResult(name, tuple(pos), masked, drop, single))

    key = config.metric
    # by the audit metric's drop (to 3 decimals), ties (a ranking metric that stays 1.0) by the others
    order = [key, *(m for m in METRICS if m != key)]
    results.sort(key=lambda f: (f.constant, *(-round(f.drop[m] or 0.0, 3) for m in order)))
    warnings = _warnings(results, full, chance, key)
    info = {
        "model": str(art.path),
        "dataset": str(ds.path),
        "split": config.split,
        "packets": int(rows.size),
        "malicious": int(y.sum()),
        "threshold": float(thr),
        "metric": key,
        "words": ds.tokenizer.get("words", "fields"),
        "masked_at_build": [f.name for f in results if f.constant],
    }
    return Audit(full, chance, results, warnings, info)


def _warnings(
    results: list[FieldResult],
    full: dict[str, float | None],
    chance: dict[str, float],
    key: str,
) -> list[str]:
    """Masking warnings look at every metric (a threshold metric can collapse while a ranking
    metric stays put); single-field warnings at the audit metric ``key``."""
    out: list[str] = []
    for f in results:
        hits = []
        for m in METRICS:
            base, drop = full[m], f.drop[m]
            if base is None or drop is None or f.constant:
                continue
            if base - chance[m] > 0 and drop > DROP_WARN * (base - chance[m]):
                hits.append(f"{m} {base:.3f} -> {f.masked[m]:.3f} (chance {chance[m]:.3f})")
        if hits:
            out.append(
                f"masking {f.name} costs more than half of the model's margin over chance: "
                + "; ".join(hits)
            )
        base = full[key]
        alone = None if f.single is None else f.single.get(key)
        if base is not None and alone is not None and alone >= SINGLE_WARN * base:
            out.append(
                f"{f.name} alone reaches {key} {alone:.3f}, {100 * alone / base:.0f}% of the "
                f"model's {base:.3f}: one field separates the classes (a shortcut?)"
            )
    return out


@dataclass
class _SingleData:
    train_x: NDArray[np.uint16]
    train_y: NDArray[np.bool_]
    val_x: NDArray[np.uint16]
    val_y: NDArray[np.bool_]


def _single_field_data(ds: Dataset, config: AuditConfig) -> _SingleData:
    tr, va = ds.split("train"), ds.split("validation")
    if len(tr) == 0:
        raise ConfigError(f"{ds.path}: the train split is empty; no single-field models")
    r = _sample(len(tr), config.max_train_packets, config.seed)
    v = _sample(len(va), config.max_train_packets, config.seed)
    return _SingleData(
        np.asarray(tr.tokens)[r],
        np.asarray(tr.label)[r] > 0,
        np.asarray(va.tokens)[v],
        np.asarray(va.label)[v] > 0,
    )


def _single_field(
    data: _SingleData,
    pos: list[int],
    test_x: NDArray[np.uint16],
    test_y: NDArray[np.bool_],
    config: AuditConfig,
) -> dict[str, float | None] | None:
    """Gradient-boosted trees on the field's words alone: metrics on the audited rows."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    if data.train_y.all() or not data.train_y.any():
        return None
    model = HistGradientBoostingClassifier(max_iter=50, random_state=config.seed)
    model.fit(data.train_x[:, pos].astype(np.float32), data.train_y)
    if data.val_y.size:
        val = model.predict_proba(data.val_x[:, pos].astype(np.float32))[:, 1]
        thr = choose_threshold(val, data.val_y)
    else:
        thr = 0.5
    score = model.predict_proba(test_x[:, pos].astype(np.float32))[:, 1]
    return _metrics(test_y, score, thr)


# --- output --------------------------------------------------------------------------------


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def audit_rows(a: Audit) -> list[list[str]]:
    """The audit table as strings (header first), sorted by the drop of the audit metric."""
    key = a.info["metric"]
    head = ["field", "positions", f"{key} masked", f"{key} drop", "F1 drop", "accuracy drop"]
    single = any(f.single is not None for f in a.fields)
    if single:
        head.append(f"{key} alone")
    rows = [head]
    for f in a.fields:
        if f.constant:
            row = [f.name, _span(f.positions), "(constant)", "-", "-", "-"]
        else:
            row = [
                f.name, _span(f.positions), _num(f.masked[key]), _num(f.drop[key]),
                _num(f.drop["f1"]), _num(f.drop["accuracy"]),
            ]  # fmt: skip
        if single:
            row.append("-" if f.single is None else _num(f.single.get(key)))
        rows.append(row)
    return rows


def _span(positions: tuple[int, ...]) -> str:
    lo, hi = positions[0], positions[-1]
    return str(lo) if lo == hi else f"{lo}-{hi}"


def summary_markdown(a: Audit, title: str = "Shortcut audit") -> str:
    i, key = a.info, a.info["metric"]
    rows = audit_rows(a)
    lines = [
        f"# {title}",
        "",
        f"Model `{i['model']}` on `{i['dataset']}` ({i['split']} split, {i['packets']} packets, "
        f"{i['malicious']} malicious, {i['words']} words). Full model: "
        + ", ".join(f"{m} {_num(v)}" for m, v in a.full.items())
        + f"; chance {key} {a.chance[key]:.3f}. Each field's word positions are set to 0 at "
        "test time (as masking at build time does); drop = full - masked.",
        "",
        "| " + " | ".join(rows[0]) + " |",
        "|" + "---|" * len(rows[0]),
        *("| " + " | ".join(r) + " |" for r in rows[1:]),
        "",
    ]
    if a.warnings:
        lines += ["## Warnings", "", *(f"- {w}" for w in a.warnings), ""]
    else:
        lines += ["No single field explains most of the result.", ""]
    return "\n".join(lines)


def plot_importance(a: Audit) -> bytes:
    """PNG: per field, the drop of PR-AUC, F1 and accuracy when masked (left) and, when
    single-field models were trained, the audit metric of the field alone (right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pktlstm.report import figure_png

    key = a.info["metric"]
    shown = [f for f in a.fields if not f.constant][::-1]
    has_single = any(f.single is not None for f in shown)
    height = max(3.0, 0.3 * len(shown) + 1.5)
    fig, axes = plt.subplots(
        1, 2 if has_single else 1, figsize=(9.6 if has_single else 6.4, height), dpi=100,
        sharey=True, squeeze=False,
    )  # fmt: skip
    y = np.arange(len(shown))
    ax = axes[0, 0]
    h = 0.27
    for i, m in enumerate(("pr_auc", "f1", "accuracy")):
        ax.barh(y + (1 - i) * h, [f.drop[m] or 0.0 for f in shown], height=h, label=m)
    ax.set_yticks(y, [f.name for f in shown])
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel("drop when the field is masked (full - masked)")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    if has_single:
        ax2 = axes[0, 1]
        ax2.barh(y, [(f.single or {}).get(key) or 0.0 for f in shown], color="tab:gray")
        ax2.axvline(a.full[key] or 0.0, color="black", linestyle="--", label="full model")
        ax2.axvline(a.chance[key], color="tab:red", linestyle=":", label="chance")
        ax2.set_xlabel(f"{key} of a model on the field alone")
        ax2.set_xlim(0, 1.02)
        ax2.grid(axis="x", alpha=0.3)
        ax2.legend(loc="lower right", fontsize="small")
    return figure_png(fig)


def write_audit(a: Audit, out: str | Path) -> Path:
    """Write ``out/audit.json``, ``out/summary.md`` and ``out/importance.png``; returns ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "audit.json").write_text(json.dumps(json_safe(a.metrics()), indent=1) + "\n")
    (out / "summary.md").write_text(summary_markdown(a))
    (out / "importance.png").write_bytes(plot_importance(a))
    return out
