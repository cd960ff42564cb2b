"""Ingest speed: pcap -> PacketBatch (and -> tokens) with pktlstm vs dpkt on the same file.

Usage:
    .venv/bin/python benchmarks/ingest.py                 # builds a 1,000,000-packet capture
    .venv/bin/python benchmarks/ingest.py --pcap FILE     # or measures on your capture
    .venv/bin/python benchmarks/ingest.py --packets 200000 --repeat 3

Prints the median packets/s over ``--repeat`` runs for each path and the ratio to dpkt
(which parses Ethernet/VLAN, IPv4/IPv6, TCP/UDP and reads the same fields). One process,
one core: numpy and numba run single-threaded here.
"""

from __future__ import annotations

import argparse
import os
import statistics
import struct
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")


def build_capture(path: Path, packets: int, seed: int = 0) -> None:
    """Write a classic pcap of ``packets`` Ethernet frames: mixed TCP/UDP/ICMP, IPv4 and
    about 15% IPv6, 10% with an 802.1Q tag; frame sizes 54-1514 bytes, real-ish flows."""
    rng = np.random.default_rng(seed)
    n_flows = max(packets // 20, 1)
    kinds = rng.choice(6, size=n_flows, p=[0.45, 0.25, 0.05, 0.1, 0.05, 0.1])
    addr = rng.integers(0, 2**32, size=(n_flows, 2), dtype=np.uint64)
    ports = rng.integers(1024, 65536, size=(n_flows, 2))
    flow_of = rng.integers(0, n_flows, size=packets)
    flip = rng.random(packets) < 0.5
    sizes = rng.choice([0, 0, 0, 32, 200, 512, 1400], size=packets)
    payload = bytes(1500)
    mac_a, mac_b = bytes.fromhex("020000000001"), bytes.fromhex("020000000002")
    ts0 = 1_700_000_000
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for i in range(packets):
        f = int(flow_of[i])
        kind = int(kinds[f])
        a, b = int(addr[f, 0]), int(addr[f, 1])
        pa, pb = int(ports[f, 0]), int(ports[f, 1])
        if flip[i]:
            a, b, pa, pb = b, a, pb, pa
        size = int(sizes[i])
        if kind in (0, 3, 5):  # TCP
            l4 = struct.pack("!HHIIBBHHH", pa, pb, i, 0, 0x50, 0x18, 8192, 0, 0)
            proto = 6
        elif kind in (1, 4):  # UDP
            l4 = struct.pack("!HHHH", pa, 53 if kind == 1 else pb, 8 + size, 0)
            proto = 17
        else:  # ICMP echo
            l4 = struct.pack("!BBHHH", 8, 0, 0, f & 0xFFFF, i & 0xFFFF)
            proto = 1
        body = l4 + payload[:size]
        if kind == 4 or (kind == 3 and f % 3 == 0):  # IPv6
            ip = (
                struct.pack("!IHBB", 0x60000000, len(body), proto, 64)
                + b"\x20\x01\x0d\xb8" + bytes(4) + a.to_bytes(8, "big")
                + b"\x20\x01\x0d\xb8" + bytes(4) + b.to_bytes(8, "big")
            )  # fmt: skip
            ethertype = 0x86DD
        else:
            ip = struct.pack(
                "!BBHHHBBH4s4s", 0x45, 0, 20 + len(body), i & 0xFFFF, 0, 64, proto, 0,
                a.to_bytes(4, "big"), b.to_bytes(4, "big"),
            )  # fmt: skip
            ethertype = 0x0800
        eth = mac_a + mac_b
        if kind == 5:
            eth += struct.pack("!HH", 0x8100, 100)
        frame = eth + struct.pack("!H", ethertype) + ip + body
        out.append(struct.pack("<IIII", ts0 + i // 1000, (i % 1000) * 1000, len(frame), len(frame)))
        out.append(frame)
    path.write_bytes(b"".join(out))


def dpkt_decode(path: Path) -> int:
    """Parse every frame with dpkt and read the fields pktlstm extracts; returns packets."""
    import dpkt

    count = 0
    with open(path, "rb") as fh:
        for ts, buf in dpkt.pcap.Reader(fh):
            eth = dpkt.ethernet.Ethernet(buf)
            ip = eth.data
            fields = [ts, len(buf), eth.type]
            if isinstance(ip, (dpkt.ip.IP, dpkt.ip6.IP6)):
                fields += [ip.src, ip.dst, ip.p]
                l4 = ip.data
                if isinstance(l4, (dpkt.tcp.TCP, dpkt.udp.UDP)):
                    fields += [l4.sport, l4.dport]
                    if isinstance(l4, dpkt.tcp.TCP):
                        fields.append(l4.flags)
            count += 1
    return count


def pktlstm_batches(path: Path) -> int:
    from pktlstm.io import open_capture

    count = 0
    with open_capture(path) as reader:
        for batch in reader:
            count += len(batch)
    return count


def pktlstm_tokens(path: Path, tokenize: Callable, config: object) -> int:
    from pktlstm.io import open_capture

    count = 0
    with open_capture(path) as reader:
        for batch in reader:
            count += tokenize(batch, config).shape[0]
    return count


def median_rate(fn: Callable[[], int], repeat: int) -> tuple[float, float, int]:
    """Median packets/s over ``repeat`` runs, by wall clock and by this process's CPU time
    (the CPU figure is the one-core speed even when other processes share the machine)."""
    wall, cpu = [], []
    n = 0
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        n = fn()
        wall.append(n / (time.perf_counter() - t0))
        cpu.append(n / (time.process_time() - c0))
    return statistics.median(wall), statistics.median(cpu), n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pcap", type=Path, help="measure on this capture instead")
    parser.add_argument("--packets", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--dpkt-repeat", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        path = args.pcap
        if path is None:
            path = Path(tmp) / "bench.pcap"
            t0 = time.perf_counter()
            build_capture(path, args.packets)
            print(f"built {path.name}: {args.packets:,} packets, "
                  f"{path.stat().st_size / 1e6:.1f} MB in {time.perf_counter() - t0:.1f} s")  # fmt: skip
        t0 = time.perf_counter()
        pktlstm_batches(path)  # warm-up: loads (or compiles) the numba scanners, page cache
        print(f"warm-up pass (numba cache load/compile + first read): "
              f"{time.perf_counter() - t0:.2f} s")  # fmt: skip

        batch_wall, batch_cpu, n = median_rate(lambda: pktlstm_batches(path), args.repeat)
        line = "{:<28}: {:6.2f} M packets/s wall, {:6.2f} M packets/CPU-s"
        print(line.format("pktlstm pcap -> PacketBatch", batch_wall / 1e6, batch_cpu / 1e6))
        try:
            from pktlstm.tokens import TokenizerConfig, tokenize
        except ImportError:
            tok = None
            print("pktlstm pcap -> tokens      : pktlstm.tokens.tokenize not available, skipped")
        else:
            cfg = TokenizerConfig()
            tok = median_rate(lambda: pktlstm_tokens(path, tokenize, cfg), args.repeat)
            print(line.format("pktlstm pcap -> tokens", tok[0] / 1e6, tok[1] / 1e6))
        dpkt_wall, dpkt_cpu, n_dpkt = median_rate(lambda: dpkt_decode(path), args.dpkt_repeat)
        print(line.format("dpkt    pcap -> fields", dpkt_wall / 1e6, dpkt_cpu / 1e6))
        assert n_dpkt == n, f"dpkt saw {n_dpkt} packets, pktlstm {n}"
        ratio = "{:<28}: {:6.1f} x wall, {:6.1f} x CPU"
        print(ratio.format("ratio batch / dpkt", batch_wall / dpkt_wall, batch_cpu / dpkt_cpu))
        if tok is not None:
            print(ratio.format("ratio tokens / dpkt", tok[0] / dpkt_wall, tok[1] / dpkt_cpu))
        print(f"(medians of {args.repeat} runs, dpkt {args.dpkt_repeat} runs)")


if __name__ == "__main__":
    main()
