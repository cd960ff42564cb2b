"""Shared test fixtures: where the real captures are, and tiny pcaps built with dpkt."""

from __future__ import annotations

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
