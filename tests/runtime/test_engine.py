"""The detection pipeline end to end: pcap -> alerts, batching, replay, stats, errors, live."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from pktlstm.errors import ArtifactError, CaptureError, ConfigError
from pktlstm.io.reader import CaptureConfig, read_capture
from pktlstm.runtime.alerts import EveWriter, Source
from pktlstm.runtime.detector import load_detector
from pktlstm.runtime.engine import DetectConfig, Engine, detect
from pktlstm.runtime.flows import FlowConfig
from pktlstm.runtime.sources import FileSources

from .conftest import CLASSES, flows_pcap, with_threshold


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def alerts_of(path: Path) -> list[dict]:
    return [r for r in records(path) if r["event_type"] == "alert"]


def test_one_alert_per_flow(artifact: Path, tmp_path: Path) -> None:
    pcap = flows_pcap(tmp_path / "a.pcap", n_flows=6, per_flow=5)
    out = tmp_path / "eve.json"
    summary = detect(artifact, DetectConfig(alerts=str(out), batch_size=4), pcaps=[pcap])
    alerts = alerts_of(out)
    assert summary.packets == 30 and summary.alerts == 6 == len(alerts)
    assert sorted(a["src_port"] for a in alerts) == list(range(1000, 1006))
    assert sorted(a["pcap_cnt"] for a in alerts) == list(range(1, 7))  # each flow's 1st packet
    assert {a["pcap_filename"] for a in alerts} == {str(pcap)}
    assert {a["alert"]["class"] for a in alerts} <= set(CLASSES[1:])
    assert len({a["flow_id"] for a in alerts}) == 6 and all(a["flow_id"] > 0 for a in alerts)
    final = records(out)[-1]
    assert final["event_type"] == "stats" and final["stats"]["final"] is True
    assert final["stats"]["detect"]["pkts"] == 30 and final["stats"]["flow"]["created"] == 6


def test_per_packet_and_no_alert_threshold(artifact: Path, tmp_path: Path) -> None:
    pcap = flows_pcap(tmp_path / "a.pcap", n_flows=3, per_flow=4)
    out = tmp_path / "eve.json"
    config = DetectConfig(alerts=str(out), flows=FlowConfig(per_packet=True))
    assert detect(artifact, config, pcaps=[pcap]).alerts == 12
    quiet = with_threshold(artifact, tmp_path / "quiet", 1.01)
    out2 = tmp_path / "eve2.json"
    assert detect(quiet, DetectConfig(alerts=str(out2)), pcaps=[pcap]).alerts == 0
    assert alerts_of(out2) == []


def test_batch_size_does_not_change_verdicts(artifact: Path, tmp_path: Path) -> None:
    pcap = flows_pcap(tmp_path / "a.pcap", n_flows=9, per_flow=7)
    batch, _ = read_capture(pcap)
    score, _ = load_detector(artifact).score(batch)
    flow_mean = [float(score[:27][batch.sport[:27] == p].mean()) for p in range(1000, 1009)]
    # a threshold between the flows' mean scores: some flows alert, some do not
    mid = with_threshold(artifact, tmp_path / "mid", float(np.median(flow_mean)))
    results = []
    for size, workers in ((1, 1), (5, 3), (1024, 2), (7, 1)):
        out = tmp_path / f"eve{size}.json"
        flows = FlowConfig(verdict_packets=3, aggregate="mean")
        config = DetectConfig(alerts=str(out), batch_size=size, workers=workers, flows=flows)
        detect(mid, config, pcaps=[pcap])
        results.append([(a["flow_id"], a["alert"]["score"]) for a in alerts_of(out)])
    assert 0 < len(results[0]) < 9
    # the same verdicts, in the same order, whatever the batching and inference threads
    assert results[0] == results[1] == results[2] == results[3]


def test_two_files_keep_their_flows_apart(artifact: Path, tmp_path: Path) -> None:
    a = flows_pcap(tmp_path / "a.pcap", 2, 2)
    b = flows_pcap(tmp_path / "b.pcap", 2, 2)  # the same 5-tuples
    out = tmp_path / "eve.json"
    assert detect(artifact, DetectConfig(alerts=str(out)), pcaps=[a, b]).alerts == 4
    assert sorted(x["pcap_filename"] for x in alerts_of(out)) == [str(a)] * 2 + [str(b)] * 2


def test_replay_follows_recorded_time(artifact: Path, tmp_path: Path) -> None:
    pcap = flows_pcap(tmp_path / "a.pcap", 10, 30)  # 300 packets, 1 ms apart: 0.3 s
    out = tmp_path / "eve.json"
    config = DetectConfig(alerts=str(out), replay="realtime", stats_interval_s=0.1)
    summary = detect(artifact, config, pcaps=[pcap])
    assert summary.elapsed_s >= 0.29 and summary.packets == 300
    stats = [r for r in records(out) if r["event_type"] == "stats"]
    assert len(stats) >= 2  # periodic records, then the final one
    assert {"p50", "p99"} <= set(stats[0]["stats"]["detect"]["verdict_latency_ms"])
    fast = detect(artifact, DetectConfig(alerts=str(out), replay="x1000"), pcaps=[pcap])
    assert fast.packets == 300


def test_ctrl_c_writes_a_final_summary(artifact: Path, tmp_path: Path) -> None:
    pcap = flows_pcap(tmp_path / "a.pcap", 50, 40)
    out = tmp_path / "eve.json"
    config = DetectConfig(alerts=str(out), batch_size=100)
    det = load_detector(artifact)
    writer = EveWriter(str(out), classes=CLASSES, model_id="m", sources=[Source("a")])
    engine = Engine(det, FileSources([pcap], CaptureConfig(chunk_packets=512)), writer, config)

    def interrupt(n: int) -> None:
        if engine.batches == 3:
            raise KeyboardInterrupt

    engine.on_batch = interrupt
    summary = engine.run()
    writer.close()
    assert summary.interrupted and 300 <= summary.packets < 2000
    assert records(out)[-1]["stats"]["final"] is True


def test_bad_inputs_fail_before_reading(artifact: Path, tmp_path: Path) -> None:
    pcap = flows_pcap(tmp_path / "a.pcap", 2, 2)
    with pytest.raises(ConfigError, match="alerts=.*cannot write"):
        detect(artifact, DetectConfig(alerts=str(tmp_path / "no" / "eve.json")), pcaps=[pcap])
    with pytest.raises(CaptureError, match="no such capture file"):
        detect(artifact, DetectConfig(alerts=str(tmp_path / "e")), pcaps=[tmp_path / "x.pcap"])
    with pytest.raises(ArtifactError):
        detect(tmp_path, DetectConfig(alerts=str(tmp_path / "e")), pcaps=[pcap])
    with pytest.raises(ConfigError, match="not both"):
        detect(artifact, DetectConfig(), pcaps=None, live=None)


@pytest.mark.parametrize(
    "kwargs",
    [{"batch_size": 0}, {"max_wait_ms": -1}, {"replay": "slow"}, {"replay": "x0"},
     {"stats_interval_s": -1}, {"queue_chunks": 0}],
)  # fmt: skip
def test_config_validation(kwargs: dict) -> None:
    with pytest.raises(ConfigError, match=next(iter(kwargs))):
        DetectConfig(**kwargs)


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("ip") is None, reason="live capture needs root and iproute2"
)
def test_live_engine(artifact: Path, tmp_path: Path, live_veth: str) -> None:
    from pktlstm.io.live import LiveConfig, open_live

    from .conftest import send_udp_to_peer

    out = tmp_path / "eve.json"
    det = load_detector(artifact)
    writer = EveWriter(str(out), classes=CLASSES, model_id="m", sources=[Source(live_veth, True)])
    cap = open_live(LiveConfig(iface=live_veth, bpf="udp"))
    engine = Engine(det, cap, writer, DetectConfig(max_wait_ms=2))
    result: list = []
    thread = threading.Thread(target=lambda: result.append(engine.run()))
    thread.start()
    for port in (5001, 5002, 5003):
        send_udp_to_peer(port, 4)
    deadline = time.monotonic() + 5
    while engine.packets < 12 and time.monotonic() < deadline:
        time.sleep(0.01)
    cap.stop()
    thread.join(5)
    writer.close()
    cap.close()
    summary = result[0]
    assert summary.packets == 12 and summary.alerts == 3
    alerts = alerts_of(out)
    assert {a["dest_port"] for a in alerts} == {5001, 5002, 5003}
    assert all(a["in_iface"] == live_veth for a in alerts)
    final = records(out)[-1]["stats"]
    assert final["capture"]["kernel_drops"] == 0 and final["capture"]["kernel_packets"] == 12


@pytest.mark.skipif(shutil.which("tcpdump") is None, reason="BPF compilation uses tcpdump")
def test_bpf_filter_on_files(artifact: Path, tmp_path: Path) -> None:
    pcap = flows_pcap(tmp_path / "a.pcap", n_flows=6, per_flow=3)  # sports 1000..1005
    out = tmp_path / "eve.json"
    config = DetectConfig(alerts=str(out), bpf="udp src portrange 1000-1002")
    summary = detect(artifact, config, pcaps=[pcap])
    assert summary.packets == 9 and summary.alerts == 3
    assert records(out)[-1]["stats"]["detect"]["filtered"] == 9
    with pytest.raises(ConfigError, match="bpf="):
        detect(artifact, DetectConfig(alerts=str(out), bpf="udp portt 1"), pcaps=[pcap])


def test_detects_with_torch_unavailable(
    exported: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = exported
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` fails from here on
    out = tmp_path / "eve.json"
    pcap = flows_pcap(tmp_path / "a.pcap", 4, 2)
    summary = detect(model, DetectConfig(alerts=str(out)), pcaps=[pcap])
    assert summary.alerts == 4 and summary.backend == "onnxruntime:model.onnx"


CLI = [sys.executable, "-c", "from pktlstm.cli import main; main()"]


@pytest.mark.slow
def test_cli_detect_and_bad_inputs(exported: Path, tmp_path: Path) -> None:
    artifact = exported  # ONNX: the subprocesses need not import torch
    pcap = flows_pcap(tmp_path / "a.pcap", 3, 2)
    out = tmp_path / "eve.json"
    ok = subprocess.run(
        [*CLI, "detect", "--model", str(artifact), "--pcap", str(pcap), "--alerts", str(out)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert "6 packets" in ok.stderr and "3 alerts" in ok.stderr
    assert len(alerts_of(out)) == 3
    bad_cases = [
        ["--pcap", str(tmp_path / "missing.pcap")],
        ["--pcap", str(pcap), "--alerts", str(tmp_path / "no" / "dir" / "eve.json")],
        ["--pcap", str(pcap), "--bpf", "tcp portt 80"],
    ]
    for args in bad_cases:
        bad = subprocess.run(
            [*CLI, "detect", "--model", str(artifact), *args],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert bad.returncode == 2, (args, bad.stderr)
        assert bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr, bad.stderr
        assert bad.stdout == ""  # nothing was read or written


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0, reason="live capture needs root")
def test_cli_ctrl_c_on_live_capture_prints_a_summary(exported: Path, tmp_path: Path) -> None:
    artifact = exported
    proc = subprocess.Popen(
        [*CLI, "detect", "--model", str(artifact), "--iface", "lo", "--stats-interval", "0.2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    first = proc.stdout.readline()  # the first periodic stats record: detection is running
    assert '"event_type":"stats"' in first
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "interrupted" in err
    stats = [json.loads(line) for line in out.splitlines() if '"stats"' in line]
    assert stats and stats[-1]["stats"]["final"] is True
    assert "kernel_drops" in stats[-1]["stats"]["capture"]


def test_live_idle_flows_expire_without_traffic(
    artifact: Path, tmp_path: Path, live_veth: str
) -> None:
    from pktlstm.io.live import LiveConfig, open_live

    from .conftest import send_udp_to_peer

    out = tmp_path / "eve.json"
    det = load_detector(artifact)
    writer = EveWriter(str(out), classes=CLASSES, model_id="m", sources=[Source(live_veth, True)])
    cap = open_live(LiveConfig(iface=live_veth, bpf="udp"))
    flows = FlowConfig(verdict_packets=3, aggregate="mean", idle_timeout_s=0.5)
    engine = Engine(det, cap, writer, DetectConfig(max_wait_ms=2, flows=flows))
    thread = threading.Thread(target=engine.run)
    thread.start()
    send_udp_to_peer(6001, 1)  # one packet: the mean verdict waits for the flow to expire
    deadline = time.monotonic() + 10
    while writer.alerts_written == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    alerts_before_stop = writer.alerts_written
    cap.stop()
    thread.join(5)
    writer.close()
    cap.close()
    assert alerts_before_stop == 1  # decided while the link was quiet, not at shutdown
    assert alerts_of(out)[0]["dest_port"] == 6001
