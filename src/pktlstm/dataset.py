"""Labelled packet datasets on disk: build from captures + labels, split without leakage, load."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pktlstm.errors import ArtifactError

FORMAT = "pktlstm-dataset"
FORMAT_VERSION = 1
SPLITS = ("train", "validation", "test")
SPLIT_CODES = {"train": 0, "validation": 1, "test": 2}
REMOVED = 255  # split code of rows left out (duplicates across splits, class caps)

# name -> (file, dtype) of every per-packet column of a dataset folder.
COLUMNS: dict[str, tuple[str, str]] = {
    "tokens": ("tokens.npy", "uint16"),
    "label": ("label.npy", "int16"),
    "split": ("split.npy", "uint8"),
    "flow": ("flow.npy", "uint64"),
    "capture": ("capture.npy", "uint32"),
    "ts_ns": ("ts_ns.npy", "int64"),
    "flow_pos": ("flow_pos.npy", "uint32"),
    "pkt_index": ("pkt_index.npy", "uint64"),
}


@dataclass(frozen=True)
class DatasetSplit:
    """The rows of one split, as arrays (memory-mapped where possible).

    tokens: (n, T) uint16 raw word values; label: (n,) class index (0 = benign);
    flow: (n,) flow key; capture: (n,) source index; ts_ns: (n,) timestamps;
    flow_pos: (n,) 0-based position of the packet in its flow.
    """

    name: str
    tokens: NDArray[np.uint16]
    label: NDArray[np.int16]
    flow: NDArray[np.uint64]
    capture: NDArray[np.uint32]
    ts_ns: NDArray[np.int64]
    flow_pos: NDArray[np.uint32]

    def __len__(self) -> int:
        return int(self.label.shape[0])

    @property
    def malicious(self) -> NDArray[np.bool_]:
        """Binary view of the labels: True where the class is not benign."""
        return np.asarray(self.label) > 0


class Dataset:
    """A dataset folder written by ``pktlstm build`` (layout in docs/formats.md)."""

    def __init__(self, path: Path, card: dict[str, Any]) -> None:
        self.path = path
        self.card = card

    @classmethod
    def open(cls, path: str | Path) -> Dataset:
        path = Path(path)
        card_path = path / "card.json"
        if not card_path.is_file():
            raise ArtifactError(f"{path}: not a dataset folder (no card.json)")
        try:
            card = json.loads(card_path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ArtifactError(f"{card_path}: unreadable dataset card: {exc}") from exc
        if card.get("format") != FORMAT or card.get("format_version") != FORMAT_VERSION:
            raise ArtifactError(
                f"{card_path}: dataset format {card.get('format')!r} version "
                f"{card.get('format_version')!r}; this pktlstm reads {FORMAT!r} version "
                f"{FORMAT_VERSION}: rebuild it with `pktlstm build`"
            )
        for name, (file, _) in COLUMNS.items():
            if not (path / file).is_file():
                raise ArtifactError(f"{path}: dataset column {name!r} missing ({file})")
        return cls(path, card)

    @property
    def classes(self) -> list[str]:
        return list(self.card["classes"])

    @property
    def tokenizer(self) -> dict[str, Any]:
        """The tokenizer settings the tokens were made with (a TokenizerConfig as a dict)."""
        return dict(self.card["tokenizer"])

    def column(self, name: str) -> NDArray[Any]:
        file, _ = COLUMNS[name]
        try:
            return np.load(self.path / file, mmap_mode="r")
        except (OSError, ValueError) as exc:
            raise ArtifactError(f"{self.path / file}: unreadable dataset column: {exc}") from exc

    def split(self, name: str) -> DatasetSplit:
        """Rows of split ``name`` (train, validation or test), in file order."""
        if name not in SPLIT_CODES:
            raise ArtifactError(f"unknown split {name!r}; choose one of {', '.join(SPLITS)}")
        rows = np.flatnonzero(np.asarray(self.column("split")) == SPLIT_CODES[name])
        return DatasetSplit(
            name=name,
            tokens=np.asarray(self.column("tokens")[rows]),
            label=np.asarray(self.column("label")[rows]),
            flow=np.asarray(self.column("flow")[rows]),
            capture=np.asarray(self.column("capture")[rows]),
            ts_ns=np.asarray(self.column("ts_ns")[rows]),
            flow_pos=np.asarray(self.column("flow_pos")[rows]),
        )


def write_columns(path: Path, columns: dict[str, NDArray[Any]], card: dict[str, Any]) -> None:
    """Write the per-packet columns and card.json into an existing folder ``path``.

    Low-level: ``build`` uses it after splitting; tests use it for small literal datasets.
    """
    n = None
    for name, (file, dtype) in COLUMNS.items():
        array = np.ascontiguousarray(columns[name], dtype=dtype)
        if n is None:
            n = array.shape[0]
        elif array.shape[0] != n:
            raise ValueError(f"column {name} has {array.shape[0]} rows, expected {n}")
        np.save(path / file, array)
    card = {"format": FORMAT, "format_version": FORMAT_VERSION, **card}
    (path / "card.json").write_text(json.dumps(card, indent=2, sort_keys=False) + "\n")
