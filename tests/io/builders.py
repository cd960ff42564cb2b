"""Tiny literal packet and capture builders (struct only) shared by the io tests."""

from __future__ import annotations

import gzip
import struct
from collections.abc import Sequence

MAC_A = bytes.fromhex("001122334455")
MAC_B = bytes.fromhex("66778899aabb")
V4_A = bytes([10, 0, 0, 1])
V4_B = bytes([192, 168, 1, 2])
V6_A = bytes.fromhex("20010db8000000000000000000000001")
V6_B = bytes.fromhex("fe800000000000000000000000000002")


def tcp(sport: int = 1234, dport: int = 80, flags: int = 0x02, payload: bytes = b"") -> bytes:
    return struct.pack("!HHIIBBHHH", sport, dport, 1, 0, 0x50, flags, 1024, 0, 0) + payload


def udp(sport: int = 5353, dport: int = 53, payload: bytes = b"") -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def icmp(kind: int = 8, code: int = 0) -> bytes:
    return struct.pack("!BBHHH", kind, code, 0, 7, 1)


def ipv4(
    proto: int,
    payload: bytes,
    src: bytes = V4_A,
    dst: bytes = V4_B,
    options: bytes = b"",
    frag_offset: int = 0,
    more_fragments: bool = False,
) -> bytes:
    ihl = 5 + len(options) // 4
    flags_frag = (0x2000 if more_fragments else 0) | frag_offset
    hdr = struct.pack(
        "!BBHHHBBH4s4s",
        0x40 | ihl,
        0,
        ihl * 4 + len(payload),
        0x1234,
        flags_frag,
        64,
        proto,
        0,
        src,
        dst,
    )
    return hdr + options + payload


def ipv6(nh: int, payload: bytes, src: bytes = V6_A, dst: bytes = V6_B, hlim: int = 64) -> bytes:
    return struct.pack("!IHBB", 0x60000000, len(payload), nh, hlim) + src + dst + payload


def ext(nh: int, length_units: int = 0) -> bytes:
    """A generic IPv6 extension header (hop-by-hop/routing/dest opts): (len+1)*8 bytes."""
    return bytes([nh, length_units]) + bytes(6 + 8 * length_units)


def frag6(nh: int, offset: int = 0, more: bool = False) -> bytes:
    return struct.pack("!BBHI", nh, 0, (offset << 3) | int(more), 0xABCD)


def ah(nh: int) -> bytes:
    """An authentication header with a 12-byte ICV: (len+2)*4 = 24 bytes."""
    return bytes([nh, 4, 0, 0]) + struct.pack("!II", 0x100, 1) + bytes(12)


def ether(payload: bytes, ethertype: int, vlans: Sequence[tuple[int, int]] = ()) -> bytes:
    """Ethernet frame; ``vlans`` is a list of (tpid, vid) tags, outermost first."""
    tags = b"".join(struct.pack("!HH", tpid, vid) for tpid, vid in vlans)
    return MAC_A + MAC_B + tags + struct.pack("!H", ethertype) + payload


def sll(payload: bytes, proto: int) -> bytes:
    return struct.pack("!HHH8sH", 0, 1, 6, MAC_B + b"\0\0", proto) + payload


def sll2(payload: bytes, proto: int) -> bytes:
    return struct.pack("!HHIHBB8s", proto, 0, 2, 1, 0, 6, MAC_B + b"\0\0") + payload


def null(payload: bytes, family: int, big: bool = False) -> bytes:
    return struct.pack(">I" if big else "<I", family) + payload


def pcap(
    frames: Sequence[bytes],
    linktype: int = 1,
    big: bool = False,
    nano: bool = False,
    ts0: int = 1_600_000_000,
    caplens: Sequence[int] | None = None,
) -> bytes:
    """A classic pcap file; packet ``i`` has timestamp ``ts0 + i`` s and ``i * 1000`` us/ns."""
    e = ">" if big else "<"
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    out = [struct.pack(e + "IHHiIII", magic, 2, 4, 0, 0, 65535, linktype)]
    for i, frame in enumerate(frames):
        cap = len(frame) if caplens is None else caplens[i]
        out.append(struct.pack(e + "IIII", ts0 + i, i * 1000, cap, len(frame)))
        out.append(frame[:cap])
    return b"".join(out)


def _block(btype: int, body: bytes, e: str) -> bytes:
    body += bytes(-len(body) % 4)
    n = len(body) + 12
    return struct.pack(e + "II", btype, n) + body + struct.pack(e + "I", n)


def shb(big: bool = False) -> bytes:
    e = ">" if big else "<"
    return _block(0x0A0D0D0A, struct.pack(e + "IHHq", 0x1A2B3C4D, 1, 0, -1), e)


def idb(linktype: int, big: bool = False, tsresol: int | None = None, snaplen: int = 0) -> bytes:
    e = ">" if big else "<"
    opts = b""
    if tsresol is not None:
        opts = struct.pack(e + "HH", 9, 1) + bytes([tsresol, 0, 0, 0]) + struct.pack(e + "HH", 0, 0)
    return _block(1, struct.pack(e + "HHI", linktype, 0, snaplen) + opts, e)


def epb(
    frame: bytes, iface: int = 0, ts: int = 0, big: bool = False, cap: int | None = None
) -> bytes:
    e = ">" if big else "<"
    cap = len(frame) if cap is None else cap
    hdr = struct.pack(e + "IIIII", iface, ts >> 32, ts & 0xFFFFFFFF, cap, len(frame))
    return _block(6, hdr + frame[:cap], e)


def spb(frame: bytes, big: bool = False) -> bytes:
    e = ">" if big else "<"
    return _block(3, struct.pack(e + "I", len(frame)) + frame, e)


def unknown_block(big: bool = False) -> bytes:
    return _block(0x00000BAD, b"custom", ">" if big else "<")


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)
