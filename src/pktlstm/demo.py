"""The one-command demo: synthesise traffic, build a dataset split by flow, train `fast`, evaluate."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pktlstm.errors import ConfigError
from pktlstm.train import EpochLog

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoConfig:
    """Demo settings.

    Fields:
        out: folder that receives ``synth/`` (capture + flows.csv), ``dataset/``, ``model/``
            and ``report/``.
        packets: synthetic packets to generate (the default fits 5 minutes on 2 cores).
        epochs: training epochs of the ``fast`` preset (early stopping may end sooner).
        seed: seed of synthesis, split and training.
        max_train_packets: cap on training packets (seeded sample); None = the whole split.
    """

    out: Path = Path("pktlstm-demo")
    packets: int = 150_000
    epochs: int = 4
    seed: int = 0
    max_train_packets: int | None = None

    def __post_init__(self) -> None:
        if self.packets < 1000:
            raise ConfigError(f"demo.packets={self.packets}: at least 1000 packets needed")
        if self.epochs < 1:
            raise ConfigError(f"demo.epochs={self.epochs}: must be at least 1")


@dataclass
class DemoResult:
    """Where everything went, the headline rows and the time per stage (seconds)."""

    out: Path
    dataset: Path
    model: Path
    report: Path
    rows: list[tuple[str, str]]
    seconds: float
    stage_seconds: dict[str, float] = field(default_factory=dict)


def run_demo(
    config: DemoConfig,
    *,
    on_stage: Callable[[str], None] | None = None,
    on_epoch: Callable[[EpochLog], None] | None = None,
    on_batch: Callable[[int, int, int, float], None] | None = None,
) -> DemoResult:
    """Run synth -> build -> train (fast) -> evaluate -> report through the Python APIs.

    ``on_stage(text)`` is told when each stage starts; ``on_epoch``/``on_batch`` as in
    ``pktlstm.train.train``. Everything is written under ``config.out`` (replaced if present).
    """
    from pktlstm.dataset import BuildConfig, build
    from pktlstm.evaluate import EvalConfig, evaluate
    from pktlstm.labels import FlowLabels
    from pktlstm.report import summary_table, write_report
    from pktlstm.synth import SynthConfig, generate
    from pktlstm.train import TrainConfig, train

    def stage(text: str) -> None:
        log.info("%s", text)
        if on_stage is not None:
            on_stage(text)

    started = time.perf_counter()
    times: dict[str, float] = {}
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)

    t0 = time.perf_counter()
    stage(f"1/4 synthesising ~{config.packets:,} packets of benign and attack traffic")
    synth_dir = out / "synth"
    generate(SynthConfig(packets=config.packets, seed=config.seed), synth_dir)
    times["synth"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    stage("2/4 building a dataset split by flow (field words, identifiers masked)")
    dataset = build(
        [synth_dir / "traffic.pcap"],
        FlowLabels(synth_dir / "flows.csv"),
        BuildConfig(words="fields", policy="ids", split_by="flow", seed=config.seed),
        out / "dataset",
        overwrite=True,
    )
    times["build"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    stage("3/4 training the fast preset (threshold chosen on the validation split)")
    train_config = TrainConfig.for_preset(
        "fast",
        epochs=config.epochs,
        patience=2,
        seed=config.seed,
        max_train_packets=config.max_train_packets,
    )
    result = train(dataset, train_config, out / "model", on_epoch=on_epoch, on_batch=on_batch)
    times["train"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    stage("4/4 evaluating on the test split and writing the report")
    evaluation = evaluate(result.artifact, dataset, EvalConfig(split="test"))
    report = write_report(evaluation, out / "report", title="pktlstm demo (fast preset)")
    times["evaluate"] = time.perf_counter() - t0
    return DemoResult(
        out=out,
        dataset=dataset.path,
        model=result.artifact,
        report=report,
        rows=summary_table(evaluation),
        seconds=time.perf_counter() - started,
        stage_seconds=times,
    )
