"""Tests of pktlstm.demo: the whole chain synth -> build -> train -> evaluate on a small capture."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pktlstm.demo import DemoConfig
from pktlstm.errors import ConfigError


def test_demo_config_validation() -> None:
    with pytest.raises(ConfigError, match="packets"):
        DemoConfig(packets=10)
    with pytest.raises(ConfigError, match="epochs"):
        DemoConfig(epochs=0)


@pytest.mark.slow
def test_small_demo_runs_every_stage_and_says_where_the_report_is(tmp_path: Path) -> None:
    from pktlstm.cli import app

    out = tmp_path / "demo"
    run = CliRunner().invoke(app, ["demo", "--out", str(out), "--packets", "6000", "--epochs", "1"])
    assert run.exit_code == 0, run.output
    for stage in ("1/4 synth", "2/4 build", "3/4 train", "4/4 eval"):
        assert stage in run.output
    for path in ("synth/traffic.pcap", "synth/flows.csv", "dataset/card.json",
                 "model/model.json", "model/weights.pt", "report/report.html",
                 "report/metrics.json", "report/summary.md"):  # fmt: skip
        assert (out / path).is_file(), path
    assert str(out / "report" / "report.html") in run.output
    metrics = json.loads((out / "report" / "metrics.json").read_text())
    assert metrics["split"] == "test"
    assert metrics["packets"]["packets"] > 0
    assert metrics["packets"]["roc_auc"] > 0.5  # it learned something on flows it never saw
    assert f"{100 * metrics['packets']['f1']:.2f}" in run.output  # the printed table
