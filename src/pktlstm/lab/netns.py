"""Network namespaces, veth pairs and one bridge for the lab, and the processes run inside them."""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import logging
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pktlstm.errors import LabError
from pktlstm.lab.scenario import LAB_PREFIXLEN, Host

log = logging.getLogger(__name__)

NS_PREFIX = "pktlab-"
"""Every lab namespace name starts with this; leftovers of a crashed run are found by it."""
BRIDGE_NS = "pktlab-bridge"
"""Namespace holding the bridge (host names are at most 10 characters, so "bridge" is free)."""
BRIDGE = "br0"
"""The bridge device inside BRIDGE_NS; tcpdump captures on it."""
HOST_IF = "eth0"
"""The single interface of every lab host."""
LOCK_PATH = Path("/run/pktlstm-lab.lock")
"""Held for a whole run: one lab at a time per machine (runs share namespace names)."""
SBIN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
"""PATH given to every lab process (servers live in sbin)."""


@contextlib.contextmanager
def lab_lock(timeout: float) -> Iterator[None]:
    """Hold LOCK_PATH (waiting up to ``timeout`` seconds): one lab at a time per machine."""
    with open(LOCK_PATH, "a+") as fh:
        deadline = time.time() + timeout
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.time() >= deadline:
                    raise LabError(
                        f"another pktlstm lab run holds {LOCK_PATH} (waited {timeout:g} s)"
                    ) from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def ns_name(host: str) -> str:
    """Namespace name of lab host ``host``."""
    return f"{NS_PREFIX}{host}"


def host_mac(address: str) -> str:
    """Locally administered MAC address derived from a lab IPv4 address (stable across runs)."""
    b = ipaddress.IPv4Address(address).packed
    return f"02:70:6b:{b[1]:02x}:{b[2]:02x}:{b[3]:02x}"


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``ip ARGS`` and return the result; a failure raises LabError naming the command."""
    cmd = ["ip", *args]
    res = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=30)
    if check and res.returncode != 0:
        raise LabError(f"`{' '.join(cmd)}` failed: {res.stderr.strip() or res.returncode}")
    return res


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k in ("HOME", "LANG", "LC_ALL", "TERM", "USER")}
    env["PATH"] = SBIN_PATH
    env.setdefault("HOME", "/root")
    return env


def lab_namespaces() -> list[str]:
    """Names of the lab namespaces that exist now (this run's or a crashed run's)."""
    res = ip("netns", "list", check=False)
    names = [line.split()[0] for line in res.stdout.splitlines() if line.strip()]
    return [n for n in names if n.startswith(NS_PREFIX)]


def kill_namespace_processes(ns: str) -> int:
    """SIGKILL every process living in namespace ``ns``; returns how many there were."""
    res = ip("netns", "pids", ns, check=False)
    pids = [int(p) for p in res.stdout.split() if p.isdigit()]
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return len(pids)


def remove_namespaces(names: list[str]) -> None:
    """Kill what runs in each namespace, then delete it (its veth ends and bridge go with it)."""
    for ns in names:
        kill_namespace_processes(ns)
    for ns in names:
        ip("netns", "delete", ns, check=False)


def cleanup_leftovers() -> list[str]:
    """Remove every lab namespace left by a crashed run; returns their names."""
    left = lab_namespaces()
    if left:
        log.warning("removing %d leftover lab namespace(s): %s", len(left), ", ".join(left))
        remove_namespaces(left)
    return left


def create_network(hosts: tuple[Host, ...]) -> list[str]:
    """Create the bridge namespace and one namespace per host, joined by veth pairs.

    Nothing is created in the root namespace: veth pairs are made inside the bridge namespace
    with their far end moved straight into the host's namespace. Hosts get their address with
    prefix /15 (all of 198.18.0.0/15 on-link), no default route, IPv6 disabled, and no
    segmentation or checksum offload (so captured packets look as they would on a wire).

    Returns:
        The namespaces created, bridge first (pass them to ``remove_namespaces``).
    """
    created: list[str] = []
    try:
        res = ip("netns", "add", BRIDGE_NS, check=False)
        if res.returncode != 0:
            raise LabError(
                f"cannot create a network namespace ({res.stderr.strip()}); the lab needs root "
                "on Linux with network namespaces (ip netns) allowed"
            )
        created.append(BRIDGE_NS)
        _sysctl(
            BRIDGE_NS, "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"
        )
        ip("-n", BRIDGE_NS, "link", "add", BRIDGE, "type", "bridge", "stp_state", "0",
           "forward_delay", "0", "mcast_snooping", "0")  # fmt: skip
        ip("-n", BRIDGE_NS, "link", "set", BRIDGE, "up")
        for h in hosts:
            ns = ns_name(h.name)
            ip("netns", "add", ns)
            created.append(ns)
            _sysctl(ns, "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
            port = f"v-{h.name}"
            ip("-n", BRIDGE_NS, "link", "add", port, "type", "veth", "peer", "name", HOST_IF,
               "netns", ns)  # fmt: skip
            ip("-n", ns, "link", "set", HOST_IF, "address", host_mac(h.address))
            ip("-n", ns, "addr", "add", f"{h.address}/{LAB_PREFIXLEN}", "dev", HOST_IF)
            ip("-n", ns, "link", "set", "lo", "up")
            _offloads_off(ns, HOST_IF)
            ip("-n", ns, "link", "set", HOST_IF, "up")
            ip("-n", BRIDGE_NS, "link", "set", port, "master", BRIDGE, "up")
    except BaseException:
        remove_namespaces(created)
        raise
    return created


def _offloads_off(ns: str, dev: str) -> None:
    """No segmentation or checksum offload: the capture then holds wire-sized, checksummed packets."""
    cmd = [
        "ip",
        "netns",
        "exec",
        ns,
        "ethtool",
        "-K",
        dev,
        "tso",
        "off",
        "gso",
        "off",
        "gro",
        "off",
        "tx",
        "off",
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=30)
    if res.returncode != 0:
        raise LabError(f"`ethtool -K {dev} ...` in {ns} failed: {res.stderr.strip()}")


def _sysctl(ns: str, *settings: str) -> None:
    cmd = ["ip", "netns", "exec", ns, "sysctl", "-q", "-w", *settings]
    subprocess.run(cmd, capture_output=True, env=_env(), timeout=30, check=False)


def routes(ns: str) -> list[str]:
    """IPv4 routes of namespace ``ns``, one line each (the lab has only the on-link /15)."""
    return [r for r in ip("-n", ns, "-4", "route", "show").stdout.splitlines() if r.strip()]


def listening(ns: str) -> set[tuple[str, int]]:
    """(transport, port) pairs that sockets listen on inside namespace ``ns``."""
    cmd = ["ip", "netns", "exec", ns, "ss", "-Hlntu"]
    res = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=30)
    out: set[tuple[str, int]] = set()
    for line in res.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 5 and parts[4].rsplit(":", 1)[-1].isdigit():
            out.add((parts[0], int(parts[4].rsplit(":", 1)[1])))
    return out


@dataclass
class Proc:
    """One program running in a lab namespace, in its own process group.

    Attributes:
        name: unique name in the run (also names its log file).
        popen: the running process (``ip netns exec`` execs the program in place).
        log_path: where its stdout and stderr go.
        started: epoch seconds just before it was spawned.
        ended: epoch seconds when it was seen to exit or was stopped (None while running).
        stopped: True when the lab stopped it (deadline or teardown), False when it exited.
    """

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    started: float
    ended: float | None = None
    stopped: bool = False

    def poll(self) -> bool:
        """True (and ``ended`` set) once the process has exited."""
        if self.ended is None and self.popen.poll() is not None:
            self.ended = time.time()
        return self.ended is not None

    def log_tail(self, lines: int = 3) -> str:
        """Last lines of its log, joined with " | " (for error messages)."""
        try:
            text = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return " | ".join(text[-lines:])


@dataclass
class Processes:
    """Every process the lab started, so that all of them can be stopped on any exit path."""

    log_dir: Path
    procs: list[Proc] = field(default_factory=list)

    def spawn(self, name: str, ns: str, argv: list[str], cwd: Path) -> Proc:
        """Start ``argv`` inside namespace ``ns`` in a new session; output goes to a log file."""
        log_path = self.log_dir / f"{name}.log"
        with open(log_path, "wb") as out:
            popen = subprocess.Popen(
                ["ip", "netns", "exec", ns, *argv],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                env=_env(),
                start_new_session=True,
            )
        proc = Proc(name=name, popen=popen, log_path=log_path, started=time.time())
        self.procs.append(proc)
        log.debug("started %s in %s: %s", name, ns, " ".join(argv))
        return proc

    def stop(self, proc: Proc, sig: int = signal.SIGTERM, grace: float = 2.0) -> None:
        """Signal the process group, wait up to ``grace`` seconds, then SIGKILL it."""
        if proc.poll():
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.popen.pid, sig)
        try:
            proc.popen.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.popen.pid, signal.SIGKILL)
            proc.popen.wait(timeout=10)
        proc.ended = time.time()
        proc.stopped = True
        # children that left the group (rare) die with the namespace at teardown

    def stop_all(self) -> None:
        """Stop every process still running (SIGTERM, then SIGKILL)."""
        for proc in reversed(self.procs):
            with contextlib.suppress(Exception):
                self.stop(proc, grace=1.0)
