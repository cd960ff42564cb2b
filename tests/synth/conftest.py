"""Shared helpers for the synth tests: an independent pcap + label checker built on dpkt."""

from __future__ import annotations

import csv
import socket
import struct
from dataclasses import dataclass
from pathlib import Path

import dpkt
import pytest

from pktlstm.synth import SynthConfig, SynthResult, generate


@dataclass
class Parsed:
    """One packet as dpkt sees it."""

    ts_ns: int
    frame: bytes
    eth: dpkt.ethernet.Ethernet
    key: tuple[str, int, str, int, int]


def read_pcap(path: Path) -> list[Parsed]:
    """Parse every record: headers with struct, frames with dpkt; port 0 for non-TCP/UDP.

    A record cut by the snaplen (caplen < wirelen) is padded with zeros to its wire
    length: the generator's checksums count the bytes not captured as zeros.
    """
    data = path.read_bytes()
    magic, _, _, _, _, snaplen, linktype = struct.unpack_from("<IHHiIII", data, 0)
    assert magic in (0xA1B2C3D4, 0xA1B23C4D) and linktype == 1
    scale = 1 if magic == 0xA1B23C4D else 1000
    out, pos = [], 24
    while pos < len(data):
        sec, frac, caplen, wirelen = struct.unpack_from("<IIII", data, pos)
        assert caplen == min(wirelen, snaplen)
        buf = data[pos + 16 : pos + 16 + caplen]
        assert len(buf) == caplen
        buf += bytes(wirelen - caplen)
        pos += 16 + caplen
        eth = dpkt.ethernet.Ethernet(buf)
        ip = eth.data
        sport = dport = 0
        if isinstance(ip.data, (dpkt.tcp.TCP, dpkt.udp.UDP)):
            sport, dport = ip.data.sport, ip.data.dport
        key = (socket.inet_ntoa(ip.src), sport, socket.inet_ntoa(ip.dst), dport, ip.p)
        out.append(Parsed(sec * 1_000_000_000 + frac * scale, buf, eth, key))
    return out


def read_labels(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="session")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> SynthResult:
    """One default-mix capture shared by the read-only tests."""
    return generate(
        SynthConfig(packets=6000, seed=7, duration_s=120), tmp_path_factory.mktemp("synth")
    )
