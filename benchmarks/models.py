"""Choose the `fast` preset by measurement: accuracy and speed of model variants vs hwang2019.

Trains every candidate on the same dataset (same train sample, epochs and seed), then prints
one Markdown row each: training CPU and wall time per epoch, inference packets/s (median of 3),
and test-split packet F1, FPR, PR-AUC and flow F1 from the first packet, at the threshold
chosen on validation. Ratios are vs hwang2019 in the same run.

    .venv/bin/python benchmarks/models.py                        # synthetic 100k packets
    .venv/bin/python benchmarks/models.py --dataset DATASET --epochs 3 --max-train 40000
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from pktlstm.dataset import BuildConfig, Dataset, build
from pktlstm.evaluate import EvalConfig, evaluate
from pktlstm.labels import FlowLabels
from pktlstm.model import load_artifact
from pktlstm.synth import SynthConfig, generate
from pktlstm.train import TrainConfig, train

# name -> (preset, train overrides, model overrides)
CANDIDATES: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
    "hwang2019": ("hwang2019", {}, {}),
    "fast (e16 gru32, varying words, b256)": ("fast", {}, {}),
    "fast, batch 100": ("fast", {"batch_size": 100}, {}),
    "fast, all 33 words": ("fast", {}, {"positions": None}),
    "e32 lstm64, varying words": ("fast", {}, {"embed_dim": 32, "cell": "lstm", "hidden": (64,)}),
    "e32 gru64, varying words": ("fast", {}, {"embed_dim": 32, "hidden": (64,)}),
}


def synth_dataset(root: Path, packets: int, seed: int) -> Dataset:
    out = root / f"synth-{packets}-{seed}"
    if (out / "dataset" / "card.json").is_file():
        return Dataset.open(out / "dataset")
    generate(SynthConfig(packets=packets, seed=seed), out / "synth")
    return build(
        [out / "synth" / "traffic.pcap"],
        FlowLabels(out / "synth" / "flows.csv"),
        BuildConfig(words="fields", policy="ids", split_by="flow", seed=seed),
        out / "dataset",
        overwrite=True,
    )


def inference_rate(model_dir: Path, tokens: Any) -> float:
    """Packets per second of ArtifactModel.predict_proba on ``tokens`` (median of 3 runs)."""
    art = load_artifact(model_dir)
    art.predict_proba(tokens[:4096])  # warm-up
    runs = []
    for _ in range(3):
        t0 = time.perf_counter()
        art.predict_proba(tokens)
        runs.append(time.perf_counter() - t0)
    return len(tokens) / statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, help="built dataset (default: synthesise one)")
    parser.add_argument("--packets", type=int, default=100_000, help="synthetic packets")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--max-train", type=int, default=40_000, help="train packets (sample)")
    parser.add_argument("--only", nargs="*", help="candidate names to run (substring match)")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "pktlstm-bench")
    args = parser.parse_args()

    ds = Dataset.open(args.dataset) if args.dataset else synth_dataset(args.work, args.packets, 0)
    test_tokens = ds.split("test").tokens
    print(
        f"dataset {ds.path}: {len(ds.split('train'))} train packets "
        f"(sample {args.max_train}), {len(test_tokens)} test; {args.epochs} epochs; "
        f"torch threads {torch.get_num_threads()}"
    )
    rows = []
    for name, (preset_name, train_over, model_over) in CANDIDATES.items():
        if args.only and not any(o in name for o in args.only):
            continue
        config = TrainConfig.for_preset(
            preset_name, epochs=args.epochs, patience=0, seed=0,
            max_train_packets=args.max_train, **train_over,
        )  # fmt: skip
        out = args.work / "models" / name.replace(" ", "_").replace(",", "")
        cpu0 = time.process_time()
        result = train(ds, config, out, model_overrides=model_over)
        cpu = (time.process_time() - cpu0) / args.epochs
        wall = statistics.median(e.seconds for e in result.history)
        ev = evaluate(out, ds, EvalConfig(max_k=1))
        p = ev.metrics["packets"]
        rows.append(
            {
                "name": name,
                "params": sum(v.numel() for v in load_artifact(out).build_model().parameters()),
                "words": result.model_config.n_words,
                "cpu": cpu,
                "wall": wall,
                "rate": inference_rate(out, test_tokens),
                "f1": p["f1"],
                "fpr": p["fpr"],
                "pr_auc": p["pr_auc"],
                "flow_f1": ev.metrics["flows"]["any"][0]["f1"],
            }
        )
        print(f"  {name}: done ({cpu:.1f} CPU s/epoch)", flush=True)
    ref = next((r for r in rows if r["name"] == "hwang2019"), rows[0])
    print()
    print(
        "| model | params | words | train CPU s/epoch | wall s/epoch | x faster | "
        "infer pkt/s | x | F1 % | FPR % | PR-AUC | flow F1 % (k=1) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['name']} | {r['params']:,} | {r['words']} | {r['cpu']:.1f} | {r['wall']:.1f} | "
            f"{ref['cpu'] / r['cpu']:.1f} | {r['rate']:,.0f} | {r['rate'] / ref['rate']:.1f} | "
            f"{100 * r['f1']:.2f} | {100 * r['fpr']:.2f} | {r['pr_auc']:.4f} | "
            f"{100 * r['flow_f1']:.2f} |"
        )


if __name__ == "__main__":
    main()
