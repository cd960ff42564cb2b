"""Tests of pktlstm.model: presets, inputs, forward shapes and the artifact folder."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from pktlstm.errors import ArtifactError, ConfigError
from pktlstm.model import (
    FORMAT_VERSION,
    ModelConfig,
    build_model,
    load_artifact,
    malicious_score,
    model_inputs,
    preset,
    save_artifact,
    varying_positions,
)
from pktlstm.tokens.vocab import UNK, Vocabulary


def test_hwang2019_preset_is_the_published_network() -> None:
    config = preset("hwang2019", vocab_size=65538, n_classes=2)
    model = build_model(config)
    assert model.embed.weight.shape == (65538, 64)
    assert [(r.input_size, r.hidden_size) for r in model.rnns] == [(64, 128), (128, 64), (64, 32)]
    assert all(isinstance(r, torch.nn.LSTM) for r in model.rnns)
    assert model.drop.p == pytest.approx(0.2)
    assert (model.head.in_features, model.head.out_features) == (32, 2)
    assert config.positions is None and config.n_words == 33


def test_fast_preset_is_one_small_layer_over_given_positions() -> None:
    config = preset("fast", vocab_size=100, n_classes=5, seq_len=54, positions=(3, 7, 9))
    model = build_model(config)
    assert len(model.rnns) == 1
    assert config.n_words == 3
    logits = model(torch.ones((4, 3), dtype=torch.int32))
    assert logits.shape == (4, 5)


def test_forward_uses_last_step_and_is_deterministic_in_eval_mode() -> None:
    torch.manual_seed(0)
    model = build_model(ModelConfig(vocab_size=10, hidden=(8, 4))).eval()
    x = torch.randint(0, 10, (6, 33))
    assert torch.equal(model(x), model(x))
    # Changing the last word changes the output (the final step is read).
    y = x.clone()
    y[:, -1] = (y[:, -1] + 1) % 10
    assert not torch.equal(model(x), model(y))


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"vocab_size": 1}, "vocab_size"),
        ({"n_classes": 1}, "n_classes"),
        ({"cell": "rnn"}, "cell"),
        ({"hidden": ()}, "hidden"),
        ({"dropout": 1.0}, "dropout"),
        ({"positions": (0, 40)}, "positions"),
    ],
)
def test_config_errors_name_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        ModelConfig(**{"vocab_size": 10, **kwargs})


def test_unknown_preset_is_rejected() -> None:
    with pytest.raises(ConfigError, match="preset"):
        preset("huge", vocab_size=10)


def test_model_inputs_maps_unknown_words_and_keeps_positions() -> None:
    vocab = Vocabulary().fit(np.array([[5, 6, 7]], dtype=np.uint16))
    config = ModelConfig(vocab_size=len(vocab), seq_len=3, positions=(0, 2))
    words = np.array([[5, 6, 7], [9, 6, 5]], dtype=np.uint16)
    before = words.copy()
    out = model_inputs(words, vocab, config)
    assert out.dtype == np.int32
    assert out.tolist() == [[2, 4], [UNK, 2]]
    assert np.array_equal(words, before)
    with pytest.raises(ValueError, match=r"\(n, 3\)"):
        model_inputs(np.zeros((2, 4), dtype=np.uint16), vocab, config)


def test_varying_positions() -> None:
    words = np.array([[1, 2, 3, 4], [1, 5, 3, 6]], dtype=np.uint16)
    assert varying_positions(words) == (1, 3)
    assert varying_positions(np.ones((3, 4), dtype=np.uint16)) == (0,)


def test_malicious_score_is_one_minus_benign() -> None:
    probs = np.array([[0.9, 0.1, 0.0], [0.2, 0.3, 0.5]], dtype=np.float32)
    assert malicious_score(probs) == pytest.approx([0.1, 0.8])


def _artifact(tmp_path: Path) -> tuple[Path, Vocabulary, ModelConfig]:
    vocab = Vocabulary().fit(np.arange(40, dtype=np.uint16).reshape(4, 10))
    config = preset("fast", vocab_size=len(vocab), n_classes=3, seq_len=10, positions=(1, 2, 9))
    torch.manual_seed(1)
    model = build_model(config)
    save_artifact(
        tmp_path / "m",
        model,
        tokenizer={"words": "fields", "policy": "ids"},
        vocab=vocab,
        classes=["benign", "dos", "scan"],
        threshold=0.25,
        train_config={"preset": "fast"},
        metrics={"validation": {"f1": 0.5}},
        dataset_card={"classes": ["benign", "dos", "scan"]},
    )
    return tmp_path / "m", vocab, config


def test_artifact_round_trip_scores_like_the_saved_model(tmp_path: Path) -> None:
    path, vocab, config = _artifact(tmp_path)
    art = load_artifact(path)
    assert art.classes == ["benign", "dos", "scan"]
    assert art.threshold == 0.25
    assert art.model_config == config
    assert art.vocab.to_dict() == vocab.to_dict()
    assert art.tokenizer == {"words": "fields", "policy": "ids"}
    words = np.random.default_rng(0).integers(0, 50, (7, 10)).astype(np.uint16)
    probs = art.predict_proba(words)
    assert probs.shape == (7, 3)
    assert probs.sum(axis=1) == pytest.approx(np.ones(7), abs=1e-5)
    assert art.score_tokens(words) == pytest.approx(1 - probs[:, 0])
    # An independently rebuilt module gives the same probabilities.
    model = art.build_model()
    x = torch.from_numpy(model_inputs(words, vocab, config))
    with torch.no_grad():
        expected = torch.softmax(model(x), dim=1).numpy()
    assert probs == pytest.approx(expected, abs=1e-6)


def test_artifact_of_another_version_is_rejected(tmp_path: Path) -> None:
    path, _, _ = _artifact(tmp_path)
    doc = json.loads((path / "model.json").read_text())
    doc["format_version"] = FORMAT_VERSION + 1
    (path / "model.json").write_text(json.dumps(doc))
    with pytest.raises(ArtifactError, match="format version"):
        load_artifact(path)


def test_broken_artifacts_give_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="no model.json"):
        load_artifact(tmp_path)
    path, _, _ = _artifact(tmp_path)
    doc = json.loads((path / "model.json").read_text())
    doc["classes"] = ["benign", "dos"]
    (path / "model.json").write_text(json.dumps(doc))
    with pytest.raises(ArtifactError, match="class names"):
        load_artifact(path)
    (path / "model.json").write_text("{not json")
    with pytest.raises(ArtifactError, match="unreadable"):
        load_artifact(path)


def test_corrupt_weights_raise_artifact_error(tmp_path: Path) -> None:
    path, _, _ = _artifact(tmp_path)
    (path / "weights.pt").write_bytes(b"garbage")
    art = load_artifact(path)
    with pytest.raises(ArtifactError, match="weights"):
        art.build_model()


def test_importing_the_model_module_does_not_import_torch() -> None:
    code = "import sys, pktlstm.model; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
