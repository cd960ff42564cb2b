"""Run a lab scenario: build the network, start servers, play the timeline, capture and label."""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import functools
import json
import logging
import platform
import re
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from pktlstm.errors import ConfigError
from pktlstm.lab.actions import Planned, plan_actions
from pktlstm.lab.netns import (
    BRIDGE,
    BRIDGE_NS,
    LabError,
    Proc,
    Processes,
    cleanup_leftovers,
    create_network,
    host_mac,
    lab_lock,
    listening,
    ns_name,
    remove_namespaces,
    routes,
)
from pktlstm.lab.preflight import check_environment, package_versions
from pktlstm.lab.scenario import LAB_NETWORK, Scenario, load_scenario
from pktlstm.lab.services import TOOLS as SERVICE_TOOLS
from pktlstm.lab.services import Server, prepare_servers

log = logging.getLogger(__name__)

LABEL_HEADER = ("src", "dst", "proto", "dport", "start", "end", "label")
"""Columns of labels.csv (the dataset builder's rules label source)."""
TAIL_S = 1.0
"""Seconds a label window stays open after its attack ended (replies and teardown in flight)."""
MANIFEST_FORMAT_VERSION = 1

Progress = Callable[[float, float], None]
"""Called as (seconds elapsed, scenario duration in seconds) while the timeline plays."""


@dataclass(frozen=True)
class LabConfig:
    """What ``pktlstm lab run`` does.

    Attributes:
        scenario: shipped scenario name (``quick``, ``rich``) or path to a TOML file.
        out: folder written: traffic.pcap, labels.csv, scenario.json, logs/.
        duration: seconds; when set, the scenario's timeline is scaled to last this long.
        ready_timeout: seconds servers (and tcpdump) get to start listening.
        lock_timeout: seconds to wait for another lab run on this machine to finish.
    """

    scenario: str | Path
    out: Path
    duration: float | None = None
    ready_timeout: float = 15.0
    lock_timeout: float = 300.0

    def __post_init__(self) -> None:
        if self.duration is not None and not (1.0 <= self.duration <= 3600.0):
            raise ConfigError(f"duration={self.duration}; allowed 1..3600 seconds")
        if not (0.5 <= self.ready_timeout <= 120.0):
            raise ConfigError(f"ready_timeout={self.ready_timeout}; allowed 0.5..120 seconds")
        if not (0.0 <= self.lock_timeout <= 3600.0):
            raise ConfigError(f"lock_timeout={self.lock_timeout}; allowed 0..3600 seconds")


@dataclass(frozen=True)
class RunRecord:
    """What happened to one benign client or attack (times in epoch seconds)."""

    name: str
    kind: str
    host: str
    target: str
    label: str
    argv: tuple[str, ...]
    planned_start: float
    planned_end: float
    started: float
    ended: float
    returncode: int | None
    stopped_by_lab: bool


@dataclass(frozen=True)
class LabResult:
    """Files a lab run wrote and what it saw.

    Attributes:
        out: the output folder.
        pcap: the capture (Ethernet pcap, taken on the lab bridge).
        labels: labels.csv (rules: src,dst,proto,dport,start,end,label).
        manifest: scenario.json (what ran, addresses, tool versions, timings).
        packets: packets tcpdump captured.
        dropped: packets the kernel dropped before tcpdump saw them.
        runs: every benign client and attack, in start order.
        failures: attacks or clients that exited non-zero on their own (name: log tail).
    """

    out: Path
    pcap: Path
    labels: Path
    manifest: Path
    packets: int
    dropped: int
    runs: tuple[RunRecord, ...]
    failures: tuple[str, ...]


def run_lab(config: LabConfig, progress: Progress | None = None) -> LabResult:
    """Run ``config.scenario`` in a fresh isolated network and write capture, labels, manifest.

    Everything (namespaces, processes, temporary files) is torn down on return, on error and
    on Ctrl-C / SIGTERM; namespaces left by a crashed run are removed first.
    ``progress(elapsed_s, duration_s)`` is called about every 0.5 s while the timeline plays.

    Raises:
        ConfigError: bad scenario or settings (before anything is created).
        LabError: not root, tools missing (with the apt-get line), or a lab step failed.
    """
    scenario = load_scenario(config.scenario)
    if config.duration is not None:
        scenario = scenario.scaled(config.duration)
    work = Path(tempfile.mkdtemp(prefix="pktlstm-lab-"))
    try:
        planned = plan_actions(scenario, work)
        tools = {t for p in planned for t in p.tools}
        tools |= {t for h in scenario.hosts for s in h.services for t in SERVICE_TOOLS[s]}
        check_environment(tools)
        out = config.out.resolve()  # tools run with other working directories
        out.mkdir(parents=True, exist_ok=True)
        (out / "logs").mkdir(exist_ok=True)
        stale = [out / n for n in ("traffic.pcap", "labels.csv", "scenario.json")]
        for path in [*stale, *(out / "logs").glob("*.log")]:
            path.unlink(missing_ok=True)
        with lab_lock(config.lock_timeout), _signals_as_interrupt():
            return _run(config, scenario, planned, sorted(tools), work, out, progress)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _run(
    config: LabConfig,
    scenario: Scenario,
    planned: list[Planned],
    tools: list[str],
    work: Path,
    out: Path,
    progress: Progress | None,
) -> LabResult:
    cleanup_leftovers()
    procs = Processes(log_dir=out / "logs")
    created: list[str] = []
    try:
        servers = prepare_servers(scenario, work)
        created = create_network(scenario.hosts)
        for ns in created:
            bad = [r for r in routes(ns) if r.startswith("default") or "via" in r.split()]
            if bad:
                raise LabError(f"namespace {ns} has a route out ({bad[0]}); refusing to run")
        pcap = out / "traffic.pcap"
        # -U: flush per packet; -B: 16 MiB kernel buffer (floods); -Z root: write into OUT
        argv = ["tcpdump", "-i", BRIDGE, "-n", "-U", "-s", "0", "-B", "16384", "-Z", "root", "-w", str(pcap)]  # fmt: skip
        tcpdump = procs.spawn("tcpdump", BRIDGE_NS, argv, cwd=work)
        _wait_for(
            lambda: "listening on" in _read(tcpdump.log_path),
            config.ready_timeout,
            tcpdump,
            "tcpdump",
        )
        server_procs = []
        for srv in servers:
            server_procs.append(procs.spawn(srv.name, ns_name(srv.host), list(srv.argv), cwd=work))
        for srv, proc in zip(servers, server_procs, strict=True):
            _wait_for(
                functools.partial(_listens, srv),
                config.ready_timeout,
                proc,
                f"server {srv.service} on {srv.host}",
            )
        time.sleep(0.3)
        t0 = time.time()
        records = _timeline(scenario, planned, procs, work, t0, progress)
        time.sleep(TAIL_S)
        for proc in server_procs:
            procs.stop(proc, grace=2.0)
        time.sleep(0.2)
        procs.stop(tcpdump, sig=signal.SIGINT, grace=5.0)
        t_end = time.time()
        captured, dropped = _tcpdump_stats(_read(tcpdump.log_path))
        labels = out / "labels.csv"
        _write_labels(labels, planned, records)
        failures = tuple(
            f"{r.name}: exit {r.returncode}: {_tail(out / 'logs' / f'{r.name}.log')}"
            for r in records
            if not r.stopped_by_lab and r.returncode not in (0, None)
        )
        for f in failures:
            log.warning("lab run %s", f)
        manifest = out / "scenario.json"
        manifest.write_text(
            json.dumps(
                {
                    "format": "pktlstm-lab-run",
                    "format_version": MANIFEST_FORMAT_VERSION,
                    "scenario": dataclasses.asdict(scenario),
                    "scenario_source": str(config.scenario),
                    "started": t0,
                    "ended": t_end,
                    "kernel": platform.release(),
                    "network": {
                        "range": str(LAB_NETWORK),
                        "bridge_namespace": BRIDGE_NS,
                        "hosts": [
                            {
                                "name": h.name,
                                "namespace": ns_name(h.name),
                                "address": h.address,
                                "mac": host_mac(h.address),
                                "services": list(h.services),
                            }
                            for h in scenario.hosts
                        ],
                    },
                    "tools": package_versions(tools),
                    "servers": [dataclasses.asdict(s) for s in servers],
                    "runs": [dataclasses.asdict(r) for r in records],
                    "capture": {
                        "file": pcap.name,
                        "namespace": BRIDGE_NS,
                        "interface": BRIDGE,
                        "link_type": "EN10MB",
                        "packets_captured": captured,
                        "packets_dropped": dropped,
                    },
                    "labels": {"file": labels.name, "kind": "rules", "columns": list(LABEL_HEADER)},
                    "failures": list(failures),
                },
                indent=2,
            )
            + "\n"
        )
        return LabResult(out, pcap, labels, manifest, captured, dropped, tuple(records), failures)
    finally:
        procs.stop_all()
        remove_namespaces(created)


def _timeline(
    scenario: Scenario,
    planned: list[Planned],
    procs: Processes,
    work: Path,
    t0: float,
    progress: Progress | None,
) -> list[RunRecord]:
    pending = sorted(planned, key=lambda p: p.action.start)
    running: list[tuple[Planned, Proc]] = []
    told = -1.0
    while True:
        now = time.time() - t0
        if progress is not None and now - told >= 0.5:
            progress(min(now, scenario.duration), scenario.duration)
            told = now
        while pending and pending[0].action.start <= now:
            p = pending.pop(0)
            cwd = (
                work / "cwd" / p.name
            )  # own folder: tools that drop files (hydra.restore) never meet
            cwd.mkdir(parents=True, exist_ok=True)
            running.append((p, procs.spawn(p.name, ns_name(p.action.host), list(p.argv), cwd=cwd)))
        for p, proc in running:
            if not proc.poll() and now >= p.action.end:
                procs.stop(proc)
        if now >= scenario.duration and not pending:
            break
        time.sleep(0.05)
    for _, proc in running:
        procs.stop(proc)
    records = []
    for p, proc in running:
        a = p.action
        records.append(
            RunRecord(
                name=p.name,
                kind=a.kind,
                host=a.host,
                target=a.target,
                label=a.label,
                argv=p.argv,
                planned_start=t0 + a.start,
                planned_end=t0 + a.end,
                started=proc.started,
                ended=proc.ended if proc.ended is not None else time.time(),
                returncode=proc.popen.returncode,
                stopped_by_lab=proc.stopped,
            )
        )
    return records


def _write_labels(path: Path, planned: list[Planned], records: list[RunRecord]) -> None:
    by_name = {r.name: r for r in records}
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(LABEL_HEADER)
        for p in planned:
            rec = by_name.get(p.name)
            if rec is None:
                continue
            for rule in p.rules:
                w.writerow(
                    [
                        rule.src,
                        rule.dst,
                        "" if rule.proto is None else rule.proto,
                        "" if rule.dport is None else rule.dport,
                        f"{rec.started:.6f}",
                        f"{rec.ended + TAIL_S:.6f}",
                        rule.label,
                    ]
                )


def _wait_for(cond: Callable[[], bool], timeout: float, proc: Proc, what: str) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll():
            raise LabError(
                f"{what} exited at start (code {proc.popen.returncode}): {proc.log_tail()}"
            )
        if cond():
            return
        time.sleep(0.05)
    raise LabError(f"{what} did not start listening within {timeout:g} s: {proc.log_tail()}")


def _listens(srv: Server) -> bool:
    return srv.listen in listening(ns_name(srv.host))


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def _tail(path: Path) -> str:
    lines = _read(path).strip().splitlines()
    return " | ".join(lines[-2:])


def _tcpdump_stats(text: str) -> tuple[int, int]:
    cap = re.search(r"(\d+) packets? captured", text)
    drop = re.search(r"(\d+) packets? dropped by kernel", text)
    return (int(cap.group(1)) if cap else -1, int(drop.group(1)) if drop else -1)


@contextlib.contextmanager
def _signals_as_interrupt() -> Iterator[None]:
    """SIGTERM and SIGHUP raise KeyboardInterrupt, so teardown runs as on Ctrl-C."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
