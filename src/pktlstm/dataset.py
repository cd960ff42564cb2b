"""Labelled packet datasets on disk: build from captures + labels, split without leakage, load."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pktlstm.errors import ArtifactError, CaptureError, ConfigError
from pktlstm.io import CaptureConfig, open_capture
from pktlstm.labels import LabelSource, file_sha256
from pktlstm.tokens import TokenizerConfig, tokenize

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


# --- building ---------------------------------------------------------------------------------

SPLIT_RULES = ("flow", "capture", "time")
DEFAULT_LABELS = ("benign", "unknown")


@dataclass(frozen=True)
class BuildConfig:
    """How captures and labels become a dataset.

    words, policy, mask_add, mask_remove: the tokenizer (see ``TokenizerConfig``).
    split_by: ``flow`` (default; sessions when the label source gives them), ``capture`` (whole
        files) or ``time`` (flows ordered by their first packet: train earliest).
    fractions: train / validation / test shares of packets, summing to 1.
    seed: seeds the split and the class caps; same seed, same dataset.
    default_label: class of packets no label matches: ``benign``, or ``unknown`` to exclude them.
    max_per_class: keep at most this many packets per class (whole flows, chosen at random; the
        paper caps classes at 100,000 packets); None keeps all.
    balance: cap every class at the size of the smallest one.
    binary: collapse attack classes into one class ``malicious``.
    chunk_packets: packets per batch while streaming captures (bounds memory).
    """

    words: str = "fields"
    policy: str = "ids"
    mask_add: tuple[str, ...] = ()
    mask_remove: tuple[str, ...] = ()
    split_by: str = "flow"
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)
    seed: int = 0
    default_label: str = "benign"
    max_per_class: int | None = None
    balance: bool = False
    binary: bool = False
    chunk_packets: int = 65536

    def __post_init__(self) -> None:
        self.tokenizer  # validates words, policy and masks  # noqa: B018
        if self.split_by not in SPLIT_RULES:
            raise ConfigError(f"split_by={self.split_by!r}: choose one of {', '.join(SPLIT_RULES)}")
        if len(self.fractions) != 3 or any(f < 0 for f in self.fractions):
            raise ConfigError(f"fractions={self.fractions!r}: three shares >= 0 expected")
        if abs(sum(self.fractions) - 1.0) > 1e-6 or self.fractions[0] <= 0:
            raise ConfigError(
                f"fractions={self.fractions!r}: train/validation/test must sum to 1, train > 0"
            )
        if self.default_label not in DEFAULT_LABELS:
            raise ConfigError(
                f"default_label={self.default_label!r}: choose one of {', '.join(DEFAULT_LABELS)}"
            )
        if self.max_per_class is not None and self.max_per_class < 1:
            raise ConfigError(f"max_per_class={self.max_per_class}: must be >= 1 or None")
        if self.chunk_packets < 1:
            raise ConfigError(f"chunk_packets={self.chunk_packets}: must be >= 1")

    @property
    def tokenizer(self) -> TokenizerConfig:
        return TokenizerConfig(self.words, self.policy, self.mask_add, self.mask_remove)


ProgressFn = Callable[[Path, int, int], None]
"""Called as (capture, packets so far in it, bytes of the file) while building."""


def build(
    captures: Sequence[str | Path],
    labels: LabelSource,
    config: BuildConfig,
    out: str | Path,
    *,
    overwrite: bool = False,
    progress: ProgressFn | None = None,
) -> Dataset:
    """Read ``captures``, label and tokenise every packet, split without leakage, write ``out``.

    Streams: captures are read in chunks and columns appended to disk, so captures larger than
    memory work (the split keeps 8 bytes per packet in memory). The folder is written under a
    temporary name and renamed at the end: an error leaves nothing half-written.
    """
    out = Path(out)
    paths = [Path(p) for p in captures]
    if not paths:
        raise ConfigError("no capture given to build from")
    for path in paths:
        if not path.is_file():
            raise CaptureError(f"{path}: capture file not found")
    if out.exists() and not overwrite:
        raise ArtifactError(f"{out}: already exists (choose another --out or pass --overwrite)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        card = _ingest(paths, labels, config, tmp, progress)
        _finish(tmp, config, card)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Dataset.open(out)


def _ingest(
    paths: list[Path],
    labels: LabelSource,
    config: BuildConfig,
    tmp: Path,
    progress: ProgressFn | None,
) -> dict[str, Any]:
    """Stream every capture into raw column files in ``tmp``; return the card so far."""
    tok = config.tokenizer
    classes = ["benign"] if not config.binary else ["benign", "malicious"]
    index = {name: i for i, name in enumerate(classes)}
    unlabelled = 0
    sources = []
    files = {name: (tmp / f"{name}.raw").open("wb") for name in COLUMNS if name != "split"}
    try:
        for capture_id, path in enumerate(paths):
            packets = 0
            size = path.stat().st_size
            reader = open_capture(
                path, CaptureConfig(chunk_packets=config.chunk_packets), capture_id=capture_id
            )
            with reader:
                for batch in reader:
                    assigned = labels.assign(batch, path)
                    names = [
                        n if n == "benign" or not config.binary else "malicious"
                        for n in assigned.names
                    ]
                    for name in names:
                        if name not in index:
                            index[name] = len(classes)
                            classes.append(name)
                    lut = np.array([index[n] for n in names] + [-1], dtype=np.int32)
                    label = lut[assigned.codes]  # code -1 picks the trailing -1
                    if config.default_label == "benign":
                        label[label < 0] = 0
                    keep = label >= 0
                    unlabelled += int((~keep).sum())
                    flow = _flow_key(batch.flow_id, capture_id)
                    if assigned.group is not None:  # sessions replace flows where given
                        flow = np.where(assigned.group != 0, assigned.group, flow)
                    kept = batch[keep] if not keep.all() else batch
                    columns = {
                        "tokens": tokenize(kept, tok),
                        "label": label[keep],
                        "flow": flow[keep],
                        "capture": kept.capture_id,
                        "ts_ns": kept.ts_ns,
                        "flow_pos": np.zeros(len(kept)),
                        "pkt_index": kept.pkt_index,
                    }
                    for name, array in columns.items():
                        files[name].write(np.ascontiguousarray(array, COLUMNS[name][1]).tobytes())
                    packets += len(batch)
                    if progress is not None:
                        progress(path, packets, size)
            stats = reader.stats
            sources.append(
                {
                    "path": str(path),
                    "sha256": file_sha256(path),
                    "packets": packets,
                    "skipped": dict(stats.skipped),
                }
            )
    finally:
        for fh in files.values():
            fh.close()
    return {
        "tokenizer": tok.to_dict(),
        "n_words": tok.n_words,
        "classes": classes,
        "sources": sources,
        "labels": {**labels.describe(), "default": config.default_label},
        "unlabelled_excluded": unlabelled,
    }


def _flow_key(flow_id: NDArray[np.uint64], capture_id: int) -> NDArray[np.uint64]:
    """Mix the capture id into the reader's flow id: equal 5-tuples in two files are two flows."""
    with np.errstate(over="ignore"):
        x = flow_id ^ (np.uint64(capture_id) * np.uint64(0x9E3779B97F4A7C15))
        x = (x ^ (x >> np.uint64(31))) * np.uint64(0xBF58476D1CE4E5B9)
    return np.asarray(x ^ (x >> np.uint64(29)), dtype=np.uint64)


def _raw(tmp: Path, name: str, width: int = 1) -> NDArray[Any]:
    dtype = np.dtype(COLUMNS[name][1])
    path = tmp / f"{name}.raw"
    if path.stat().st_size == 0:
        return np.zeros((0, width) if width > 1 else 0, dtype=dtype)
    data = np.memmap(path, dtype=dtype, mode="r")
    return data.reshape(-1, width) if width > 1 else data


def _finish(tmp: Path, config: BuildConfig, card: dict[str, Any]) -> None:
    """Positions in flows, class caps, split, duplicate removal; write .npy columns and card."""
    n_words = int(card["n_words"])
    label = np.array(_raw(tmp, "label"))
    flow = np.array(_raw(tmp, "flow"))
    capture = np.array(_raw(tmp, "capture"))
    ts = np.array(_raw(tmp, "ts_ns"))
    n = label.shape[0]
    if n == 0:
        raise ArtifactError("no labelled packet in the captures: nothing to build a dataset from")
    rng = np.random.default_rng(config.seed)
    # Keep benign and the classes that have packets, in order of first appearance.
    present = np.bincount(label, minlength=len(card["classes"])) > 0
    present[0] = True
    remap = np.cumsum(present) - 1
    label = remap[label].astype(np.int16)
    card["classes"] = [c for c, p in zip(card["classes"], present, strict=True) if p]

    # Position of every packet in its flow, in capture order (rows are in capture order).
    order = np.argsort(flow, kind="stable")
    sorted_flow = flow[order]
    starts = np.flatnonzero(np.r_[True, sorted_flow[1:] != sorted_flow[:-1]])
    sizes = np.diff(np.r_[starts, n])
    pos = np.arange(n) - np.repeat(starts, sizes)
    flow_pos = np.empty(n, dtype=np.uint32)
    flow_pos[order] = pos
    # One row per flow: its class (of its first packet), size, first time and capture.
    first_rows = order[starts]
    flow_class = label[first_rows]
    flow_first_ts = ts[first_rows]
    flow_capture = capture[first_rows]
    flow_of_row = np.empty(n, dtype=np.int64)
    flow_of_row[order] = np.repeat(np.arange(len(starts)), sizes)

    keep_flow = _cap_classes(flow_class, sizes, len(card["classes"]), config, rng)
    flow_split = _split_flows(
        flow_class, sizes, flow_first_ts, flow_capture, keep_flow, config, rng
    )
    split = flow_split[flow_of_row]
    capped = int((split == REMOVED).sum())

    duplicates = _remove_duplicates(tmp, n_words, split, label, len(card["classes"]))

    classes = card["classes"]
    n_classes = len(classes)
    splits_card: dict[str, Any] = {}
    for name, code in SPLIT_CODES.items():
        rows = split == code
        packets = np.bincount(label[rows], minlength=n_classes)
        flows = np.bincount(label[rows][flow_pos[rows] == 0], minlength=n_classes)
        distinct = np.bincount(
            flow_class[np.unique(flow_of_row[rows])], minlength=n_classes
        ).tolist()
        splits_card[name] = {
            "packets": {c: int(packets[i]) for i, c in enumerate(classes)},
            "flows": {c: int(distinct[i]) for i, c in enumerate(classes)},
            "flows_starting_here": {c: int(flows[i]) for i, c in enumerate(classes)},
            "duplicates_removed": {c: int(duplicates[name][i]) for i, c in enumerate(classes)},
        }
    live = split != REMOVED
    pairs = np.unique(np.stack([flow_of_row[live], split[live]], axis=1), axis=0)
    in_many = int((np.bincount(pairs[:, 0]) > 1).sum()) if pairs.size else 0

    card.update(
        {
            "split": {
                "by": config.split_by,
                "fractions": list(config.fractions),
                "seed": config.seed,
            },
            "caps": {
                "max_per_class": config.max_per_class,
                "balance": config.balance,
                "packets_removed": capped,
            },
            "packets": int(n),
            "splits": splits_card,
            "flows_in_more_than_one_split": in_many,
        }
    )
    columns: dict[str, NDArray[Any]] = {
        "tokens": _raw(tmp, "tokens", n_words),
        "label": label,
        "split": split,
        "flow": flow,
        "capture": capture,
        "ts_ns": ts,
        "flow_pos": flow_pos,
        "pkt_index": _raw(tmp, "pkt_index"),
    }
    write_columns(tmp, columns, card)
    for name in COLUMNS:
        raw = tmp / f"{name}.raw"
        if raw.exists():
            raw.unlink()


def _cap_classes(
    flow_class: NDArray[np.int16],
    sizes: NDArray[np.int64],
    n_classes: int,
    config: BuildConfig,
    rng: np.random.Generator,
) -> NDArray[np.bool_]:
    """Which flows survive the per-class caps: whole flows in random order until the cap."""
    keep = np.ones(len(sizes), dtype=bool)
    totals = np.bincount(flow_class, weights=sizes, minlength=n_classes)
    cap = config.max_per_class
    if config.balance:
        smallest = int(totals[totals > 0].min())
        cap = smallest if cap is None else min(cap, smallest)
    if cap is None:
        return keep
    for c in range(n_classes):
        if totals[c] <= cap:
            continue
        members = rng.permutation(np.flatnonzero(flow_class == c))
        cum = np.cumsum(sizes[members])
        # Keep flows while the class stays within the cap (always at least one flow).
        drop = members[1:][cum[1:] > cap]
        keep[drop] = False
    return keep


def _split_flows(
    flow_class: NDArray[np.int16],
    sizes: NDArray[np.int64],
    first_ts: NDArray[np.int64],
    flow_capture: NDArray[np.uint32],
    keep: NDArray[np.bool_],
    config: BuildConfig,
    rng: np.random.Generator,
) -> NDArray[np.uint8]:
    """Split code of every flow (REMOVED where not kept); whole units go to one split.

    Units are visited in random order (by flow, stratified by class, or by capture) or in time
    order, and each goes to the split where the midpoint of its packets falls on the cumulative
    packet scale, so packet shares follow ``fractions``.
    """
    split = np.full(len(sizes), REMOVED, dtype=np.uint8)
    bounds = np.cumsum(config.fractions)[:-1]

    def assign(units: NDArray[np.int64], weights: NDArray[np.float64]) -> NDArray[np.uint8]:
        total = weights.sum()
        if total == 0:
            return np.zeros(len(units), dtype=np.uint8)
        mid = (np.cumsum(weights) - weights / 2) / total
        return np.searchsorted(bounds, mid, side="right").astype(np.uint8)

    kept = np.flatnonzero(keep)
    if config.split_by == "flow":
        for c in np.unique(flow_class[kept]):
            members = rng.permutation(kept[flow_class[kept] == c])
            split[members] = assign(members, sizes[members].astype(np.float64))
    elif config.split_by == "time":
        members = kept[np.argsort(first_ts[kept], kind="stable")]
        split[members] = assign(members, sizes[members].astype(np.float64))
    else:
        caps = np.unique(flow_capture[kept])
        if len(caps) < 2:
            raise ConfigError(
                f"split_by='capture' needs at least 2 captures with labelled packets, got {len(caps)}"
            )
        order = rng.permutation(caps)
        weight = np.array([sizes[kept][flow_capture[kept] == c].sum() for c in order], float)
        unit_split = dict(zip(order.tolist(), assign(order, weight).tolist(), strict=True))
        split[kept] = np.array([unit_split[int(c)] for c in flow_capture[kept]], dtype=np.uint8)
    return split


def _row_hashes(tokens: NDArray[np.uint16]) -> NDArray[np.uint64]:
    """A 64-bit hash of every token row (n, T), column by column."""
    h = np.full(tokens.shape[0], 0xCBF29CE484222325, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(tokens.shape[1]):
            h = (h ^ tokens[:, j].astype(np.uint64)) * np.uint64(0x100000001B3)
            h ^= h >> np.uint64(29)
    return h


def _remove_duplicates(
    tmp: Path,
    n_words: int,
    split: NDArray[np.uint8],
    label: NDArray[np.int16],
    n_classes: int,
) -> dict[str, Any]:
    """Mark evaluation rows whose exact token row sits in an earlier split; count per class.

    Validation loses rows also in train; test loses rows also in train or validation.
    """
    tokens = _raw(tmp, "tokens", n_words)
    chunk = 1 << 20
    hashes = (
        np.concatenate(
            [_row_hashes(np.asarray(tokens[i : i + chunk])) for i in range(0, len(split), chunk)]
        )
        if len(split)
        else np.zeros(0, np.uint64)
    )
    removed: dict[str, Any] = {"train": np.zeros(n_classes, dtype=np.int64)}
    seen = np.unique(hashes[split == SPLIT_CODES["train"]])
    for name in ("validation", "test"):
        rows = np.flatnonzero(split == SPLIT_CODES[name])
        dup = rows[np.isin(hashes[rows], seen)]
        removed[name] = np.bincount(label[dup], minlength=n_classes)
        split[dup] = REMOVED
        seen = np.union1d(seen, hashes[rows[~np.isin(rows, dup)]])
    return removed
