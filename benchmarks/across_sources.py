"""Benchmark: train on some sources of ../shared/data, test on sources the model never saw.

Two source sets (binary labels; ambiguous and malformed nDPI files left out; the nDPI benign
files split in two halves by a hash of the file name):

- A: USTC-TFC2016 t10k (10 benign apps, 10 malware families, labelled by session) + nDPI
  benign half a + Slips (IoT botnet, scans, SSH brute force, C&C);
- B: StopDDoS (floods, reflection, amplification) + nDPI attack files (scans, exploits,
  malware, tunnels) + nDPI benign half b.

For A -> B and B -> A: the packet model (`fast` preset, capped epochs and training packets)
and the flow baseline train on one set's train flows, choose thresholds on its validation
flows, and are judged on (1) the same set's test flows (in distribution) and (2) every flow of
the other set. Prints per-flow metrics, per-capture alert rates (share of each malicious
capture's flows flagged; false-alarm rate of benign captures, nDPI benign files pooled) and a
shortcut audit of the model trained on A.

    .venv/bin/python benchmarks/across_sources.py        # ~10 min on 2 cores
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import Any

from compare import DATA, build_real, describe, print_table, train_fast
from pktlstm.audit import AuditConfig, audit, audit_rows
from pktlstm.compare import CompareConfig, Comparison, compare, write_comparison

SETS = {
    "A": (["ustc", "ndpi-benign-a", "slips"], "USTC-TFC2016 + nDPI benign (a) + Slips"),
    "B": (
        ["stopddos", "ndpi-attack", "ndpi-benign-b"],
        "StopDDoS + nDPI attacks + nDPI benign (b)",
    ),
}


def pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}"


def capture_table(result: Comparison) -> None:
    """Per malicious capture: alert %; benign captures: false-alarm % (nDPI benign pooled)."""
    methods = [m.name for m in result.methods if m.name != "flow baseline, at expiry"]
    names = [m.replace("flow baseline, at last packet", "flow baseline") for m in methods]
    print("| capture | flows | malicious | " + " | ".join(names) + " |")
    print("|---|---|---|" + "---|" * len(names))
    pooled: dict[str, Any] = {"flows": 0, "files": 0, "fa": {m: 0.0 for m in methods}}
    for e in result.per_capture():
        benign = e["malicious_flows"] == 0
        if benign and e["capture"].startswith("ndpi/"):
            pooled["flows"] += e["flows"]
            pooled["files"] += 1
            for m in methods:
                pooled["fa"][m] += (e[m]["false_alarm"] or 0.0) * e["flows"]
            continue
        key = "false_alarm" if benign else "alert"
        cells = [f"{pct(e[m][key])}{' FA' if benign else ''}" for m in methods]
        print(
            f"| {e['capture']} | {e['flows']} | {e['malicious_flows']} | "
            + " | ".join(cells)
            + " |"
        )
    if pooled["files"]:
        cells = [f"{pct(pooled['fa'][m] / max(pooled['flows'], 1))} FA" for m in methods]
        print(
            f"| ndpi benign ({pooled['files']} files) | {pooled['flows']} | 0 | "
            + " | ".join(cells)
            + " |"
        )
    print("(alert % = malicious flows flagged; FA = false-alarm % of benign flows)")


def headline(rows: list[tuple[str, Comparison]]) -> None:
    print("\n## Headline: F1 % / PR-AUC / FPR % of flow verdicts\n")
    print("| run | packet, first 1 | packet, first 10 | flow baseline |")
    print("|---|---|---|---|")
    for name, result in rows:
        t = {r["method"]: r for r in result.table()}
        cells = []
        for m in ("packet, first 1", "packet, first 10", "flow baseline, at last packet"):
            r = t[m]
            auc = "n/a" if r["pr_auc"] is None else f"{r['pr_auc']:.3f}"
            cells.append(f"{pct(r['f1'])} / {auc} / {pct(r['fpr'])}")
        print(f"| {name} | " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/pktlstm-bench-across"))
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--max-train", type=int, default=30_000)
    parser.add_argument("--max-per-class", type=int, default=40_000)
    parser.add_argument("--audit-packets", type=int, default=20_000)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if not DATA.is_dir():
        print(f"{DATA} absent: nothing to do")
        return
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    print(
        f"caps: fast preset, <= {args.epochs} epochs (patience 2), <= {args.max_train} training "
        f"packets, <= {args.max_per_class} packets per class per set (whole flows)"
    )
    t0 = time.perf_counter()
    ds, model = {}, {}
    for name, (groups, title) in SETS.items():
        ds[name] = build_real(DATA, groups, work / f"ds-{name}", args.max_per_class)
        print(f"set {name}: {title}; {describe(ds[name])}")
        model[name] = train_fast(ds[name], work / f"model-{name}", args.epochs, args.max_train)
    rows = []
    config = CompareConfig(ks=(1, 3, 10))
    for train_set, test_set in (("A", "B"), ("B", "A")):
        inside = compare(model[train_set], ds[train_set], config)
        write_comparison(inside, work / f"compare-{train_set}-test")
        print_table(inside, f"train {train_set}, test {train_set} (test flows: in distribution)")
        capture_table(inside)
        across = compare(
            model[train_set],
            ds[train_set],
            CompareConfig(ks=(1, 3, 10), split="all"),
            eval_dataset=ds[test_set],
        )
        write_comparison(across, work / f"compare-{train_set}-on-{test_set}")
        print_table(across, f"train {train_set}, test {test_set} (all flows: unseen sources)")
        capture_table(across)
        rows += [
            (f"{train_set} -> {train_set} (test)", inside),
            (f"{train_set} -> {test_set}", across),
        ]
    headline(rows)

    result = audit(
        model["A"], ds["A"], AuditConfig(max_packets=args.audit_packets, single_field=True)
    )
    print(f"\n## Shortcut audit: model A on A's test split ({result.info['packets']} packets)\n")
    for row in audit_rows(result)[:9]:
        print("| " + " | ".join(row) + " |")
    for w in result.warnings:
        print(f"WARNING: {w}")
    print(f"\n[{time.perf_counter() - t0:.0f} s; outputs in {work}]")


if __name__ == "__main__":
    main()
