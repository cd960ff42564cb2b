"""Vocabulary: incremental indices, unknown words, round trip."""

from __future__ import annotations

import numpy as np

from pktlstm.tokens.vocab import PAD, UNK, Vocabulary


def test_fit_transform_and_unknown():
    v = Vocabulary().fit(np.array([[5, 6, 5]], dtype=np.uint16))
    out = v.transform(np.array([[6, 5, 7]], dtype=np.uint16))
    assert out.tolist() == [[3, 2, UNK]]
    assert PAD not in out
    assert len(v) == 4


def test_incremental_fit_keeps_old_indices():
    v = Vocabulary().fit(np.array([9], dtype=np.uint16))
    v.fit(np.array([1, 9], dtype=np.uint16))
    assert v.transform(np.array([9, 1], dtype=np.uint16)).tolist() == [2, 3]


def test_min_count():
    v = Vocabulary(min_count=2).fit(np.array([4, 4, 8], dtype=np.uint16))
    assert v.transform(np.array([4, 8], dtype=np.uint16)).tolist() == [2, UNK]


def test_round_trip():
    v = Vocabulary().fit(np.arange(0, 65536, 7, dtype=np.uint16))
    w = Vocabulary.from_dict(v.to_dict())
    x = np.arange(65536, dtype=np.uint16)
    np.testing.assert_array_equal(v.transform(x), w.transform(x))
