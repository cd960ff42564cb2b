"""The detection pipeline: reader -> tokenizer -> micro-batcher -> inference -> flows -> alerts."""

from __future__ import annotations

import functools
import gc
import logging
import queue
import re
import time
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pktlstm.errors import ConfigError
from pktlstm.io.batch import DecodeStats, PacketBatch
from pktlstm.io.live import LiveCapture, LiveConfig, open_live
from pktlstm.io.reader import CaptureConfig
from pktlstm.runtime.alerts import EveWriter, Source
from pktlstm.runtime.bpf import BpfFilter
from pktlstm.runtime.detector import Detector, load_detector
from pktlstm.runtime.flows import FlowConfig, FlowTable, flow_keys
from pktlstm.runtime.sources import DONE, Chunk, FileSources, Producer
from pktlstm.runtime.stats import LatencyHistogram

log = logging.getLogger(__name__)

_REPLAY = re.compile(r"^(asap|realtime|x(\d+(\.\d+)?))$")
# Idle flows are expired at most once per this much capture time (ns).
_EXPIRE_EVERY_NS = 1_000_000_000


@dataclass(frozen=True)
class DetectConfig:
    """Settings of the detection pipeline (model settings come from the artifact only).

    batch_size: the micro-batcher flushes when this many packets wait for inference.
    max_wait_ms: ... or when the oldest waiting packet has waited this long.
    replay: for files: ``asap`` (as fast as possible), ``realtime`` (recorded speed) or
        ``xN`` (N times recorded speed, e.g. ``x10``).
    alerts: ``-`` (stdout), a file (appended) or an existing Unix socket.
    bpf: tcpdump filter expression for capture files (live capture filters in the kernel,
        set in ``LiveConfig``); packets it rejects are counted as ``detect.filtered``.
    stats_interval_s: seconds between ``stats`` records (0: only the final one).
    backend, precision, threads: inference (see ``load_detector``).
    queue_chunks: chunks buffered between the reader thread and inference (back-pressure;
        files are read in chunks of 16,384 packets, so 8 chunks bound memory to ~40 MB).
    workers: inference threads scoring consecutive micro-batches at once (results are
        applied to the flow table in order); 1 (default) scores in the batcher thread itself:
        on 2 cores more threads add hand-off latency without adding packets/s (measured).
    flows: the flow table and verdict rule.
    """

    batch_size: int = 512
    max_wait_ms: float = 5.0
    replay: str = "asap"
    alerts: str = "-"
    bpf: str | None = None
    stats_interval_s: float = 10.0
    backend: str = "auto"
    precision: str = "fp32"
    threads: int = 1
    queue_chunks: int = 8
    workers: int = 1
    flows: FlowConfig = field(default_factory=FlowConfig)

    def __post_init__(self) -> None:
        if not 1 <= self.batch_size <= 1 << 20:
            raise ConfigError(f"batch_size={self.batch_size}: must be in 1..1048576 packets")
        if not 0 <= self.max_wait_ms <= 60_000:
            raise ConfigError(f"max_wait_ms={self.max_wait_ms}: must be in 0..60000 ms")
        if not _REPLAY.match(self.replay) or self.replay == "x0":
            raise ConfigError(f"replay={self.replay!r}: choose asap, realtime or xN (N > 0)")
        if self.replay.startswith("x") and float(self.replay[1:]) <= 0:
            raise ConfigError(f"replay={self.replay!r}: the speed-up N must be > 0")
        if self.stats_interval_s < 0:
            raise ConfigError(f"stats_interval_s={self.stats_interval_s}: must be >= 0")
        if not 1 <= self.workers <= 64:
            raise ConfigError(f"workers={self.workers}: must be in 1..64 inference threads")
        if not 1 <= self.queue_chunks <= 100_000:
            raise ConfigError(f"queue_chunks={self.queue_chunks}: must be in 1..100000")

    @property
    def speed(self) -> float | None:
        """Replay speed factor; None for ``asap``."""
        if self.replay == "asap":
            return None
        return 1.0 if self.replay == "realtime" else float(self.replay[1:])


@dataclass
class DetectSummary:
    """Totals of one detection run."""

    packets: int = 0
    alerts: int = 0
    elapsed_s: float = 0.0
    batches: int = 0
    interrupted: bool = False
    skipped: dict[str, int] = field(default_factory=dict)
    flows: dict[str, int] = field(default_factory=dict)
    latency_ms: dict[str, float | None] = field(default_factory=dict)
    batch_ms: dict[str, float | None] = field(default_factory=dict)
    backend: str = ""
    # CPU seconds per pipeline stage: "reader" (read, decode, tokenize files), "inference"
    # (tokenize live/replay, model; all workers together) and "batcher" (flow table, alerts).
    thread_cpu_s: dict[str, float] = field(default_factory=dict)
    workers: int = 1

    @property
    def packets_per_s(self) -> float:
        return self.packets / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def line(self) -> str:
        lat = self.latency_ms
        return (
            f"{self.packets} packets in {self.elapsed_s:.2f} s ({self.packets_per_s:,.0f}/s), "
            f"{self.alerts} alerts, {self.flows.get('created', 0)} flows, verdict latency p50 "
            f"{lat.get('p50')} ms p99 {lat.get('p99')} ms, skipped {sum(self.skipped.values())}"
            f" [{self.backend}]" + (" (interrupted)" if self.interrupted else "")
        )


class Engine:
    """Runs detection on opened sources; ``run()`` returns a DetectSummary.

    Threads: one reader thread (read, decode, pace, tokenize), ``config.workers`` inference
    threads, and the calling thread (micro-batcher, flow table, alerts, stats), which applies
    scored batches in arrival order. ONNX Runtime and numpy release the GIL, so they overlap.
    """

    def __init__(
        self,
        detector: Detector,
        sources: FileSources | LiveCapture,
        writer: EveWriter,
        config: DetectConfig,
        bpf: BpfFilter | None = None,
    ) -> None:
        self.detector = detector
        self.bpf = bpf
        self.sources = sources
        self.writer = writer
        self.config = config
        self.table = FlowTable(config.flows, detector.threshold)
        self.latency = LatencyHistogram()  # arrival -> verdict, per packet
        self.batch_latency = LatencyHistogram()  # inference + flows + alerts, per batch
        self._period_latency = LatencyHistogram()
        self._period_batch = LatencyHistogram()
        self.packets = 0
        self.batches = 0
        self._clock_ns = 0  # newest capture timestamp seen (drives idle expiry)
        self._last_expire_ns = 0
        self.on_batch: Callable[[int], None] | None = None  # hook for benchmarks
        self._producer: Producer | None = None
        self._pool: ThreadPoolExecutor | None = None
        # scored or being scored, oldest first: (future, batch, arrival_ns, start_ns)
        self._inflight: deque[tuple[Future[Any], PacketBatch, NDArray[np.int64], int]] = deque()
        self._infer_cpu_s = 0.0

    def _decode_stats(self) -> DecodeStats:
        total = DecodeStats()
        if isinstance(self.sources, LiveCapture):
            parts = [self.sources.stats]
        else:
            parts = list(self.sources.stats)
        for st in parts:  # the reader thread updates these: copy each dict in one C call
            total.packets += st.packets
            total.bytes += st.bytes
            total.skipped.update(dict(st.skipped))
        return total

    def _counters(self, elapsed_s: float, period_s: float, period_packets: int) -> dict[str, Any]:
        dec = self._decode_stats()
        skipped = dict(dec.skipped)
        drops = skipped.pop("capture.kernel_drops", None)
        counters: dict[str, Any] = {
            "uptime": round(elapsed_s, 3),
            "decoder": {"pkts": dec.packets, "bytes": dec.bytes, "skipped": skipped},
            "detect": {
                "pkts": self.packets,
                "alerts": self.writer.alerts_written,
                "batches": self.batches,
                "filtered": self._producer.filtered if self._producer else 0,
                "pkts_per_s": round(period_packets / period_s, 1) if period_s > 0 else 0.0,
                "verdict_latency_ms": self._period_latency.summary_ms(),
                "batch_latency_ms": self._period_batch.summary_ms(),
                "backend": self.detector.scorer.name,
            },
            "flow": self.table.stats(),
        }
        if isinstance(self.sources, LiveCapture):
            counters["capture"] = {
                "kernel_packets": self.sources.kernel_packets,
                "kernel_drops": drops or 0,
            }
        return counters

    def _score(
        self, batch: PacketBatch, inputs: NDArray[np.int32] | None
    ) -> tuple[NDArray[np.float32], NDArray[np.int16], float]:
        """Scores of one micro-batch (runs in an inference thread) and its CPU seconds."""
        cpu0 = time.thread_time()
        if inputs is None:
            inputs = self.detector.inputs(batch)
        score, klass = self.detector.score_inputs(inputs)
        return score, klass, time.thread_time() - cpu0

    def _submit(self, chunks: list[Chunk]) -> None:
        """Hand one micro-batch to inference; apply finished ones while too many are out."""
        start = time.time_ns()
        one = len(chunks) == 1
        batch = chunks[0].batch if one else PacketBatch.concat([c.batch for c in chunks])
        arrival = chunks[0].arrival_ns if one else np.concatenate([c.arrival_ns for c in chunks])
        parts = [c.inputs for c in chunks if c.inputs is not None]
        inputs = None
        if len(parts) == len(chunks):
            inputs = parts[0] if one else np.concatenate(parts)
        future: Future[Any] = Future()
        if self._pool is None:
            future.set_result(self._score(batch, inputs))
        else:
            future = self._pool.submit(self._score, batch, inputs)
        self._inflight.append((future, batch, arrival, start))
        limit = self.config.workers if self._pool is not None else 0
        while len(self._inflight) > limit:
            self._apply_oldest()

    def _apply_ready(self, wait: bool = False) -> None:
        """Apply scored batches, oldest first: those done, or all of them when ``wait``."""
        while self._inflight and (wait or self._inflight[0][0].done()):
            self._apply_oldest()

    def _apply_oldest(self) -> None:
        future, batch, arrival, start = self._inflight.popleft()
        score, klass, cpu_s = future.result()
        self._infer_cpu_s += cpu_s
        verdicts = self.table.update(batch, score, klass, flow_keys(batch))
        self.writer.alerts(verdicts)
        self._clock_ns = max(self._clock_ns, int(batch.ts_ns.max()))
        if self._clock_ns - self._last_expire_ns >= _EXPIRE_EVERY_NS:
            self.writer.alerts(self.table.expire(self._clock_ns))
            self._last_expire_ns = self._clock_ns
        done = time.time_ns()
        lat = done - arrival
        self.latency.add(lat)
        self._period_latency.add(lat)
        self.batch_latency.add(np.array([done - start]))
        self._period_batch.add(np.array([done - start]))
        self.packets += len(batch)
        self.batches += 1
        if self.on_batch is not None:
            self.on_batch(len(batch))

    def run(self) -> DetectSummary:
        cfg = self.config
        q: queue.Queue[Any] = queue.Queue(maxsize=cfg.queue_chunks)
        producer = Producer(self.sources, self.detector, cfg.speed, q, self.bpf)
        self._producer = producer
        pending: list[Chunk] = []
        n_pending = 0
        wait_ns = int(cfg.max_wait_ms * 1e6)
        t_start = time.monotonic()
        cpu0 = time.thread_time()
        next_stats = t_start + cfg.stats_interval_s if cfg.stats_interval_s else float("inf")
        period_start, period_packets = t_start, 0
        interrupted = False
        live = isinstance(self.sources, LiveCapture)  # capture time is wall time

        def flush() -> None:
            nonlocal pending, n_pending, period_packets
            if pending:
                self._submit(pending)
                period_packets += n_pending
                pending, n_pending = [], 0

        self.detector.warm_up(cfg.batch_size)
        # Collect once, then exempt everything alive (modules, model, tables) from later
        # collections: a full collection mid-run would pause all threads for ~100 ms.
        gc.collect()
        gc.freeze()
        if cfg.workers > 1:
            self._pool = ThreadPoolExecutor(cfg.workers, thread_name_prefix="pktlstm-infer")
        producer.start()
        try:
            finished = False
            while not finished:
                self._apply_ready()
                timeout = 0.1
                if pending:
                    oldest = int(pending[0].arrival_ns[0])
                    timeout = max(0.0, (oldest + wait_ns - time.time_ns()) / 1e9)
                if self._inflight:  # poll: a scored batch is applied within 0.5 ms
                    timeout = min(timeout, 0.0005)
                try:
                    item = q.get(timeout=timeout) if timeout > 0 else q.get_nowait()
                except queue.Empty:
                    item = None
                if isinstance(item, BaseException):
                    raise item
                if isinstance(item, str):  # END_OF_SOURCE or DONE
                    flush()
                    self._apply_ready(wait=True)
                    self.writer.alerts(self.table.expire(None))
                    self._clock_ns = self._last_expire_ns = 0
                    finished = item == DONE
                elif isinstance(item, Chunk):
                    # split so that no flush exceeds batch_size packets
                    b, c = item, cfg.batch_size
                    start = 0
                    while start < len(b.batch):
                        room = c - n_pending
                        part = Chunk(
                            b.batch[start : start + room],
                            None if b.inputs is None else b.inputs[start : start + room],
                            b.arrival_ns[start : start + room],
                        ) if start or room < len(b.batch) else b  # fmt: skip
                        pending.append(part)
                        n_pending += len(part.batch)
                        start += len(part.batch)
                        if n_pending >= c:
                            flush()
                # overdue: flush, but first drain what is queued (bigger batches catch up)
                overdue = pending and time.time_ns() >= int(pending[0].arrival_ns[0]) + wait_ns
                if overdue and q.empty():
                    flush()
                if live and not pending:  # quiet link: idle flows still expire on time
                    wall = time.time_ns()
                    if wall - self._last_expire_ns >= _EXPIRE_EVERY_NS:
                        self.writer.alerts(self.table.expire(wall))
                        self._last_expire_ns = wall
                now = time.monotonic()
                if now >= next_stats:
                    self.writer.stats(
                        self._counters(now - t_start, now - period_start, period_packets)
                    )
                    self._period_latency.reset()
                    self._period_batch.reset()
                    period_start, period_packets = now, 0
                    next_stats = now + cfg.stats_interval_s
        except KeyboardInterrupt:
            interrupted = True
            flush()
            self._apply_ready(wait=True)
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True, cancel_futures=True)
                self._pool = None
            producer.stop.set()
            if isinstance(self.sources, LiveCapture):
                self.sources.stop()
            producer.join(timeout=2)
            gc.unfreeze()
        elapsed = time.monotonic() - t_start
        batcher_cpu = time.thread_time() - cpu0
        if cfg.workers == 1:  # scored in this thread: do not count it twice
            batcher_cpu -= self._infer_cpu_s
        thread_cpu = {
            "reader": producer.cpu_s,
            "inference": self._infer_cpu_s,
            "batcher": batcher_cpu,
        }
        self._period_latency, self._period_batch = self.latency, self.batch_latency
        final = self._counters(elapsed, elapsed, self.packets)
        final["final"] = True
        self.writer.stats(final)
        dec = self._decode_stats()
        return DetectSummary(
            packets=self.packets,
            alerts=self.writer.alerts_written,
            elapsed_s=elapsed,
            batches=self.batches,
            interrupted=interrupted,
            skipped=dict(Counter(dec.skipped)),
            flows=self.table.stats(),
            latency_ms=self.latency.summary_ms(),
            batch_ms=self.batch_latency.summary_ms(),
            backend=self.detector.scorer.name,
            thread_cpu_s=thread_cpu,
            workers=cfg.workers,
        )


def detect(
    model: str | Path,
    config: DetectConfig,
    pcaps: list[Path] | None = None,
    live: LiveConfig | None = None,
    on_batch: Callable[[Engine, int], None] | None = None,
) -> DetectSummary:
    """Detect on capture files (in order) or a live interface; alerts go to ``config.alerts``.

    Every input is checked before the first packet is read: the artifact (version, files),
    each capture file or the interface and BPF filter, and the alert destination; each
    problem raises one PktlstmError. Ctrl-C ends the run with a final summary.
    ``on_batch(engine, n)`` is called after each micro-batch (benchmarks sample memory there).
    """
    if bool(pcaps) == (live is not None):
        raise ConfigError("give capture files or a live interface (not both, not neither)")
    if live is not None and config.replay != "asap":
        raise ConfigError(f"replay={config.replay!r}: only for capture files, not live capture")
    detector = load_detector(model, config.backend, config.precision, config.threads)
    bpf = BpfFilter(config.bpf) if config.bpf and live is None else None
    capture: LiveCapture | None = None
    writer: EveWriter | None = None
    try:
        if live is not None:
            capture = open_live(live)
            sources: FileSources | LiveCapture = capture
            names = [Source(live.iface, live=True)]
        else:
            assert pcaps is not None
            # replay releases packets chunk by chunk: smaller chunks keep read-ahead short
            read = CaptureConfig(chunk_packets=16384 if config.speed is None else 1024)
            sources = FileSources(pcaps, read)
            names = [Source(str(p)) for p in pcaps]
        writer = EveWriter(
            config.alerts, classes=detector.classes, model_id=detector.model_id, sources=names
        )
        engine = Engine(detector, sources, writer, config, bpf)
        if on_batch is not None:
            engine.on_batch = functools.partial(on_batch, engine)
        return engine.run()
    finally:
        if writer is not None:
            writer.close()
        if capture is not None:
            capture.close()
