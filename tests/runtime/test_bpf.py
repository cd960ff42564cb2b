"""BPF on files: our interpreter accepts exactly what tcpdump accepts on real captures."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from pktlstm.errors import ConfigError
from pktlstm.io.reader import read_capture
from pktlstm.runtime.bpf import BpfFilter

from .conftest import flows_pcap

pytestmark = pytest.mark.skipif(shutil.which("tcpdump") is None, reason="needs tcpdump")

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
EXPRESSIONS = [
    "tcp",
    "udp port 53",
    "tcp[tcpflags] & tcp-syn != 0",
    "host 192.168.1.1 or net 10.0.0.0/8",
    "ip and len > 100",
    "icmp or arp",
    "tcp dst portrange 1-1024",
    "ip6",
    "not tcp",
    "ip[8] = 64",
]


def tcpdump_count(path: Path, expr: str) -> int:
    out = subprocess.run(["tcpdump", "-r", str(path), "-nn", expr], capture_output=True, text=True)
    return out.stdout.count("\n")


@pytest.mark.parametrize("name", ["slips/test7-malicious.pcap", "slips/test8-malicious.pcap"])
def test_matches_tcpdump_on_real_captures(name: str) -> None:
    path = DATA / name
    if not path.is_file():
        pytest.skip(f"{path} absent (shared data not present)")
    batch, _ = read_capture(path)
    for expr in EXPRESSIONS:
        assert int(BpfFilter(expr).match(batch).sum()) == tcpdump_count(path, expr), expr


def test_matches_tcpdump_on_a_synthetic_capture(tmp_path: Path) -> None:
    path = flows_pcap(tmp_path / "a.pcap", 8, 2)
    batch, _ = read_capture(path)
    for expr in ["udp src port 1003", "udp and len = 47", "ip[9] = 17", "tcp"]:
        assert int(BpfFilter(expr).match(batch).sum()) == tcpdump_count(path, expr), expr


def test_bad_expression() -> None:
    with pytest.raises(ConfigError, match="bpf='ip and'"):
        BpfFilter("ip and")
