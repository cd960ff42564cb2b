"""Speed of `pktlstm synth`: packets/s (median of runs, wall clock and CPU time) and file
sizes, vs a scapy writer. CPU time (time.process_time) is the fair figure on a loaded machine.

Run: .venv/bin/python benchmarks/synth.py [--packets 200000] [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from pktlstm.synth import SynthConfig, generate


def _scapy_reference(pcap: Path, n: int) -> float:
    """Packets/s of rebuilding ``n`` of our frames field by field with scapy (checksums
    recomputed) and writing them with wrpcap: the usual way synthetic pcaps are made."""
    from scapy.all import IP, TCP, UDP, Ether, rdpcap, wrpcap

    frames = rdpcap(str(pcap), count=n)
    start = time.perf_counter()
    out = []
    for f in frames:
        ip = f[IP]
        layer = ip.payload
        if isinstance(layer, TCP):
            l4 = TCP(sport=layer.sport, dport=layer.dport, seq=layer.seq, ack=layer.ack,
                     flags=int(layer.flags), window=layer.window, options=layer.options)  # fmt: skip
        elif isinstance(layer, UDP):
            l4 = UDP(sport=layer.sport, dport=layer.dport)
        else:
            l4 = layer.copy()
        pkt = Ether(src=f.src, dst=f.dst) / IP(src=ip.src, dst=ip.dst, ttl=ip.ttl, id=ip.id,
                                               flags=int(ip.flags), proto=ip.proto) / l4  # fmt: skip
        out.append(Ether(bytes(pkt)))
    with tempfile.TemporaryDirectory() as tmp:
        wrpcap(str(Path(tmp) / "ref.pcap"), out)
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--packets", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rates, cpu_rates = [], []
        for run in range(args.runs):
            start, cpu = time.perf_counter(), time.process_time()
            result = generate(SynthConfig(packets=args.packets, seed=run), Path(tmp) / str(run))
            rates.append(args.packets / (time.perf_counter() - start))
            cpu_rates.append(args.packets / (time.process_time() - cpu))
        rate, cpu_rate = statistics.median(rates), statistics.median(cpu_rates)
        size = result.pcap_path.stat().st_size
        rows = len(result.labels_path.read_text().splitlines()) - 1
        ref = _scapy_reference(result.pcap_path, 3000)
    print(f"synth: {args.packets:,} packets, median of {args.runs} runs")
    print(
        f"  generate():   {rate:10,.0f} packets/s  (runs: {', '.join(f'{r:,.0f}' for r in rates)})"
    )
    print(
        f"  generate() CPU: {cpu_rate:8,.0f} packets/s  "
        f"({1e6 / cpu_rate:.1f} us CPU/packet; runs: {', '.join(f'{r:,.0f}' for r in cpu_rates)})"
    )
    print(f"  scapy build:  {ref:10,.0f} packets/s  (3,000 frames rebuilt + wrpcap)")
    print(f"  ratio:        {rate / ref:10.1f} x")
    print(
        f"  pcap size:    {size / 1e6:10.1f} MB ({size / args.packets:.0f} bytes/packet, last run)"
    )
    print(f"  label rows:   {rows:10,}")


if __name__ == "__main__":
    main()
