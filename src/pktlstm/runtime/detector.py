"""A model artifact loaded for detection: tokenizer settings, vocabulary and an inference backend."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from pktlstm.errors import ArtifactError, ConfigError
from pktlstm.io.batch import PacketBatch
from pktlstm.model import MODEL_JSON, ModelArtifact, load_artifact, model_inputs
from pktlstm.tokens import TokenizerConfig, tokenize

log = logging.getLogger(__name__)

ONNX_FILE = "model.onnx"  # fp32 graph written by `pktlstm export`
ONNX_INT8_FILE = "model.int8.onnx"  # dynamically quantised graph (`export --int8`)
BACKENDS = ("auto", "onnx", "torch")
PRECISIONS = ("fp32", "int8")
ONNX_INPUT = "inputs"  # (B, T') int32 embedding indices
ONNX_OUTPUT = "probs"  # (B, C) float32 class probabilities


class Scorer(Protocol):
    """Maps model inputs ``(n, T')`` int32 to class probabilities ``(n, C)`` float32."""

    name: str

    def __call__(self, inputs: NDArray[np.int32]) -> NDArray[np.float32]: ...


class OnnxScorer:
    """ONNX Runtime (CPU) session over an exported graph; needs no torch."""

    def __init__(self, path: Path, threads: int = 1) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(
                str(path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # ORT raises its own exception types for bad files
            raise ArtifactError(f"{path}: not a loadable ONNX model: {exc}") from None
        self.name = f"onnxruntime:{path.name}"
        inp = self.session.get_inputs()
        out = self.session.get_outputs()
        if [i.name for i in inp] != [ONNX_INPUT] or out[0].name != ONNX_OUTPUT:
            raise ArtifactError(f"{path}: not a pktlstm export (inputs {[i.name for i in inp]})")
        self.input_width = inp[0].shape[1]
        self.n_classes = out[0].shape[1]

    def __call__(self, inputs: NDArray[np.int32]) -> NDArray[np.float32]:
        return np.asarray(self.session.run(None, {ONNX_INPUT: inputs})[0], np.float32)


class TorchScorer:
    """PyTorch eager inference (needs the ``train`` extra); the reference for the export."""

    def __init__(self, artifact: ModelArtifact, threads: int = 1) -> None:
        import torch

        torch.set_num_threads(threads)
        self._torch = torch
        self.model = artifact.build_model()
        self.name = "torch"

    def __call__(self, inputs: NDArray[np.int32]) -> NDArray[np.float32]:
        torch = self._torch
        with torch.inference_mode():
            logits = self.model(torch.from_numpy(np.ascontiguousarray(inputs)))  # (B, C)
            return torch.softmax(logits, dim=1).numpy()


@dataclass
class Detector:
    """Everything detection needs from an artifact; settings come from the artifact only.

    ``score(batch)`` returns ``(score, klass)``: ``score = 1 - P(benign)`` ``(n,)`` float32
    (higher = more malicious) and the most likely non-benign class ``(n,)`` int16.
    """

    artifact: ModelArtifact
    tokenizer: TokenizerConfig
    scorer: Scorer
    model_id: str
    classes: list[str] = field(default_factory=list)

    @property
    def threshold(self) -> float:
        return self.artifact.threshold

    def inputs(self, batch: PacketBatch) -> NDArray[np.int32]:
        """Packets -> model inputs ``(n, T')``: the training tokenizer, then the vocabulary."""
        words = tokenize(batch, self.tokenizer)  # (n, T) uint16
        return model_inputs(words, self.artifact.vocab, self.artifact.model_config)

    def score_inputs(
        self, inputs: NDArray[np.int32]
    ) -> tuple[NDArray[np.float32], NDArray[np.int16]]:
        if len(inputs) == 0:
            return np.zeros(0, np.float32), np.zeros(0, np.int16)
        probs = self.scorer(inputs)  # (n, C)
        score = (1.0 - probs[:, 0]).astype(np.float32)
        klass = (1 + np.argmax(probs[:, 1:], axis=1)).astype(np.int16)
        return score, klass

    def warm_up(self, max_batch: int) -> None:
        """Run inference once per power-of-two batch size up to ``max_batch``, so that the
        backend's first-call costs (memory arenas, kernel choice) are not paid by live packets."""
        width = self.artifact.model_config.n_words
        size = 1
        while True:
            self.scorer(np.full((min(size, max_batch), width), 2, np.int32))
            if size >= max_batch:
                break
            size *= 2

    def score(self, batch: PacketBatch) -> tuple[NDArray[np.float32], NDArray[np.int16]]:
        return self.score_inputs(self.inputs(batch))


def model_id(path: Path) -> str:
    """``<folder name>-<first 12 hex of sha256(model.json)>``: names the model in alerts."""
    digest = hashlib.sha256((path / MODEL_JSON).read_bytes()).hexdigest()[:12]
    return f"{path.resolve().name}-{digest}"


def load_detector(
    path: str | Path, backend: str = "auto", precision: str = "fp32", threads: int = 1
) -> Detector:
    """Load an artifact folder for detection.

    ``backend``: ``onnx`` (the exported ``model.onnx``, no torch needed), ``torch`` (eager,
    needs torch) or ``auto`` (ONNX when exported, else torch). ``precision`` ``int8`` uses
    ``model.int8.onnx`` (``pktlstm export --int8``). Raises ArtifactError / ConfigError with
    one clear line for a wrong version, a corrupt file or a missing export.
    """
    if backend not in BACKENDS:
        raise ConfigError(f"backend={backend!r}: choose one of {', '.join(BACKENDS)}")
    if precision not in PRECISIONS:
        raise ConfigError(f"precision={precision!r}: choose one of {', '.join(PRECISIONS)}")
    if not 1 <= threads <= 256:
        raise ConfigError(f"threads={threads}: must be in 1..256")
    path = Path(path)
    artifact = load_artifact(path)
    try:
        tokenizer = TokenizerConfig.from_dict(artifact.tokenizer)
    except (ConfigError, TypeError) as exc:
        raise ArtifactError(f"{path / MODEL_JSON}: bad tokenizer settings: {exc}") from None
    if tokenizer.n_words != artifact.model_config.seq_len:
        raise ArtifactError(
            f"{path / MODEL_JSON}: tokenizer makes {tokenizer.n_words} words, model expects "
            f"{artifact.model_config.seq_len}"
        )
    onnx_path = path / (ONNX_INT8_FILE if precision == "int8" else ONNX_FILE)
    scorer: Any
    if backend == "auto" and (onnx_path.exists() or precision == "int8"):
        backend = "onnx"
    if backend == "onnx":
        if not onnx_path.exists():
            flag = " --int8" if precision == "int8" else ""
            raise ArtifactError(f"{onnx_path}: missing; run `pktlstm export {path}{flag}` first")
        scorer = OnnxScorer(onnx_path, threads)
        cfg = artifact.model_config
        if scorer.input_width != cfg.n_words or scorer.n_classes != cfg.n_classes:
            raise ArtifactError(
                f"{onnx_path}: exported for another model ({scorer.input_width} words, "
                f"{scorer.n_classes} classes); run `pktlstm export {path}` again"
            )
    else:
        if precision == "int8":
            raise ConfigError("precision=int8 runs on ONNX Runtime only (backend=onnx or auto)")
        try:
            scorer = TorchScorer(artifact, threads)
        except ImportError:
            raise ArtifactError(
                f"{path}: no {ONNX_FILE} and torch is not installed: run `pktlstm export` "
                "where torch is, or pip install 'pktlstm[train]'"
            ) from None
    return Detector(
        artifact=artifact,
        tokenizer=tokenizer,
        scorer=scorer,
        model_id=model_id(path),
        classes=list(artifact.classes),
    )
