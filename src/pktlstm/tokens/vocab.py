"""Vocabulary: maps 16-bit word values to embedding indices, with padding and unknown."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

PAD = 0  # index reserved for padding (never produced by the tokenizer, kept for the model)
UNK = 1  # index of words not seen in training
_FIRST = 2  # first index given to a real word


class Vocabulary:
    """A dictionary of word values (0..65535) built incrementally from training words.

    As in Hwang et al. (2019) one dictionary is shared by all word positions; a word
    value never seen in ``fit`` maps to ``UNK`` at inference.

    >>> v = Vocabulary().fit(np.array([[7, 9], [9, 9]], dtype=np.uint16))
    >>> v.transform(np.array([[9, 7, 3]], dtype=np.uint16)).tolist()
    [[3, 2, 1]]
    >>> len(v)
    4
    """

    def __init__(self, min_count: int = 1) -> None:
        self.min_count = min_count
        self.words_: NDArray[np.uint16] = np.zeros(0, dtype=np.uint16)
        self._table: NDArray[np.int32] = np.full(65536, UNK, dtype=np.int32)

    def fit(self, words: NDArray[np.integer[Any]]) -> Vocabulary:
        """Add every word value seen at least ``min_count`` times, in order of first sight."""
        flat = np.asarray(words, dtype=np.uint16).ravel()
        counts = np.bincount(flat, minlength=65536)
        known = set(self.words_.tolist())
        _, first = np.unique(flat, return_index=True)
        order = flat[np.sort(first)]
        new = [int(w) for w in order if counts[w] >= self.min_count and int(w) not in known]
        self.words_ = np.concatenate([self.words_, np.asarray(new, dtype=np.uint16)])
        self._rebuild()
        return self

    def _rebuild(self) -> None:
        self._table = np.full(65536, UNK, dtype=np.int32)
        self._table[self.words_.astype(np.int64)] = np.arange(
            _FIRST, _FIRST + len(self.words_), dtype=np.int32
        )

    def transform(self, words: NDArray[np.integer[Any]]) -> NDArray[np.int32]:
        """Word values (any shape) -> embedding indices of the same shape."""
        return self._table[np.asarray(words, dtype=np.uint16)]

    def __len__(self) -> int:
        """Number of embedding rows needed: padding + unknown + known words."""
        return _FIRST + len(self.words_)

    def to_dict(self) -> dict[str, Any]:
        return {"min_count": self.min_count, "words": self.words_.tolist()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Vocabulary:
        vocab = cls(min_count=int(data.get("min_count", 1)))
        vocab.words_ = np.asarray(data["words"], dtype=np.uint16)
        vocab._rebuild()
        return vocab
