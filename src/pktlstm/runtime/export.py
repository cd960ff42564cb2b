"""ONNX export of a model artifact, checked against PyTorch on a sample; optional int8."""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pktlstm.errors import ArtifactError, ConfigError, PktlstmError
from pktlstm.io.batch import PacketBatch
from pktlstm.io.reader import open_capture
from pktlstm.model import ModelArtifact, load_artifact
from pktlstm.runtime.detector import (
    ONNX_FILE,
    ONNX_INPUT,
    ONNX_INT8_FILE,
    ONNX_OUTPUT,
    OnnxScorer,
    TorchScorer,
)
from pktlstm.tokens import TokenizerConfig, tokenize

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExportConfig:
    """How ``pktlstm export`` writes and checks the ONNX graph.

    int8: also write ``model.int8.onnx`` (dynamic int8 quantisation of weights) and measure
        how its scores and verdicts differ from fp32.
    tolerance: largest allowed absolute difference between ONNX Runtime and PyTorch scores
        (``1 - P(benign)``) on the sample; the export fails above it.
    sample_packets: packets in the check sample.
    dataset: a dataset folder (``pktlstm build``) whose test split is the sample; with its
        labels the accuracy change of int8 is measured.
    captures: capture files to draw the sample from when no dataset is given; else random
        words of the vocabulary are used.
    opset: ONNX opset version.
    """

    int8: bool = False
    tolerance: float = 1e-4
    sample_packets: int = 4096
    dataset: Path | None = None
    captures: tuple[Path, ...] = ()
    opset: int = 17
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.tolerance < 1:
            raise ConfigError(f"tolerance={self.tolerance}: must be in (0, 1)")
        if not 16 <= self.sample_packets <= 10_000_000:
            raise ConfigError(f"sample_packets={self.sample_packets}: must be in 16..10000000")
        if not 11 <= self.opset <= 21:
            raise ConfigError(f"opset={self.opset}: must be in 11..21")


@dataclass
class ExportReport:
    """What the export wrote and measured (scores are ``1 - P(benign)``)."""

    onnx_path: Path
    sample: str  # where the check sample came from
    sample_packets: int
    max_abs_diff: float  # ONNX fp32 vs PyTorch
    tolerance: float
    verdicts_changed: int  # fp32 ONNX vs PyTorch, at the artifact's threshold
    int8_path: Path | None = None
    int8: dict[str, Any] = field(default_factory=dict)

    def lines(self) -> list[str]:
        out = [
            f"wrote {self.onnx_path}",
            f"check on {self.sample_packets} packets ({self.sample}): max |score diff| "
            f"ONNX Runtime vs PyTorch = {self.max_abs_diff:.2e} (tolerance {self.tolerance:g}), "
            f"verdicts changed: {self.verdicts_changed}",
        ]
        if self.int8_path is not None:
            q = self.int8
            out.append(f"wrote {self.int8_path} (int8 dynamic quantisation)")
            out.append(
                f"int8 vs fp32: max |score diff| = {q['max_abs_diff']:.3g}, mean = "
                f"{q['mean_abs_diff']:.3g}, verdicts changed: {q['verdicts_changed']} of "
                f"{self.sample_packets}"
            )
            if "accuracy_fp32" in q:
                out.append(
                    f"int8 accuracy change on labelled sample: {q['accuracy_fp32']:.4f} -> "
                    f"{q['accuracy_int8']:.4f} ({q['accuracy_int8'] - q['accuracy_fp32']:+.4f})"
                )
        return out


def _sample(
    artifact: ModelArtifact, config: ExportConfig
) -> tuple[NDArray[np.int32], NDArray[np.bool_] | None, str]:
    """Model inputs ``(n, T')``, binary labels when known, and a description."""
    rng = np.random.default_rng(config.seed)
    n = config.sample_packets
    if config.dataset is not None:
        from pktlstm.dataset import Dataset

        test = Dataset.open(config.dataset).split("test")
        if len(test) == 0:
            raise ArtifactError(f"{config.dataset}: the test split is empty")
        rows = np.sort(rng.choice(len(test), min(n, len(test)), replace=False))
        words = np.asarray(test.tokens[rows])
        return artifact.inputs(words), np.asarray(test.label[rows]) > 0, f"{config.dataset} test"
    if config.captures:
        tok = TokenizerConfig.from_dict(artifact.tokenizer)
        parts: list[PacketBatch] = []
        have = 0
        for i, path in enumerate(config.captures):
            with open_capture(path, capture_id=i) as reader:
                for batch in reader:
                    parts.append(batch[: n - have])
                    have += len(parts[-1])
                    if have >= n:
                        break
            if have >= n:
                break
        if have == 0:
            raise PktlstmError(f"no decodable packets in {', '.join(map(str, config.captures))}")
        words = tokenize(PacketBatch.concat(parts), tok)
        return artifact.inputs(words), None, ", ".join(p.name for p in config.captures)
    vocab_rows = len(artifact.vocab)
    width = artifact.model_config.n_words
    inputs = rng.integers(2, max(vocab_rows, 3), size=(n, width)).astype(np.int32)
    return inputs, None, "random vocabulary words"


def _torch_export(artifact: ModelArtifact, out: Path, opset: int) -> None:
    import torch

    model = artifact.build_model()

    class WithSoftmax(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.softmax(self.inner(x), dim=1)  # (B, C)

    wrapped = WithSoftmax(model).eval()  # eval: dropout off in the graph
    example = torch.full((2, artifact.model_config.n_words), 2, dtype=torch.int32)
    tmp = out.with_suffix(".onnx.tmp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            wrapped,
            (example,),
            str(tmp),
            input_names=[ONNX_INPUT],
            output_names=[ONNX_OUTPUT],
            dynamic_axes={ONNX_INPUT: {0: "batch"}, ONNX_OUTPUT: {0: "batch"}},
            opset_version=opset,
            dynamo=False,
        )
    tmp.replace(out)


def _scores(probs: NDArray[np.float32]) -> NDArray[np.float32]:
    return (1.0 - probs[:, 0]).astype(np.float32)


def export_model(path: str | Path, config: ExportConfig | None = None) -> ExportReport:
    """Write ``model.onnx`` (fixed words per packet, dynamic batch) into the artifact folder,
    check that ONNX Runtime's scores match PyTorch's within ``config.tolerance`` on a sample,
    and with ``config.int8`` write and measure ``model.int8.onnx``. Needs torch.
    """
    config = config or ExportConfig()
    path = Path(path)
    artifact = load_artifact(path)
    try:
        import torch  # noqa: F401
    except ImportError:
        raise ConfigError("export needs torch: pip install 'pktlstm[train]'") from None
    inputs, labels, where = _sample(artifact, config)
    reference = TorchScorer(artifact)(inputs)  # (n, C)
    onnx_path = path / ONNX_FILE
    _torch_export(artifact, onnx_path, config.opset)
    probs = OnnxScorer(onnx_path)(inputs)
    ref_s, s = _scores(reference), _scores(probs)
    diff = float(np.abs(ref_s - s).max()) if len(s) else 0.0
    thr = artifact.threshold
    report = ExportReport(
        onnx_path=onnx_path,
        sample=where,
        sample_packets=len(inputs),
        max_abs_diff=diff,
        tolerance=config.tolerance,
        verdicts_changed=int(((ref_s >= thr) != (s >= thr)).sum()),
    )
    if diff > config.tolerance:
        onnx_path.unlink(missing_ok=True)
        raise ArtifactError(
            f"{onnx_path}: ONNX Runtime scores differ from PyTorch by {diff:.2e} > tolerance "
            f"{config.tolerance:g}; export removed"
        )
    if config.int8:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        int8_path = path / ONNX_INT8_FILE
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)  # quantize_dynamic logs advice on the root logger
        try:
            quantize_dynamic(str(onnx_path), str(int8_path), weight_type=QuantType.QInt8)
        finally:
            root.setLevel(level)
        q = _scores(OnnxScorer(int8_path)(inputs))
        measured: dict[str, Any] = {
            "max_abs_diff": float(np.abs(q - s).max()),
            "mean_abs_diff": float(np.abs(q - s).mean()),
            "verdicts_changed": int(((q >= thr) != (s >= thr)).sum()),
        }
        if labels is not None:
            measured["accuracy_fp32"] = float(((s >= thr) == labels).mean())
            measured["accuracy_int8"] = float(((q >= thr) == labels).mean())
        report.int8_path = int8_path
        report.int8 = measured
    else:
        (path / ONNX_INT8_FILE).unlink(missing_ok=True)  # a stale int8 graph would mislead
    return report
