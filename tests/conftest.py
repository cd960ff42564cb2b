"""Shared test fixtures: where the real captures are, and tiny pcaps built with dpkt."""

from __future__ import annotations

import contextlib
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import dpkt
import pytest

SHARED_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """../shared/data (real captures); the test is skipped where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is absent (real captures are not part of this repository)")
    return SHARED_DATA.resolve()


def ip4(text: str) -> bytes:
    return bytes(int(x) for x in text.split("."))


def tcp_frame(src: str, sport: int, dst: str, dport: int, flags: int = 0x10, ttl: int = 64,
              payload: bytes = b"", win: int = 1000) -> bytes:  # fmt: skip
    """An Ethernet/IPv4/TCP frame with correct lengths and checksums."""
    tcp = dpkt.tcp.TCP(sport=sport, dport=dport, flags=flags, win=win, data=payload)
    ip = dpkt.ip.IP(src=ip4(src), dst=ip4(dst), p=6, ttl=ttl, data=tcp)
    ip.len = len(bytes(ip))
    eth = dpkt.ethernet.Ethernet(
        src=b"\x02\x00\x00\x00\x00\x01", dst=b"\x02\x00\x00\x00\x00\x02", type=0x0800, data=ip
    )
    return bytes(eth)


def udp_frame(src: str, sport: int, dst: str, dport: int, payload: bytes = b"x") -> bytes:
    udp = dpkt.udp.UDP(sport=sport, dport=dport, data=payload)
    udp.ulen = len(bytes(udp))
    ip = dpkt.ip.IP(src=ip4(src), dst=ip4(dst), p=17, ttl=64, data=udp)
    ip.len = len(bytes(ip))
    return bytes(dpkt.ethernet.Ethernet(type=0x0800, data=ip))


def write_pcap(path: Path, frames: list[tuple[float, bytes]]) -> Path:
    """A classic pcap of (timestamp seconds, frame) records."""
    with path.open("wb") as fh:
        writer = dpkt.pcap.Writer(fh, nano=True)
        for ts, frame in frames:
            writer.writepkt(frame, ts=ts)
    return path


@contextlib.contextmanager
def veth_pair(host_ip: str, peer_ip: str, prefix: str) -> Iterator[str]:
    """A veth pair made for a test: one end here with ``host_ip``/30 (yielded), the peer with
    ``peer_ip`` in a new namespace; a static neighbour entry spares the test an ARP exchange.
    Needs root and iproute2; everything is removed on exit."""

    def sh(*args: str) -> None:
        subprocess.run(args, check=True, capture_output=True)

    tag = uuid.uuid4().hex[:6]
    ns, here, there = f"pktlstm-{prefix}{tag}", f"pk{prefix}{tag}a", f"pk{prefix}{tag}b"
    try:
        sh("ip", "netns", "add", ns)
        sh("ip", "link", "add", here, "type", "veth", "peer", "name", there)
        sh("ip", "link", "set", there, "netns", ns)
        sh("ip", "addr", "add", f"{host_ip}/30", "dev", here)
        sh("ip", "link", "set", here, "up")
        sh("ip", "-n", ns, "addr", "add", f"{peer_ip}/30", "dev", there)
        sh("ip", "-n", ns, "link", "set", there, "up")
        mac = subprocess.run(
            ["ip", "-n", ns, "-br", "link", "show", there], capture_output=True, text=True
        ).stdout.split()[2]
        sh("ip", "neigh", "replace", peer_ip, "lladdr", mac, "dev", here)
        yield here
    finally:
        subprocess.run(["ip", "link", "del", here], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
