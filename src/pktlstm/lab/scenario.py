"""Lab scenarios as data: hosts, their services, benign clients and attacks on a timeline."""

from __future__ import annotations

import ipaddress
import re
import tomllib
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from pktlstm.errors import ConfigError

LAB_NETWORK = ipaddress.IPv4Network("198.18.0.0/15")
"""Every lab address (hosts and spoofed sources) lies in the benchmarking range (RFC 2544)."""
LAB_PREFIXLEN = 15
"""Prefix length on every host interface: the whole range is on-link, nothing is routed."""

SERVICE_PORTS: dict[str, tuple[str, int]] = {
    "http": ("tcp", 80),  # nginx
    "ssh": ("tcp", 22),  # OpenSSH sshd
    "dns": ("udp", 53),  # dnsmasq
    "mqtt": ("tcp", 1883),  # mosquitto
    "telnet": ("tcp", 23),  # inetutils telnetd behind inetutils-inetd
    "iperf3": ("tcp", 5201),  # iperf3 -s
}
"""Servers a host can run: kind -> (transport, listening port)."""

BENIGN_SERVICE: dict[str, str] = {
    "http": "http",  # curl browsing
    "wget": "http",  # wget recursive fetch
    "dns": "dns",  # dig queries
    "ssh": "ssh",  # ssh sessions running commands
    "mqtt": "mqtt",  # mosquitto_pub / mosquitto_sub
    "iperf3": "iperf3",  # bounded-bandwidth iperf3 transfers
}
"""Benign client kinds -> the service their target must run."""

ATTACK_SERVICE: dict[str, str | None] = {
    "nmap": None,
    "syn_flood": None,
    "ack_flood": None,
    "udp_flood": None,
    "ssh_bruteforce": "ssh",
    "telnet_bruteforce": "telnet",
    "slowloris": "http",
    "masscan": None,
}
"""Attack kinds -> the service their target must run (None: any host)."""

DEFAULT_LABEL: dict[str, str] = {
    "nmap": "port_scan",
    "syn_flood": "syn_flood",
    "ack_flood": "ack_flood",
    "udp_flood": "udp_flood",
    "ssh_bruteforce": "ssh_bruteforce",
    "telnet_bruteforce": "telnet_bruteforce",
    "slowloris": "slowloris",
    "masscan": "masscan",
}
"""Class name written to labels.csv for each attack kind unless the scenario names another."""

_HOST_NAME = re.compile(r"^[a-z][a-z0-9]{0,9}$")  # fits netns and veth names (15 chars max)
_LABEL_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
MAX_DURATION_S = 3600.0
"""Longest scenario accepted, seconds; attacks are bounded in time as well as rate."""


@dataclass(frozen=True)
class Host:
    """One lab host: a network namespace with one interface on the lab bridge.

    Attributes:
        name: short name (``[a-z][a-z0-9]{0,9}``), also names the namespace.
        address: IPv4 address inside 198.18.0.0/15.
        services: server kinds it runs (keys of ``SERVICE_PORTS``).
    """

    name: str
    address: str
    services: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not _HOST_NAME.match(self.name):
            raise ConfigError(
                f"host.name={self.name!r}: allowed is a lowercase letter then up to 9 "
                "lowercase letters or digits"
            )
        try:
            addr = ipaddress.IPv4Address(self.address)
        except ValueError:
            raise ConfigError(
                f"host {self.name}: address={self.address!r} is not an IPv4 address"
            ) from None
        if addr not in LAB_NETWORK or addr in (
            LAB_NETWORK.network_address,
            LAB_NETWORK.broadcast_address,
        ):
            raise ConfigError(
                f"host {self.name}: address={self.address} is outside the lab range "
                f"{LAB_NETWORK} (allowed: a host address in {LAB_NETWORK})"
            )
        for svc in self.services:
            if svc not in SERVICE_PORTS:
                raise ConfigError(
                    f"host {self.name}: services has {svc!r}; allowed: {', '.join(SERVICE_PORTS)}"
                )


@dataclass(frozen=True)
class Action:
    """One benign client or attack: a program run from ``host`` against ``target``.

    Attributes:
        kind: client kind (``BENIGN_SERVICE``) or attack kind (``ATTACK_SERVICE``).
        host: name of the host it runs on.
        target: name of the host it talks to.
        start: seconds after the lab's start.
        duration: seconds it may run; it is stopped at ``start + duration`` at the latest.
        label: class name for attacks ("" for benign clients).
        params: kind-specific settings (rates, ports, scan type...), checked when planned.
    """

    kind: str
    host: str
    target: str
    start: float
    duration: float
    label: str = ""
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not (0.0 <= self.start <= MAX_DURATION_S):
            raise ConfigError(
                f"{self.kind} on {self.host}: start={self.start}; allowed 0..{MAX_DURATION_S} s"
            )
        if not (0.0 < self.duration <= MAX_DURATION_S):
            raise ConfigError(
                f"{self.kind} on {self.host}: duration={self.duration}; "
                f"allowed (0, {MAX_DURATION_S}] s"
            )
        if self.label and not _LABEL_NAME.match(self.label):
            raise ConfigError(
                f"{self.kind} on {self.host}: label={self.label!r}; allowed: lowercase "
                "letters, digits and _ (starting with a letter)"
            )

    @property
    def end(self) -> float:
        """Seconds after the lab's start by which the action is stopped."""
        return self.start + self.duration


@dataclass(frozen=True)
class Scenario:
    """A whole lab run: hosts, benign clients and attacks, all times in seconds from the start.

    Attributes:
        name: scenario name (file stem for shipped ones).
        description: one line for humans.
        duration: seconds the capture runs; every action ends by then.
        seed: seeds the timing jitter of benign clients.
        hosts: the lab hosts (at least two).
        benign: benign clients.
        attacks: attacks; each one becomes label rules.
    """

    name: str
    duration: float
    hosts: tuple[Host, ...]
    benign: tuple[Action, ...] = ()
    attacks: tuple[Action, ...] = ()
    description: str = ""
    seed: int = 0

    def __post_init__(self) -> None:
        if not (0.0 < self.duration <= MAX_DURATION_S):
            raise ConfigError(
                f"scenario {self.name}: duration={self.duration}; allowed (0, {MAX_DURATION_S}] s"
            )
        if len(self.hosts) < 2:
            raise ConfigError(f"scenario {self.name}: hosts has {len(self.hosts)}; allowed >= 2")
        names = [h.name for h in self.hosts]
        addrs = [h.address for h in self.hosts]
        for what, values in (("name", names), ("address", addrs)):
            dup = sorted({v for v in values if values.count(v) > 1})
            if dup:
                raise ConfigError(f"scenario {self.name}: host {what} repeated: {', '.join(dup)}")
        by_name = {h.name: h for h in self.hosts}
        for group, kinds in (("benign", BENIGN_SERVICE), ("attacks", ATTACK_SERVICE)):
            for act in getattr(self, group):
                if act.kind not in kinds:
                    raise ConfigError(
                        f"scenario {self.name}: {group} kind={act.kind!r}; "
                        f"allowed: {', '.join(kinds)}"
                    )
                for role in ("host", "target"):
                    if getattr(act, role) not in by_name:
                        raise ConfigError(
                            f"scenario {self.name}: {act.kind} {role}={getattr(act, role)!r} "
                            f"is not a host; allowed: {', '.join(names)}"
                        )
                if act.host == act.target:
                    raise ConfigError(
                        f"scenario {self.name}: {act.kind} runs on its own target {act.host}"
                    )
                needed = kinds[act.kind]
                if needed is not None and needed not in by_name[act.target].services:
                    raise ConfigError(
                        f"scenario {self.name}: {act.kind} targets {act.target}, which does not "
                        f"run {needed!r} (its services: {', '.join(by_name[act.target].services)})"
                    )
                if act.end > self.duration + 1e-9:
                    raise ConfigError(
                        f"scenario {self.name}: {act.kind} on {act.host} ends at {act.end:g} s, "
                        f"after the scenario's duration={self.duration:g} s"
                    )

    def host(self, name: str) -> Host:
        """The host called ``name`` (KeyError if none)."""
        for h in self.hosts:
            if h.name == name:
                return h
        raise KeyError(name)

    def scaled(self, duration: float) -> Scenario:
        """The same scenario stretched or squeezed in time to last ``duration`` seconds.

        Every start and duration is multiplied by ``duration / self.duration``; rates are kept,
        so counts derived from rate x duration scale with it.
        """
        if not (0.0 < duration <= MAX_DURATION_S):
            raise ConfigError(f"duration={duration}; allowed (0, {MAX_DURATION_S}] s")
        k = duration / self.duration

        def stretch(a: Action) -> Action:
            return replace(a, start=a.start * k, duration=a.duration * k)

        return replace(
            self,
            duration=duration,
            benign=tuple(stretch(a) for a in self.benign),
            attacks=tuple(stretch(a) for a in self.attacks),
        )


def shipped_scenarios() -> list[str]:
    """Names of the scenarios shipped with pktlstm (``lab/scenarios/*.toml``)."""
    root = resources.files("pktlstm.lab") / "scenarios"
    return sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".toml"))


def load_scenario(name_or_path: str | Path) -> Scenario:
    """Load a shipped scenario by name (``quick``, ``rich``) or a TOML file by path.

    Raises:
        ConfigError: unknown name, unreadable file, bad TOML or an invalid field.
    """
    text: str
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"scenario file {path}: cannot read ({exc.strerror})") from None
        source = str(path)
    else:
        name = str(name_or_path)
        known = shipped_scenarios()
        if name not in known:
            raise ConfigError(
                f"scenario={name!r}: not a file and not a shipped scenario; allowed: "
                f"{', '.join(known)} or a path to a .toml file"
            )
        text = (resources.files("pktlstm.lab") / "scenarios" / f"{name}.toml").read_text("utf-8")
        source = name
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"scenario {source}: not valid TOML ({exc})") from None
    return scenario_from_dict(data, default_name=path.stem)


def scenario_from_dict(data: dict[str, Any], default_name: str = "scenario") -> Scenario:
    """Build a Scenario from parsed TOML (see lab/scenarios/quick.toml for the layout)."""
    name = str(data.get("name", default_name))
    allowed_top = {"name", "description", "duration", "seed", "hosts", "benign", "attacks"}
    extra = sorted(set(data) - allowed_top)
    if extra:
        raise ConfigError(
            f"scenario {name}: unknown key(s) {', '.join(extra)}; allowed: {', '.join(sorted(allowed_top))}"
        )
    try:
        hosts = tuple(
            Host(
                name=str(h["name"]),
                address=str(h["address"]),
                services=tuple(h.get("services", ())),
            )
            for h in data.get("hosts", ())
        )

        def action(d: dict[str, Any], attack: bool) -> Action:
            known = {"kind", "host", "target", "start", "duration", "label", "params"}
            bad = sorted(set(d) - known)
            if bad:
                raise ConfigError(
                    f"scenario {name}: action {d.get('kind')!r} has unknown key(s) "
                    f"{', '.join(bad)}; allowed: {', '.join(sorted(known))}"
                )
            kind = str(d["kind"])
            label = str(d.get("label", DEFAULT_LABEL.get(kind, kind))) if attack else ""
            return Action(
                kind=kind,
                host=str(d["host"]),
                target=str(d["target"]),
                start=float(d.get("start", 0.0)),
                duration=float(d["duration"]),
                label=label,
                params=dict(d.get("params", {})),
            )

        return Scenario(
            name=name,
            description=str(data.get("description", "")),
            duration=float(data["duration"]),
            seed=int(data.get("seed", 0)),
            hosts=hosts,
            benign=tuple(action(d, False) for d in data.get("benign", ())),
            attacks=tuple(action(d, True) for d in data.get("attacks", ())),
        )
    except KeyError as exc:
        raise ConfigError(f"scenario {name}: missing key {exc.args[0]!r}") from None
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"scenario {name}: bad value ({exc})") from None
