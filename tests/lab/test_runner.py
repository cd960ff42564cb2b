"""Tests for pktlstm.lab.runner: labels file, manifest, and the quick scenario end to end (root)."""

from __future__ import annotations

import csv
import ipaddress
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from pktlstm.errors import ConfigError
from pktlstm.lab import runner
from pktlstm.lab.actions import Planned, Rule
from pktlstm.lab.netns import LabError, lab_namespaces
from pktlstm.lab.scenario import LAB_NETWORK, Action, load_scenario

from .conftest import lab_unavailable


def test_config_validation() -> None:
    with pytest.raises(ConfigError, match="duration=0.5"):
        runner.LabConfig("quick", Path("x"), duration=0.5)
    with pytest.raises(ConfigError, match="ready_timeout"):
        runner.LabConfig("quick", Path("x"), ready_timeout=0)


def test_labels_file_is_the_rules_format(tmp_path: Path) -> None:
    act = Action(kind="syn_flood", host="m", target="s", start=1, duration=2, label="syn_flood")
    planned = [
        Planned(
            "a0",
            act,
            ("hping3",),
            ("hping3",),
            (Rule("198.18.0.66", "198.18.0.10", 6, 80, "syn_flood"),),
        ),
        Planned(
            "a1",
            act,
            ("nmap",),
            ("nmap",),
            (Rule("198.19.0.0/24", "198.18.0.10", None, None, "port_scan"),),
        ),
        Planned("b0", act, ("curl",), ("curl",), ()),
    ]
    rec = runner.RunRecord(
        "a0", "syn_flood", "m", "s", "syn_flood", ("hping3",), 0, 0, 100.5, 103.25, 0, False
    )
    rec1 = runner.RunRecord(
        "a1", "nmap", "m", "s", "port_scan", ("nmap",), 0, 0, 200.0, 201.0, None, True
    )
    path = tmp_path / "labels.csv"
    runner._write_labels(path, planned, [rec, rec1])
    rows = list(csv.reader(path.open()))
    assert rows[0] == ["src", "dst", "proto", "dport", "start", "end", "label"]
    assert rows[1] == [
        "198.18.0.66",
        "198.18.0.10",
        "6",
        "80",
        "100.500000",
        "104.250000",
        "syn_flood",
    ]
    assert rows[2] == [
        "198.19.0.0/24",
        "198.18.0.10",
        "",
        "",
        "200.000000",
        "202.000000",
        "port_scan",
    ]
    assert len(rows) == 3
    from pktlstm.labels import RuleLabels, open_labels

    assert isinstance(open_labels(str(path)), RuleLabels)  # the dataset builder takes it as it is


def test_tcpdump_stats() -> None:
    text = "listening on br0\n120 packets captured\n121 packets received by filter\n3 packets dropped by kernel\n"
    assert runner._tcpdump_stats(text) == (120, 3)
    assert runner._tcpdump_stats("") == (-1, -1)


def test_bad_scenario_fails_before_anything_runs(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        runner.run_lab(runner.LabConfig("no-such-scenario", tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_cli_without_root_prints_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pktlstm import cli
    from pktlstm.lab import preflight

    monkeypatch.setattr(preflight.os, "geteuid", lambda: 1000)
    monkeypatch.setattr(preflight.sys, "platform", "linux")
    monkeypatch.setattr(
        sys, "argv", ["pktlstm", "lab", "run", "--scenario", "quick", "--out", str(tmp_path / "o")]
    )
    with pytest.raises(SystemExit) as info:
        cli.main()
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: the lab needs root")
    assert not any("Traceback" in line for line in err)


# --- root only: real tools in real namespaces ---------------------------------------------


def _quick_tools() -> tuple[str, ...]:
    import tempfile

    from pktlstm.lab.actions import plan_actions
    from pktlstm.lab.services import TOOLS

    sc = load_scenario("quick")
    with tempfile.TemporaryDirectory() as tmp:
        tools = {t for p in plan_actions(sc, Path(tmp)) for t in p.tools}
    tools |= {t for h in sc.hosts for s in h.services for t in TOOLS[s]}
    return tuple(sorted(tools))


@pytest.fixture
def lab_ready(lab_serial: None) -> None:
    why = lab_unavailable(_quick_tools())
    if why:
        pytest.skip(why)


class _RootWatch:
    """Watches the root namespace while a lab runs: tcpdump for lab addresses, links, routes."""

    def __init__(self, tmp: Path) -> None:
        self.pcap = tmp / "root-ns.pcap"
        self.log = tmp / "root-ns.log"
        self.links_before = self._links()
        self.problems: list[str] = []
        self.lab_seen = 0
        self._stop = threading.Event()
        with self.log.open("wb") as fh:
            self.tcpdump = subprocess.Popen(
                ["tcpdump", "-i", "any", "-n", "-U", "-w", str(self.pcap), "net", str(LAB_NETWORK)],
                stdout=fh, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        deadline = time.time() + 10
        while "listening on" not in self.log.read_text() and time.time() < deadline:
            time.sleep(0.05)
        self.thread = threading.Thread(target=self._poll, daemon=True)
        self.thread.start()

    @staticmethod
    def _links() -> set[str]:
        out = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
        return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines()}

    def _poll(self) -> None:
        while not self._stop.wait(0.5):
            addrs = subprocess.run(
                ["ip", "-4", "-o", "addr"], capture_output=True, text=True
            ).stdout
            for line in addrs.split():
                if "/" in line and ipaddress.ip_interface(line).ip in LAB_NETWORK:
                    self.problems.append(f"root namespace has lab address {line}")
            # other tests may add links of their own here; the lab's are named v-HOST and br0
            new = self._links() - self.links_before
            lab_links = sorted(n for n in new if n.startswith("v-") or n == "br0")
            if lab_links:
                self.problems.append(f"root namespace has lab links {lab_links}")
            names = lab_namespaces()
            for ns in names:
                out = subprocess.run(
                    ["ip", "-n", ns, "-4", "route"], capture_output=True, text=True
                ).stdout
                for route in out.splitlines():
                    if route.startswith("default") or " via " in route:
                        self.problems.append(f"{ns} has route {route}")
            self.lab_seen = max(self.lab_seen, len(names))

    def stop(self) -> int:
        """Stop watching; returns how many lab packets the root namespace's interfaces saw."""
        self._stop.set()
        self.thread.join(timeout=10)
        time.sleep(0.3)
        os.killpg(self.tcpdump.pid, signal.SIGINT)
        self.tcpdump.wait(timeout=10)
        text = self.log.read_text()
        captured = [int(w.split()[0]) for w in text.splitlines() if w.endswith("packets captured")]
        assert captured, text
        return captured[0]


def _v4(addr16: np.ndarray) -> list[ipaddress.IPv4Address]:
    return [ipaddress.IPv4Address(bytes(a[12:])) for a in addr16]


@pytest.mark.root
@pytest.mark.slow
def test_quick_scenario_end_to_end(
    lab_ready: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pktlstm.io import read_capture
    from pktlstm.labels import open_labels

    out = tmp_path / "lab"
    watch = _RootWatch(tmp_path)
    monkeypatch.chdir(tmp_path)  # a relative --out, as users type it
    try:
        result = runner.run_lab(runner.LabConfig("quick", Path("lab")))
    finally:
        leaked = watch.stop()
    # containment: nothing of the lab on the root namespace, no route out, all torn down
    assert watch.lab_seen >= 5, "the watcher never saw the lab running"
    assert watch.problems == []
    assert leaked == 0
    assert lab_namespaces() == []
    assert not [p for p in Path("/proc").glob("[0-9]*/cmdline") if b"pktlstm-lab-" in _read(p)]

    assert sorted(p.name for p in out.iterdir()) == [
        "labels.csv",
        "logs",
        "scenario.json",
        "traffic.pcap",
    ]
    manifest = json.loads(result.manifest.read_text())
    assert manifest["capture"]["packets_captured"] == result.packets > 1000
    assert manifest["tools"]["nmap"] and manifest["tools"]["hping3"]
    sc = load_scenario("quick")
    runs = {r["name"]: r for r in manifest["runs"]}
    assert len(runs) == len(sc.benign) + len(sc.attacks)
    for r in runs.values():
        assert manifest["started"] <= r["started"] <= r["ended"] <= manifest["ended"]
        assert r["ended"] <= r["planned_end"] + 10.0  # stopped at its deadline (TERM, then KILL)
    assert result.failures == ()

    # the capture parses; every IPv4 address in it is a lab address
    batch, _ = read_capture(result.pcap)
    assert len(batch) == result.packets
    v4 = batch.ip_version == 4
    for addr in {*_v4(batch.src[v4]), *_v4(batch.dst[v4])}:
        assert addr in LAB_NETWORK or addr.is_multicast or addr.is_unspecified, addr
    assert batch.ip_version[batch.ip_version != 4].size <= 50  # ARP only: IPv6 is off

    # labels match packets, as the dataset builder applies them
    assign = open_labels(str(result.labels)).assign(batch, result.pcap)
    names = np.array([*assign.names, "benign"])
    label = names[assign.codes]  # -1 (unmatched) -> benign
    attacker = ipaddress.IPv4Address(sc.host("mallory").address)
    src, dst = _v4(batch.src), _v4(batch.dst)
    involved = np.array(
        [v and (s == attacker or d == attacker) for v, s, d in zip(v4, src, dst, strict=True)]
    )
    malicious = label != "benign"
    assert np.all(involved[malicious]), "a packet without the attacker got an attack label"
    assert malicious[involved].mean() > 0.99, "attacker traffic outside every label window"
    for kind, min_flows in {"port_scan": 500, "syn_flood": 500, "masscan": 300, "udp_flood": 100,
                            "slowloris": 20, "ssh_bruteforce": 2}.items():  # fmt: skip
        flows = np.unique(batch.flow_id[label == kind]).size
        assert flows >= min_flows, (kind, flows)
    benign = (label == "benign") & v4
    ports = set(batch.dport[benign].tolist()) | set(batch.sport[benign].tolist())
    assert {22, 53, 80, 1883, 5201} <= ports
    assert benign.sum() > 500


def _read(p: Path) -> bytes:
    try:
        return p.read_bytes()
    except OSError:
        return b""


@pytest.mark.root
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_tears_everything_down(lab_ready: None, tmp_path: Path, sig: int) -> None:
    code = "from pktlstm.cli import main; main()"
    cmd = [
        sys.executable,
        "-c",
        code,
        "lab",
        "run",
        "--scenario",
        "quick",
        "--out",
        str(tmp_path / "o"),
        "--duration",
        "30",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 300  # may wait for another lab run's lock
        while (
            time.time() < deadline
            and not (tmp_path / "o" / "logs" / "benign00-http-alice.log").exists()
        ):
            time.sleep(0.1)
        time.sleep(1.0)
        assert lab_namespaces(), "the lab did not start"
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert lab_namespaces() == []
    assert not [p for p in Path("/proc").glob("[0-9]*/cmdline") if b"pktlstm-lab-" in _read(p)]


@pytest.mark.root
def test_failing_server_is_one_error_and_nothing_is_left(
    lab_ready: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dataclasses

    real = runner.prepare_servers

    def broken(scenario, work):  # type: ignore[no-untyped-def]
        servers = real(scenario, work)
        return [
            dataclasses.replace(servers[0], argv=("sh", "-c", "echo boom; exit 3")),
            *servers[1:],
        ]

    monkeypatch.setattr(runner, "prepare_servers", broken)
    with pytest.raises(LabError, match=r"exited at start \(code 3\): boom"):
        runner.run_lab(runner.LabConfig("quick", tmp_path / "o"))
    assert lab_namespaces() == []
    assert not [p for p in Path("/proc").glob("[0-9]*/cmdline") if b"pktlstm-lab-" in _read(p)]
    assert not (tmp_path / "o" / "labels.csv").exists()


@pytest.mark.root
def test_second_run_after_a_crash_cleans_up(lab_ready: None, tmp_path: Path) -> None:
    code = "from pktlstm.cli import main; main()"
    cmd = [
        sys.executable,
        "-c",
        code,
        "lab",
        "run",
        "--scenario",
        "quick",
        "--out",
        str(tmp_path / "a"),
        "--duration",
        "30",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 300
        while (
            time.time() < deadline
            and not (tmp_path / "a" / "logs" / "benign00-http-alice.log").exists()
        ):
            time.sleep(0.1)
        time.sleep(1.0)
        proc.kill()  # a crash: no teardown at all
        proc.wait(timeout=10)
        left = lab_namespaces()
        assert left, "the killed run left nothing behind to clean up"
        result = runner.run_lab(runner.LabConfig("quick", tmp_path / "b", duration=3))
    finally:
        if proc.poll() is None:
            proc.kill()
    assert result.packets > 0
    assert lab_namespaces() == []
    alive = [p for p in Path("/proc").glob("[0-9]*/cmdline") if b"pktlstm-lab-" in _read(p)]
    assert alive == []
