"""Detection speed, latency and memory: pcap -> alerts end to end (issue 5 figures).

Usage:
    .venv/bin/python benchmarks/detect.py [--packets 1000000] [--repeats 3] [--quick]

What it does, all on synthetic captures written to a temporary folder (no shared data):
  1. throughput: `fast` preset, 1M packets over 50k flows, `--replay asap`: ONNX Runtime vs
     PyTorch eager, median of --repeats runs; `hwang2019` preset on a 100k-packet prefix.
  2. latency: replay at an offered 20,000 packets/s (`fast`, ONNX): p50/p99 arrival -> verdict.
  3. memory: 1M and 3M distinct flows (one packet each): peak RSS, and RSS sampled while the
     flow table fills and then evicts (flat after `max_flows`).
Models are untrained (random weights, seeded): speed does not depend on the weights. The
threshold is set so that about 1% of packets score above it (a realistic alert load).
Each measurement runs in its own subprocess so that peak RSS is per run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

FRAME = 60  # bytes per frame (Ethernet minimum): TCP 54 + pad, UDP 42 + payload
PORTS = np.array([80, 443, 53, 22, 25, 123, 8080, 3389], np.uint16)


def write_capture(path: Path, n: int, n_flows: int, rate_pps: float, seed: int = 0) -> Path:
    """A pcap of ``n`` 60-byte TCP/UDP frames over ``n_flows`` flows (packet i is in flow
    ``i % n_flows``), ``1/rate_pps`` seconds apart. Built with numpy, written in 1M-row parts.
    """
    rng = np.random.default_rng(seed)
    with open(path, "wb") as f:
        f.write(np.array([0xA1B2C3D4], "<u4").tobytes())
        f.write(np.array([2, 4], "<u2").tobytes() + np.array([0, 0, 65535, 1], "<u4").tobytes())
        for start in range(0, n, 1 << 20):
            i = np.arange(start, min(n, start + (1 << 20)), dtype=np.int64)
            flow = i % n_flows
            pos = i // n_flows  # position of the packet in its flow
            m = len(i)
            rec = np.zeros((m, 16 + FRAME), np.uint8)
            ts = 1_600_000_000 * 1_000_000 + (i * 1e6 / rate_pps).astype(np.int64)
            hdr = rec[:, :16].view("<u4")
            hdr[:, 0] = ts // 1_000_000
            hdr[:, 1] = ts % 1_000_000
            hdr[:, 2] = FRAME
            hdr[:, 3] = FRAME
            fr = rec[:, 16:]
            fr[:, 0:6] = [0x02, 0, 0, 0, 0, 1]
            fr[:, 6:12] = [0x02, 0, 0, 0, 0, 2]
            fr[:, 12:14] = [0x08, 0x00]
            udp = (flow % 3) == 0
            fr[:, 14] = 0x45
            fr[:, 16:18] = np.where(udp, 46, 40)[:, None].astype(">u2").view(np.uint8)
            fr[:, 18:20] = (i & 0xFFFF).astype(">u2")[:, None].view(np.uint8)
            fr[:, 22] = rng.choice([64, 128, 255], m)
            fr[:, 23] = np.where(udp, 17, 6)
            fr[:, 26] = 10
            fr[:, 27:30] = (flow[:, None] >> np.array([16, 8, 0])) & 0xFF
            fr[:, 30:34] = [192, 168, 0, 1]
            fr[:, 32] = flow % 251
            sport = (1024 + flow % 60000).astype(np.uint16)
            dport = PORTS[flow % len(PORTS)]
            fr[:, 34:36] = sport.astype(">u2")[:, None].view(np.uint8)
            fr[:, 36:38] = dport.astype(">u2")[:, None].view(np.uint8)
            tcp = ~udp
            seq = (flow * 7919 + pos * 1460).astype(np.uint32)
            fr[tcp, 38:42] = seq[tcp].astype(">u4")[:, None].view(np.uint8)
            fr[tcp, 46] = 0x50
            fr[tcp, 47] = np.where(pos[tcp] == 0, 0x02, 0x18)
            fr[tcp, 48:50] = (
                rng.choice([512, 29200, 64240, 65535], int(tcp.sum()))
                .astype(">u2")[:, None]
                .view(np.uint8)
            )
            fr[udp, 38:40] = np.array([26], ">u2").view(np.uint8)
            f.write(rec.tobytes())
    return path


def make_model(folder: Path, preset_name: str, sample: Path) -> Path:
    """An untrained artifact of ``preset_name`` (vocab and positions from ``sample``),
    exported to ONNX, with a threshold that flags ~1% of the sample's packets."""
    import torch

    from pktlstm.io.reader import read_capture
    from pktlstm.model import build_model, preset, save_artifact, varying_positions
    from pktlstm.runtime.detector import load_detector
    from pktlstm.runtime.export import ExportConfig, export_model
    from pktlstm.tokens import TokenizerConfig, Vocabulary, tokenize

    torch.manual_seed(0)
    batch, _ = read_capture(sample)
    tok = TokenizerConfig()
    words = tokenize(batch[:100_000], tok)
    vocab = Vocabulary().fit(words)
    positions = varying_positions(words) if preset_name == "fast" else None
    config = preset(preset_name, len(vocab), n_classes=2, seq_len=33, positions=positions)
    path = folder / preset_name
    save_artifact(
        path, build_model(config), tokenizer=tok.to_dict(), vocab=vocab,
        classes=["benign", "malicious"], threshold=0.5, train_config={}, metrics={},
        dataset_card={},
    )  # fmt: skip
    export_model(path, ExportConfig(sample_packets=1024, captures=(sample,)))
    scores, _ = load_detector(path).score(batch[:20_000])
    doc = json.loads((path / "model.json").read_text())
    doc["threshold"] = float(np.quantile(scores, 0.99))
    (path / "model.json").write_text(json.dumps(doc))
    return path


def run_once(args: dict) -> dict:
    """One ``detect()`` run in this process; returns the summary plus peak RSS (MiB)."""
    from pktlstm.runtime.engine import DetectConfig, Engine, detect
    from pktlstm.runtime.flows import FlowConfig

    config = DetectConfig(
        batch_size=args.get("batch_size", 512),
        max_wait_ms=args.get("max_wait_ms", 5.0),
        replay=args.get("replay", "asap"),
        alerts=args["alerts"],
        stats_interval_s=0,
        backend=args["backend"],
        workers=args.get("workers", 1),
        flows=FlowConfig(max_flows=args.get("max_flows", 500_000)),
    )
    rss: list[tuple[int, float]] = []
    page = os.sysconf("SC_PAGE_SIZE")
    every = args.get("rss_every", 0)

    def sample(engine: Engine, n: int) -> None:
        if every and engine.packets // every != (engine.packets - n) // every:
            with open("/proc/self/statm") as f:
                rss.append((engine.packets, int(f.read().split()[1]) * page / 2**20))

    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    s = detect(args["model"], config, pcaps=[Path(args["pcap"])], on_batch=sample)
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu_s = cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime
    return {
        "cpu_s": cpu_s,
        "thread_cpu_s": s.thread_cpu_s,
        "workers": s.workers,
        "pkts_per_cpu_s": s.packets / cpu_s if cpu_s > 0 else 0.0,
        "packets": s.packets,
        "alerts": s.alerts,
        "elapsed_s": s.elapsed_s,
        "pps": s.packets_per_s,
        "latency_ms": s.latency_ms,
        "batch_ms": s.batch_ms,
        "flows": s.flows,
        "backend": s.backend,
        "peak_rss_mib": _peak_rss_mib(),
        "rss": rss,
    }


def _peak_rss_mib() -> float:
    """VmHWM of this process (ru_maxrss would include the parent's peak: kept across exec)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def run(args: dict) -> dict:
    """``run_once`` in a fresh subprocess (clean peak RSS, no warm caches shared)."""
    out = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(args)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def median_run(args: dict, repeats: int) -> dict:
    runs = [run(args) for _ in range(repeats)]
    runs.sort(key=lambda r: r["pps"])
    best = runs[len(runs) // 2]
    best["pps_all"] = [round(r["pps"]) for r in runs]
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--packets", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="100k packets, 1 repeat (smoke test)")
    ap.add_argument("--only", choices=["throughput", "latency", "memory"], help="run one part only")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        print(json.dumps(run_once(json.loads(a.child))))
        return
    if a.quick:
        a.packets, a.repeats = 100_000, 1
    n = a.packets
    cores = len(os.sched_getaffinity(0))
    load = os.getloadavg()[0]
    print(
        f"# pktlstm detect benchmark: {n:,} packets, {cores} cores, median of {a.repeats}, "
        f"load average at start {load:.1f} (other work on the machine slows every figure)"
    )
    with tempfile.TemporaryDirectory(prefix="pktlstm-bench-") as tmp:
        d = Path(tmp)
        t = time.perf_counter()
        part = {a.only} if a.only else {"throughput", "latency", "memory"}
        small = write_capture(d / "small.pcap", min(n, 50_000), max(n // 400, 1), 50_000)
        print(f"captures written in {time.perf_counter() - t:.1f} s")
        fast = make_model(d, "fast", small)
        alerts = str(d / "eve.json")
        if "throughput" in part:
            main_pcap = write_capture(d / "main.pcap", n, max(n // 20, 1), rate_pps=50_000)
            hwang = make_model(d, "hwang2019", small)
            throughput(fast, hwang, main_pcap, small, alerts, a.repeats)
        if "latency" in part:
            paced = write_capture(d / "paced.pcap", min(n, 200_000), 2_000, rate_pps=20_000)
            latency(fast, paced, alerts)
        if "memory" in part:
            distinct = write_capture(d / "distinct.pcap", n, n_flows=n, rate_pps=1_000_000)
            many = write_capture(d / "many.pcap", 3 * n, n_flows=3 * n, rate_pps=1_000_000)
            memory(fast, distinct, many, alerts, n)


def throughput(
    fast: Path, hwang: Path, main_pcap: Path, small: Path, alerts: str, repeats: int
) -> None:
    """End-to-end packets/s, ONNX Runtime vs PyTorch eager, both presets."""
    print("\n## throughput, pcap -> alerts, --replay asap (packets/s, median)")
    rows = []
    for name, model, pcap in (("fast", fast, main_pcap), ("hwang2019", hwang, small)):
        for backend in ("onnx", "torch"):
            r = median_run(
                {"model": str(model), "pcap": str(pcap), "backend": backend, "alerts": alerts},
                repeats if name == "fast" else 1,
            )
            rows.append((name, backend, r))
            cpu = r["thread_cpu_s"]
            if r["workers"] == 1:  # inference runs in the batcher thread
                busiest = max(cpu["reader"], cpu["batcher"] + cpu["inference"])
            else:
                busiest = max(cpu["reader"], cpu["batcher"], cpu["inference"] / r["workers"])
            threads = ", ".join(
                f"{k} {1e6 * v / r['packets']:.1f}" for k, v in r["thread_cpu_s"].items()
            )
            print(
                f"{name:10s} {backend:6s} {r['packets']:>9,} pkts  {r['pps']:>10,.0f} pkt/s  "
                f"runs {r['pps_all']}  CPU {1e6 / r['pkts_per_cpu_s']:.1f} us/pkt (threads, "
                f"us/pkt: {threads}; {r['workers']} inference threads; bound with free cores: "
                f"{r['packets'] / busiest:,.0f} pkt/s)  batch p50 {r['batch_ms']['p50']} ms  "
                f"alerts {r['alerts']:,}  peak RSS {r['peak_rss_mib']:.0f} MiB"
            )
    for name in ("fast", "hwang2019"):
        onnx = next(r for m, b, r in rows if m == name and b == "onnx")
        eager = next(r for m, b, r in rows if m == name and b == "torch")
        print(f"{name}: ONNX Runtime / PyTorch eager = {onnx['pps'] / eager['pps']:.2f}x")


def latency(fast: Path, paced: Path, alerts: str) -> None:
    """Arrival -> verdict time at an offered 20,000 packets/s."""
    print("\n## latency at an offered 20,000 packets/s (--replay realtime, fast, ONNX)")
    r = run({"model": str(fast), "pcap": str(paced), "backend": "onnx", "alerts": alerts,
             "replay": "realtime", "max_wait_ms": 5.0})  # fmt: skip
    print(
        f"{r['packets']:,} packets in {r['elapsed_s']:.1f} s ({r['pps']:,.0f}/s): arrival -> "
        f"verdict p50 {r['latency_ms']['p50']} ms, p99 {r['latency_ms']['p99']} ms "
        f"(max wait 5 ms, batch 512); CPU used {r['cpu_s'] / r['elapsed_s']:.2f} cores"
    )


def memory(fast: Path, distinct: Path, many: Path, alerts: str, n: int) -> None:
    """Peak and sampled RSS with n and 3n distinct flows (table bounded at 500,000)."""
    print("\n## memory: distinct flows, one packet each (fast, ONNX, max_flows 500,000)")
    for pcap, label in ((distinct, f"{n:,}"), (many, f"{3 * n:,}")):
        r = run({"model": str(fast), "pcap": str(pcap), "backend": "onnx", "alerts": alerts,
                 "rss_every": max(n // 4, 1)})  # fmt: skip
        trace = ", ".join(f"{p / 1e6:.2f}M: {m:.0f}" for p, m in r["rss"])
        print(
            f"{label} flows: peak RSS {r['peak_rss_mib']:.0f} MiB, {r['pps']:,.0f} pkt/s, "
            f"evicted {r['flows']['evicted']:,}; RSS MiB after packets: {trace}"
        )


if __name__ == "__main__":
    main()
