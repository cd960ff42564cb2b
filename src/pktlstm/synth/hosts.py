"""Simulated hosts: OS TCP/IP stack fingerprints, addresses, MACs and the network inventory."""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, field

import numpy as np

# TCP option kinds used in SYN option layouts.
_EOL, _NOP, _MSS, _WS, _SACKOK, _TS = 0, 1, 2, 3, 4, 8


@dataclass(frozen=True)
class Stack:
    """The header habits of one TCP/IP implementation (what p0f-style fingerprints read).

    Attributes:
        name: short name (``linux``, ``windows``, ``macos``, ``busybox``, ``lwip``, ...).
        ttl: initial IPv4 TTL.
        df: whether the stack sets IPv4 don't-fragment on TCP and UDP.
        syn_window: TCP window in the SYN / SYN-ACK.
        data_window: unscaled TCP window field on established segments (base value).
        mss: MSS announced in the SYN.
        wscale: window scale shift announced (-1: no window scale option).
        sack: whether SACK-permitted is announced.
        timestamps: whether TCP timestamps are used.
        layout: option order in the SYN (``linux``, ``windows``, ``macos``, ``mss``).
        ip_id: ``inc`` (per-flow counter from a random start), ``global`` (host-wide
            counter, jumps between flows), ``random`` (random per packet) or ``zero``.
    """

    name: str
    ttl: int
    df: bool
    syn_window: int
    data_window: int
    mss: int = 1460
    wscale: int = 7
    sack: bool = True
    timestamps: bool = True
    layout: str = "linux"
    ip_id: str = "inc"

    def syn_options(self, tsval: int, tsecr: int = 0, reply_to: Stack | None = None) -> bytes:
        """Options of a SYN (``reply_to`` None) or of a SYN-ACK answering ``reply_to``."""
        ts = self.timestamps and (reply_to is None or reply_to.timestamps)
        ws = self.wscale >= 0 and (reply_to is None or reply_to.wscale >= 0)
        sack = self.sack and (reply_to is None or reply_to.sack)
        mss = struct.pack("!BBH", _MSS, 4, self.mss)
        tsb = struct.pack("!BBII", _TS, 10, tsval & 0xFFFFFFFF, tsecr & 0xFFFFFFFF)
        wsb = bytes([_WS, 3, self.wscale]) if ws else b""
        sk = bytes([_SACKOK, 2]) if sack else b""
        if self.layout == "mss":
            out = mss
        elif self.layout == "windows":
            out = (
                mss
                + (bytes([_NOP]) + wsb if ws else b"")
                + (bytes([_NOP, _NOP]) + sk if sack else b"")
            )
            if ts:
                out = mss + (bytes([_NOP]) + wsb if ws else b"") + bytes([_NOP, _NOP]) + tsb[:10]
                out += sk if sack else bytes([_NOP, _NOP])
        elif self.layout == "macos":
            out = mss + (bytes([_NOP]) + wsb if ws else b"")
            out += (bytes([_NOP, _NOP]) + tsb if ts else b"") + (
                sk + bytes([_EOL, _EOL]) if sack else b""
            )
        else:  # linux: MSS, SACK_PERM, TS, NOP, WS (SACK_PERM + TS merged as in Linux)
            if sack and ts:
                out = mss + sk + tsb
            elif ts:
                out = mss + bytes([_NOP, _NOP]) + tsb
            elif sack:
                out = mss + bytes([_NOP, _NOP]) + sk
            else:
                out = mss
            out += bytes([_NOP]) + wsb if ws else b""
        return out + b"\x00" * (-len(out) % 4)


# Client and server stacks (initial values as commonly observed on the wire).
STACKS: dict[str, Stack] = {
    "linux": Stack("linux", 64, True, 64240, 501, wscale=7, layout="linux", ip_id="inc"),
    "windows": Stack(
        "windows",
        128,
        True,
        64240,
        1026,
        wscale=8,
        timestamps=False,
        layout="windows",
        ip_id="global",
    ),
    "macos": Stack("macos", 64, True, 65535, 2058, wscale=6, layout="macos", ip_id="random"),
    # Old embedded Linux 2.6/3.x kernels with busybox userland (cameras, DVRs, routers).
    "busybox": Stack("busybox", 64, True, 5840, 1460, wscale=2, layout="linux", ip_id="inc"),
    # Small RTOS / lwIP sensors: TTL 255, no DF, MSS only.
    "lwip": Stack(
        "lwip",
        255,
        False,
        5840,
        5840,
        mss=1460,
        wscale=-1,
        sack=False,
        timestamps=False,
        layout="mss",
        ip_id="global",
    ),
    "server_linux": Stack("server_linux", 64, True, 65160, 509, wscale=7, layout="linux"),
    "server_windows": Stack(
        "server_windows",
        128,
        True,
        65535,
        2053,
        wscale=8,
        timestamps=False,
        layout="windows",
        ip_id="global",
    ),
}

# Stacks by number (for per-connection arrays) and the number of each name.
STACK_LIST: tuple[Stack, ...] = tuple(STACKS.values())
STACK_IDS: dict[str, int] = {name: i for i, name in enumerate(STACKS)}


@dataclass
class Host:
    """One simulated machine: address, MAC, stack, and its mutable per-run counters."""

    ip: int
    mac: int
    stack: Stack
    role: str
    hops: int = 0  # routers between the host and the capture point (TTL seen = ttl - hops)
    next_port: int = 40000
    ip_id: int = 0
    clock_ms: int = 0  # TCP timestamp clock offset, ms

    @property
    def ttl(self) -> int:
        return max(1, self.stack.ttl - self.hops)

    def ephemeral_port(self) -> int:
        """Next ephemeral source port (wraps inside the stack's usual range)."""
        lo, hi = (49152, 65535) if self.stack.name in ("windows", "macos") else (32768, 60999)
        port = self.next_port
        self.next_port = port + 1 if port + 1 <= hi else lo
        return port


def ip_int(text: str) -> int:
    return int(ipaddress.IPv4Address(text))


def ip_str(value: int) -> str:
    v = int(value)
    return f"{v >> 24}.{v >> 16 & 255}.{v >> 8 & 255}.{v & 255}"


@dataclass
class Network:
    """The simulated site: LAN hosts in a few private subnets, local servers, the internet.

    Frames are seen at a LAN span port: traffic that leaves a /24 carries the router's MAC.
    """

    rng: np.random.Generator
    router_mac: int = 0
    hosts: dict[str, list[Host]] = field(default_factory=dict)

    @classmethod
    def build(cls, rng: np.random.Generator) -> Network:
        net = cls(rng=rng, router_mac=_mac(rng, 0x00_0D_B9))
        add = net._add
        # Office 192.168.1.0/24: desktops and laptops.
        add("router", "192.168.1.1", "server_linux", 0x00_0D_B9)
        for i in range(10):
            add("windows", f"192.168.1.{20 + i}", "windows", 0x3C_52_82)
        for i in range(6):
            add("macos", f"192.168.1.{40 + i}", "macos", 0xA4_83_E7)
        for i in range(5):
            add("linux", f"192.168.1.{60 + i}", "linux", 0x00_E0_4C)
        # IoT 10.0.0.0/24: cameras (busybox; some will be infected) and sensors.
        for i in range(10):
            add("camera", f"10.0.0.{100 + i}", "busybox", 0x00_12_12)
        for i in range(6):
            add("sensor", f"10.0.0.{150 + i}", "lwip", 0x24_0A_C4)
        add("dvr", "10.0.0.30", "busybox", 0x00_12_12)
        # Servers 172.16.5.0/24.
        add("nvr", "172.16.5.10", "server_linux", 0x00_50_56)
        add("broker", "172.16.5.11", "server_linux", 0x00_50_56)
        add("sshd", "172.16.5.12", "server_linux", 0x00_50_56)
        add("fileserver", "172.16.5.13", "server_windows", 0x00_50_56)
        # Internet servers: public addresses, TTL reduced by the hops to the capture point.
        for i in range(60):
            kind = "server_windows" if i % 6 == 0 else "server_linux"
            a = int(rng.integers(1, 223))
            while a in (10, 127, 172, 192, 100, 169):
                a = int(rng.integers(1, 223))
            ip = f"{a}.{int(rng.integers(0, 256))}.{int(rng.integers(0, 256))}.{int(rng.integers(1, 255))}"
            h = add("internet", ip, kind, 0)
            h.hops = int(rng.integers(6, 24))
        return net

    def _add(self, role: str, ip: str, stack: str, oui: int) -> Host:
        rng = self.rng
        h = Host(
            ip=ip_int(ip),
            mac=_mac(rng, oui) if oui and role != "router" else self.router_mac,
            stack=STACKS[stack],
            role=role,
            next_port=int(rng.integers(33000, 60000)),
            ip_id=int(rng.integers(0, 65536)),
            clock_ms=int(rng.integers(1 << 20, 1 << 31)),
        )
        self.hosts.setdefault(role, []).append(h)
        return h

    def pick(self, role: str) -> Host:
        group = self.hosts[role]
        return group[int(self.rng.integers(len(group)))]

    def infected(self) -> list[Host]:
        """Bots: four of the busybox cameras and the DVR (they also keep their benign traffic)."""
        return self.hosts["camera"][:4] + self.hosts["dvr"]

    def macs(self, a: Host, b: Host) -> tuple[int, int]:
        """(MAC of a's frame source, MAC of a's frame destination) as seen on the LAN."""
        lan_a, lan_b = a.role != "internet", b.role != "internet"
        same = lan_a and lan_b and (a.ip >> 8) == (b.ip >> 8)
        src = a.mac if lan_a else self.router_mac
        dst = b.mac if lan_b and (same or not lan_a) else self.router_mac
        return src, dst

    def external(self, rng: np.random.Generator, stack: str = "server_linux") -> Host:
        """A fresh internet host (victims, scan targets) with a random public address."""
        while True:
            ip = int(rng.integers(0x0B000000, 0xDF000000))
            if (ip >> 24) not in (10, 127, 172, 192, 100, 169):
                break
        return Host(
            ip=ip,
            mac=self.router_mac,
            stack=STACKS[stack],
            role="internet",
            hops=int(rng.integers(6, 24)),
            next_port=int(rng.integers(33000, 60000)),
            ip_id=int(rng.integers(0, 65536)),
            clock_ms=int(rng.integers(1 << 20, 1 << 31)),
        )


def _mac(rng: np.random.Generator, oui: int) -> int:
    return (oui << 24) | int(rng.integers(0, 1 << 24))
