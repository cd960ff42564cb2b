"""Benign clients and attacks as bounded command lines, and the label rules each attack implies."""

from __future__ import annotations

import ipaddress
import random
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pktlstm.errors import ConfigError
from pktlstm.lab.netns import HOST_IF, host_mac
from pktlstm.lab.scenario import LAB_NETWORK, Action, Scenario
from pktlstm.lab.services import DOMAIN, SITE_FILES, SITE_PAGES, client_key

MAX_PPS = 2000
"""Highest packet rate any flood or scan may ask for (packets per second, per attack)."""


@dataclass(frozen=True)
class Rule:
    """One label rule without its times (filled in from when the attack really ran).

    Attributes:
        src: attacker address or CIDR of spoofed sources.
        dst: target address.
        proto: IP protocol number, or None for any.
        dport: destination port (also matched as source port of replies), or None for any.
        label: class name.
    """

    src: str
    dst: str
    proto: int | None
    dport: int | None
    label: str


@dataclass(frozen=True)
class Planned:
    """One benign client or attack ready to run.

    Attributes:
        name: unique name in the run (names its log file).
        action: the scenario entry it comes from.
        argv: command line run in the host's namespace.
        tools: executables it needs.
        rules: label rules (attacks only).
    """

    name: str
    action: Action
    argv: tuple[str, ...]
    tools: tuple[str, ...]
    rules: tuple[Rule, ...] = ()


class _Params:
    """Typed, bounded access to an action's params; unknown keys are an error."""

    def __init__(self, act: Action) -> None:
        self.act = act
        self.used: set[str] = set()

    def num(self, key: str, default: float, lo: float, hi: float) -> float:
        self.used.add(key)
        value = self.act.params.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
            raise ConfigError(
                f"{self.act.kind} on {self.act.host}: params.{key}={value!r}; allowed {lo:g}..{hi:g}"
            )
        return float(value)

    def choice(self, key: str, default: str, allowed: tuple[str, ...]) -> str:
        self.used.add(key)
        value = self.act.params.get(key, default)
        if value not in allowed:
            raise ConfigError(
                f"{self.act.kind} on {self.act.host}: params.{key}={value!r}; allowed: {', '.join(allowed)}"
            )
        return str(value)

    def strings(self, key: str, default: tuple[str, ...]) -> tuple[str, ...]:
        self.used.add(key)
        value = self.act.params.get(key, default)
        if isinstance(value, str) or not all(isinstance(v, str) for v in value) or not value:
            raise ConfigError(
                f"{self.act.kind} on {self.act.host}: params.{key}={value!r}; allowed: a non-empty list of strings"
            )
        return tuple(value)

    def ports(self, key: str, default: str) -> str:
        self.used.add(key)
        value = str(self.act.params.get(key, default))
        try:
            for part in value.split(","):
                lo, _, hi = part.partition("-")
                if not (1 <= int(lo) <= int(hi or lo) <= 65535):
                    raise ValueError
        except ValueError:
            raise ConfigError(
                f"{self.act.kind} on {self.act.host}: params.{key}={value!r}; allowed: ports "
                "like '22,80,1000-2000' within 1..65535"
            ) from None
        return value

    def done(self) -> None:
        extra = sorted(set(self.act.params) - self.used)
        if extra:
            raise ConfigError(
                f"{self.act.kind} on {self.act.host}: unknown params {', '.join(extra)}; "
                f"allowed: {', '.join(sorted(self.used))}"
            )


@dataclass(frozen=True)
class _Ctx:
    scenario: Scenario
    work: Path
    name: str
    src: str
    dst: str
    rng: random.Random


def plan_actions(scenario: Scenario, work: Path) -> list[Planned]:
    """Turn every benign client and attack of ``scenario`` into a bounded command line.

    Scripts for looping clients are written under ``work/scripts``. Params are checked here,
    so a bad scenario fails before anything is created.

    Raises:
        ConfigError: a param is unknown, of the wrong type or outside its bounds.
    """
    (work / "scripts").mkdir(parents=True, exist_ok=True)
    planned: list[Planned] = []
    for group, builders in (("benign", _BENIGN), ("attack", _ATTACKS)):
        actions = scenario.benign if group == "benign" else scenario.attacks
        for i, act in enumerate(actions):
            name = f"{group}{i:02d}-{act.kind}-{act.host}"
            ctx = _Ctx(
                scenario=scenario,
                work=work,
                name=name,
                src=scenario.host(act.host).address,
                dst=scenario.host(act.target).address,
                rng=random.Random(f"{scenario.seed}:{name}"),
            )
            p = _Params(act)
            argv, tools, rules = builders[act.kind](act, p, ctx)
            p.done()
            planned.append(Planned(name, act, argv, tools, rules))
    return planned


def _script(ctx: _Ctx, body: list[str]) -> tuple[str, ...]:
    path = ctx.work / "scripts" / f"{ctx.name}.sh"
    path.write_text("#!/bin/sh\n# generated by pktlstm lab\n" + "\n".join(body) + "\n")
    return ("sh", str(path))


def _schedule(ctx: _Ctx, act: Action, interval: float) -> list[float]:
    """Sleep times (seconds) between repetitions that fill the action's duration."""
    sleeps: list[float] = []
    t = 0.0
    while t < act.duration:
        s = ctx.rng.uniform(0.5 * interval, 1.5 * interval)
        sleeps.append(round(s, 3))
        t += s
    return sleeps


# --- benign clients -----------------------------------------------------------------------


def _http(
    act: Action, p: _Params, ctx: _Ctx
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[Rule, ...]]:
    interval = p.num("interval", 1.0, 0.05, 60.0)
    agents = (
        "Mozilla/5.0 (X11; Linux x86_64) Firefox/121.0",
        "curl/7.88.1",
        "Mozilla/5.0 (Macintosh) Safari/605",
    )
    paths = [*SITE_PAGES, *SITE_FILES, "missing.html", "favicon.ico"]
    body = []
    for s in _schedule(ctx, act, interval):
        path = ctx.rng.choice(paths)
        ua = ctx.rng.choice(agents)
        body.append(
            f"curl -s -o /dev/null --max-time 5 -A {shlex.quote(ua)} http://{ctx.dst}/{path}; sleep {s}"
        )
    return _script(ctx, body), ("curl",), ()


def _wget(
    act: Action, p: _Params, ctx: _Ctx
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[Rule, ...]]:
    interval = p.num("interval", 5.0, 0.5, 600.0)
    out = ctx.work / "scripts" / f"{ctx.name}-mirror"
    body = [
        f"wget -q -r -l 2 -np -T 5 -t 1 --delete-after -P {out} http://{ctx.dst}/; sleep {s}"
        for s in _schedule(ctx, act, interval)
    ]
    return _script(ctx, body), ("wget",), ()


def _dns(
    act: Action, p: _Params, ctx: _Ctx
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[Rule, ...]]:
    interval = p.num("interval", 0.5, 0.05, 60.0)
    names = [f"{h.name}.{DOMAIN} A" for h in ctx.scenario.hosts]
    names += [
        f"www.{DOMAIN} A",
        f"{DOMAIN} MX",
        f"{DOMAIN} TXT",
        f"mail.{DOMAIN} A",
        f"nope.{DOMAIN} A",
    ]
    body = [
        f"dig @{ctx.dst} +time=2 +tries=1 +noall +answer {ctx.rng.choice(names)} >/dev/null; sleep {s}"
        for s in _schedule(ctx, act, interval)
    ]
    return _script(ctx, body), ("dig",), ()


_SSH_COMMANDS = (
    "uname -a",
    "uptime",
    "ls -la /etc | head -n 20",
    "df -h",
    "cat /etc/os-release",
    "id",
    "ps -e | wc -l",
)


def _ssh(
    act: Action, p: _Params, ctx: _Ctx
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[Rule, ...]]:
    interval = p.num("interval", 4.0, 0.5, 600.0)
    commands = p.strings("commands", _SSH_COMMANDS)
    opts = (
        f"-i {client_key(ctx.work)} -o BatchMode=yes -o StrictHostKeyChecking=no "
        "-o UserKnownHostsFile=/dev/null -o ConnectTimeout=5 -o LogLevel=ERROR"
    )
    body = []
    for s in _schedule(ctx, act, interval):
        cmd = "; ".join(ctx.rng.sample(commands, k=min(len(commands), ctx.rng.randint(1, 3))))
        body.append(
            f"timeout 20 ssh {opts} root@{ctx.dst} {shlex.quote(cmd)} >/dev/null; sleep {s}"
        )
    return _script(ctx, body), ("ssh", "timeout"), ()


def _mqtt(
    act: Action, p: _Params, ctx: _Ctx
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[Rule, ...]]:
    interval = p.num("interval", 0.5, 0.05, 60.0)
    sensors = int(p.num("sensors", 4, 1, 100))
    body = [
        f"mosquitto_sub -h {ctx.dst} -t 'lab/#' -W {int(act.duration) + 1} >/dev/null 2>&1 &",
    ]
    for s in _schedule(ctx, act, interval):
        sensor = ctx.rng.randrange(sensors)
        value = round(ctx.rng.uniform(15.0, 30.0), 2)
        qos = ctx.rng.choice((0, 0, 1))
        body.append(
            f"mosquitto_pub -h {ctx.dst} -q {qos} -t lab/sensor/{sensor} "
            f"-m '{{\"temp\": {value}}}'; sleep {s}"
        )
    body.append("wait")
    return _script(ctx, body), ("mosquitto_pub", "mosquitto_sub"), ()


def _iperf3(
    act: Action, p: _Params, ctx: _Ctx
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[Rule, ...]]:
    seconds = p.num("seconds", 2.0, 1.0, 60.0)
    mbps = p.num("mbps", 5.0, 0.1, 100.0)
    interval = p.num("interval", 10.0, 1.0, 600.0)
    body = [
        f"timeout {seconds + 10:g} iperf3 -c {ctx.dst} -t {seconds:g} -b {mbps:g}M >/dev/null; sleep {s}"
        for s in _schedule(ctx, act, interval + seconds)
    ]
    return _script(ctx, body), ("iperf3", "timeout"), ()


# --- attacks ------------------------------------------------------------------------------

_NMAP_SCANS = {
    "syn": "-sS",
    "connect": "-sT",
    "udp": "-sU",
    "fin": "-sF",
    "xmas": "-sX",
    "null": "-sN",
    "ack": "-sA",
    "version": "-sV",
}


def _nmap(
    act: Action, p: _Params, ctx: _Ctx
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[Rule, ...]]:
    scan = p.choice("scan", "syn", tuple(_NMAP_SCANS))
    ports = p.ports("ports", "1-1024")
    rate = p.num("rate", 300, 1, MAX_PPS)
    argv = (
        "nmap", "-n", "-Pn", "--disable-arp-ping", _NMAP_SCANS[scan], "-p", ports,
        "--max-rate", f"{rate:g}", "--max-retries", "1",
        "--host-timeout", f"{max(1, int(act.duration))}s", ctx.dst,
    )  # fmt: skip
    return argv, ("nmap",), (Rule(ctx.src, ctx.dst, None, None, act.label),)


def _flood(flag: tuple[str, ...], proto: int, default_port: int) -> Callable[..., Any]:
    def build(
        act: Action, p: _Params, ctx: _Ctx
    ) -> tuple[tuple[str, ...], tuple[str, ...], tuple[Rule, ...]]:
        port = int(p.num("port", default_port, 1, 65535))
        rate = p.num("rate", 500, 1, MAX_PPS)
        spoof = str(p.act.params.get("spoof", ""))
        p.used.add("spoof")
        sources = int(p.num("sources", 4, 1, 64)) if spoof else 1
        count = max(1, int(rate * act.duration / sources))
        gap_us = max(1, int(1e6 * sources / rate))
        base = ["hping3", "-q", *flag, "-p", str(port), "-i", f"u{gap_us}", "-c", str(count)]
        if proto == 17:
            base += ["-d", "64"]
        if not spoof:
            argv = (*base, ctx.dst)
            rules: tuple[Rule, ...] = (Rule(ctx.src, ctx.dst, proto, port, act.label),)
            if proto == 17:  # the target's ICMP port-unreachable replies belong to the flood too
                rules += (Rule(ctx.src, ctx.dst, 1, None, act.label),)
            return argv, ("hping3",), rules
        net = _spoof_net(act, spoof, ctx)
        hosts = list(net.hosts()) or [net.network_address]
        picks = [str(ctx.rng.choice(hosts)) for _ in range(sources)]
        body = [f"{shlex.join([*base, '-a', a, ctx.dst])} >/dev/null 2>&1 &" for a in picks]
        body.append("wait")
        return _script(ctx, body), ("hping3",), (Rule(str(net), ctx.dst, proto, port, act.label),)

    return build


def _spoof_net(act: Action, spoof: str, ctx: _Ctx) -> ipaddress.IPv4Network:
    try:
        net = ipaddress.IPv4Network(spoof, strict=False)
    except ValueError:
        net = None
    if net is None or not net.subnet_of(LAB_NETWORK):
        raise ConfigError(
            f"{act.kind} on {act.host}: params.spoof={spoof!r}; allowed: a CIDR inside {LAB_NETWORK}"
        )
    taken = [h.address for h in ctx.scenario.hosts if ipaddress.IPv4Address(h.address) in net]
    if taken:
        raise ConfigError(
            f"{act.kind} on {act.host}: params.spoof={spoof} holds lab host(s) {', '.join(taken)}; "
            "allowed: a range no host uses"
        )
    return net


_USERS = ("root", "admin", "user", "test", "guest", "pi", "ubuntu", "oracle")


def _passwords(ctx: _Ctx, n: int) -> str:
    words = ("123456", "password", "admin", "letmein", "qwerty", "dragon", "monkey", "abc123")
    pw = [f"{ctx.rng.choice(words)}{ctx.rng.randint(0, 9999)}!x" for _ in range(n)]  # never real
    path = ctx.work / "scripts" / f"{ctx.name}-passwords.txt"
    path.write_text("\n".join(pw) + "\n")
    return str(path)


def _brute(service: str, port: int) -> Callable[..., Any]:
    def build(
        act: Action, p: _Params, ctx: _Ctx
    ) -> tuple[tuple[str, ...], tuple[str, ...], tuple[Rule, ...]]:
        tasks = int(p.num("tasks", 4, 1, 16))
        users = p.strings("users", _USERS)
        n = int(p.num("passwords", 200, 1, 10000))
        upath = ctx.work / "scripts" / f"{ctx.name}-users.txt"
        upath.write_text("\n".join(users) + "\n")
        argv = (
            "hydra", "-I", "-q", "-t", str(tasks), "-w", "5", "-L", str(upath),
            "-P", _passwords(ctx, n), f"{service}://{ctx.dst}",
        )  # fmt: skip
        return argv, ("hydra",), (Rule(ctx.src, ctx.dst, 6, port, act.label),)

    return build


def _slowloris(
    act: Action, p: _Params, ctx: _Ctx
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[Rule, ...]]:
    conns = int(p.num("connections", 200, 1, 1000))
    rate = int(p.num("rate", 50, 1, 500))
    argv = (
        "slowhttptest", "-H", "-c", str(conns), "-r", str(rate), "-i", "5", "-x", "24", "-p", "3",
        "-l", str(max(1, int(act.duration))), "-u", f"http://{ctx.dst}/",
    )  # fmt: skip
    return argv, ("slowhttptest",), (Rule(ctx.src, ctx.dst, 6, 80, act.label),)


def _masscan(
    act: Action, p: _Params, ctx: _Ctx
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[Rule, ...]]:
    ports = p.ports("ports", "1-2000")
    rate = p.num("rate", 500, 1, 1000)
    argv = (
        "masscan", ctx.dst, "-p", ports, "--rate", f"{rate:g}", "--wait", "1",
        "-e", HOST_IF, "--adapter-ip", ctx.src, "--adapter-mac", host_mac(ctx.src),
        "--router-mac", host_mac(ctx.dst), "--seed", str(ctx.rng.randrange(1 << 31)),
    )  # fmt: skip
    return argv, ("masscan",), (Rule(ctx.src, ctx.dst, 6, None, act.label),)


_Builder = Callable[
    [Action, _Params, _Ctx], tuple[tuple[str, ...], tuple[str, ...], tuple[Rule, ...]]
]

_BENIGN: dict[str, _Builder] = {
    "http": _http,
    "wget": _wget,
    "dns": _dns,
    "ssh": _ssh,
    "mqtt": _mqtt,
    "iperf3": _iperf3,
}
_ATTACKS: dict[str, _Builder] = {
    "nmap": _nmap,
    "syn_flood": _flood(("-S",), 6, 80),
    "ack_flood": _flood(("-A",), 6, 80),
    "udp_flood": _flood(("--udp",), 17, 53),
    "ssh_bruteforce": _brute("ssh", 22),
    "telnet_bruteforce": _brute("telnet", 23),
    "slowloris": _slowloris,
    "masscan": _masscan,
}
