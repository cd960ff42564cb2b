"""Tests of pktlstm.report: the report folder, self-contained HTML, readable PNGs, Markdown."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import numpy as np
import pytest

from pktlstm.evaluate import Evaluation, flow_curves, flow_ranks
from pktlstm.report import PLOTS, summary_markdown, summary_table, write_report
from pktlstm.train import binary_metrics

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def evaluation() -> Evaluation:
    """A literal evaluation of 3 classes over 40 flows of 5 packets (scores by hand)."""
    rng = np.random.default_rng(0)
    label = np.repeat(rng.integers(0, 3, 40), 5)
    score = np.clip(np.where(label > 0, 0.7, 0.2) + rng.normal(0, 0.2, label.size), 0, 1)
    probs = np.stack([1 - score, score * 0.5, score * 0.5], axis=1).astype(np.float32)
    flow = np.repeat(np.arange(40, dtype=np.uint64), 5)
    rank = flow_ranks(flow, np.tile(np.arange(5), 40))
    threshold = 0.45
    flagged = score >= threshold
    m = binary_metrics(label > 0, flagged)
    confusion = np.zeros((3, 3), dtype=int)
    np.add.at(confusion, (label, probs.argmax(1)), 1)
    metrics = {
        "model": "m",
        "dataset": "d",
        "split": "test",
        "threshold": threshold,
        "packets": {**m, "roc_auc": 0.9, "pr_auc": 0.8, "packets": label.size, "malicious": 1},
        "per_class": {
            "benign": {"packets": 70, "flagged": 0.1},
            "dos": {"packets": 60, "flagged": 0.9, "roc_auc_vs_benign": 0.95},
            "scan": {"packets": 70, "flagged": 0.8, "roc_auc_vs_benign": None},
        },
        "confusion": {
            "true": ["benign", "dos", "scan"],
            "predicted": ["benign", "dos", "scan"],
            "matrix": confusion.tolist(),
        },  # fmt: skip
        "binary_confusion": [[m["tn"], m["fp"]], [m["fn"], m["tp"]]],
        "flows": flow_curves(flow, rank, score, label > 0, threshold, 5),
    }
    return Evaluation(
        classes=["benign", "dos", "scan"],
        model_classes=["benign", "dos", "scan"],
        threshold=threshold,
        label=label,
        score=score.astype(np.float32),
        probs=probs,
        flow=flow,
        rank=rank,
        metrics=metrics,
    )


def test_report_folder_has_every_file(evaluation: Evaluation, tmp_path: Path) -> None:
    out = write_report(evaluation, tmp_path / "r")
    assert json.loads((out / "metrics.json").read_text()) == json.loads(
        json.dumps(evaluation.metrics)
    )
    for name in PLOTS:
        data = (out / "plots" / f"{name}.png").read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 5000


def test_html_is_self_contained_with_every_plot(evaluation: Evaluation, tmp_path: Path) -> None:
    html = (write_report(evaluation, tmp_path / "r") / "report.html").read_text()
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) == len(PLOTS)
    assert all(base64.b64decode(i).startswith(PNG_MAGIC) for i in images)
    assert not re.search(r'(src|href)="(https?:|//|/)', html)
    assert "$" not in html.replace("$0", "")  # every template field was filled
    assert "F1 %" in html and "false-positive rate %" in html


def test_summary_markdown_tables(evaluation: Evaluation) -> None:
    text = summary_markdown(evaluation, "T")
    assert text.startswith("# T\n")
    p = evaluation.metrics["packets"]
    assert f"| F1 % | {100 * p['f1']:.2f} |" in text
    assert "| dos | 60 | 90.00 | 0.9500 |" in text
    flow_rows = [line for line in text.splitlines() if re.match(r"\| \d+ \|", line)]
    assert len(flow_rows) == 5


def test_summary_table_reports_missing_auc_as_na(evaluation: Evaluation) -> None:
    evaluation.metrics["packets"]["roc_auc"] = None
    assert dict(summary_table(evaluation))["ROC-AUC"] == "n/a"
