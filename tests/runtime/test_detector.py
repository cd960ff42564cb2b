"""load_detector: backend choice, torch-free ONNX path, clear errors for bad artifacts."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from pktlstm.errors import ArtifactError, ConfigError
from pktlstm.io.reader import read_capture
from pktlstm.runtime.detector import load_detector

from .conftest import flows_pcap


def test_auto_prefers_onnx_and_matches_torch(exported: Path, tmp_path: Path) -> None:
    batch, _ = read_capture(flows_pcap(tmp_path / "a.pcap", 7, 3))
    onnx = load_detector(exported)
    torch_ = load_detector(exported, backend="torch")
    assert onnx.scorer.name.startswith("onnxruntime") and torch_.scorer.name == "torch"
    s1, c1 = onnx.score(batch)
    s2, c2 = torch_.score(batch)
    assert s1.shape == (21,) and s1.dtype == np.float32
    assert np.allclose(s1, s2, atol=1e-5) and (c1 == c2).all()
    assert set(c1.tolist()) <= {1, 2}  # a malicious class, never benign


def test_torch_fallback_without_export(artifact: Path) -> None:
    assert load_detector(artifact).scorer.name == "torch"


def test_detects_without_torch(exported: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now fails
    det = load_detector(exported)
    assert det.scorer.name == "onnxruntime:model.onnx"


def test_no_export_and_no_torch_is_one_clear_error(
    artifact: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ArtifactError, match="no model.onnx and torch is not installed"):
        load_detector(artifact)


def test_missing_int8_export(exported: Path) -> None:
    with pytest.raises(ArtifactError, match="export .* --int8"):
        load_detector(exported, precision="int8")


def test_wrong_version_and_corrupt_files(exported: Path, tmp_path: Path) -> None:
    old = tmp_path / "old"
    shutil.copytree(exported, old)
    doc = json.loads((old / "model.json").read_text())
    doc["format_version"] = 99
    (old / "model.json").write_text(json.dumps(doc))
    with pytest.raises(ArtifactError, match="version 99"):
        load_detector(old)
    bad = tmp_path / "bad"
    shutil.copytree(exported, bad)
    (bad / "model.onnx").write_bytes(b"not onnx at all")
    with pytest.raises(ArtifactError, match="not a loadable ONNX model"):
        load_detector(bad)
    (bad / "model.json").write_text("{ truncated")
    with pytest.raises(ArtifactError, match="unreadable"):
        load_detector(bad)
    with pytest.raises(ArtifactError, match="not a model artifact"):
        load_detector(tmp_path / "nothing")


@pytest.mark.parametrize("kwargs", [{"backend": "gpu"}, {"precision": "fp8"}, {"threads": 0}])
def test_option_validation(artifact: Path, kwargs: dict) -> None:
    with pytest.raises(ConfigError, match=next(iter(kwargs))):
        load_detector(artifact, **kwargs)
