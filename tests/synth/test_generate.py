"""End-to-end tests of generate(): determinism, label coverage, checksums, classes, mix."""

from __future__ import annotations

import hashlib
import socket
import struct
from collections import Counter, defaultdict
from pathlib import Path

import dpkt
import pytest
from tests.synth.conftest import Parsed, read_labels, read_pcap

from pktlstm.errors import ConfigError
from pktlstm.synth import CLASSES, LABEL_HEADER, SynthConfig, SynthResult, generate


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _us(text: str) -> int:
    sec, frac = text.split(".")
    assert len(frac) == 6
    return int(sec) * 1_000_000 + int(frac)


def _match(packets: list[Parsed], rows: list[dict[str, str]]) -> list[list[int]]:
    """For each packet, the label rows that claim it (5-tuple either direction, in time)."""
    index: dict[tuple, list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        a, b = (r["src_ip"], int(r["src_port"])), (r["dst_ip"], int(r["dst_port"]))
        index[(*min(a, b), *max(a, b), int(r["proto"]))].append(i)
    out = []
    for p in packets:
        a, b = p.key[0:2], p.key[2:4]
        hits = []
        for i in index.get((*min(a, b), *max(a, b), p.key[4]), []):
            start, end = _us(rows[i]["start"]) * 1000, _us(rows[i]["end"]) * 1000
            if start <= p.ts_ns <= end:
                hits.append(i)
        out.append(hits)
    return out


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    cfg = SynthConfig(packets=1500, seed=3, duration_s=60)
    a, b = generate(cfg, tmp_path / "a"), generate(cfg, tmp_path / "b")
    assert _digest(a.pcap_path) == _digest(b.pcap_path)
    assert _digest(a.labels_path) == _digest(b.labels_path)
    c = generate(SynthConfig(packets=1500, seed=4, duration_s=60), tmp_path / "c")
    assert _digest(a.pcap_path) != _digest(c.pcap_path)


def test_exact_packet_count_and_every_class(small_run: SynthResult) -> None:
    packets = read_pcap(small_run.pcap_path)
    assert len(packets) == 6000 == small_run.total_packets
    assert set(small_run.packets) == set(CLASSES)
    assert all(n > 0 for n in small_run.packets.values())


def test_time_ordered(small_run: SynthResult) -> None:
    ts = [p.ts_ns for p in read_pcap(small_run.pcap_path)]
    assert ts == sorted(ts)
    assert ts[-1] - ts[0] <= 120 * 10**9


def test_every_packet_in_exactly_one_label_row(small_run: SynthResult) -> None:
    packets = read_pcap(small_run.pcap_path)
    rows = read_labels(small_run.labels_path)
    assert small_run.labels_path.read_text().splitlines()[0] == LABEL_HEADER
    hits = _match(packets, rows)
    assert [len(h) for h in hits] == [1] * len(packets)
    # Labels from the rows add up to the per-class packet counts reported.
    per_class = Counter(rows[h[0]]["label"] for h in hits)
    assert dict(per_class) == small_run.packets
    # Each row's 5-tuple is the one of its flow's first packet, and every row is used.
    first: dict[int, Parsed] = {}
    for p, h in zip(packets, hits, strict=True):
        first.setdefault(h[0], p)
    assert len(first) == len(rows)
    for i, p in first.items():
        r = rows[i]
        assert p.key == (
            r["src_ip"],
            int(r["src_port"]),
            r["dst_ip"],
            int(r["dst_port"]),
            int(r["proto"]),
        )
        assert r["label"] in CLASSES


def _in_cksum_ok(data: bytes) -> bool:
    return dpkt.in_cksum(data) == 0


def test_checksums_and_lengths(small_run: SynthResult) -> None:
    for p in read_pcap(small_run.pcap_path):
        ip = p.eth.data
        assert isinstance(ip, dpkt.ip.IP) and ip.v == 4 and ip.hl == 5
        raw = p.frame[14:]
        assert ip.len == len(raw)
        assert _in_cksum_ok(raw[:20])
        l4 = raw[20:]
        pseudo = ip.src + ip.dst + struct.pack("!BBH", 0, ip.p, len(l4))
        if ip.p == 6:
            assert isinstance(ip.data, dpkt.tcp.TCP)
            assert _in_cksum_ok(pseudo + l4)
            assert ip.data.off * 4 <= len(l4)
        elif ip.p == 17:
            assert ip.data.ulen == len(l4)
            assert ip.data.sum != 0 and _in_cksum_ok(pseudo + l4)
        elif ip.p == 1:
            assert _in_cksum_ok(l4)
        else:
            assert ip.p == 47
            inner = l4[4:] if l4[2:4] == b"\x08\x00" else l4[18:]
            assert l4[2:4] in (b"\x08\x00", b"\x65\x58")
            iip = dpkt.ip.IP(inner)
            assert iip.len == len(inner) and _in_cksum_ok(inner[:20])
            ipseudo = iip.src + iip.dst + struct.pack("!BBH", 0, 17, len(inner) - 20)
            assert _in_cksum_ok(ipseudo + inner[20:])


def test_scapy_agrees_on_checksums(small_run: SynthResult) -> None:
    scapy_all = pytest.importorskip("scapy.all")
    for p in read_pcap(small_run.pcap_path)[:800]:
        pkt = scapy_all.Ether(p.frame)
        ip = pkt[scapy_all.IP]
        rebuilt = ip.copy()
        del rebuilt.chksum
        layer = rebuilt.payload
        if hasattr(layer, "chksum"):
            del layer.chksum
        again = scapy_all.IP(bytes(rebuilt))
        assert again.chksum == ip.chksum
        if ip.proto in (1, 6, 17):
            assert again.payload.chksum == ip.payload.chksum


def _classes_of(run: SynthResult) -> dict[str, list[Parsed]]:
    packets = read_pcap(run.pcap_path)
    rows = read_labels(run.labels_path)
    out: dict[str, list[Parsed]] = defaultdict(list)
    for p, h in zip(packets, _match(packets, rows), strict=True):
        out[rows[h[0]]["label"]].append(p)
    return out


def test_scan_seq_equals_destination_address(small_run: SynthResult) -> None:
    scans = _classes_of(small_run)["telnet_scan"]
    probes = [
        p
        for p in scans
        if isinstance(p.eth.data.data, dpkt.tcp.TCP) and p.eth.data.data.flags == dpkt.tcp.TH_SYN
    ]
    assert len(probes) > 50
    for p in probes:
        tcp = p.eth.data.data
        assert tcp.dport in (23, 2323)
        assert tcp.seq == struct.unpack("!I", p.eth.data.dst)[0]
    assert Counter(p.eth.data.data.dport for p in probes)[23] > len(probes) // 2


def test_attack_signatures(small_run: SynthResult) -> None:
    by = _classes_of(small_run)
    vse = [p for p in by["vse_flood"] if p.eth.data.data.dport == 27015]
    assert vse and all(b"TSource Engine Query" in bytes(p.eth.data.data.data) for p in vse)
    nmap = [p for p in by["port_scan"] if p.eth.data.data.flags == dpkt.tcp.TH_SYN]
    assert nmap and all(p.eth.data.data.win == 1024 for p in nmap)
    gre = {bytes(p.eth.data.data)[2:4] for p in by["greeth_flood"]}
    assert gre == {b"\x65\x58"}
    assert any(b"login: " in bytes(p.eth.data.data.data) for p in by["telnet_bruteforce"])
    dns = [p for p in by["dns_water_torture"] if p.eth.data.data.dport == 53]
    names = {dpkt.dns.DNS(bytes(p.eth.data.data.data)).qd[0].name for p in dns}
    assert len(names) == len(dns)  # random subdomains do not repeat


def test_ttl_does_not_separate_classes(small_run: SynthResult) -> None:
    by = _classes_of(small_run)
    benign_ttls = {p.eth.data.ttl for p in by["benign"]}
    for name in ("syn_flood", "http_flood", "udp_flood", "stomp_flood"):
        attack_ttls = Counter(p.eth.data.ttl for p in by[name])
        common, _ = attack_ttls.most_common(1)[0]
        assert common in benign_ttls, name


def test_mix_is_respected(tmp_path: Path) -> None:
    cfg = SynthConfig(
        packets=3000, seed=5, duration_s=60, mix={"benign": 0.5, "syn_flood": 0.3, "port_scan": 0.2}
    )
    run = generate(cfg, tmp_path)
    assert run.packets == {"benign": 1500, "syn_flood": 900, "port_scan": 600}
    assert len(read_pcap(run.pcap_path)) == 3000


def test_nanosecond_pcap(tmp_path: Path) -> None:
    run = generate(SynthConfig(packets=800, seed=2, duration_s=30, nanosecond=True), tmp_path)
    packets = read_pcap(run.pcap_path)
    assert run.pcap_path.read_bytes()[:4] == struct.pack("<I", 0xA1B23C4D)
    assert any(p.ts_ns % 1000 for p in packets)
    assert [len(h) for h in _match(packets, read_labels(run.labels_path))] == [1] * len(packets)


def test_project_reader_reads_every_packet(small_run: SynthResult) -> None:
    """pktlstm.io reads every record (cut ones too) and its 5-tuples match flows.csv."""
    from types import SimpleNamespace

    from pktlstm.io import read_capture

    batch, stats = read_capture(small_run.pcap_path)
    assert len(batch) == stats.packets == small_run.total_packets
    assert not stats.skipped
    assert (batch.caplen <= 192).all() and (batch.caplen < batch.wirelen).any()
    ours = read_pcap(small_run.pcap_path)
    keys = [
        (socket.inet_ntoa(bytes(batch.src[i, 12:])), int(batch.sport[i]),
         socket.inet_ntoa(bytes(batch.dst[i, 12:])), int(batch.dport[i]), int(batch.proto[i]))
        for i in range(len(batch))
    ]  # fmt: skip
    assert keys == [p.key for p in ours]
    assert batch.ts_ns.tolist() == [p.ts_ns for p in ours]
    seen = [SimpleNamespace(key=k, ts_ns=int(t)) for k, t in zip(keys, batch.ts_ns, strict=True)]
    hits = _match(seen, read_labels(small_run.labels_path))  # type: ignore[arg-type]
    assert [len(h) for h in hits] == [1] * len(batch)


def test_whole_frames_with_large_snaplen(tmp_path: Path) -> None:
    run = generate(SynthConfig(packets=600, seed=9, duration_s=30, snaplen=65535), tmp_path)
    data = run.pcap_path.read_bytes()
    assert struct.unpack_from("<I", data, 16)[0] == 65535
    assert len(read_pcap(run.pcap_path)) == 600  # asserts caplen == wirelen for each record


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"packets": 0}, "packets"),
        ({"seed": -1}, "seed"),
        ({"duration_s": 0.0}, "duration_s"),
        ({"mix": {"benign": 1.0, "smurf": 0.1}}, "mix"),
        ({"mix": {"benign": -1.0}}, "mix"),
        ({"mix": {"benign": 0.0}}, "mix"),
        ({"snaplen": 64}, "snaplen"),
    ],
)
def test_config_errors_name_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        SynthConfig(**kwargs)


def test_unwritable_out_dir(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match="out_dir"):
        generate(SynthConfig(packets=10), blocker / "sub")
