"""SynthConfig: what `pktlstm synth` generates (size, seed, duration, class mix)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pktlstm.errors import ConfigError

# Class names, benign first (class 0), then Mirai's vectors, its scanner, brute force, nmap.
CLASSES: tuple[str, ...] = (
    "benign",
    "syn_flood",
    "ack_flood",
    "udp_flood",
    "udpplain_flood",
    "vse_flood",
    "dns_water_torture",
    "greip_flood",
    "greeth_flood",
    "stomp_flood",
    "http_flood",
    "telnet_scan",
    "telnet_bruteforce",
    "ssh_bruteforce",
    "port_scan",
)

# Default share of packets per class: 60% benign, the rest spread over the attacks.
DEFAULT_MIX: dict[str, float] = {
    "benign": 0.60,
    "syn_flood": 0.04,
    "ack_flood": 0.035,
    "udp_flood": 0.035,
    "udpplain_flood": 0.025,
    "vse_flood": 0.025,
    "dns_water_torture": 0.03,
    "greip_flood": 0.025,
    "greeth_flood": 0.025,
    "stomp_flood": 0.025,
    "http_flood": 0.03,
    "telnet_scan": 0.03,
    "telnet_bruteforce": 0.02,
    "ssh_bruteforce": 0.025,
    "port_scan": 0.03,
}


def parse_mix(text: str) -> dict[str, float]:
    """``"benign=0.6,syn_flood=0.05"`` -> ``{"benign": 0.6, "syn_flood": 0.05}`` (validated later).

    >>> parse_mix("benign=3, port_scan=1")
    {'benign': 3.0, 'port_scan': 1.0}
    """
    out: dict[str, float] = {}
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        name, sep, value = part.partition("=")
        try:
            if not sep:
                raise ValueError
            out[name.strip()] = float(value)
        except ValueError:
            raise ConfigError(
                f"mix: {part!r} is not NAME=SHARE (e.g. benign=0.6,syn_flood=0.05)"
            ) from None
    if not out:
        raise ConfigError(f"mix: {text!r} names no class; expected NAME=SHARE,...")
    return out


@dataclass(frozen=True)
class SynthConfig:
    """Settings of one synthetic capture; the same config always gives the same bytes.

    Attributes:
        packets: total packets to write (exactly this many).
        seed: random seed; every byte of the output follows from it.
        duration_s: seconds of capture time the traffic is spread over.
        mix: share of packets per class; shares are normalised to sum 1, classes not
            named get none. Names must come from ``CLASSES``.
        start_time: capture start, seconds since the Unix epoch.
        nanosecond: write a nanosecond-resolution pcap (magic 0xa1b23c4d) instead of microseconds.
        snaplen: bytes captured per frame, as a capture tool's snaplen: longer frames are
            written cut (record caplen < wirelen; IP/UDP lengths stay the real ones). The
            model reads headers only; 65535 writes whole frames.
    """

    packets: int = 20_000
    seed: int = 0
    duration_s: float = 300.0
    mix: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_MIX))
    start_time: float = 1_700_000_000.0
    nanosecond: bool = False
    snaplen: int = 192

    def __post_init__(self) -> None:
        if not isinstance(self.packets, int) or not 1 <= self.packets <= 50_000_000:
            raise ConfigError(f"packets: {self.packets!r} is not an integer in 1..50,000,000")
        if not isinstance(self.seed, int) or not 0 <= self.seed < 2**63:
            raise ConfigError(f"seed: {self.seed!r} is not an integer in 0..2**63-1")
        if not math.isfinite(self.duration_s) or not 1.0 <= self.duration_s <= 30 * 86400:
            raise ConfigError(f"duration_s: {self.duration_s!r} is not in 1..2,592,000 seconds")
        if not math.isfinite(self.start_time) or not 0 <= self.start_time < 2**32 - self.duration_s:
            raise ConfigError(f"start_time: {self.start_time!r} is not epoch seconds in 0..2**32")
        if not isinstance(self.snaplen, int) or not 128 <= self.snaplen <= 262144:
            raise ConfigError(f"snaplen: {self.snaplen!r} is not an integer in 128..262,144 bytes")
        unknown = sorted(set(self.mix) - set(CLASSES))
        if unknown:
            raise ConfigError(f"mix: unknown class {unknown[0]!r}; allowed: {', '.join(CLASSES)}")
        bad = {k: v for k, v in self.mix.items() if not (math.isfinite(v) and v >= 0)}
        if bad:
            name, value = next(iter(bad.items()))
            raise ConfigError(
                f"mix: share of {name!r} is {value!r}; shares must be finite and >= 0"
            )
        if sum(self.mix.values()) <= 0:
            raise ConfigError("mix: all shares are 0; give at least one class a positive share")
        # Store a normalised, ordered, read-only copy.
        total = sum(self.mix.values())
        norm = {c: float(self.mix[c]) / total for c in CLASSES if self.mix.get(c, 0) > 0}
        object.__setattr__(self, "mix", _FrozenDict(norm))

    def counts(self) -> dict[str, int]:
        """Packets per class (largest remainder rounding; sums to ``packets``)."""
        names = list(self.mix)
        raw = [self.mix[c] * self.packets for c in names]
        out = [math.floor(r) for r in raw]
        order = sorted(range(len(names)), key=lambda i: (out[i] - raw[i], i))
        for i in order[: self.packets - sum(out)]:
            out[i] += 1
        return dict(zip(names, out, strict=True))

    def to_dict(self) -> dict[str, Any]:
        return {
            "packets": self.packets,
            "seed": self.seed,
            "duration_s": self.duration_s,
            "mix": dict(self.mix),
            "start_time": self.start_time,
            "nanosecond": self.nanosecond,
            "snaplen": self.snaplen,
        }


class _FrozenDict(dict[str, float]):
    """A dict that refuses changes (keeps SynthConfig immutable and comparable)."""

    def _readonly(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("SynthConfig.mix is read-only")

    __setitem__ = __delitem__ = update = pop = popitem = clear = setdefault = _readonly  # type: ignore[assignment]

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(self.items()))
