"""Tests for pktlstm.lab.actions: bounded command lines and label rules per attack."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Any

import pytest

from pktlstm.errors import ConfigError
from pktlstm.lab.actions import MAX_PPS, Planned, plan_actions
from pktlstm.lab.scenario import LAB_NETWORK, load_scenario, scenario_from_dict


def _one_attack(kind: str, params: dict[str, Any], duration: float = 4.0) -> dict[str, Any]:
    return {
        "name": "t",
        "duration": 10.0,
        "hosts": [
            {"name": "srv", "address": "198.18.0.1", "services": ["http", "ssh", "telnet"]},
            {"name": "atk", "address": "198.18.0.66"},
        ],
        "attacks": [
            {
                "kind": kind,
                "host": "atk",
                "target": "srv",
                "start": 1,
                "duration": duration,
                "params": params,
            }
        ],
    }


def _plan(doc: dict[str, Any], tmp_path: Path) -> list[Planned]:
    return plan_actions(scenario_from_dict(doc), tmp_path)


def _opt(argv: tuple[str, ...], flag: str) -> str:
    return argv[argv.index(flag) + 1]


def test_rich_plan_is_bounded_and_targets_lab_hosts(tmp_path: Path) -> None:
    sc = load_scenario("rich")
    planned = plan_actions(sc, tmp_path)
    assert len(planned) == len(sc.benign) + len(sc.attacks)
    assert len({p.name for p in planned}) == len(planned)
    for p in planned:
        text = " ".join(p.argv)
        if p.argv[0] == "sh":
            text += Path(p.argv[1]).read_text()
        for token in text.replace("/", " ").replace(":", " ").replace("@", " ").split():
            try:
                addr = ipaddress.IPv4Address(token)
            except ValueError:
                continue
            assert addr in LAB_NETWORK, (p.name, token)
        if p.action.kind == "nmap":
            assert float(_opt(p.argv, "--max-rate")) <= MAX_PPS
            assert "--host-timeout" in p.argv
        if p.action.kind == "masscan":
            assert float(_opt(p.argv, "--rate")) <= 1000
        if "flood" in p.action.kind:
            assert "--flood" not in text and " -c " in text and " -i u" in text
        if p.action.label:
            assert p.rules and all(r.label == p.action.label for r in p.rules)
            assert all(r.dst == sc.host(p.action.target).address for r in p.rules)
        else:
            assert not p.rules


def test_plans_are_deterministic(tmp_path: Path) -> None:
    sc = load_scenario("quick")
    a = plan_actions(sc, tmp_path / "a")
    b = plan_actions(sc, tmp_path / "b")
    assert [p.argv[0] for p in a] == [p.argv[0] for p in b]
    for pa, pb in zip(a, b, strict=True):
        argv_a = [x.replace(str(tmp_path / "a"), "W") for x in pa.argv]
        assert argv_a == [x.replace(str(tmp_path / "b"), "W") for x in pb.argv]
        if pa.argv[0] == "sh":
            text_a = Path(pa.argv[1]).read_text().replace(str(tmp_path / "a"), "W")
            assert text_a == Path(pb.argv[1]).read_text().replace(str(tmp_path / "b"), "W")


def test_flood_count_and_interval_bound_rate_and_time(tmp_path: Path) -> None:
    (p,) = _plan(_one_attack("syn_flood", {"rate": 500, "port": 443}, duration=4.0), tmp_path)
    assert p.argv[0] == "hping3" and "-S" in p.argv
    assert int(_opt(p.argv, "-c")) == 2000  # rate x duration
    assert _opt(p.argv, "-i") == "u2000"  # 1 / 500 s
    assert p.argv[-1] == "198.18.0.1"
    (rule,) = p.rules
    assert (rule.src, rule.dst, rule.proto, rule.dport, rule.label) == (
        "198.18.0.66", "198.18.0.1", 6, 443, "syn_flood",
    )  # fmt: skip


def test_udp_flood_labels_icmp_replies_too(tmp_path: Path) -> None:
    (p,) = _plan(_one_attack("udp_flood", {"rate": 100}), tmp_path)
    assert [(r.proto, r.dport) for r in p.rules] == [(17, 53), (1, None)]


def test_spoofed_flood_stays_in_range_and_labels_the_range(tmp_path: Path) -> None:
    doc = _one_attack("ack_flood", {"rate": 400, "spoof": "198.19.5.0/29", "sources": 4})
    (p,) = _plan(doc, tmp_path)
    script = Path(p.argv[1]).read_text()
    lines = [ln for ln in script.splitlines() if ln.startswith("hping3")]
    assert len(lines) == 4
    for ln in lines:
        words = ln.split()
        assert ipaddress.IPv4Address(_opt(tuple(words), "-a")) in ipaddress.IPv4Network(
            "198.19.5.0/29"
        )
        assert _opt(tuple(words), "-c") == "400"  # 400 pps x 4 s / 4 sources
    assert p.rules[0].src == "198.19.5.0/29"


@pytest.mark.parametrize(
    ("kind", "params", "message"),
    [
        ("syn_flood", {"rate": MAX_PPS + 1}, "params.rate"),
        ("syn_flood", {"rate": "fast"}, "params.rate"),
        ("syn_flood", {"spoof": "0.0.0.0/0"}, "params.spoof"),
        ("syn_flood", {"spoof": "10.1.0.0/16"}, "params.spoof"),
        ("syn_flood", {"spoof": "198.18.0.0/24"}, "holds lab host"),
        ("syn_flood", {"port": 70000}, "params.port"),
        ("masscan", {"rate": 5000}, "params.rate"),
        ("masscan", {"ports": "0-10"}, "params.ports"),
        ("nmap", {"scan": "idle"}, "params.scan"),
        ("nmap", {"ports": "a-b"}, "params.ports"),
        ("ssh_bruteforce", {"tasks": 64}, "params.tasks"),
        ("ssh_bruteforce", {"users": "root"}, "params.users"),
        ("slowloris", {"connections": 100000}, "params.connections"),
        ("nmap", {"speed": 1}, "unknown params speed"),
    ],
)
def test_bad_params_are_config_errors(
    tmp_path: Path, kind: str, params: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        _plan(_one_attack(kind, params), tmp_path)


def test_attack_rules_per_kind(tmp_path: Path) -> None:
    expect = {
        "nmap": (None, None),
        "ssh_bruteforce": (6, 22),
        "telnet_bruteforce": (6, 23),
        "slowloris": (6, 80),
        "masscan": (6, None),
    }
    for kind, (proto, dport) in expect.items():
        (p,) = _plan(_one_attack(kind, {}), tmp_path / kind)
        assert (p.rules[0].proto, p.rules[0].dport) == (proto, dport), kind
        assert p.rules[0].src == "198.18.0.66"


def test_brute_force_password_lists_are_generated(tmp_path: Path) -> None:
    (p,) = _plan(_one_attack("ssh_bruteforce", {"passwords": 25, "users": ["a", "b"]}), tmp_path)
    assert p.argv[0] == "hydra" and p.argv[-1] == "ssh://198.18.0.1"
    assert len(Path(_opt(p.argv, "-P")).read_text().split()) == 25
    assert Path(_opt(p.argv, "-L")).read_text().split() == ["a", "b"]


def test_benign_scripts_fill_their_duration(tmp_path: Path) -> None:
    doc = {
        "name": "t",
        "duration": 20.0,
        "hosts": [
            {
                "name": "srv",
                "address": "198.18.0.1",
                "services": ["http", "dns", "mqtt", "ssh", "iperf3"],
            },
            {"name": "cli", "address": "198.18.0.2"},
        ],
        "benign": [
            {"kind": k, "host": "cli", "target": "srv", "duration": 20.0}
            for k in ("http", "wget", "dns", "mqtt", "ssh", "iperf3")
        ],
    }
    planned = _plan(doc, tmp_path)
    tools = {t for p in planned for t in p.tools}
    assert {"curl", "wget", "dig", "mosquitto_pub", "ssh", "iperf3"} <= tools
    for p in planned:
        script = Path(p.argv[1]).read_text()
        sleeps = [float(x) for x in re.findall(r"sleep ([0-9.]+)", script)]
        assert sum(sleeps) >= 20.0, p.name  # repetitions cover the whole duration
        assert "198.18.0.1" in script
