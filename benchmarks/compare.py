"""Benchmark: packet model (first 1, 3, 10 packets) vs flow baseline on synthetic and real captures.

Prints the per-flow comparison table of the README (accuracy, precision, recall, F1, FPR,
PR-AUC, detection delay median / p95) for:

- synthetic traffic (`pktlstm synth`), split by flow;
- the real captures of ../shared/data (USTC-TFC2016 t10k by session, nDPI benign and attack
  files, Slips, StopDDoS; binary labels; ambiguous and malformed nDPI files left out), split
  by flow (sessions for USTC-TFC2016), at most --max-per-class packets per class.

The packet model is the `fast` preset, trained for at most --epochs epochs on a seeded sample
of at most --max-train packets (CPU budget); the baseline trains on the same train flows.

    .venv/bin/python benchmarks/compare.py            # both, ~10 min on 2 cores
    .venv/bin/python benchmarks/compare.py --only synth
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import logging
import time
from pathlib import Path
from typing import Any

from pktlstm.compare import CompareConfig, Comparison, compare, summary_rows, write_comparison
from pktlstm.dataset import BuildConfig, Dataset, build
from pktlstm.io import PacketBatch
from pktlstm.labels import Assignment, FileLabels, FlowLabels, SessionLabels
from pktlstm.train import TrainConfig, train

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
log = logging.getLogger("bench")


class MixedLabels:
    """USTC-TFC2016 t10k captures by session (sessions.csv), every other file by the manifest."""

    def __init__(self, data: Path) -> None:
        self.t10k = (data / "ustc-tfc2016-t10k").resolve()
        self.sessions = SessionLabels(self.t10k / "sessions.csv")
        self.files = FileLabels.from_manifest(data / "manifest.csv")

    def describe(self) -> dict[str, Any]:
        return {"kind": "mixed", "parts": [self.sessions.describe(), self.files.describe()]}

    def assign(self, batch: PacketBatch, capture: Path) -> Assignment:
        if self.t10k in capture.resolve().parents:
            return self.sessions.assign(batch, capture)
        return self.files.assign(batch, capture)


def manifest(data: Path) -> list[dict[str, str]]:
    with (data / "manifest.csv").open() as fh:
        return list(csv.DictReader(fh))


def ndpi_half(path: str) -> str:
    """Seeded split of the nDPI benign files into halves ``a`` and ``b`` by a hash of the name."""
    return "a" if hashlib.sha256(path.encode()).digest()[0] % 2 == 0 else "b"


def sources(data: Path, groups: list[str]) -> list[Path]:
    """Capture paths of the named groups: ``ustc`` (t10k), ``ndpi-benign``, ``ndpi-benign-a``,
    ``ndpi-benign-b``, ``ndpi-attack``, ``slips``, ``stopddos``."""
    out = []
    for row in manifest(data):
        path, label = row["path"], row["label"]
        top = path.split("/")[0]
        names = {
            "ustc": top == "ustc-tfc2016-t10k",
            "ndpi-benign": top == "ndpi" and label == "benign",
            "ndpi-benign-a": top == "ndpi" and label == "benign" and ndpi_half(path) == "a",
            "ndpi-benign-b": top == "ndpi" and label == "benign" and ndpi_half(path) == "b",
            "ndpi-attack": top == "ndpi" and label == "malicious",
            "slips": top == "slips",
            "stopddos": top == "stopddos",
        }
        if any(names[g] for g in groups):
            out.append(data / path)
    return out


def build_real(data: Path, groups: list[str], out: Path, max_per_class: int) -> Dataset:
    config = BuildConfig(binary=True, max_per_class=max_per_class, seed=0)
    return build(sources(data, groups), MixedLabels(data), config, out, overwrite=True)


def train_fast(ds: Dataset, out: Path, epochs: int, max_train: int) -> Path:
    config = TrainConfig.for_preset(
        "fast", epochs=epochs, patience=2, seed=0, max_train_packets=max_train, binary=True
    )
    return train(ds, config, out).artifact


def print_table(result: Comparison, title: str) -> None:
    rows = summary_rows(result)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    print(f"\n## {title}\n")
    for j, row in enumerate(rows):
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
        if j == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")


def describe(ds: Dataset) -> str:
    s = ds.card["splits"]
    flows = {k: sum(v["flows"].values()) for k, v in s.items()}
    packets = {k: sum(v["packets"].values()) for k, v in s.items()}
    return f"packets {packets}, flows {flows}"


def run_synth(work: Path, args: argparse.Namespace) -> None:
    from pktlstm.synth import SynthConfig, generate

    t0 = time.perf_counter()
    generate(SynthConfig(packets=args.synth_packets, seed=0), work / "synth")
    ds = build(
        [work / "synth" / "traffic.pcap"],
        FlowLabels(work / "synth" / "flows.csv"),
        BuildConfig(seed=0),
        work / "synth-ds",
        overwrite=True,
    )
    model = train_fast(ds, work / "synth-model", args.epochs, args.max_train)
    result = compare(model, ds, CompareConfig(ks=(1, 3, 10)))
    write_comparison(result, work / "synth-compare")
    print_table(result, f"synthetic ({args.synth_packets} packets): test flows, {describe(ds)}")
    print(f"thresholds (chosen on validation flows): {result.info['thresholds']}")
    print(f"[{time.perf_counter() - t0:.0f} s; outputs in {work / 'synth-compare'}]")


def run_real(work: Path, args: argparse.Namespace) -> None:
    if not DATA.is_dir():
        print(f"\n{DATA} absent: real-capture comparison skipped")
        return
    t0 = time.perf_counter()
    groups = ["ustc", "ndpi-benign", "ndpi-attack", "slips", "stopddos"]
    ds = build_real(DATA, groups, work / "real-ds", args.max_per_class)
    model = train_fast(ds, work / "real-model", args.epochs, args.max_train)
    result = compare(model, ds, CompareConfig(ks=(1, 3, 10)))
    write_comparison(result, work / "real-compare")
    print_table(result, f"real captures, all sources mixed: test flows, {describe(ds)}")
    print(f"thresholds (chosen on validation flows): {result.info['thresholds']}")
    print(f"[{time.perf_counter() - t0:.0f} s; outputs in {work / 'real-compare'}]")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/pktlstm-bench-compare"))
    parser.add_argument("--only", choices=["synth", "real"], default=None)
    parser.add_argument("--synth-packets", type=int, default=60_000)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--max-train", type=int, default=30_000)
    parser.add_argument("--max-per-class", type=int, default=40_000)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    args.work.mkdir(parents=True, exist_ok=True)
    print(
        f"caps: fast preset, <= {args.epochs} epochs (patience 2), <= {args.max_train} training "
        f"packets; real data <= {args.max_per_class} packets per class (whole flows)"
    )
    if args.only in (None, "synth"):
        run_synth(args.work, args)
    if args.only in (None, "real"):
        run_real(args.work, args)


if __name__ == "__main__":
    main()
