"""Packet model vs flow baseline on the same flows: per-flow metrics, detection delay, per capture.

``compare(artifact, dataset, config, eval_dataset=None) -> Comparison`` judges every flow of
the evaluation flows three ways: the packet model from its first k packets (k in
``config.ks``; a flow alerts at the first of those packets whose score reaches the model's
validation-chosen threshold, as the runtime does) and the flow baseline (``pktlstm.baseline``,
trained on the same dataset's train flows, deciding when a flow record ends).

Evaluation flows are the dataset's test flows (``split="test"``), or every flow of a separate
``eval_dataset`` (``split="all"``: across-source tests on captures the model never saw). All
packets of those flows count, also those removed from the packet-level test split as
duplicates of training rows: a detector in the network sees them too.

Detection delay of a malicious flow: time from its first packet to its first alert (the
alerting packet's timestamp for the packet model; for the baseline, two rows with the same
verdicts: decided at the last packet of the first alerting flow record, a lower bound, and at
its expiry as a flow exporter emits it: FIN/RST, else idle or active timeout).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pktlstm.baseline import FlowBaseline, FlowConfig, flow_records, flow_verdicts, packet_facts
from pktlstm.dataset import REMOVED, SPLIT_CODES, Dataset
from pktlstm.errors import ConfigError
from pktlstm.evaluate import flow_ranks, json_safe, open_matching, roc_pr_auc
from pktlstm.model import ModelArtifact
from pktlstm.train import binary_metrics, choose_threshold

log = logging.getLogger(__name__)

EVAL_SPLITS = ("test", "validation", "all")
THRESHOLD_RULES = ("flows", "artifact")
# The baseline's two rows: same verdicts, decided at the record's last packet (a lower bound on
# its delay) or when an exporter emits it (FIN/RST, idle or active timeout).
BASELINE_END = "flow baseline, at last packet"
BASELINE_EXPIRY = "flow baseline, at expiry"
NS = 1_000_000_000


@dataclass(frozen=True)
class CompareConfig:
    """Comparison settings.

    Fields:
        ks: packet-model verdicts from the first k packets of each flow, for each k.
        split: evaluation flows: ``test`` (or ``validation``) flows of the evaluation dataset,
            or ``all`` its flows (for a separate dataset of unseen sources).
        flow: the baseline's flow records and classifier.
        packet_threshold: ``flows`` (default): for each k, the threshold with the best flow F1
            on the training dataset's validation flows, the rule the baseline's threshold
            follows; ``artifact``: the model's packet-level threshold (also chosen on
            validation, but for packets).
        threshold: a fixed packet threshold instead (overrides ``packet_threshold``).
        batch_size: packets per inference batch (memory only).
    """

    ks: tuple[int, ...] = (1, 3, 10)
    split: str = "test"
    flow: FlowConfig = field(default_factory=FlowConfig)
    packet_threshold: str = "flows"
    threshold: float | None = None
    batch_size: int = 4096

    def __post_init__(self) -> None:
        object.__setattr__(self, "ks", tuple(sorted({int(k) for k in self.ks})))
        if not self.ks or self.ks[0] < 1:
            raise ConfigError(f"compare.ks={list(self.ks)}: need one or more k >= 1")
        if self.split not in EVAL_SPLITS:
            raise ConfigError(
                f"compare.split={self.split!r}: choose one of {', '.join(EVAL_SPLITS)}"
            )
        if self.packet_threshold not in THRESHOLD_RULES:
            raise ConfigError(
                f"compare.packet_threshold={self.packet_threshold!r}: choose one of "
                f"{', '.join(THRESHOLD_RULES)}"
            )
        if self.threshold is not None and not 0.0 <= self.threshold <= 1.0:
            raise ConfigError(f"compare.threshold={self.threshold}: must be in [0, 1]")
        if self.batch_size < 1:
            raise ConfigError(f"compare.batch_size={self.batch_size}: must be at least 1")


@dataclass
class MethodResult:
    """One detector's flow verdicts on the evaluation flows.

    ``metrics``: ``binary_metrics`` of flow verdicts (malicious flow = any malicious packet)
    plus ``roc_auc``/``pr_auc`` of the flow scores; ``flagged`` (F,) bool per flow;
    ``delay_s`` (F,) seconds from the flow's first packet to its first alert, NaN when none.
    """

    name: str
    metrics: dict[str, Any]
    flagged: NDArray[np.bool_]
    delay_s: NDArray[np.float64]

    def delays(self, truth: NDArray[np.bool_]) -> NDArray[np.float64]:
        """Delays (s) of the detected malicious flows."""
        d = self.delay_s[truth & self.flagged]
        return d[np.isfinite(d)]


@dataclass
class Comparison:
    """Flows judged by every method; ``metrics()`` is the JSON-ready summary.

    Per flow (F,): ``flow`` key, ``truth`` malicious, ``capture`` source index of its first
    packet, ``flow_class`` dataset class of its first packet.
    """

    flow: NDArray[np.uint64]
    truth: NDArray[np.bool_]
    capture: NDArray[np.uint32]
    flow_class: NDArray[np.int64]
    classes: list[str]
    sources: list[str]
    methods: list[MethodResult]
    info: dict[str, Any]

    def table(self) -> list[dict[str, Any]]:
        """One row per method: flow metrics and delay median / p95 (seconds)."""
        rows = []
        n_mal = int(self.truth.sum())
        for m in self.methods:
            d = m.delays(self.truth)
            rows.append(
                {
                    "method": m.name,
                    **{k: m.metrics[k] for k in ("accuracy", "precision", "recall", "f1", "fpr")},
                    "roc_auc": m.metrics.get("roc_auc"),
                    "pr_auc": m.metrics.get("pr_auc"),
                    "delay_median_s": float(np.median(d)) if d.size else None,
                    "delay_p95_s": float(np.percentile(d, 95)) if d.size else None,
                    "detected": int(d.size),
                    "malicious_flows": n_mal,
                }
            )
        return rows

    def per_capture(self) -> list[dict[str, Any]]:
        """Per source capture: flows, and per method the share of malicious flows flagged
        (``alert``) and of benign flows flagged (``false_alarm``); None where it has none."""
        out = []
        for cid in np.unique(self.capture).tolist():
            rows = self.capture == cid
            mal, ben = rows & self.truth, rows & ~self.truth
            entry: dict[str, Any] = {
                "capture": self.sources[cid] if cid < len(self.sources) else str(cid),
                "flows": int(rows.sum()),
                "malicious_flows": int(mal.sum()),
            }
            for m in self.methods:
                entry[m.name] = {
                    "alert": float(m.flagged[mal].mean()) if mal.any() else None,
                    "false_alarm": float(m.flagged[ben].mean()) if ben.any() else None,
                }
            out.append(entry)
        return out

    def per_class(self) -> list[dict[str, Any]]:
        """Per dataset class (of a flow's first packet): flows and share flagged per method."""
        out = []
        for c in np.unique(self.flow_class).tolist():
            rows = self.flow_class == c
            entry: dict[str, Any] = {"class": self.classes[c], "flows": int(rows.sum())}
            for m in self.methods:
                entry[m.name] = float(m.flagged[rows].mean())
            out.append(entry)
        return out

    def metrics(self) -> dict[str, Any]:
        return json_safe(
            {
                **self.info,
                "flows": int(self.truth.size),
                "malicious_flows": int(self.truth.sum()),
                "methods": self.table(),
                "per_capture": self.per_capture(),
                "per_class": self.per_class(),
            }
        )


def _eval_rows(ds: Dataset, split: str) -> NDArray[np.intp]:
    """Rows of the evaluation flows: every row of each flow whose kept rows are in ``split``."""
    split_col = np.asarray(ds.column("split"))
    if split == "all":
        return np.arange(split_col.shape[0])
    flow = np.asarray(ds.column("flow"))
    keys, inverse = np.unique(flow, return_inverse=True)
    code = np.full(keys.shape[0], REMOVED, dtype=np.int64)
    np.minimum.at(code, inverse, split_col.astype(np.int64))
    return np.flatnonzero(code[inverse] == SPLIT_CODES[split])


@dataclass
class _ScoredFlows:
    """Packet scores of some dataset rows grouped by flow (F flows, n rows)."""

    keys: NDArray[np.uint64]  # (F,) sorted flow keys
    inverse: NDArray[np.intp]  # (n,) flow of each row
    truth: NDArray[np.bool_]  # (F,) any malicious packet
    start: NDArray[np.int64]  # (F,) first packet time, ns
    capture: NDArray[np.uint32]  # (F,) source of the first packet
    flow_class: NDArray[np.int64]  # (F,) class of the first packet
    rank: NDArray[np.int64]  # (n,) position in the flow
    ts: NDArray[np.int64]  # (n,)
    score: NDArray[np.float64]  # (n,) malicious score

    def top(self, k: int) -> NDArray[np.float64]:
        """Highest score among each flow's first k packets (F,)."""
        use = self.rank < k
        top = np.full(self.keys.shape[0], -np.inf)
        np.maximum.at(top, self.inverse[use], self.score[use])
        return top


def _scored_flows(
    art: ModelArtifact, ds: Dataset, rows: NDArray[np.intp], batch_size: int
) -> _ScoredFlows:
    flow = np.asarray(ds.column("flow"))[rows]
    ts = np.asarray(ds.column("ts_ns"))[rows]
    label = np.asarray(ds.column("label"))[rows].astype(np.int64)
    capture = np.asarray(ds.column("capture"))[rows]
    rank = flow_ranks(flow, np.asarray(ds.column("flow_pos"))[rows])
    keys, inverse = np.unique(flow, return_inverse=True)
    n_flows = keys.shape[0]
    truth = np.zeros(n_flows, dtype=bool)
    np.logical_or.at(truth, inverse, label > 0)
    start = np.full(n_flows, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(start, inverse, ts)
    first = rank == 0
    flow_capture = np.zeros(n_flows, dtype=np.uint32)
    flow_capture[inverse[first]] = capture[first]
    flow_class = np.zeros(n_flows, dtype=np.int64)
    flow_class[inverse[first]] = label[first]
    tokens = ds.column("tokens")
    chunk = 65536
    parts = [
        art.score_tokens(np.asarray(tokens[rows[i : i + chunk]]), batch_size)
        for i in range(0, rows.size, chunk)
    ]
    score = np.concatenate(parts).astype(np.float64) if parts else np.zeros(0)
    return _ScoredFlows(keys, inverse, truth, start, flow_capture, flow_class, rank, ts, score)


def compare(
    artifact: ModelArtifact | str | Path,
    dataset: Dataset | str | Path,
    config: CompareConfig | None = None,
    eval_dataset: Dataset | str | Path | None = None,
) -> Comparison:
    """Judge the evaluation flows with the packet model (first k packets) and the flow baseline.

    ``dataset``: the packet model's training dataset; the baseline trains on its train flows
    and chooses its threshold on its validation flows. ``eval_dataset`` (default: the same)
    holds the flows judged, selected by ``config.split``.
    """
    config = config or CompareConfig()
    art, ds = open_matching(artifact, dataset)
    _, ev = (art, ds) if eval_dataset is None else open_matching(art, eval_dataset)
    log.info("flow baseline: reading %s and training", ds.path)
    records = flow_records(ds, config.flow, packet_facts(ds))
    baseline = FlowBaseline(config.flow).fit(records)
    ev_records = records if ev is ds else flow_records(ev, config.flow, packet_facts(ev))

    val = _scored_flows(art, ds, _eval_rows(ds, "validation"), config.batch_size)
    rows = _eval_rows(ev, config.split)
    if rows.size == 0:
        raise ConfigError(f"{ev.path}: no flow in the {config.split} split to compare on")
    log.info("packet model: scoring %d packets of the evaluation flows", rows.size)
    sf = _scored_flows(art, ev, rows, config.batch_size)
    keys, n_flows, truth, start = sf.keys, sf.keys.shape[0], sf.truth, sf.start
    thresholds: dict[str, float] = {}
    methods = []
    for k in config.ks:
        if config.threshold is not None:
            thr = config.threshold
        elif config.packet_threshold == "artifact" or val.keys.size == 0:
            thr = art.threshold
        else:
            thr = choose_threshold(val.top(k), val.truth)
        top = sf.top(k)
        use = (sf.rank < k) & (sf.score >= thr)
        alert = np.full(n_flows, np.iinfo(np.int64).max, dtype=np.int64)
        np.minimum.at(alert, sf.inverse[use], sf.ts[use])
        name = f"packet, first {k}"
        thresholds[name] = float(thr)
        methods.append(_method(name, truth, top, top >= thr, alert, start))

    chosen = ev_records.select(np.isin(ev_records.flow, keys))
    b_scores = baseline.score(chosen)
    for name, decide in ((BASELINE_END, chosen.end_ns), (BASELINE_EXPIRY, chosen.expire_ns)):
        b_keys, b_best, b_alert = flow_verdicts(chosen, b_scores, baseline.threshold_, decide)
        best = np.full(n_flows, -np.inf)
        alert = np.full(n_flows, np.iinfo(np.int64).max, dtype=np.int64)
        pos = np.searchsorted(keys, b_keys)
        best[pos] = b_best
        alert[pos] = np.where(b_alert >= 0, b_alert, alert[pos])
        methods.append(_method(name, truth, best, best >= baseline.threshold_, alert, start))
        thresholds[name] = float(baseline.threshold_)
    sources = [_short(s.get("path", "")) for s in ev.card.get("sources", [])]
    info = {
        "model": str(art.path),
        "dataset": str(ds.path),
        "eval_dataset": str(ev.path),
        "split": config.split,
        "packets": int(rows.size),
        "packet_threshold": "fixed" if config.threshold is not None else config.packet_threshold,
        "thresholds": thresholds,
        "baseline": {
            "classifier": "HistGradientBoostingClassifier",
            "features": len(records.features[0]) if len(records) else 0,
            "train_records": baseline.train_records_,
            "idle_timeout_s": config.flow.idle_timeout_s,
            "active_timeout_s": config.flow.active_timeout_s,
            "max_iter": config.flow.max_iter,
        },
        "ks": list(config.ks),
    }
    return Comparison(
        flow=keys,
        truth=truth,
        capture=sf.capture,
        flow_class=sf.flow_class,
        classes=ev.classes,
        sources=sources,
        methods=methods,
        info=info,
    )


def _method(
    name: str,
    truth: NDArray[np.bool_],
    flow_score: NDArray[np.float64],
    flagged: NDArray[np.bool_],
    alert_ns: NDArray[np.int64],
    start_ns: NDArray[np.int64],
) -> MethodResult:
    metrics: dict[str, Any] = binary_metrics(truth, flagged)
    finite = np.where(np.isfinite(flow_score), flow_score, -1.0)
    metrics["roc_auc"], metrics["pr_auc"] = roc_pr_auc(truth, finite)
    has = flagged & (alert_ns != np.iinfo(np.int64).max)
    delay = np.full(truth.shape[0], np.nan)
    delay[has] = np.maximum(alert_ns[has] - start_ns[has], 0) / NS
    return MethodResult(name, metrics, flagged, delay)


def _short(path: str) -> str:
    """The last two parts of a capture path (``folder/file.pcap``)."""
    parts = Path(path).parts
    return "/".join(parts[-2:]) if parts else path


# --- output --------------------------------------------------------------------------------


def _pct(value: Any) -> str:
    return "n/a" if value is None else f"{100 * float(value):.1f}"


def _secs(value: Any) -> str:
    if value is None:
        return "n/a"
    v = float(value)
    if v == 0:
        return "0"
    return f"{v * 1e3:.1f} ms" if v < 1 else f"{v:.1f} s"


def summary_rows(c: Comparison) -> list[list[str]]:
    """The comparison table as strings: header row first."""
    rows = [
        ["method", "accuracy %", "precision %", "recall %", "F1 %", "FPR %", "PR-AUC",
         "delay median", "delay p95", "detected"],
    ]  # fmt: skip
    for r in c.table():
        rows.append(
            [
                r["method"], _pct(r["accuracy"]), _pct(r["precision"]), _pct(r["recall"]),
                _pct(r["f1"]), _pct(r["fpr"]),
                "n/a" if r["pr_auc"] is None else f"{r['pr_auc']:.3f}",
                _secs(r["delay_median_s"]), _secs(r["delay_p95_s"]),
                f"{r['detected']}/{r['malicious_flows']}",
            ]
        )  # fmt: skip
    return rows


def capture_rows(c: Comparison) -> list[list[str]]:
    """Per-capture alert / false-alarm rates as strings (header first): alert % of malicious
    flows flagged, false alarm % of benign flows flagged."""
    names = [m.name for m in c.methods]
    rows = [["capture", "flows", "malicious", *[f"{n}: alert / false alarm %" for n in names]]]
    for e in c.per_capture():
        rows.append(
            [e["capture"], str(e["flows"]), str(e["malicious_flows"])]
            + [f"{_pct(e[n]['alert'])} / {_pct(e[n]['false_alarm'])}" for n in names]
        )
    return rows


def _markdown_table(rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    return lines + ["| " + " | ".join(r) + " |" for r in rows[1:]]


def summary_markdown(c: Comparison, title: str = "Packet model vs flow baseline") -> str:
    info = c.info
    lines = [
        f"# {title}",
        "",
        f"Model `{info['model']}`; baseline trained on `{info['dataset']}`; flows judged: "
        f"{info['split']} flows of `{info['eval_dataset']}` ({c.truth.size} flows, "
        f"{int(c.truth.sum())} malicious, {info['packets']} packets). Thresholds chosen on "
        f"validation ({info['packet_threshold']}): "
        + ", ".join(f"{k} {v:.4f}" for k, v in info["thresholds"].items())
        + ". Delay: first packet of a malicious flow to its "
        "first alert, over detected flows; the baseline decides at the record's last packet (a "
        "lower bound) or at its expiry (FIN/RST, idle or active timeout) as exporters do.",
        "",
        *_markdown_table(summary_rows(c)),
        "",
        "## Per capture",
        "",
        *_markdown_table(capture_rows(c)),
        "",
    ]
    return "\n".join(lines)


def plot_delay_cdf(c: Comparison) -> bytes:
    """PNG: share of malicious flows detected within t seconds of their first packet."""
    from pktlstm.report import figure_png, new_figure

    fig, ax = new_figure()
    n_mal = max(int(c.truth.sum()), 1)
    floor = 1e-6
    for m in c.methods:
        d = np.sort(np.maximum(m.delays(c.truth), floor))
        if d.size == 0:
            continue
        x = np.r_[floor, d]
        y = np.r_[0.0, np.arange(1, d.size + 1) / n_mal]
        ax.step(x, y, where="post", label=m.name)
    ax.set_xscale("log")
    ax.set_xlabel("time from the flow's first packet to the first alert (s; 0 shown at 1 µs)")
    ax.set_ylabel("malicious flows detected (share)")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    return figure_png(fig)


def write_comparison(c: Comparison, out: str | Path, title: str | None = None) -> Path:
    """Write ``out/metrics.json``, ``out/summary.md`` and ``out/delay_cdf.png``; returns ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(c.metrics(), indent=1) + "\n")
    md = summary_markdown(c) if title is None else summary_markdown(c, title)
    (out / "summary.md").write_text(md)
    (out / "delay_cdf.png").write_bytes(plot_delay_cdf(c))
    return out
