"""Live capture: real frames from a veth pair into a network namespace the test creates."""

from __future__ import annotations

import os
import shutil
import socket
import time
from collections.abc import Iterator

import numpy as np
import pytest

from pktlstm.errors import CaptureError, ConfigError
from pktlstm.io.batch import PacketBatch
from pktlstm.io.live import LiveCapture, LiveConfig, compile_bpf, open_live

from ..conftest import veth_pair

NEEDS_ROOT = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("ip") is None or not hasattr(socket, "AF_PACKET"),
    reason="live capture needs Linux, root (CAP_NET_RAW/NET_ADMIN) and iproute2",
)
NEEDS_TCPDUMP = pytest.mark.skipif(
    shutil.which("tcpdump") is None, reason="BPF compilation uses tcpdump (apt install tcpdump)"
)

HOST_IP, PEER_IP = "10.231.77.1", "10.231.77.2"


@pytest.fixture
def veth() -> Iterator[str]:
    """A veth pair: one end here (returned), the other in a fresh namespace."""
    with veth_pair(HOST_IP, PEER_IP, "t") as iface:
        yield iface


def send_udp(port: int, count: int, payload: bytes = b"x" * 32) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((HOST_IP, 40000 + port % 1000))
        for _ in range(count):
            s.sendto(payload, (PEER_IP, port))


def collect(cap: LiveCapture, want: int, timeout: float = 15.0) -> PacketBatch:
    got: list[PacketBatch] = []
    deadline = time.monotonic() + timeout
    while sum(len(b) for b in got) < want and time.monotonic() < deadline:
        got.append(cap.read_chunk())
    return PacketBatch.concat(got)


@NEEDS_ROOT
@NEEDS_TCPDUMP
def test_captures_real_frames_with_a_bpf_filter(veth: str) -> None:
    config = LiveConfig(iface=veth, bpf="udp and dst port 9999", promisc=True, chunk_packets=8)
    with open_live(config, capture_id=3) as cap:
        send_udp(9998, 5)  # filtered out in the kernel
        send_udp(9999, 20)
        batch = collect(cap, 20)
        time.sleep(0.05)
        batch = PacketBatch.concat([batch, cap.read_chunk()])
    assert len(batch) == 20, (len(batch), batch.dport.tolist(), cap.stats.as_dict())
    assert set(batch.dport.tolist()) == {9999}
    assert set(batch.proto.tolist()) == {17} and set(batch.ip_version.tolist()) == {4}
    assert batch.src[0, 12:].tolist() == [10, 231, 77, 1]
    assert batch.wirelen.tolist() == [14 + 20 + 8 + 32] * 20
    assert batch.pkt_index.tolist() == list(range(20))
    assert set(batch.capture_id.tolist()) == {3}
    assert len(set(batch.flow_id.tolist())) == 1
    now = time.time_ns()
    assert np.all((batch.ts_ns <= now) & (batch.ts_ns > now - 60 * 10**9))
    assert cap.stats.packets == 20 and cap.kernel_packets == 20


@NEEDS_ROOT
def test_snaplen_truncates_but_keeps_wire_length(veth: str) -> None:
    with open_live(LiveConfig(iface=veth, snaplen=64)) as cap:
        send_udp(7000, 3, payload=b"y" * 500)
        batch = collect(cap, 3)
    udp = batch[batch.proto == 17]
    assert len(udp) == 3
    assert udp.caplen.tolist() == [64] * 3 and udp.wirelen.tolist() == [542] * 3


@NEEDS_ROOT
def test_kernel_drops_are_counted(veth: str) -> None:
    with open_live(LiveConfig(iface=veth, buffer_bytes=1 << 16)) as cap:
        send_udp(7001, 3000)  # nobody reads while they arrive: the small buffer overflows
        time.sleep(0.1)
        while len(cap.read_chunk()):
            pass
    drops = cap.stats.skipped["capture.kernel_drops"]
    assert drops > 0 and cap.stats.packets + drops >= 3000


@NEEDS_ROOT
def test_stop_ends_iteration(veth: str) -> None:
    cap = open_live(LiveConfig(iface=veth, poll_ms=1))
    chunks = 0
    for _ in cap:
        chunks += 1
        if chunks == 3:
            cap.stop()
    cap.close()
    assert chunks == 3


def test_missing_interface_is_one_clear_error() -> None:
    with pytest.raises(CaptureError, match="does not exist"):
        open_live(LiveConfig(iface="nosuchif0"))


@NEEDS_TCPDUMP
def test_bad_bpf_does_not_compile() -> None:
    with pytest.raises(ConfigError, match="bpf='tcp portt 80'"):
        compile_bpf("tcp portt 80")
    prog = compile_bpf("udp")
    assert prog[-1][0] == 6 and all(len(i) == 4 for i in prog)


@NEEDS_ROOT
@NEEDS_TCPDUMP
def test_bad_bpf_fails_before_capture(veth: str) -> None:
    with pytest.raises(ConfigError, match="bpf"):
        open_live(LiveConfig(iface=veth, bpf="not a filter ((("))


@pytest.mark.parametrize(
    "kwargs", [{"iface": ""}, {"snaplen": 10}, {"poll_ms": 0}, {"buffer_bytes": 10}]
)
def test_config_validation(kwargs: dict) -> None:
    with pytest.raises(ConfigError, match=next(iter(kwargs))):
        LiveConfig(**{"iface": "eth0", **kwargs})
