"""Label sources: both directions, time windows, CIDR rules, session ranges, clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pktlstm.errors import LabelError
from pktlstm.io import read_capture
from pktlstm.labels import (
    FileLabels,
    FlowLabels,
    RuleLabels,
    SessionLabels,
    normalise_label,
    open_labels,
    parse_time_ns,
)

from .conftest import tcp_frame, udp_frame, write_pcap

T0 = 1_700_000_000.0


@pytest.fixture
def capture(tmp_path: Path) -> Path:
    frames = [
        (T0 + 0.0, tcp_frame("10.0.0.1", 1234, "10.0.0.2", 80, flags=0x02)),
        (T0 + 0.1, tcp_frame("10.0.0.2", 80, "10.0.0.1", 1234, flags=0x12)),  # reply
        (T0 + 5.0, tcp_frame("10.0.0.1", 1234, "10.0.0.2", 80)),  # after the window
        (T0 + 0.2, udp_frame("192.168.1.9", 53, "10.0.0.1", 5000)),
        (T0 + 0.3, tcp_frame("10.0.0.3", 4444, "10.0.0.2", 22)),
    ]
    return write_pcap(tmp_path / "cap.pcap", frames)


def labels_of(source, capture: Path) -> list[str | None]:
    batch, _ = read_capture(capture)
    a = source.assign(batch, capture)
    return [a.names[c] if c >= 0 else None for c in a.codes]


def test_flow_labels_match_both_directions_within_window(tmp_path, capture):
    csv = tmp_path / "flows.csv"
    csv.write_text(
        "src_ip,src_port,dst_ip,dst_port,proto,start,end,label\n"
        f"10.0.0.1,1234,10.0.0.2,80,6,{T0 - 1:.6f},{T0 + 1:.6f},SYN Flood\n"
        "10.0.0.1,5000,192.168.1.9,53,udp,,,DNS\n"
    )
    assert labels_of(FlowLabels(csv), capture) == ["syn_flood", "syn_flood", None, "dns", None]


def test_cic_column_names_are_accepted(tmp_path, capture):
    csv = tmp_path / "cic.csv"
    csv.write_text(
        "Source IP, Source Port, Destination IP, Destination Port, Protocol, Label\n"
        "10.0.0.3,4444,10.0.0.2,22,6,BENIGN\n"
    )
    assert labels_of(FlowLabels(csv), capture)[-1] == "benign"


def test_rules_cidr_port_and_replies(tmp_path, capture):
    csv = tmp_path / "rules.csv"
    csv.write_text(
        "src,dst,proto,dport,start,end,label\n"
        f"10.0.0.0/31,10.0.0.2,6,80,{T0:.6f},{T0 + 1:.6f},web_attack\n"
        ",,17,,,,udp_thing\n"
    )
    got = labels_of(RuleLabels(csv), capture)
    assert got == ["web_attack", "web_attack", None, "udp_thing", None]


def test_session_ranges(tmp_path, capture):
    csv = tmp_path / "sessions.csv"
    csv.write_text(
        "file,session,label,class,first_packet,packets\n"
        "cap.pcap,s0,malware,Zeus,0,2\n"
        "cap.pcap,s1,benign,Gmail,3,2\n"
    )
    source = SessionLabels(csv)
    batch, _ = read_capture(capture)
    a = source.assign(batch, capture)
    assert [a.names[c] if c >= 0 else None for c in a.codes] == [
        "zeus", "zeus", None, "benign", "benign",
    ]  # fmt: skip
    assert a.group is not None
    assert a.group[0] == a.group[1] != a.group[3] == a.group[4]


def test_file_labels_folder_and_manifest(tmp_path, capture):
    assert labels_of(FileLabels(by="folder"), capture)[0] == normalise_label(tmp_path.name)
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("path,label\ncap.pcap,malicious\n")
    assert set(labels_of(open_labels(str(manifest)), capture)) == {"malicious"}


def test_open_labels_guesses_kind(tmp_path):
    rules = tmp_path / "r.csv"
    rules.write_text("src,dst,proto,dport,start,end,label\n1.2.3.4,,,,,,x\n")
    assert isinstance(open_labels(str(rules)), RuleLabels)
    odd = tmp_path / "odd.csv"
    odd.write_text("a,b\n1,2\n")
    with pytest.raises(LabelError, match="cannot tell the kind"):
        open_labels(str(odd))


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("10.0.0.1,1,10.0.0.300,2,6,,,x", "bad IP address"),
        ("10.0.0.1,99999,10.0.0.2,2,6,,,x", "port 99999 out of range"),
        ("10.0.0.1,1,10.0.0.2,2,tcpx,,,x", "bad protocol"),
        ("10.0.0.1,1,10.0.0.2,2,6,yesterday,,x", "bad time"),
        ("10.0.0.1,1,10.0.0.2,2,6,,,", "empty label"),
        ("10.0.0.1,1,10.0.0.2", "columns"),
    ],
)
def test_bad_rows_name_file_and_line(tmp_path, row, message):
    csv = tmp_path / "bad.csv"
    csv.write_text("src_ip,src_port,dst_ip,dst_port,proto,start,end,label\n" + row + "\n")
    with pytest.raises(LabelError, match=rf"bad\.csv:2: .*{message}|bad\.csv:2:.*{message}"):
        FlowLabels(csv)


def test_missing_file():
    with pytest.raises(LabelError, match="not found"):
        FlowLabels(Path("/nonexistent/flows.csv"))


def test_time_parsing_is_exact():
    assert parse_time_ns("1700000000.123456", "x") == 1_700_000_000_123_456_000
    assert parse_time_ns("2023-11-14T22:13:20+00:00", "x") == 1_700_000_000_000_000_000
    assert parse_time_ns("", "x") is None


def test_real_sessions_label_every_packet(shared_data):
    root = shared_data / "ustc-tfc2016-t10k"
    source = SessionLabels(root / "sessions.csv")
    capture = root / "malware" / "Zeus.pcap"
    batch, _ = read_capture(capture)
    a = source.assign(batch, capture)
    assert (a.codes >= 0).all()
    assert {a.names[c] for c in np.unique(a.codes)} == {"zeus"}
