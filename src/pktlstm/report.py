"""Evaluation report folder: metrics.json, summary.md, a self-contained report.html and PNG plots."""

from __future__ import annotations

import base64
import html
import io
import json
import logging
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any

import numpy as np

from pktlstm.evaluate import FLOW_RULES, Evaluation

log = logging.getLogger(__name__)

PLOTS = ("confusion", "roc", "pr", "scores", "flows")  # PNG names, in report order
_CAPTIONS = {
    "confusion": "Confusion matrix (rows: true class, columns: predicted; colour: row share)",
    "roc": "ROC curves: malicious vs benign overall, and each class vs benign",
    "pr": "Precision-recall curves (malicious = positive)",
    "scores": "Malicious score per true class (log count); dashed: threshold",
    "flows": "Flow verdict from the first k packets of each flow",
}


def _pct(value: Any) -> str:
    return "n/a" if value is None else f"{100 * float(value):.2f}"


def summary_table(ev: Evaluation) -> list[tuple[str, str]]:
    """The headline figures as (name, value) rows; percentages unless stated."""
    p = ev.metrics["packets"]
    rows = [
        ("packets (malicious)", f"{p['packets']} ({p['malicious']})"),
        ("threshold", f"{ev.threshold:.4f}"),
        ("accuracy %", _pct(p["accuracy"])),
        ("precision %", _pct(p["precision"])),
        ("recall %", _pct(p["recall"])),
        ("F1 %", _pct(p["f1"])),
        ("false-positive rate %", _pct(p["fpr"])),
        ("false-negative rate %", _pct(p["fnr"])),
        ("ROC-AUC", "n/a" if p["roc_auc"] is None else f"{p['roc_auc']:.4f}"),
        ("PR-AUC", "n/a" if p["pr_auc"] is None else f"{p['pr_auc']:.4f}"),
    ]
    flows = ev.metrics["flows"]
    for k in sorted({1, 3, len(flows["any"])}):
        f = flows["any"][k - 1]
        rows.append(
            (f"flow F1 % / FPR %, first {k} pkt (any)", f"{_pct(f['f1'])} / {_pct(f['fpr'])}")
        )
    return rows


def summary_markdown(ev: Evaluation, title: str = "Evaluation") -> str:
    """A Markdown summary: headline table, per-class table, flow curve table."""
    m = ev.metrics
    lines = [
        f"# {title}",
        "",
        f"Model `{m['model']}` on `{m['dataset']}` ({m['split']} split).",
        "",
    ]
    lines += ["| metric | value |", "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in summary_table(ev)]
    lines += ["", "## Per class", ""]
    lines += [
        "| class | packets | flagged % | ROC-AUC vs benign | precision % | recall % | F1 % |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, c in m["per_class"].items():
        auc = c.get("roc_auc_vs_benign")
        lines.append(
            f"| {name} | {c['packets']} | {_pct(c['flagged'])} | "
            f"{'' if auc is None else f'{auc:.4f}'} | {_pct(c.get('precision'))} | "
            f"{_pct(c.get('recall'))} | {_pct(c.get('f1'))} |"
        )
    lines += ["", "## Per flow: verdict from the first k packets", ""]
    lines += ["| k | any: F1 % | any: FPR % | mean: F1 % | mean: FPR % |", "|---|---|---|---|---|"]
    for a, b in zip(m["flows"]["any"], m["flows"]["mean"], strict=True):
        lines.append(
            f"| {a['k']} | {_pct(a['f1'])} | {_pct(a['fpr'])} | {_pct(b['f1'])} | "
            f"{_pct(b['fpr'])} |"
        )
    lines.append("")
    return "\n".join(lines)


# --- plots ---------------------------------------------------------------------------------


def new_figure() -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(6.4, 4.8), dpi=100)


def figure_png(fig: Any) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def _plot_confusion(ev: Evaluation) -> bytes:
    conf = ev.metrics["confusion"]
    matrix = np.asarray(conf["matrix"], dtype=np.float64)
    share = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    fig, ax = new_figure()
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(len(conf["predicted"])), conf["predicted"], rotation=45, ha="right")
    ax.set_yticks(range(len(conf["true"])), conf["true"])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true class")
    if matrix.size <= 400:
        for (i, j), count in np.ndenumerate(matrix):
            colour = "white" if share[i, j] > 0.5 else "black"
            ax.text(j, i, f"{int(count)}", ha="center", va="center", fontsize=7, color=colour)
    return figure_png(fig)


def _pairs(ev: Evaluation) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, y, score) for overall and, with up to 12 classes, each class vs benign."""
    out = [("all malicious", ev.malicious, ev.score)]
    if len(ev.classes) <= 12 and len(ev.classes) > 2:
        for c, name in enumerate(ev.classes[1:], start=1):
            pair = (ev.label == c) | (ev.label == 0)
            out.append((name, ev.label[pair] == c, ev.score[pair]))
    return [(n, y, s) for n, y, s in out if y.any() and not y.all()]


def _plot_curve(ev: Evaluation, kind: str) -> bytes:
    from sklearn.metrics import precision_recall_curve, roc_curve

    fig, ax = new_figure()
    for i, (name, y, s) in enumerate(_pairs(ev)):
        style = {"lw": 2.0, "color": "black"} if i == 0 else {"lw": 1.0, "alpha": 0.8}
        if kind == "roc":
            fpr, tpr, _ = roc_curve(y, s)
            ax.plot(fpr, tpr, label=name, **style)
        else:
            precision, recall, _ = precision_recall_curve(y, s)
            ax.plot(recall, precision, label=name, **style)
    if kind == "roc":
        ax.plot([0, 1], [0, 1], ls=":", color="grey")
        ax.set_xlabel("false-positive rate")
        ax.set_ylabel("true-positive rate (recall)")
    else:
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right" if kind == "roc" else "lower left")
    return figure_png(fig)


def _plot_scores(ev: Evaluation) -> bytes:
    fig, ax = new_figure()
    bins = np.linspace(0, 1, 51)
    for c, name in enumerate(ev.classes):
        s = ev.score[ev.label == c]
        if s.size:
            style = {"lw": 2.0, "color": "black"} if c == 0 else {"lw": 1.0}
            ax.hist(s, bins=bins, histtype="step", label=f"{name} ({s.size})", **style)
    ax.axvline(ev.threshold, ls="--", color="red", label=f"threshold {ev.threshold:.3f}")
    ax.set_yscale("log")
    ax.set_xlabel("malicious score (1 - P(benign))")
    ax.set_ylabel("packets")
    ax.legend(fontsize=7, ncol=2)
    return figure_png(fig)


def _plot_flows(ev: Evaluation) -> bytes:
    fig, ax = new_figure()
    flows = ev.metrics["flows"]
    for rule, ls in zip(FLOW_RULES, ("-", "--"), strict=True):
        ks = [f["k"] for f in flows[rule]]
        for metric, colour in (("f1", "C0"), ("recall", "C2"), ("fpr", "C3")):
            values = [f[metric] for f in flows[rule]]
            ax.plot(ks, values, ls=ls, marker="o", ms=3, color=colour, label=f"{metric} ({rule})")
    ax.set_xlabel("k: first packets of each flow seen")
    ax.set_ylabel("fraction of flows")
    ax.set_xticks(ks)
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    return figure_png(fig)


def plots(ev: Evaluation) -> dict[str, bytes]:
    """PNG bytes of every plot, by name (``PLOTS``)."""
    return {
        "confusion": _plot_confusion(ev),
        "roc": _plot_curve(ev, "roc"),
        "pr": _plot_curve(ev, "pr"),
        "scores": _plot_scores(ev),
        "flows": _plot_flows(ev),
    }


# --- the folder ----------------------------------------------------------------------------


def _html(ev: Evaluation, title: str, markdown: str, pngs: dict[str, bytes]) -> str:
    template = Template(
        resources.files("pktlstm").joinpath("report_template.html").read_text(encoding="utf-8")
    )
    figures = "\n".join(
        f'<figure><img alt="{name}" src="data:image/png;base64,'
        f'{base64.b64encode(pngs[name]).decode("ascii")}"><figcaption>'
        f"{html.escape(_CAPTIONS[name])}</figcaption></figure>"
        for name in PLOTS
    )
    rows = "\n".join(
        f"<tr><td>{html.escape(n)}</td><td>{html.escape(v)}</td></tr>" for n, v in summary_table(ev)
    )
    return template.substitute(
        title=html.escape(title),
        subtitle=html.escape(
            f"Model {ev.metrics['model']} on {ev.metrics['dataset']} ({ev.metrics['split']} "
            "split). Threshold chosen on the validation split."
        ),
        summary_rows=rows,
        figures=figures,
        markdown=html.escape(markdown),
        metrics=html.escape(json.dumps(ev.metrics, indent=1)),
    )


def write_report(ev: Evaluation, out: str | Path, title: str = "pktlstm evaluation") -> Path:
    """Write ``out``/metrics.json, summary.md, report.html and plots/*.png; returns ``out``."""
    out = Path(out)
    (out / "plots").mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(ev.metrics, indent=1) + "\n")
    markdown = summary_markdown(ev, title)
    (out / "summary.md").write_text(markdown)
    pngs = plots(ev)
    for name, data in pngs.items():
        (out / "plots" / f"{name}.png").write_bytes(data)
    (out / "report.html").write_text(_html(ev, title, markdown, pngs), encoding="utf-8")
    log.info("report written to %s", out)
    return out
