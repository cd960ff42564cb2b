"""Fixtures for the lab tests: a skip for root-only tests where the lab cannot run."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from pktlstm.lab.preflight import BASE_TOOLS, missing_tools


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
    probe = subprocess.run([ip, "netns", "add", "pktlab-probe"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"network namespaces unavailable: {probe.stderr.strip()}"
    subprocess.run([ip, "netns", "delete", "pktlab-probe"], capture_output=True)
    return None


@pytest.fixture
def lab_root() -> None:
    """Skip unless this is Linux, root, with `ip netns` working and the base tools installed."""
    why = lab_unavailable()
    if why:
        pytest.skip(why)
