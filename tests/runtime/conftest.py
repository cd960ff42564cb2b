"""Shared fixtures for runtime tests: a tiny model artifact and small synthetic pcaps."""

from __future__ import annotations

import json
import os
import shutil
import socket
import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from pktlstm.tokens import TokenizerConfig, Vocabulary

from ..conftest import veth_pair

CLASSES = ["benign", "scan", "flood"]


def udp_frame(src: str, dst: str, sport: int, dport: int, payload: bytes = b"hello") -> bytes:
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    ip = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0,
        socket.inet_aton(src), socket.inet_aton(dst),
    )  # fmt: skip
    eth = b"\x02\x00\x00\x00\x00\x01" + b"\x02\x00\x00\x00\x00\x02" + b"\x08\x00"
    return eth + ip + udp


def write_pcap(path: Path, frames: list[tuple[float, bytes]]) -> Path:
    """A classic little-endian microsecond pcap of Ethernet frames (ts in seconds)."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for ts, frame in frames:
        sec = int(ts)
        out.append(struct.pack("<IIII", sec, int(round((ts - sec) * 1e6)), len(frame), len(frame)))
        out.append(frame)
    path.write_bytes(b"".join(out))
    return path


def flows_pcap(path: Path, n_flows: int, per_flow: int, t0: float = 1_600_000_000.0) -> Path:
    """``n_flows`` UDP flows of ``per_flow`` packets each, interleaved, 1 ms apart."""
    frames = []
    for i in range(per_flow):
        for f in range(n_flows):
            frames.append(
                (t0 + (i * n_flows + f) * 0.001, udp_frame("10.0.0.1", "10.0.1.1", 1000 + f, 53))
            )
    return write_pcap(path, frames)


@pytest.fixture(scope="session")
def artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny untrained `fast` model whose threshold (0) makes every flow alert."""
    torch = pytest.importorskip("torch")
    from pktlstm.model import build_model, preset, save_artifact

    torch.manual_seed(0)
    vocab = Vocabulary().fit(np.arange(0, 4096, dtype=np.uint16)[None, :])
    config = preset("fast", vocab_size=len(vocab), n_classes=len(CLASSES), seq_len=33)
    path = tmp_path_factory.mktemp("model") / "tiny"
    save_artifact(
        path,
        build_model(config),
        tokenizer=TokenizerConfig().to_dict(),
        vocab=vocab,
        classes=CLASSES,
        threshold=0.0,
        train_config={},
        metrics={},
        dataset_card={},
    )
    return path


@pytest.fixture(scope="session")
def exported(artifact: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of ``artifact`` exported to ONNX (read-only for tests: copy before changing)."""
    from pktlstm.runtime.export import export_model

    path = tmp_path_factory.mktemp("exported") / "m"
    shutil.copytree(artifact, path)
    export_model(path)
    return path


def with_threshold(src: Path, dst: Path, threshold: float) -> Path:
    """A copy of artifact ``src`` with another threshold."""
    shutil.copytree(src, dst)
    doc = json.loads((dst / "model.json").read_text())
    doc["threshold"] = threshold
    (dst / "model.json").write_text(json.dumps(doc))
    return dst


HOST_IP, PEER_IP = "10.231.78.1", "10.231.78.2"


@pytest.fixture
def live_veth() -> Iterator[str]:
    """A veth pair made for the test: one end here (returned), the peer in a new namespace."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("live capture needs root and iproute2")
    with veth_pair(HOST_IP, PEER_IP, "r") as iface:
        yield iface


def send_udp_to_peer(port: int, count: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((HOST_IP, 0))
        for _ in range(count):
            s.sendto(b"ping", (PEER_IP, port))
