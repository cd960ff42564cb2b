"""Tests for pktlstm.lab.scenario: shipped scenarios, validation, scaling."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from pktlstm.errors import ConfigError
from pktlstm.lab.scenario import (
    LAB_NETWORK,
    Action,
    Host,
    Scenario,
    load_scenario,
    scenario_from_dict,
    shipped_scenarios,
)


def _doc(**over: object) -> dict[str, object]:
    doc: dict[str, object] = {
        "name": "t",
        "duration": 10.0,
        "hosts": [
            {"name": "srv", "address": "198.18.0.1", "services": ["http", "ssh"]},
            {"name": "cli", "address": "198.18.0.2"},
        ],
        "benign": [{"kind": "http", "host": "cli", "target": "srv", "duration": 10.0}],
        "attacks": [{"kind": "nmap", "host": "cli", "target": "srv", "start": 2, "duration": 3}],
    }
    doc.update(over)
    return doc


def test_shipped_scenarios_load_and_stay_in_the_lab_range() -> None:
    names = shipped_scenarios()
    assert {"quick", "rich"} <= set(names)
    for name in names:
        sc = load_scenario(name)
        assert sc.name == name
        assert sc.attacks and sc.benign
        for h in sc.hosts:
            assert ipaddress.IPv4Address(h.address) in LAB_NETWORK
        assert all(a.end <= sc.duration for a in (*sc.benign, *sc.attacks))


def test_quick_is_under_a_minute_and_rich_covers_every_attack_kind() -> None:
    assert load_scenario("quick").duration < 60
    rich = load_scenario("rich")
    kinds = {a.kind for a in rich.attacks}
    assert kinds == {
        "nmap", "syn_flood", "ack_flood", "udp_flood", "ssh_bruteforce",
        "telnet_bruteforce", "slowloris", "masscan",
    }  # fmt: skip
    assert len({a.params.get("scan") for a in rich.attacks if a.kind == "nmap"}) >= 5


def test_default_labels_and_explicit_label() -> None:
    doc = _doc()
    doc["attacks"] = [
        {"kind": "nmap", "host": "cli", "target": "srv", "duration": 3},
        {"kind": "nmap", "host": "cli", "target": "srv", "duration": 3, "label": "recon"},
    ]
    sc = scenario_from_dict(doc)
    assert [a.label for a in sc.attacks] == ["port_scan", "recon"]
    assert sc.benign[0].label == ""


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"hosts": [{"name": "srv", "address": "10.0.0.1"}, {"name": "c", "address": "198.18.0.2"}]}, "outside the lab range"),
        ({"hosts": [{"name": "srv", "address": "8.8.8.8"}, {"name": "c", "address": "198.18.0.2"}]}, "outside the lab range"),
        ({"hosts": [{"name": "Bad-Name", "address": "198.18.0.1"}, {"name": "c", "address": "198.18.0.2"}]}, "host.name"),
        ({"hosts": [{"name": "srv", "address": "198.18.0.1"}, {"name": "c", "address": "198.18.0.1"}]}, "repeated"),
        ({"hosts": [{"name": "srv", "address": "198.18.0.1", "services": ["ftp"]}, {"name": "c", "address": "198.18.0.2"}]}, "services"),
        ({"attacks": [{"kind": "ddos", "host": "cli", "target": "srv", "duration": 1}]}, "kind='ddos'"),
        ({"attacks": [{"kind": "nmap", "host": "cli", "target": "nowhere", "duration": 1}]}, "target='nowhere'"),
        ({"attacks": [{"kind": "nmap", "host": "srv", "target": "srv", "duration": 1}]}, "its own target"),
        ({"attacks": [{"kind": "telnet_bruteforce", "host": "cli", "target": "srv", "duration": 1}]}, "does not run 'telnet'"),
        ({"attacks": [{"kind": "nmap", "host": "cli", "target": "srv", "start": 8, "duration": 5}]}, "after the scenario's duration"),
        ({"attacks": [{"kind": "nmap", "host": "cli", "target": "srv", "duration": 0}]}, "duration=0"),
        ({"attacks": [{"kind": "nmap", "host": "cli", "target": "srv", "duration": 1, "rate": 5}]}, "unknown key"),
        ({"duration": -1}, "duration=-1"),
        ({"extra": 1}, "unknown key"),
        ({"duration": "long"}, "bad value"),
    ],
)  # fmt: skip
def test_invalid_scenarios_are_config_errors(change: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        scenario_from_dict(_doc(**change))


def test_missing_key_is_named() -> None:
    doc = _doc()
    del doc["duration"]
    with pytest.raises(ConfigError, match="missing key 'duration'"):
        scenario_from_dict(doc)


def test_scaled_keeps_proportions() -> None:
    sc = scenario_from_dict(_doc())
    half = sc.scaled(5.0)
    assert half.duration == 5.0
    assert half.attacks[0].start == pytest.approx(1.0)
    assert half.attacks[0].duration == pytest.approx(1.5)
    assert half.benign[0].end == pytest.approx(5.0)
    assert sc.duration == 10.0  # unchanged
    with pytest.raises(ConfigError, match="duration"):
        sc.scaled(0)


def test_load_by_path_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(
        'duration = 5\n[[hosts]]\nname = "a"\naddress = "198.19.1.1"\nservices = ["dns"]\n'
        '[[hosts]]\nname = "b"\naddress = "198.19.1.2"\n'
        '[[benign]]\nkind = "dns"\nhost = "b"\ntarget = "a"\nduration = 5\n'
    )
    sc = load_scenario(path)
    assert sc.name == "mine" and sc.host("a").services == ("dns",)
    with pytest.raises(KeyError):
        sc.host("zzz")
    (tmp_path / "bad.toml").write_text("duration = = 1")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_scenario(tmp_path / "bad.toml")
    with pytest.raises(ConfigError, match="cannot read"):
        load_scenario(tmp_path / "absent.toml")
    with pytest.raises(ConfigError, match="allowed: .*quick"):
        load_scenario("no-such-scenario")


def test_dataclasses_validate_directly() -> None:
    with pytest.raises(ConfigError, match="label"):
        Action(kind="nmap", host="a", target="b", start=0, duration=1, label="Bad Label")
    with pytest.raises(ConfigError, match="not an IPv4 address"):
        Host(name="a", address="nope")
    with pytest.raises(ConfigError, match="hosts has 1"):
        Scenario(name="x", duration=1, hosts=(Host("a", "198.18.0.1"),))
