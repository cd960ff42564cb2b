"""Shortcut audit: an oracle that reads one field is caught by masking and by single-field models."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from pktlstm.audit import (
    BYTE_GROUPS,
    FIELD_GROUPS,
    AuditConfig,
    audit,
    audit_rows,
    summary_markdown,
    write_audit,
)
from pktlstm.dataset import Dataset
from pktlstm.errors import ArtifactError, ConfigError
from pktlstm.tokens.fields import word_names

from .test_baseline import tiny_dataset
from .test_compare import oracle


@pytest.fixture(scope="module")
def ds(tmp_path_factory) -> Dataset:
    return tiny_dataset(tmp_path_factory.mktemp("audit"), flows=90)


def test_field_groups_match_the_word_layout():
    names = word_names(4, 6)  # IPv4 / TCP names of the 33 words
    covered = sorted(p for positions in FIELD_GROUPS.values() for p in positions)
    assert covered == list(range(33))
    for field, positions in FIELD_GROUPS.items():
        for p in positions:
            tcp_name = field.replace("l4.", "tcp.")  # ports are named as in the masking FIELDS
            assert names[p].rstrip("0123456789") == tcp_name, (field, p, names[p])
    assert sorted(p for ps in BYTE_GROUPS.values() for p in ps) == list(range(54))


def test_masking_the_field_the_model_reads_is_caught(ds):
    result = audit(oracle(ds), ds, AuditConfig(single_field=True))
    top = result.fields[0]
    assert top.name == "tcp.window"
    part = ds.split("test")
    y = np.asarray(part.label) > 0
    s = oracle(ds).score_tokens(part.tokens)
    # every packet the oracle flags is malicious; attack packet 0 is missed
    assert result.full["pr_auc"] == pytest.approx(average_precision_score(y, s))
    assert result.full["f1"] == pytest.approx(2 * s.sum() / (s.sum() + y.sum()))
    assert top.masked["pr_auc"] == pytest.approx(result.chance["pr_auc"])
    assert top.drop["f1"] == pytest.approx(result.full["f1"])
    others = [f for f in result.fields[1:] if not f.constant]
    assert others and all(f.drop["pr_auc"] == 0.0 for f in others)
    assert any("masking tcp.window" in w for w in result.warnings)
    assert any(w.startswith("tcp.window alone") for w in result.warnings)
    assert top.single is not None and top.single["pr_auc"] >= 0.95 * result.full["pr_auc"]
    # masked at build time by the ids policy: constant, not scored
    constant = {f.name for f in result.fields if f.constant}
    assert {"eth.src", "ip.src", "ip.checksum"} <= constant
    assert result.info["masked_at_build"] == [f.name for f in result.fields if f.constant]


def test_no_warning_without_a_single_dominant_field(ds):
    art = oracle(ds)

    class Blind(type(art)):
        def score_tokens(self, words, batch_size=4096):
            return np.full(len(words), 0.0, dtype=np.float32)

    blind = Blind(**{k: getattr(art, k) for k in art.__dataclass_fields__})
    result = audit(blind, ds)
    assert result.warnings == []
    assert "No single field" in summary_markdown(result)


def test_outputs(tmp_path, ds):
    result = audit(oracle(ds), ds, AuditConfig(max_packets=40))
    assert result.info["packets"] == 40
    out = write_audit(result, tmp_path / "a")
    doc = json.loads((out / "audit.json").read_text())
    assert doc["fields"][0]["field"] == "tcp.window"
    assert (out / "importance.png").read_bytes()[:4] == b"\x89PNG"
    rows = audit_rows(result)
    assert rows[0][0] == "field" and rows[1][0] == "tcp.window"


def test_errors(ds):
    art = oracle(ds)
    art.tokenizer = {**ds.tokenizer, "words": "bytes"}
    with pytest.raises(ArtifactError, match="tokens"):
        audit(art, ds)
    with pytest.raises(ConfigError, match="metric"):
        AuditConfig(metric="auc")
    with pytest.raises(ConfigError, match="max_packets"):
        AuditConfig(max_packets=0)
