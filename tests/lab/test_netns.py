"""Tests for pktlstm.lab.netns: isolated namespaces on a bridge, leftovers, process groups."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pktlstm.lab import netns
from pktlstm.lab.scenario import Host


def test_names_and_macs() -> None:
    assert netns.ns_name("srv") == "pktlab-srv"
    assert netns.BRIDGE_NS.startswith(netns.NS_PREFIX)
    mac = netns.host_mac("198.18.1.10")
    assert mac == "02:70:6b:12:01:0a"
    assert int(mac.split(":")[0], 16) & 0b10  # locally administered
    assert netns.host_mac("198.19.255.254") != netns.host_mac("198.18.255.254")


@pytest.fixture
def locked(lab_root: None) -> Iterator[None]:
    """Root tests that touch namespaces hold the lab lock (a lab run may be going on in parallel)."""
    with netns.lab_lock(600):
        yield


def _root_addresses() -> str:
    return subprocess.run(["ip", "-4", "addr"], capture_output=True, text=True, check=True).stdout


def _root_links() -> set[str]:
    out = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines()}


@pytest.mark.root
def test_network_is_isolated_and_removed(locked: None, tmp_path: Path) -> None:
    links_before = _root_links()
    hosts = (Host("a", "198.18.9.1"), Host("b", "198.19.9.2"))
    created = netns.create_network(hosts)
    procs = netns.Processes(log_dir=tmp_path)
    try:
        assert created == [netns.BRIDGE_NS, "pktlab-a", "pktlab-b"]
        assert set(created) <= set(netns.lab_namespaces())
        # nothing of the lab in the root namespace: no address, no link
        assert "198.18." not in _root_addresses() and "198.19." not in _root_addresses()
        assert _root_links() == links_before
        for ns in ("pktlab-a", "pktlab-b"):
            assert netns.routes(ns) == [
                r for r in netns.routes(ns) if r.startswith("198.18.0.0/15 ")
            ]
            assert len(netns.routes(ns)) == 1  # only the on-link /15: no default route
        assert netns.routes(netns.BRIDGE_NS) == []  # the bridge has no address at all
        offload = subprocess.run(
            ["ip", "netns", "exec", "pktlab-a", "ethtool", "-k", "eth0"],
            capture_output=True,
            text=True,
        ).stdout
        assert "tcp-segmentation-offload: off" in offload
        # the two hosts reach each other across the bridge (198.18/15 is one on-link subnet)
        server = procs.spawn(
            "server",
            "pktlab-b",
            [sys.executable, "-m", "http.server", "-b", "198.19.9.2", "8080"],
            cwd=tmp_path,
        )
        deadline = time.time() + 10
        while ("tcp", 8080) not in netns.listening("pktlab-b") and time.time() < deadline:
            time.sleep(0.05)
        client = subprocess.run(
            ["ip", "netns", "exec", "pktlab-a", sys.executable, "-c",
             "import urllib.request; print(urllib.request.urlopen('http://198.19.9.2:8080/', timeout=5).status)"],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert client.stdout.strip() == "200", client.stderr
        procs.stop(server)
        assert server.stopped and server.ended is not None
    finally:
        procs.stop_all()
        netns.remove_namespaces(created)
    assert not set(created) & set(netns.lab_namespaces())


@pytest.mark.root
def test_leftovers_of_a_crashed_run_are_removed(locked: None) -> None:
    subprocess.run(["ip", "netns", "add", "pktlab-stale"], check=True)
    sleeper = subprocess.Popen(
        ["ip", "netns", "exec", "pktlab-stale", "sleep", "300"], start_new_session=True
    )
    try:
        time.sleep(0.2)
        assert "pktlab-stale" in netns.lab_namespaces()
        assert "pktlab-stale" in netns.cleanup_leftovers()
        assert sleeper.wait(timeout=10) != 0  # killed
        assert "pktlab-stale" not in netns.lab_namespaces()
    finally:
        if sleeper.poll() is None:
            sleeper.kill()
        subprocess.run(["ip", "netns", "delete", "pktlab-stale"], capture_output=True)


def _dead(pid: int) -> bool:
    """Gone, or a zombie waiting for a reaper (init in a container may not reap quickly)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


@pytest.mark.root
def test_stop_kills_the_whole_process_group(locked: None, tmp_path: Path) -> None:
    created = netns.create_network((Host("p", "198.18.9.5"), Host("q", "198.18.9.6")))
    procs = netns.Processes(log_dir=tmp_path)
    try:
        proc = procs.spawn(
            "pair", "pktlab-p", ["sh", "-c", "sleep 100 & echo $! > kid; sleep 100"], cwd=tmp_path
        )
        deadline = time.time() + 5
        while not (tmp_path / "kid").exists() and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(0.1)
        kid = int((tmp_path / "kid").read_text())
        procs.stop(proc, grace=1.0)
        time.sleep(0.1)
        assert _dead(kid)
        assert proc.poll() and proc.stopped
    finally:
        procs.stop_all()
        netns.remove_namespaces(created)


def test_lab_error_is_a_user_error() -> None:
    from pktlstm.errors import PktlstmError

    assert issubclass(netns.LabError, PktlstmError)
    with pytest.raises(netns.LabError, match="ip netns-does-not-exist"):
        netns.ip("netns-does-not-exist")
