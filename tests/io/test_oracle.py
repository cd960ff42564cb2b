"""Differential test: every field the reader extracts, against scapy framing + dpkt decoding.

Runs on all of ../shared/data (first records of each file; skipped when absent) and on
literal captures covering every link type and layer the reader supports.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import dpkt
import numpy as np
import pytest

from pktlstm.io import PacketBatch, read_capture
from tests.io import builders as b

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
RECORDS_PER_FILE = 1500  # keeps the whole differential run to a few seconds per folder
MALFORMED = {
    "dhcp-fuzz.pcapng", "fuzz-2006-06-26-2594.pcap", "fuzz-2006-09-29-28586.pcap",
    "fuzz-2020-02-16-11740.pcap", "fuzz-2021-06-07-c6c72a0a56.pcap", "fuzz-2021-10-13.pcap",
    "kerberos_fuzz.pcapng", "malformed_dns.pcap", "malformed_icmp.pcap",
    "ossfuzz_seed_fake_traces_1.pcapng", "ossfuzz_seed_fake_traces_2.pcapng",
    "ossfuzz_seed_fake_traces_3.pcapng", "ossfuzz_seed_fake_traces_4.pcapng",
    "quic-fuzz-overflow.pcapng", "tls-esni-fuzzed.pcap",
}  # fmt: skip
VLAN = (0x8100, 0x88A8, 0x9100)


def scapy_records(path: Path, limit: int) -> list[tuple[bytes, int, int, int]]:
    """``(frame, linktype, ts_ns, wirelen)`` per record, framed by scapy's raw readers."""
    from scapy.utils import RawPcapNgReader, RawPcapReader

    logging.getLogger("scapy").setLevel(logging.CRITICAL)
    out: list[tuple[bytes, int, int, int]] = []
    try:
        reader: Any = RawPcapReader(str(path))
    except Exception:
        return out
    with reader:
        ng = isinstance(reader, RawPcapNgReader)
        while len(out) < limit:
            try:
                frame, meta = reader._read_packet(size=1 << 20)
            except (EOFError, Exception):
                break
            if ng:
                ticks = (meta.tshigh << 32) | meta.tslow
                ts = ticks * 10**9 // meta.tsresol
                out.append((frame, meta.linktype, ts, meta.wirelen))
            else:
                scale = 1 if getattr(reader, "nano", False) else 1000
                ts = meta.sec * 10**9 + meta.usec * scale
                out.append((frame, reader.linktype, ts, meta.wirelen))
    return out


def dpkt_fields(frame: bytes, linktype: int) -> dict[str, Any] | None:
    """What dpkt decodes from one frame; None when the frame is outside the comparison."""
    try:
        if linktype == 1:
            eth = dpkt.ethernet.Ethernet(frame)
            ethertype = eth._next_type  # the type after dpkt's VLAN tag removal
            if (
                ethertype is None
                or ethertype < 0x600
                or ethertype in VLAN
                or hasattr(eth, "mpls_labels")
            ):
                return None
            net = 14 + 4 * len(getattr(eth, "vlan_tags", []))
            if frame[12:14] == b"\x92\x00":  # a QinQ TPID the reader does not strip
                return None
        elif linktype == 113:
            ethertype, net = dpkt.sll.SLL(frame).ethtype, 16
        elif linktype == 276:
            ethertype, net = dpkt.sll2.SLL2(frame).ethtype, 20
        elif linktype in (0, 108):
            fam = dpkt.loopback.Loopback(frame).family
            fam = fam if fam <= 0xFFFF else int.from_bytes(fam.to_bytes(4, "little"), "big")
            ethertype = {2: 0x0800, 10: 0x86DD, 24: 0x86DD, 28: 0x86DD, 30: 0x86DD}.get(fam, 0)
            net = 4
        elif linktype in (101, 12, 14):
            if not frame:
                return None
            ethertype = {4: 0x0800, 6: 0x86DD}.get(frame[0] >> 4, 0)
            net = 0
        else:
            return None
    except (dpkt.UnpackError, ValueError):
        return None
    out: dict[str, Any] = {"ethertype": ethertype, "net": net, "ip": None}
    l3 = frame[net:]
    try:
        if ethertype == 0x0800:
            ip: Any = dpkt.ip.IP(l3)
            if ip.v != 4:
                return None
            ip_len = ip.len
            frag = ip.offset != 0 or ip.mf
            esp = False
        elif ethertype == 0x86DD:
            ip = dpkt.ip6.IP6(l3)
            if ip.v != 6:
                return None
            ip_len = 40 + ip.plen if ip.plen else len(l3)
            chain = [type(h).__name__ for h in ip.all_extension_headers]
            frag = "IP6FragmentHeader" in chain
            esp = "IP6ESPHeader" in chain
        else:
            return out
    except (dpkt.UnpackError, ValueError, KeyError, IndexError, AttributeError):
        return out
    l4 = ip.data
    out["ip"] = {
        "src": ip.src,
        "dst": ip.dst,
        "p": None if esp else ip.p,
        "ip_len": ip_len,
        "frag": frag,
        "ports": (l4.sport, l4.dport) if isinstance(l4, (dpkt.tcp.TCP, dpkt.udp.UDP)) else None,
        "flags": l4.flags if isinstance(l4, dpkt.tcp.TCP) else None,
    }
    return out


def mapped(addr: bytes) -> bytes:
    return addr if len(addr) == 16 else bytes(10) + b"\xff\xff" + addr


def compare(path: Path, batch: PacketBatch, limit: int = RECORDS_PER_FILE) -> int:
    """Assert every field of ``batch`` against the oracle; returns packets compared."""
    records = scapy_records(path, limit)
    row_of = {int(k): i for i, k in enumerate(batch.pkt_index.tolist())}
    compared = 0
    for index, (frame, linktype, ts, wirelen) in enumerate(records):
        i = row_of.get(index)
        want = dpkt_fields(frame, linktype)
        if i is None:
            # only frames that dpkt cannot decode as IP may be skipped by the reader
            assert want is None or want["ip"] is None or len(frame) < want["net"] + 20, index
            continue
        where = f"{path.name} record {index}"
        assert batch.caplen[i] == len(frame), where
        assert batch.wirelen[i] == wirelen, where
        assert abs(int(batch.ts_ns[i]) - ts) <= 1, where
        assert batch.linktype[i] == linktype, where
        if want is None:
            continue
        assert batch.ethertype[i] == want["ethertype"], where
        ip = want["ip"]
        if ip is None:
            continue
        compared += 1
        assert batch.ip_version[i] == (4 if want["ethertype"] == 0x0800 else 6), where
        assert bytes(batch.src[i]) == mapped(ip["src"]), where
        assert bytes(batch.dst[i]) == mapped(ip["dst"]), where
        if ip["p"] is not None and (batch.l4_off[i] >= 0 or not ip["frag"]):
            assert batch.proto[i] == ip["p"] or batch.l4_off[i] < 0, where
        if ip["ports"] is not None and batch.l4_off[i] >= 0:
            assert (batch.sport[i], batch.dport[i]) == ip["ports"], where
            if ip["flags"] is not None and batch.l4_off[i] + 14 <= len(frame) - want["net"] + 14:
                assert batch.tcp_flags[i] == ip["flags"] & 0xFF, where
        elif ip["ports"] is not None and not ip["frag"]:
            assert batch.l4_off[i] < 0 and want["net"] + 14 > 0, where
        # the normalised window: the IP packet's bytes from offset 14, zero after it
        net = want["net"]
        k = min(len(frame) - net, 114)
        if ip["ip_len"] >= (20 if ip["src"] and len(ip["src"]) == 4 else 40):
            k = min(k, ip["ip_len"])
        assert bytes(batch.header[i, 14 : 14 + k]) == frame[net : net + k], where
        assert not batch.header[i, 14 + k :].any(), where
    return compared


def data_files(folder: str) -> list[Path]:
    root = DATA / folder
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.suffix in (".pcap", ".pcapng", ".cap"))


@pytest.mark.parametrize(
    ("folder", "part"),
    [("ndpi", k) for k in range(4)]
    + [("stopddos", 0), ("slips", 0), ("ustc-tfc2016-raw", 0)]
    + [(f"ustc-tfc2016-t10k/{c}", 0) for c in ("benign", "malware")],
)
def test_real_captures_match_dpkt(folder: str, part: int) -> None:
    files = data_files(folder)
    if not files:
        pytest.skip(f"{DATA / folder} not present")
    if folder == "ndpi":
        files = files[part::4]
    compared = 0
    for path in files:
        batch, stats = read_capture(path)  # must not raise, whatever the file holds
        if path.name in MALFORMED:
            continue
        compared += compare(path, batch)
    assert compared > 100


LITERAL_IP = [
    b.ipv4(6, b.tcp(1, 2, 0x11), options=b"\x01" * 8),
    b.ipv4(17, b.udp(3, 4, b"hello")),
    b.ipv4(1, b.icmp()),
    b.ipv4(47, b"\x00\x00\x08\x00" + b.ipv4(17, b.udp())),
    b.ipv4(17, b.udp(), frag_offset=20),
    b.ipv6(6, b.tcp(5, 6, 0x18)),
    b.ipv6(0, b.ext(43) + b.ext(60) + b.ext(17) + b.udp(7, 8)),
    b.ipv6(51, b.ah(6) + b.tcp(9, 10)),
    b.ipv6(44, b.frag6(17, 0, True) + b.udp(11, 12)),
    b.ipv6(58, b.icmp(128)),
]


@pytest.mark.parametrize(
    ("linktype", "wrap"),
    [
        (1, lambda ip, et: b.ether(ip, et)),
        (1, lambda ip, et: b.ether(ip, et, [(0x8100, 7)])),
        (1, lambda ip, et: b.ether(ip, et, [(0x88A8, 7), (0x8100, 8)])),
        (113, lambda ip, et: b.sll(ip, et)),
        (276, lambda ip, et: b.sll2(ip, et)),
        (0, lambda ip, et: b.null(ip, 2 if et == 0x0800 else 24)),
        (0, lambda ip, et: b.null(ip, 2 if et == 0x0800 else 30, big=True)),
        (101, lambda ip, et: ip),
    ],
    ids=["eth", "vlan", "qinq", "sll", "sll2", "null-le", "null-be", "raw"],
)
@pytest.mark.parametrize("container", ["pcap", "pcapng"])
def test_literal_captures_match_dpkt(
    tmp_path: Path, linktype: int, wrap: Any, container: str
) -> None:
    frames = [wrap(ip, 0x0800 if ip[0] >> 4 == 4 else 0x86DD) for ip in LITERAL_IP]
    if container == "pcap":
        data = b.pcap(frames, linktype)
    else:
        data = (
            b.shb()
            + b.idb(linktype, tsresol=6)
            + b"".join(b.epb(f, ts=i) for i, f in enumerate(frames))
        )
    path = tmp_path / f"lit.{container}"
    path.write_bytes(data)
    batch, stats = read_capture(path)
    assert len(batch) == len(frames) and not stats.skipped
    assert compare(path, batch) == len(frames)
    assert np.all(batch.ip_version > 0)
