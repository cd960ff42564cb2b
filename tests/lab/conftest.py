"""Fixtures for the lab tests: a skip for root-only tests where the lab cannot run."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pktlstm.lab.preflight import BASE_TOOLS, missing_tools

SERIAL_LOCK = Path("/tmp/pktlstm-lab-tests.lock")


def lab_unavailable(tools: tuple[str, ...] = ()) -> str | None:
    """Why root-only lab tests cannot run here, or None when they can."""
    if not sys.platform.startswith("linux"):
        return f"the lab needs Linux (this is {sys.platform})"
    if os.geteuid() != 0:
        return "the lab needs root (network namespaces)"
    missing = missing_tools([*BASE_TOOLS, *tools])
    if missing:
        return (
            f"missing tools {', '.join(missing)} (bash scripts/ci-system-packages.sh installs them)"
        )
    ip = shutil.which("ip", path="/usr/sbin:/usr/bin:/sbin:/bin") or "ip"
    name = f"pktlstm-probe{os.getpid()}"
    probe = subprocess.run([ip, "netns", "add", name], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"network namespaces unavailable: {probe.stderr.strip()}"
    subprocess.run([ip, "netns", "delete", name], capture_output=True)
    return None


@pytest.fixture
def lab_serial() -> Iterator[None]:
    """One root lab test at a time across pytest-xdist workers.

    Tests assert that no lab namespace is left after a run; another worker's lab starting in
    between would make that fail, so root lab tests hold this lock for their whole duration
    (a lab run they start takes the lab's own lock as usual).
    """
    with open(SERIAL_LOCK, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@pytest.fixture
def lab_root(lab_serial: None) -> None:
    """Skip unless this is Linux, root, with `ip netns` working and the base tools installed."""
    why = lab_unavailable()
    if why:
        pytest.skip(why)
