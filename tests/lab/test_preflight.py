"""Tests for pktlstm.lab.preflight: one clear line for missing root or tools."""

from __future__ import annotations

import pytest

from pktlstm.lab import preflight
from pktlstm.lab.netns import LabError
from pktlstm.lab.preflight import TOOL_PACKAGES, check_environment, install_hint, missing_tools


def test_install_hint_names_debian_packages() -> None:
    hint = install_hint(["hping3", "dig", "/usr/sbin/sshd", "mosquitto_pub", "mosquitto_sub"])
    assert hint == "apt-get install bind9-dnsutils hping3 mosquitto-clients openssh-server"


def test_every_tool_of_the_shipped_scenarios_has_a_package() -> None:
    import tempfile
    from pathlib import Path

    from pktlstm.lab.actions import plan_actions
    from pktlstm.lab.scenario import load_scenario, shipped_scenarios
    from pktlstm.lab.services import TOOLS

    with tempfile.TemporaryDirectory() as tmp:
        for name in shipped_scenarios():
            for p in plan_actions(load_scenario(name), Path(tmp) / name):
                assert set(p.tools) <= set(TOOL_PACKAGES), p.tools
    assert {t for tools in TOOLS.values() for t in tools} <= set(TOOL_PACKAGES)
    assert set(preflight.BASE_TOOLS) <= set(TOOL_PACKAGES)


def test_missing_tools() -> None:
    assert missing_tools(["sh", "surely-not-a-tool-xyz"]) == ["surely-not-a-tool-xyz"]


def test_not_root_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(preflight.sys, "platform", "linux")
    monkeypatch.setattr(preflight.os, "geteuid", lambda: 1000)
    with pytest.raises(LabError, match="needs root") as info:
        check_environment(["nmap"])
    assert "\n" not in str(info.value)


def test_missing_tools_give_the_apt_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(preflight.os, "geteuid", lambda: 0)
    monkeypatch.setattr(
        preflight, "missing_tools", lambda tools: sorted({"hydra", "masscan"} & set(tools))
    )
    with pytest.raises(LabError, match=r"install them with: apt-get install hydra masscan$"):
        check_environment(["hydra", "masscan", "curl"])


def test_not_linux(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(preflight.sys, "platform", "darwin")
    with pytest.raises(LabError, match="Linux"):
        check_environment([])


def test_package_versions_known_packages() -> None:
    versions = preflight.package_versions(["ip", "no-such-tool"])
    assert set(versions) == {"iproute2"}
