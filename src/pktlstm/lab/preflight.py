"""Checks before a lab run: Linux, root, and the tools a scenario needs (with the apt line)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterable

from pktlstm.lab.netns import SBIN_PATH, LabError

TOOL_PACKAGES: dict[str, str] = {
    "ip": "iproute2",
    "ss": "iproute2",
    "sysctl": "procps",
    "timeout": "coreutils",
    "sh": "dash",
    "tcpdump": "tcpdump",
    "ethtool": "ethtool",
    "nginx": "nginx",
    "/usr/sbin/sshd": "openssh-server",
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
    "dnsmasq": "dnsmasq-base",
    "mosquitto": "mosquitto",
    "mosquitto_pub": "mosquitto-clients",
    "mosquitto_sub": "mosquitto-clients",
    "inetutils-inetd": "inetutils-inetd",
    "telnetd": "inetutils-telnetd",
    "curl": "curl",
    "wget": "wget",
    "dig": "bind9-dnsutils",
    "iperf3": "iperf3",
    "nmap": "nmap",
    "hping3": "hping3",
    "hydra": "hydra",
    "slowhttptest": "slowhttptest",
    "masscan": "masscan",
}
"""Executable -> Debian package that provides it."""

BASE_TOOLS = ("ip", "ss", "sysctl", "timeout", "sh", "tcpdump", "ethtool")
"""Tools every lab run needs whatever the scenario."""


def missing_tools(tools: Iterable[str]) -> list[str]:
    """The executables among ``tools`` that are not installed (looked up in sbin dirs too)."""
    return sorted({t for t in tools if shutil.which(t, path=SBIN_PATH) is None})


def install_hint(tools: Iterable[str]) -> str:
    """``apt-get install ...`` line for the packages providing ``tools``."""
    pkgs = sorted({TOOL_PACKAGES.get(t, t.rsplit("/", 1)[-1]) for t in tools})
    return "apt-get install " + " ".join(pkgs)


def check_environment(tools: Iterable[str]) -> None:
    """Raise LabError with one actionable line unless this is Linux, root, and ``tools`` exist."""
    if not sys.platform.startswith("linux"):
        raise LabError(f"the lab needs Linux network namespaces; this is {sys.platform}")
    if os.geteuid() != 0:
        raise LabError(
            "the lab needs root (network namespaces, raw sockets): run it as root, "
            "e.g. `sudo pktlstm lab run ...`"
        )
    missing = missing_tools([*BASE_TOOLS, *tools])
    if missing:
        raise LabError(
            f"missing tools {', '.join(missing)}; install them with: {install_hint(missing)}"
        )


def package_versions(tools: Iterable[str]) -> dict[str, str]:
    """Debian package -> installed version for the packages providing ``tools`` ("" if unknown)."""
    pkgs = sorted({TOOL_PACKAGES[t] for t in tools if t in TOOL_PACKAGES})
    versions = dict.fromkeys(pkgs, "")
    if shutil.which("dpkg-query") is None:
        return versions
    res = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Package} ${Version}\\n", *pkgs],
        capture_output=True,
        text=True,
        timeout=30,
    )
    for line in res.stdout.splitlines():
        name, _, version = line.partition(" ")
        if name in versions:
            versions[name] = version
    return versions
