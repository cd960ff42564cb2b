"""EVE JSON alerts and stats: shape, fields, destinations, unwritable paths."""

from __future__ import annotations

import json
import socket
import threading
from pathlib import Path

import numpy as np
import pytest

from pktlstm.errors import ConfigError
from pktlstm.runtime.alerts import (
    EveWriter,
    Source,
    eve_flow_id,
    eve_timestamp,
    ip_text,
    severity,
)
from pktlstm.runtime.flows import Verdicts


def v4(a: str) -> np.ndarray:
    return np.frombuffer(b"\x00" * 10 + b"\xff\xff" + socket.inet_aton(a), np.uint8)


def verdicts(capture: int = 0) -> Verdicts:
    return Verdicts(
        key=np.array([(1 << 63) + 5], np.uint64),
        ts_ns=np.array([1_558_003_613_123_456_789], np.int64),
        src=v4("10.0.0.1")[None, :],
        dst=np.frombuffer(socket.inet_pton(socket.AF_INET6, "2001:db8::1"), np.uint8)[None, :],
        sport=np.array([1234], np.uint16),
        dport=np.array([80], np.uint16),
        proto=np.array([6], np.uint8),
        capture_id=np.array([capture], np.uint32),
        pkt_index=np.array([41], np.uint64),
        score=np.array([0.95], np.float32),
        klass=np.array([2], np.int16),
        packets=np.array([2], np.uint32),
        row=np.array([0], np.int64),
    )


def writer(target: str, live: bool = False) -> EveWriter:
    return EveWriter(
        target,
        classes=["benign", "scan", "syn_flood"],
        model_id="m1",
        sources=[Source("a.pcap" if not live else "eth0", live=live)],
    )


def test_alert_record_has_the_eve_shape(tmp_path: Path) -> None:
    out = tmp_path / "eve.json"
    with writer(str(out)) as w:
        w.alerts(verdicts())
    rec = json.loads(out.read_text().splitlines()[0])
    assert rec["event_type"] == "alert"
    assert rec["timestamp"] == "2019-05-16T10:46:53.123456+0000"
    assert rec["flow_id"] == 5
    assert (rec["src_ip"], rec["src_port"], rec["dest_ip"], rec["dest_port"]) == (
        "10.0.0.1",
        1234,
        "2001:db8::1",
        80,
    )
    assert rec["proto"] == "TCP"
    assert rec["pcap_filename"] == "a.pcap" and rec["pcap_cnt"] == 42
    alert = rec["alert"]
    assert alert["class"] == "syn_flood" and alert["severity"] == 2
    assert alert["score"] == pytest.approx(0.95, abs=1e-6) and alert["model_id"] == "m1"
    assert {"signature", "signature_id", "category"} <= set(alert)


def test_live_records_name_the_interface(tmp_path: Path) -> None:
    out = tmp_path / "eve.json"
    with writer(str(out), live=True) as w:
        w.alerts(verdicts())
    rec = json.loads(out.read_text())
    assert rec["in_iface"] == "eth0" and "pcap_cnt" not in rec and "pcap_filename" not in rec


def test_stats_record_nests_dotted_counters(capsys: pytest.CaptureFixture[str]) -> None:
    w = writer("-")
    w.stats({"decoder.truncated": 3, "capture.kernel_drops": 0, "flow": {"tracked": 7}}, 0)
    w.close()
    rec = json.loads(capsys.readouterr().out)
    assert rec["event_type"] == "stats"
    assert rec["stats"] == {
        "decoder": {"truncated": 3},
        "capture": {"kernel_drops": 0},
        "flow": {"tracked": 7},
    }


def test_unix_socket_destination(tmp_path: Path) -> None:
    path = str(tmp_path / "eve.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    got: list[bytes] = []

    def serve() -> None:
        conn, _ = server.accept()
        while chunk := conn.recv(65536):
            got.append(chunk)
        conn.close()

    thread = threading.Thread(target=serve)
    thread.start()
    with writer(path) as w:
        w.alerts(verdicts())
    thread.join(5)
    server.close()
    assert json.loads(b"".join(got))["event_type"] == "alert"


def test_unwritable_path_fails_at_open(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot write"):
        writer(str(tmp_path / "missing-dir" / "eve.json"))


def test_helpers() -> None:
    assert eve_timestamp(0) == "1970-01-01T00:00:00.000000+0000"
    assert eve_flow_id(0) == 1 and eve_flow_id(2**64 - 1) == 2**63 - 1
    assert ip_text(bytes(16)) is None
    assert ip_text(v4("1.2.3.4").tobytes()) == "1.2.3.4"
    assert [severity(s) for s in (0.999, 0.95, 0.6)] == [1, 2, 3]


def test_template_output_is_exact_json(tmp_path: Path) -> None:
    v = Verdicts.concat([verdicts(), verdicts()])
    v.proto[1] = 1  # ICMP: no ports
    v.src[1] = 0  # not IP: no address
    v.klass[1] = 1
    out = tmp_path / "eve.json"
    w = EveWriter(
        str(out), classes=["benign", 'odd "name"\\', "x"], model_id='m"1', sources=[Source("a b")]
    )
    w.alerts(v)
    w.close()
    recs = [json.loads(line) for line in out.read_text().splitlines()]
    assert list(recs[0]) == [
        "timestamp", "flow_id", "pcap_cnt", "event_type", "src_ip", "src_port", "dest_ip",
        "dest_port", "proto", "alert", "pcap_filename",
    ]  # fmt: skip
    assert "src_ip" not in recs[1] and "src_port" not in recs[1] and recs[1]["proto"] == "ICMP"
    assert recs[1]["alert"]["class"] == 'odd "name"\\'
    assert recs[1]["alert"]["signature"].endswith('odd "name"\\')
    assert recs[1]["alert"]["model_id"] == 'm"1' and recs[1]["pcap_filename"] == "a b"
