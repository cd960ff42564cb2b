"""Paper comparison: USTC-TFC2016 (t10k test split) split by session, policies x word kinds.

Builds one binary dataset per (words, policy) from ../shared/data/ustc-tfc2016-t10k with the
per-session labels (sessions are the flows, so the split is by session and no session is on
both sides), trains the chosen preset, evaluates on the test split at the threshold chosen on
validation, and prints a Markdown table with the paper's figures beside.

    .venv/bin/python benchmarks/paper_table.py --preset hwang2019 --epochs 3 --max-train 20000
    .venv/bin/python benchmarks/paper_table.py --preset fast --epochs 5
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from pktlstm.dataset import BuildConfig, Dataset, build
from pktlstm.evaluate import EvalConfig, evaluate
from pktlstm.labels import SessionLabels
from pktlstm.train import TrainConfig, train

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "ustc-tfc2016-t10k"
# Hwang et al. 2019, Table (USTC-TFC2016, test): accuracy, precision, recall, F1, FPR (%).
PAPER = (99.99, 100.0, 99.99, 99.99, 0.0)


def dataset_for(words: str, policy: str, work: Path, seed: int) -> Dataset:
    out = work / f"ustc-{words}-{policy}-s{seed}"
    if (out / "card.json").is_file():
        return Dataset.open(out)
    captures = sorted(DATA.glob("*/*.pcap"))
    config = BuildConfig(words=words, policy=policy, split_by="flow", seed=seed, binary=True)
    return build(captures, SessionLabels(DATA / "sessions.csv"), config, out, overwrite=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="hwang2019", choices=("hwang2019", "fast"))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--max-train", type=int, default=20_000, help="train packets (sample)")
    parser.add_argument("--words", nargs="*", default=["fields", "bytes"])
    parser.add_argument("--policies", nargs="*", default=["none", "ids", "strict"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "pktlstm-paper")
    args = parser.parse_args()
    if not (DATA / "sessions.csv").is_file():
        raise SystemExit(f"{DATA}: USTC-TFC2016 t10k data not found")

    rows = []
    for words in args.words:
        for policy in args.policies:
            t0 = time.perf_counter()
            ds = dataset_for(words, policy, args.work, args.seed)
            config = TrainConfig.for_preset(
                args.preset, epochs=args.epochs, patience=0, seed=args.seed,
                max_train_packets=args.max_train,
            )  # fmt: skip
            model = args.work / f"model-{args.preset}-{words}-{policy}"
            result = train(ds, config, model)
            ev = evaluate(model, ds, EvalConfig(max_k=3))
            p = ev.metrics["packets"]
            rows.append((words, policy, p, ev.metrics["flows"]["any"][0], len(ds.split("test"))))
            print(
                f"  {words}/{policy}: F1 {100 * p['f1']:.2f}% in {time.perf_counter() - t0:.0f} s "
                f"({result.model_config.n_words} words read)",
                flush=True,
            )

    print()
    print(
        f"pktlstm `{args.preset}`, {args.epochs} epochs on at most {args.max_train:,} train "
        f"packets, seed {args.seed}; test split by session; threshold from validation."
    )
    print()
    print("| words | policy | accuracy % | precision % | recall % | F1 % | FPR % | ROC-AUC | "
          "PR-AUC | session F1 % (1st pkt) | test packets |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    a, pr, r, f, fpr = PAPER
    print(f"| paper (fields) | none | {a} | {pr} | {r} | {f} | ~{fpr} | | | | |")
    for words, policy, p, flow, n_test in rows:
        auc = "n/a" if p["roc_auc"] is None else f"{p['roc_auc']:.4f}"
        prauc = "n/a" if p["pr_auc"] is None else f"{p['pr_auc']:.4f}"
        print(
            f"| {words} | {policy} | {100 * p['accuracy']:.2f} | {100 * p['precision']:.2f} | "
            f"{100 * p['recall']:.2f} | {100 * p['f1']:.2f} | {100 * p['fpr']:.2f} | {auc} | "
            f"{prauc} | {100 * flow['f1']:.2f} | {n_test:,} |"
        )


if __name__ == "__main__":
    main()
