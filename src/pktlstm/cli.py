"""Command line: parse arguments -> config dataclasses -> call stages; no logic of its own."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from pktlstm.errors import ConfigError, PktlstmError

app = typer.Typer(
    name="pktlstm",
    help=(
        "Packet-level malicious traffic detection: each packet header becomes a sentence of "
        "words, an embedding + LSTM judges it (after Hwang et al., 2019).\n\n"
        "Typical flow: synth or your captures -> build (labelled dataset, split by flow) -> "
        "train -> eval -> export -> detect. Try `pktlstm demo` first."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)

# Commands are grouped by stage below; each section calls one stage module.

# --- capture & tokens (issue 2) ------------------------------------------------------------


@app.command("tokens")
def tokens_command(
    capture: Annotated[Path, typer.Argument(help="pcap or pcapng file (gzip allowed)")],
    words: Annotated[
        str, typer.Option(help="fields: the paper's 33 field words; bytes: 54 byte words")
    ] = "fields",
    policy: Annotated[
        str,
        typer.Option(help="none (the paper) | ids (mask MACs, IPs, IP id, checksums) | strict"),
    ] = "ids",
    mask: Annotated[
        str,
        typer.Option(help="per-field overrides, e.g. '+tcp.window,-ip.src' (see FIELDS)"),
    ] = "",
    head: Annotated[int, typer.Option(help="how many packets to show")] = 5,
) -> None:
    """Show the words the model will see for the first packets of a capture, with field names."""
    from rich.table import Table

    from pktlstm.io import CaptureConfig, open_capture
    from pktlstm.tokens import TokenizerConfig, describe_words

    add, remove = _parse_mask(mask)
    config = TokenizerConfig(words=words, policy=policy, mask_add=add, mask_remove=remove)
    out = Console()
    with open_capture(capture, CaptureConfig(chunk_packets=max(head, 1))) as reader:
        batch = next(iter(reader), None)
    if batch is None or len(batch) == 0:
        out.print(f"{capture}: no decodable packet")
        return
    masked = ", ".join(config.masked) or "nothing"
    out.print(
        f"[bold]{capture}[/]: {config.words} words, policy {config.policy} (masked: {masked})"
    )
    for i, (title, rows) in enumerate(describe_words(batch[:head], config)):
        table = Table(title=f"packet {i}: {title}", title_justify="left", show_edge=False)
        for column in ("#", "field", "value", "hex"):
            table.add_column(column, justify="right" if column != "field" else "left")
        for index, name, value in rows:
            table.add_row(str(index), name, str(value), f"{value:04x}")
        out.print(table)


def _parse_mask(spec: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """'+a,-b,c' -> (('a', 'c'), ('b',)): fields to mask in addition to / exempt from a policy."""
    items = [item.strip() for item in spec.split(",") if item.strip()]
    add = tuple(i.lstrip("+") for i in items if not i.startswith("-"))
    remove = tuple(i[1:] for i in items if i.startswith("-"))
    return add, remove


@app.command("inspect")
def inspect_command(
    files: Annotated[list[Path], typer.Argument(help="capture files (pcap, pcapng, .gz)")],
    json_out: Annotated[
        bool, typer.Option("--json", help="print one JSON object instead of a table")
    ] = False,
) -> None:
    """Summarise captures: packets, bytes, duration, link types, protocol mix, flows, skips."""
    import json

    from rich.progress import Progress
    from rich.table import Table

    from pktlstm.io.summary import TABLE_COLUMNS, inspect_report, summarize_capture, table_row
    from pktlstm.io.summary import total as summary_total

    summaries = []
    with Progress(console=console, transient=True, disable=json_out) as progress:
        for path in files:
            size = path.stat().st_size if path.is_file() else 0
            task = progress.add_task(path.name, total=size, visible=size > 32 << 20)

            def advance(done: int, task: Any = task) -> None:
                progress.update(task, completed=done)

            summaries.append(summarize_capture(path, progress=advance))
            progress.remove_task(task)
    out = Console()
    if json_out:
        out.print_json(json.dumps(inspect_report(summaries)))
        return
    table = Table(show_edge=False)
    for column in TABLE_COLUMNS:
        numeric = column in ("packets", "bytes", "duration", "flows")
        table.add_column(
            column,
            justify="right" if numeric else "left",
            no_wrap=numeric,
            min_width=12 if column == "file" else None,
            overflow="fold",
        )
    for summary in summaries:
        table.add_row(*table_row(summary))
    if len(summaries) > 1:
        table.add_row(*table_row(summary_total(summaries)), style="bold")
    out.print(table)


# --- synth, labels, build (issue 3) --------------------------------------------------------


@app.command("synth")
def synth_command(
    out: Annotated[Path, typer.Option(help="folder for traffic.pcap and flows.csv")],
    packets: Annotated[int, typer.Option(help="packets to generate (exactly)")] = 20_000,
    seed: Annotated[int, typer.Option(help="random seed (same seed -> same bytes)")] = 0,
    duration: Annotated[float, typer.Option(help="seconds of traffic")] = 300.0,
    mix: Annotated[
        str | None,
        typer.Option(help="class shares, e.g. benign=0.6,syn_flood=0.05 (others get none)"),
    ] = None,
    nanosecond: Annotated[
        bool, typer.Option("--nanosecond", help="nanosecond pcap timestamps")
    ] = False,
) -> None:
    """Write synthetic labelled traffic: benign sessions and Mirai-style attacks (pcap + flows.csv)."""
    from rich.table import Table

    from pktlstm.synth import DEFAULT_MIX, SynthConfig, generate, parse_mix

    config = SynthConfig(
        packets=packets, seed=seed, duration_s=duration, nanosecond=nanosecond,
        mix=parse_mix(mix) if mix else dict(DEFAULT_MIX),
    )  # fmt: skip
    result = generate(config, out)
    table = Table(show_edge=False, title=f"{result.total_packets:,} packets -> {out}")
    for column in ("class", "packets", "share", "flows", "bytes"):
        table.add_column(column, justify="left" if column == "class" else "right")
    for name, n in result.packets.items():
        table.add_row(
            name, f"{n:,}", f"{n / result.total_packets:.1%}", f"{result.flows[name]:,}",
            f"{result.bytes[name]:,}",
        )  # fmt: skip
    Console().print(table)
    console.print(f"wrote {result.pcap_path} and {result.labels_path}", soft_wrap=True)


@app.command("build")
def build_command(
    captures: Annotated[list[Path], typer.Argument(help="capture files (pcap, pcapng, .gz)")],
    labels: Annotated[
        str,
        typer.Option(
            help="label source: 'folder' or 'file' (class from each capture's folder/file name), "
            "or a CSV: manifest (path,label), flows (src_ip,src_port,dst_ip,dst_port,proto,"
            "start,end,label), sessions (file,session,label,class,first_packet,packets) or rules "
            "(src,dst,proto,dport,start,end,label); force a kind with e.g. 'rules:FILE'",
        ),
    ],
    out: Annotated[Path, typer.Option(help="dataset folder to write")],
    words: Annotated[str, typer.Option(help="fields (33 words) or bytes (54 words)")] = "fields",
    policy: Annotated[str, typer.Option(help="masking: none | ids | strict")] = "ids",
    mask: Annotated[str, typer.Option(help="per-field overrides, e.g. '+tcp.window,-ip.src'")] = "",
    split_by: Annotated[
        str, typer.Option(help="flow (sessions where labels give them) | capture | time")
    ] = "flow",
    fractions: Annotated[str, typer.Option(help="train,validation,test packet shares")] = (
        "0.7,0.15,0.15"
    ),
    seed: Annotated[int, typer.Option(help="seed of the split and of class caps")] = 0,
    default_label: Annotated[
        str, typer.Option(help="class of unmatched packets: benign | unknown (excluded)")
    ] = "benign",
    max_per_class: Annotated[
        int | None, typer.Option(help="cap packets per class (whole flows; paper: 100000)")
    ] = None,
    balance: Annotated[bool, typer.Option(help="cap every class at the smallest")] = False,
    binary: Annotated[bool, typer.Option(help="collapse attack classes into 'malicious'")] = False,
    overwrite: Annotated[bool, typer.Option(help="replace OUT if it exists")] = False,
) -> None:
    """Captures + labels -> a tokenised dataset split by flow, without leakage (card.json)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from pktlstm.dataset import BuildConfig, build
    from pktlstm.labels import open_labels

    add, remove = _parse_mask(mask)
    try:
        shares = tuple(float(x) for x in fractions.split(","))
    except ValueError as exc:
        raise ConfigError(f"--fractions {fractions!r}: three numbers like 0.7,0.15,0.15") from exc
    config = BuildConfig(
        words=words,
        policy=policy,
        mask_add=add,
        mask_remove=remove,
        split_by=split_by,
        fractions=shares,  # type: ignore[arg-type]
        seed=seed,
        default_label=default_label,
        max_per_class=max_per_class,
        balance=balance,
        binary=binary,
    )
    source = open_labels(labels)
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[packets]:,} packets"),
        TimeElapsedColumn(), console=console, transient=True,
    ) as bar:  # fmt: skip
        task = bar.add_task("reading", total=len(captures), packets=0)
        done: dict[Path, int] = {}

        def progress(path: Path, packets: int, size: int) -> None:
            done[path] = packets
            bar.update(task, description=path.name, packets=sum(done.values()),
                       completed=list(done).index(path))  # fmt: skip

        dataset = build(captures, source, config, out, overwrite=overwrite, progress=progress)
    _print_card(dataset.card)
    console.print(f"dataset written to [bold]{out}[/]")


def _print_card(card: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(title="packets (flows) per split and class; duplicates removed")
    table.add_column("class")
    for split in card["splits"]:
        table.add_column(split, justify="right")
    for name in card["classes"]:
        cells = []
        for split in card["splits"].values():
            dup = split["duplicates_removed"].get(name, 0)
            cell = f"{split['packets'].get(name, 0):,} ({split['flows'].get(name, 0):,})"
            cells.append(cell + (f" -{dup:,}" if dup else ""))
        table.add_row(name, *cells)
    Console().print(table)
    Console().print(
        f"flows in more than one split: {card['flows_in_more_than_one_split']}; "
        f"unlabelled packets excluded: {card['unlabelled_excluded']:,}"
    )


# --- model, train, eval, demo (issue 4) ----------------------------------------------------


@app.command("train")
def train_command(
    dataset: Annotated[Path, typer.Argument(help="dataset folder (from `pktlstm build`)")],
    out: Annotated[Path, typer.Option(help="model artifact folder to write")],
    preset: Annotated[str, typer.Option(help="hwang2019 (as published) | fast")] = "hwang2019",
    epochs: Annotated[int, typer.Option(help="maximum epochs (paper: up to 200)")] = 200,
    batch_size: Annotated[
        int | None, typer.Option(help="packets per batch (default: hwang2019 100, fast 256)")
    ] = None,
    optimizer: Annotated[str, typer.Option(help="adam | rmsprop")] = "adam",
    lr: Annotated[float | None, typer.Option(help="learning rate (default per preset)")] = None,
    patience: Annotated[int, typer.Option(help="early stop: epochs w/o better val loss")] = 5,
    class_weights: Annotated[str, typer.Option(help="none | balanced")] = "none",
    binary: Annotated[bool, typer.Option(help="collapse classes to benign/malicious")] = False,
    seed: Annotated[int, typer.Option(help="seed: same seed, same weights on CPU")] = 0,
    device: Annotated[str, typer.Option(help="auto (GPU when present) | cpu | cuda")] = "auto",
    threads: Annotated[int, typer.Option(help="CPU threads; 0 = all cores")] = 0,
    max_train_packets: Annotated[
        int | None, typer.Option(help="train on a seeded sample of at most N packets")
    ] = None,
    min_count: Annotated[
        int | None,
        typer.Option(help="words seen fewer times in training map to UNK (default per preset)"),
    ] = None,
    resume: Annotated[bool, typer.Option(help="continue from OUT/checkpoint.pt")] = False,
) -> None:
    """Train a packet classifier on a dataset; writes the model artifact folder OUT."""
    from pktlstm.train import TrainConfig, TrainingInterrupted, train

    config = TrainConfig.for_preset(
        preset, epochs=epochs, batch_size=batch_size, optimizer=optimizer, lr=lr,
        patience=patience, class_weights=class_weights, binary=binary, seed=seed,
        device=device, threads=threads, max_train_packets=max_train_packets, min_count=min_count,
    )  # fmt: skip
    with _TrainProgress() as progress:
        try:
            result = train(
                dataset, config, out, resume=resume,
                on_epoch=progress.epoch, on_batch=progress.batch,
            )  # fmt: skip
        except TrainingInterrupted as exc:
            progress.stop()
            console.print(str(exc), highlight=False, soft_wrap=True)
            raise typer.Exit(130) from None
    v = result.validation
    console.print(
        f"best epoch {result.best_epoch}/{len(result.history)}"
        f"{' (stopped early)' if result.stopped_early else ''}; threshold "
        f"{result.threshold:.4f} (validation F1 {100 * v['f1']:.2f}%, FPR {100 * v['fpr']:.2f}%); "
        f"{result.seconds:.0f} s\nmodel written to [bold]{result.artifact}[/]",
        highlight=False,
        soft_wrap=True,
    )


class _TrainProgress:
    """A rich progress bar over the batches of each epoch, one printed line per epoch."""

    def __enter__(self) -> _TrainProgress:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self._bar = Progress(
            TextColumn("epoch {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]:.4f}"), TimeElapsedColumn(),
            console=console, transient=True,
        )  # fmt: skip
        self._bar.__enter__()
        self._task = self._bar.add_task("train", total=None, epoch=1, loss=0.0)
        return self

    def batch(self, epoch: int, batch: int, n_batches: int, loss: float) -> None:
        self._bar.update(self._task, completed=batch, total=n_batches, epoch=epoch, loss=loss)

    def epoch(self, log: Any) -> None:
        self._bar.console.print(
            f"epoch {log.epoch}: loss {log.train_loss:.4f}  val loss {log.val_loss:.4f}  "
            f"val acc {100 * log.val_accuracy:.2f}%  val F1 {100 * log.val_f1:.2f}%  "
            f"({log.seconds:.1f} s)",
            highlight=False,
        )
        self._bar.reset(self._task, total=None)

    def note(self, text: str) -> None:
        self._bar.console.print(text, highlight=False)

    def stop(self) -> None:
        self._bar.stop()

    def __exit__(self, *exc: object) -> None:
        self._bar.__exit__(None, None, None)


@app.command("eval")
def eval_command(
    model: Annotated[Path, typer.Argument(help="model artifact folder (from `pktlstm train`)")],
    dataset: Annotated[Path, typer.Argument(help="dataset folder (from `pktlstm build`)")],
    out: Annotated[Path, typer.Option(help="report folder to write")],
    split: Annotated[str, typer.Option(help="test | validation | train")] = "test",
    max_k: Annotated[int, typer.Option(help="flow curves over the first k = 1..K packets")] = 10,
    threshold: Annotated[
        float | None, typer.Option(help="override the threshold chosen on validation")
    ] = None,
) -> None:
    """Evaluate a model on a dataset split: metrics.json, summary.md, report.html with plots."""
    from pktlstm.evaluate import EvalConfig, evaluate
    from pktlstm.report import summary_table, write_report

    evaluation = evaluate(model, dataset, EvalConfig(split=split, max_k=max_k, threshold=threshold))
    write_report(evaluation, out)
    _print_rows(summary_table(evaluation), f"{split} split")
    console.print(f"report written to [bold]{out / 'report.html'}[/]", soft_wrap=True)


@app.command("demo")
def demo_command(
    out: Annotated[Path, typer.Option(help="folder for captures, dataset, model, report")] = (
        Path("pktlstm-demo")
    ),
    packets: Annotated[int, typer.Option(help="synthetic packets to generate")] = 150_000,
    epochs: Annotated[int, typer.Option(help="training epochs (fast preset)")] = 4,
    seed: Annotated[int, typer.Option(help="seed of every stage")] = 0,
) -> None:
    """Synthesise traffic, build a dataset split by flow, train `fast`, evaluate, report."""
    from pktlstm.demo import DemoConfig, run_demo

    config = DemoConfig(out=out, packets=packets, epochs=epochs, seed=seed)
    with _TrainProgress() as progress:
        result = run_demo(
            config, on_stage=progress.note, on_epoch=progress.epoch, on_batch=progress.batch,
        )  # fmt: skip
    _print_rows(result.rows, "demo: fast preset, test split (flows never seen in training)")
    console.print(
        f"done in {result.seconds:.0f} s; report: [bold]{result.report / 'report.html'}[/]",
        soft_wrap=True,
    )


def _print_rows(rows: list[tuple[str, str]], title: str) -> None:
    from rich.table import Table

    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in rows:
        table.add_row(name, value)
    Console().print(table)


# --- export, detect (issue 5) --------------------------------------------------------------


@app.command("export")
def export_command(
    model: Annotated[Path, typer.Argument(help="model artifact folder (pktlstm train)")],
    int8: Annotated[
        bool, typer.Option("--int8", help="also write model.int8.onnx and measure the change")
    ] = False,
    tolerance: Annotated[
        float, typer.Option(help="max |score difference| ONNX Runtime vs PyTorch")
    ] = 1e-4,
    sample_packets: Annotated[int, typer.Option(help="packets in the check sample")] = 4096,
    dataset: Annotated[
        Path | None, typer.Option(help="dataset folder: its labelled test split is the sample")
    ] = None,
    sample: Annotated[
        list[Path] | None, typer.Option(help="capture file(s) to sample from (repeatable)")
    ] = None,
) -> None:
    """Export MODEL to ONNX (model.onnx) for detection without torch; checked against PyTorch."""
    from pktlstm.runtime.export import ExportConfig, export_model

    config = ExportConfig(
        int8=int8,
        tolerance=tolerance,
        sample_packets=sample_packets,
        dataset=dataset,
        captures=tuple(sample or ()),
    )
    for line in export_model(model, config).lines():
        console.print(line, highlight=False, soft_wrap=True, markup=False)


@app.command("detect")
def detect_command(
    model: Annotated[Path, typer.Option(help="model artifact folder (exported or not)")],
    pcap: Annotated[
        list[Path] | None, typer.Option(help="capture file(s) to read, in order (repeatable)")
    ] = None,
    iface: Annotated[str | None, typer.Option(help="live interface to capture (root)")] = None,
    bpf: Annotated[
        str | None, typer.Option(help="tcpdump filter expression, e.g. 'tcp or udp'")
    ] = None,
    promisc: Annotated[bool, typer.Option(help="promiscuous mode (live)")] = False,
    alerts: Annotated[
        str, typer.Option(help="EVE JSON output: - (stdout), a file, or a Unix socket")
    ] = "-",
    batch_size: Annotated[int, typer.Option(help="micro-batch flush size, packets")] = 512,
    max_wait_ms: Annotated[float, typer.Option(help="micro-batch flush after this wait")] = 5.0,
    replay: Annotated[
        str, typer.Option(help="files: asap | realtime | xN (N times recorded speed)")
    ] = "asap",
    stats_interval: Annotated[
        float, typer.Option(help="seconds between stats records (0: final only)")
    ] = 10.0,
    verdict_packets: Annotated[
        int, typer.Option(help="k: a flow is judged on its first k packets")
    ] = 3,
    aggregate: Annotated[
        str, typer.Option(help="max (alert at the first hit) | mean (of the first k scores)")
    ] = "max",
    per_packet: Annotated[
        bool, typer.Option("--per-packet", help="one alert per flagged packet, not per flow")
    ] = False,
    max_flows: Annotated[int, typer.Option(help="flow table size (LRU beyond)")] = 500_000,
    idle_timeout: Annotated[float, typer.Option(help="flow idle timeout, seconds")] = 120.0,
    backend: Annotated[str, typer.Option(help="auto | onnx | torch")] = "auto",
    int8: Annotated[bool, typer.Option("--int8", help="use model.int8.onnx")] = False,
    threads: Annotated[int, typer.Option(help="threads inside each inference call")] = 1,
    workers: Annotated[
        int, typer.Option(help="inference threads scoring consecutive micro-batches at once")
    ] = 1,
) -> None:
    """Detect malicious traffic in capture files or on a live interface; EVE JSON alerts.

    Pipeline: reader -> tokenizer (the artifact's settings) -> micro-batcher -> inference ->
    per-packet score -> flow table (first-k-packet verdict) -> alerts. Ctrl-C stops with a
    final summary.
    """
    from pktlstm.io.live import LiveConfig
    from pktlstm.runtime.engine import DetectConfig, detect
    from pktlstm.runtime.flows import FlowConfig

    config = DetectConfig(
        batch_size=batch_size,
        max_wait_ms=max_wait_ms,
        replay=replay,
        alerts=alerts,
        stats_interval_s=stats_interval,
        backend=backend,
        precision="int8" if int8 else "fp32",
        threads=threads,
        workers=workers,
        bpf=bpf,
        flows=FlowConfig(
            max_flows=max_flows,
            idle_timeout_s=idle_timeout,
            verdict_packets=verdict_packets,
            aggregate=aggregate,
            per_packet=per_packet,
        ),
    )
    live = LiveConfig(iface=iface, bpf=bpf, promisc=promisc) if iface is not None else None
    summary = detect(model, config, pcaps=pcap, live=live)
    console.print(summary.line(), highlight=False, soft_wrap=True, markup=False)


# --- compare, audit (issue 6) --------------------------------------------------------------


@app.command("compare")
def compare_command(
    model: Annotated[Path, typer.Argument(help="model artifact folder (from `pktlstm train`)")],
    dataset: Annotated[Path, typer.Argument(help="the dataset the model was trained on")],
    out: Annotated[Path, typer.Option(help="folder for metrics.json, summary.md, delay_cdf.png")],
    eval_dataset: Annotated[
        Path | None, typer.Option(help="judge the flows of another dataset (unseen sources)")
    ] = None,
    split: Annotated[str, typer.Option(help="flows judged: test | validation | all")] = "test",
    k: Annotated[str, typer.Option(help="packet verdicts from the first k packets: 1,3,10")] = (
        "1,3,10"
    ),
    packet_threshold: Annotated[
        str, typer.Option(help="flows (best flow F1 on validation, per k) | artifact")
    ] = "flows",
    idle_timeout: Annotated[float, typer.Option(help="flow record idle timeout, s")] = 120.0,
    active_timeout: Annotated[float, typer.Option(help="flow record active timeout, s")] = 1800.0,
    seed: Annotated[int, typer.Option(help="seed of the baseline classifier")] = 0,
) -> None:
    """Packet model (first k packets) vs a flow-feature baseline on the same flows: metrics,
    detection delay (CDF plot), per-capture alert rates."""
    from pktlstm.baseline import FlowConfig
    from pktlstm.compare import CompareConfig, capture_rows, compare, summary_rows, write_comparison

    try:
        ks = tuple(int(x) for x in k.split(",") if x.strip())
    except ValueError as exc:
        raise ConfigError(f"--k {k!r}: comma-separated integers like 1,3,10") from exc
    flow = FlowConfig(idle_timeout_s=idle_timeout, active_timeout_s=active_timeout, seed=seed)
    config = CompareConfig(ks=ks, split=split, flow=flow, packet_threshold=packet_threshold)
    result = compare(model, dataset, config, eval_dataset=eval_dataset)
    write_comparison(result, out)
    _print_grid(summary_rows(result), f"{split} flows: packet model vs flow baseline")
    _print_grid(capture_rows(result), "per capture: alert % (malicious flows) / false alarm %")
    console.print(f"written to [bold]{out}[/] (summary.md, metrics.json, delay_cdf.png)")


@app.command("audit")
def audit_command(
    model: Annotated[Path, typer.Argument(help="model artifact folder (from `pktlstm train`)")],
    dataset: Annotated[Path, typer.Argument(help="dataset folder built like the model's")],
    out: Annotated[Path, typer.Option(help="folder for audit.json, summary.md, importance.png")],
    split: Annotated[str, typer.Option(help="test | validation | train")] = "test",
    metric: Annotated[str, typer.Option(help="pr_auc | roc_auc | f1 | accuracy")] = "pr_auc",
    single_field: Annotated[
        bool, typer.Option(help="also train a model on each field alone (trees)")
    ] = False,
    max_packets: Annotated[int, typer.Option(help="score a seeded sample of N packets")] = 50_000,
) -> None:
    """Shortcut audit: the metric drop when each header field is masked at test time."""
    from pktlstm.audit import AuditConfig, audit, audit_rows, write_audit

    config = AuditConfig(
        split=split, metric=metric, single_field=single_field, max_packets=max_packets
    )
    result = audit(model, dataset, config)
    write_audit(result, out)
    _print_grid(audit_rows(result), f"{split} split: {metric} with each field masked")
    for warning in result.warnings:
        console.print(f"[bold yellow]warning:[/] {warning}", highlight=False)
    console.print(f"written to [bold]{out}[/] (summary.md, audit.json, importance.png)")


def _print_grid(rows: list[list[str]], title: str) -> None:
    from rich.table import Table

    table = Table(title=title)
    for i, name in enumerate(rows[0]):
        table.add_column(name, justify="left" if i == 0 else "right")
    for row in rows[1:]:
        table.add_row(*row)
    Console().print(table)


# --- lab (issue 7) -------------------------------------------------------------------------

lab_app = typer.Typer(
    help="Traffic lab (root, Linux): real servers, clients and attack tools in network "
    "namespaces on 198.18.0.0/15, captured on a bridge and labelled from what ran.",
    no_args_is_help=True,
)
app.add_typer(lab_app, name="lab")


@lab_app.command("run")
def lab_run_command(
    scenario: Annotated[
        str, typer.Option(help="shipped scenario (quick, rich) or a scenario .toml file")
    ],
    out: Annotated[Path, typer.Option(help="folder for traffic.pcap, labels.csv, scenario.json")],
    duration: Annotated[
        float | None, typer.Option(help="seconds; scales the scenario's timeline to this length")
    ] = None,
) -> None:
    """Run a scenario; `pktlstm build OUT/traffic.pcap --labels OUT/labels.csv` takes the result."""
    from pktlstm.lab import LabConfig, load_scenario, run_lab

    config = LabConfig(scenario=scenario, out=out, duration=duration)
    sc = load_scenario(scenario)
    seconds = duration if duration is not None else sc.duration
    console.print(
        f"lab: scenario {sc.name}, {len(sc.hosts)} hosts, {len(sc.benign)} clients, "
        f"{len(sc.attacks)} attacks, {seconds:g} s",
        highlight=False,
    )
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("lab: running"), BarColumn(), TextColumn("{task.completed:.0f}/{task.total:.0f} s"),
        TimeElapsedColumn(), console=console, transient=True,
    ) as bar:  # fmt: skip
        task = bar.add_task("lab", total=seconds)
        result = run_lab(config, progress=lambda done, total: bar.update(task, completed=done))
    console.print(
        f"lab: {result.packets} packets captured ({result.dropped} dropped) -> {result.pcap}; "
        f"labels {result.labels}; manifest {result.manifest}",
        highlight=False,
    )
    for failure in result.failures:
        console.print(f"[yellow]warning:[/] {failure}", highlight=False)


@lab_app.command("list")
def lab_list_command() -> None:
    """List the shipped scenarios with their length and attacks."""
    from pktlstm.lab import load_scenario, shipped_scenarios

    for name in shipped_scenarios():
        sc = load_scenario(name)
        kinds = ", ".join(sorted({a.kind for a in sc.attacks}))
        typer.echo(f"{name}\t{sc.duration:g} s\t{sc.description}\tattacks: {kinds}")


def main() -> None:
    """Entry point: user errors print one line and exit 2; Ctrl-C exits 130 quietly."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        app()
    except PktlstmError as exc:
        console.print("error:", str(exc), style="bold red", markup=False, emoji=False,
                      highlight=False, soft_wrap=True)  # fmt: skip
        sys.exit(2)
    except KeyboardInterrupt:
        console.print("interrupted")
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(0)
    except Exception as exc:  # a bug: one line for the user, the traceback on request
        if os.environ.get("PKTLSTM_DEBUG"):
            raise
        console.print(
            f"internal error (a bug in pktlstm, please report it): {type(exc).__name__}: {exc}; "
            "set PKTLSTM_DEBUG=1 to see the traceback",
            style="bold red", markup=False, emoji=False, highlight=False, soft_wrap=True,
        )  # fmt: skip
        sys.exit(1)
