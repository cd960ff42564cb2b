"""ONNX export: scores match PyTorch within the tolerance; int8 measured; stale files removed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pktlstm.errors import ConfigError
from pktlstm.runtime.export import ExportConfig, export_model

from .conftest import flows_pcap


@pytest.fixture
def model(artifact: Path, tmp_path: Path) -> Path:
    shutil.copytree(artifact, tmp_path / "m")
    return tmp_path / "m"


def test_export_checks_against_torch(model: Path, tmp_path: Path) -> None:
    pcap = flows_pcap(tmp_path / "a.pcap", 10, 5)
    report = export_model(model, ExportConfig(captures=(pcap,), sample_packets=32))
    assert (model / "model.onnx").is_file() and report.onnx_path == model / "model.onnx"
    assert report.sample_packets == 32 and report.sample == "a.pcap"
    assert report.max_abs_diff <= report.tolerance
    assert "ONNX Runtime vs PyTorch" in "\n".join(report.lines())
    assert not (model / "model.int8.onnx").exists()


def test_int8_is_written_and_measured(model: Path) -> None:
    report = export_model(model, ExportConfig(int8=True, sample_packets=256))
    assert report.sample == "random vocabulary words"
    assert report.int8_path is not None and report.int8_path.is_file()
    q = report.int8
    assert 0 <= q["mean_abs_diff"] <= q["max_abs_diff"] < 0.5
    assert 0 <= q["verdicts_changed"] <= 256
    assert any("int8 vs fp32" in line for line in report.lines())
    # exporting again without int8 removes the stale int8 graph
    export_model(model, ExportConfig(sample_packets=16))
    assert not (model / "model.int8.onnx").exists()


@pytest.mark.parametrize("kwargs", [{"tolerance": 0}, {"sample_packets": 1}, {"opset": 5}])
def test_config_validation(kwargs: dict) -> None:
    with pytest.raises(ConfigError, match=next(iter(kwargs))):
        ExportConfig(**kwargs)
