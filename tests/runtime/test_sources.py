"""Packet sources: up-front file checks, one file at a time, paced replay, reader-thread output."""

from __future__ import annotations

import contextlib
import os
import queue
import time
from pathlib import Path

import numpy as np
import pytest

from pktlstm.errors import CaptureError
from pktlstm.io.reader import CaptureConfig
from pktlstm.runtime.detector import load_detector
from pktlstm.runtime.sources import DONE, END_OF_SOURCE, Chunk, FileSources, Producer

from .conftest import flows_pcap


def test_file_sources_check_all_files_first(tmp_path: Path) -> None:
    good = flows_pcap(tmp_path / "a.pcap", 2, 2)
    (tmp_path / "bad.pcap").write_bytes(b"not a capture at all, just text")
    with pytest.raises(CaptureError, match="bad.pcap"):
        FileSources([good, tmp_path / "bad.pcap"], CaptureConfig())
    with pytest.raises(CaptureError, match="no such capture file"):
        FileSources([good, tmp_path / "missing.pcap"], CaptureConfig())


def test_file_sources_iterate_in_order_with_capture_ids(tmp_path: Path) -> None:
    a, b = flows_pcap(tmp_path / "a.pcap", 2, 2), flows_pcap(tmp_path / "b.pcap", 3, 1)
    files = FileSources([a, b], CaptureConfig())
    seen, open_now = [], []
    for reader in files:
        seen.append((reader.capture_id, sum(len(x) for x in reader)))
        open_now.append(open_pcaps())
    assert seen == [(0, 4), (1, 3)]
    assert open_now == [1, 1]  # checked up front, but read one at a time
    assert [st.packets for st in files.stats] == [4, 3]


def open_pcaps() -> int:
    names = []
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # the listing's own descriptor is gone by now
            names.append(os.readlink(f"/proc/self/fd/{fd}"))
    return sum(1 for name in names if name.endswith(".pcap"))


def drain(q: queue.Queue) -> list:
    items = []
    while True:
        item = q.get(timeout=10)
        items.append(item)
        if item == DONE or isinstance(item, BaseException):
            return items


def test_asap_chunks_are_tokenized_in_the_reader_thread(artifact: Path, tmp_path: Path) -> None:
    pcap = flows_pcap(tmp_path / "a.pcap", 5, 4)
    q: queue.Queue = queue.Queue()
    det = load_detector(artifact)
    Producer(FileSources([pcap], CaptureConfig()), det, None, q).run()
    items = drain(q)
    assert items[-2:] == [END_OF_SOURCE, DONE]
    chunks = [c for c in items if isinstance(c, Chunk)]
    assert sum(len(c.batch) for c in chunks) == 20
    assert all(c.inputs is not None and c.inputs.shape[0] == len(c.batch) for c in chunks)


def test_replay_releases_packets_at_their_recorded_offsets(artifact: Path, tmp_path: Path) -> None:
    pcap = flows_pcap(tmp_path / "a.pcap", 10, 10)  # 100 packets, 1 ms apart
    q: queue.Queue = queue.Queue()
    det = load_detector(artifact)
    start = time.time_ns()
    Producer(FileSources([pcap], CaptureConfig(chunk_packets=16)), det, 2.0, q).run()  # x2
    chunks = [c for c in drain(q) if isinstance(c, Chunk)]
    due = np.concatenate([c.arrival_ns for c in chunks])
    assert len(due) == 100 and np.all(np.diff(due) >= 0)
    # 99 ms of capture at twice the speed: the last packet is due ~49.5 ms after the first
    assert (due[-1] - due[0]) / 1e6 == pytest.approx(49.5, abs=1.0)
    assert due[0] >= start and all(c.inputs is None for c in chunks)  # tokenized per batch
