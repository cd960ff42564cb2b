"""Packet sources of the detection pipeline: capture files (paced replay) or a live interface,
read, filtered and tokenized in a reader thread that feeds the micro-batcher's queue."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pktlstm.io.batch import DecodeStats, PacketBatch
from pktlstm.io.live import LiveCapture
from pktlstm.io.reader import CaptureConfig, CaptureReader, open_capture
from pktlstm.runtime.bpf import BpfFilter
from pktlstm.runtime.detector import Detector

# Replay releases packets in groups at most this often (seconds): finer pacing costs more
# Python work per packet than it buys in accuracy.
_REPLAY_TICK_S = 0.0005


@dataclass
class Chunk:
    """Packets handed from the reader thread to inference."""

    batch: PacketBatch
    inputs: NDArray[np.int32] | None  # (n, T') model inputs; None: tokenized at the flush
    arrival_ns: NDArray[np.int64]  # (n,) wall-clock time each packet arrived (time.time_ns)


END_OF_SOURCE = "end-of-source"  # queue marker: one capture finished (flush its flows)
DONE = "done"  # queue marker: all sources finished


class FileSources:
    """Capture files read one after another.

    Each file is opened (and so checked) when this is made, then closed again: bad input
    fails before any packet is read, yet only one file is open at a time while reading.
    Iterating opens each in turn; ``stats`` holds one DecodeStats per file opened so far.
    """

    def __init__(self, paths: list[Path], config: CaptureConfig) -> None:
        self.paths = list(paths)
        self.config = config
        for i, path in enumerate(self.paths):
            open_capture(path, config, capture_id=i).close()
        self.stats: list[DecodeStats] = []

    def __iter__(self) -> Iterator[CaptureReader]:
        for i, path in enumerate(self.paths):
            with open_capture(path, self.config, capture_id=i) as reader:
                self.stats.append(reader.stats)
                yield reader


class Producer(threading.Thread):
    """Reads sources, paces replay, tokenizes; feeds the queue (runs in its own thread)."""

    def __init__(
        self,
        sources: FileSources | LiveCapture,
        detector: Detector,
        speed: float | None,
        out: queue.Queue[Any],
        bpf: BpfFilter | None = None,
    ) -> None:
        super().__init__(name="pktlstm-reader", daemon=True)
        self.sources = sources
        self.detector = detector
        self.speed = speed
        self.out = out
        self.bpf = bpf
        self.filtered = 0
        self.cpu_s = 0.0  # CPU seconds this thread used (set when it ends)
        self.stop = threading.Event()

    def _put(self, item: Any) -> None:
        while not self.stop.is_set():
            try:
                self.out.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def _emit(self, batch: PacketBatch, arrival: NDArray[np.int64] | None) -> None:
        if self.bpf is not None and len(batch):
            keep = self.bpf.match(batch)
            self.filtered += len(batch) - int(keep.sum())
            batch = batch[keep]
            arrival = None if arrival is None else arrival[keep]
        if len(batch) == 0:
            return
        if arrival is None:  # asap: big chunks, tokenized here, in parallel with inference
            inputs = self.detector.inputs(batch)
            self._put(Chunk(batch, inputs, np.full(len(batch), time.time_ns(), np.int64)))
        else:  # paced or live: small chunks, tokenized per micro-batch (counted in latency)
            self._put(Chunk(batch, None, arrival))

    def run(self) -> None:
        cpu0 = time.thread_time()
        try:
            if isinstance(self.sources, LiveCapture):
                for batch in self.sources:
                    if self.stop.is_set():
                        break
                    self._emit(batch, batch.ts_ns.copy())  # ts: when the frame was read
            else:
                for reader in self.sources:
                    for batch, arrival in self._paced(reader):
                        if self.stop.is_set():
                            return
                        self._emit(batch, arrival)
                    self._put(END_OF_SOURCE)
            self._put(DONE)
        except BaseException as exc:  # reported to the consumer, re-raised there
            self._put(exc)
        finally:
            self.cpu_s = time.thread_time() - cpu0

    def _paced(
        self, reader: CaptureReader
    ) -> Iterator[tuple[PacketBatch, NDArray[np.int64] | None]]:
        if self.speed is None:
            for batch in reader:
                yield batch, None
            return
        t0_wall: int | None = None
        ts0 = 0
        last_due = 0
        for batch in self._read_ahead(reader):
            if len(batch) == 0:
                continue
            if t0_wall is None:
                t0_wall, ts0 = time.time_ns(), int(batch.ts_ns[0])
            due = t0_wall + ((batch.ts_ns - ts0) / self.speed).astype(np.int64)
            due = np.maximum.accumulate(np.maximum(due, last_due))  # keep capture order
            last_due = int(due[-1])
            pos = 0
            while pos < len(batch) and not self.stop.is_set():
                now = time.time_ns()
                end = int(np.searchsorted(due, now, side="right"))
                if end > pos:
                    yield batch[pos:end], due[pos:end]
                    pos = end
                else:
                    time.sleep(max((int(due[pos]) - now) / 1e9, _REPLAY_TICK_S))

    def _read_ahead(self, reader: CaptureReader) -> Iterator[PacketBatch]:
        """The reader's chunks, decoded one chunk ahead in a helper thread, so that replay
        never stalls on decoding a chunk whose first packets are already due."""
        ahead: queue.Queue[Any] = queue.Queue(maxsize=2)

        def fill() -> None:
            try:
                for batch in reader:
                    while not self.stop.is_set():
                        try:
                            ahead.put(batch, timeout=0.1)
                            break
                        except queue.Full:
                            continue
                    if self.stop.is_set():
                        return
                ahead.put(END_OF_SOURCE)
            except BaseException as exc:  # re-raised in the producer thread
                ahead.put(exc)

        threading.Thread(target=fill, name="pktlstm-read-ahead", daemon=True).start()
        while not self.stop.is_set():
            try:
                item = ahead.get(timeout=0.1)
            except queue.Empty:
                continue
            if isinstance(item, BaseException):
                raise item
            if isinstance(item, str):
                return
            yield item
