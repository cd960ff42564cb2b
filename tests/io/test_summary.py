"""Capture summaries and the `pktlstm inspect` command."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from pktlstm.cli import app
from pktlstm.io.summary import inspect_report, summarize_capture, table_row, total
from tests.io import builders as b

ARP = b.MAC_A + b.MAC_B + b"\x08\x06" + bytes(28)


def capture(tmp_path: Path) -> Path:
    frames = [
        b.ether(b.ipv4(6, b.tcp(1, 80)), 0x0800),
        b.ether(b.ipv4(6, b.tcp(80, 1), src=b.V4_B, dst=b.V4_A), 0x0800),
        b.ether(b.ipv4(17, b.udp(5, 53)), 0x0800),
        b.ether(b.ipv6(58, b.icmp(128)), 0x86DD),
        ARP,
        b"\x00" * 8,  # truncated
    ]
    path = tmp_path / "mix.pcap"
    path.write_bytes(b.pcap(frames))  # timestamps 1 s apart
    return path


def test_summary_counts_everything(tmp_path: Path) -> None:
    seen: list[int] = []
    s = summarize_capture(capture(tmp_path), progress=seen.append)
    assert (s.packets, s.flows, s.format) == (5, 4, "pcap")
    assert s.protocols == {"tcp": 2, "udp": 1, "icmpv6": 1, "arp": 1}
    assert s.ip_versions == {"ipv4": 3, "ipv6": 1, "non-ip": 1}
    assert s.linktypes == {"ethernet": 5}
    assert s.skipped == {"decoder.truncated": 1}
    assert s.duration_s == 4.004 and s.bytes == s.wire_bytes > 0
    assert seen and seen[-1] == (tmp_path / "mix.pcap").stat().st_size
    assert len(table_row(s)) == 9


def test_total_and_report(tmp_path: Path) -> None:
    one = summarize_capture(capture(tmp_path))
    both = total([one, one])
    assert (both.packets, both.flows, both.duration_s) == (10, 8, 4.004)
    report = inspect_report([one, one])
    assert report["total"]["packets"] == 10 and report["total"]["files"] == 2
    assert report["files"][0]["skipped"] == {"decoder.truncated": 1}
    json.dumps(report)


def test_inspect_cli_json_and_table(tmp_path: Path) -> None:
    path = capture(tmp_path)
    runner = CliRunner()
    result = runner.invoke(app, ["inspect", str(path), str(path), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert [f["packets"] for f in doc["files"]] == [5, 5] and doc["total"]["flows"] == 8
    table = runner.invoke(app, ["inspect", str(path)])
    assert table.exit_code == 0 and "mix.pcap" in table.stdout


def test_inspect_cli_rejects_a_non_capture(tmp_path: Path) -> None:
    bad = tmp_path / "notes.txt"
    bad.write_text("hello world, no packets here\n")
    result = CliRunner().invoke(app, ["inspect", str(bad)])
    assert result.exit_code != 0 and "notes.txt" in str(result.exception)
