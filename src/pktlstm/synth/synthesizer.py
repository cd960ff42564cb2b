"""generate(): run the traffic generators, then write traffic.pcap and flows.csv."""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from pktlstm.errors import ConfigError
from pktlstm.synth.attacks import ATTACKS
from pktlstm.synth.benign import generate_benign
from pktlstm.synth.config import CLASSES, SynthConfig
from pktlstm.synth.flows import Flow, Recorder
from pktlstm.synth.frames import Packets, pcap_records
from pktlstm.synth.hosts import Network, ip_str
from pktlstm.synth.session import Ctx

log = logging.getLogger(__name__)

LABEL_HEADER = "src_ip,src_port,dst_ip,dst_port,proto,start,end,label"
_MAGIC_US, _MAGIC_NS = 0xA1B2C3D4, 0xA1B23C4D
_LINKTYPE_ETHERNET = 1


@dataclass
class SynthResult:
    """What ``generate`` wrote: paths, and packets / flows / bytes per class."""

    pcap_path: Path
    labels_path: Path
    packets: dict[str, int] = field(default_factory=dict)
    flows: dict[str, int] = field(default_factory=dict)
    bytes: dict[str, int] = field(default_factory=dict)

    @property
    def total_packets(self) -> int:
        return sum(self.packets.values())


def synthesize(config: SynthConfig) -> tuple[Packets, NDArray[np.int64], list[Flow]]:
    """Generate the packets in capture order, the flow index of each, and the flows.

    Timestamps (``Packets.ts``) are microseconds from ``config.start_time``.
    """
    rng = np.random.default_rng(config.seed)
    net = Network.build(rng)
    rec = Recorder()
    ctx = Ctx(
        rng=rng, net=net, rec=rec, duration_us=int(config.duration_s * 1e6), snaplen=config.snaplen
    )
    for name, count in config.counts().items():
        rec.begin(name, count)
        if name == "benign":
            generate_benign(ctx, count)
            continue
        stall = 0
        while rec.remaining > 0 and stall < 50:
            before = rec.remaining
            ATTACKS[name](ctx, rec.remaining)
            stall = stall + 1 if rec.remaining == before else 0
        if rec.remaining > 0:
            raise ConfigError(
                f"packets: could not place {rec.remaining} {name} packets; try fewer packets"
            )
    packets, flow = rec.packets(rng)
    # Clip to the capture window, then order by time (stable: ties keep flow order).
    packets.ts = np.clip(packets.ts, 0, ctx.duration_us)
    order = np.argsort(packets.ts, kind="stable")
    return packets.take(order), flow[order], rec.flows


def generate(config: SynthConfig, out_dir: str | Path) -> SynthResult:
    """Write ``out_dir/traffic.pcap`` and ``out_dir/flows.csv`` for ``config``.

    >>> import tempfile
    >>> r = generate(SynthConfig(packets=500, seed=1), tempfile.mkdtemp())
    >>> r.total_packets
    500
    """
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"out_dir: cannot create {str(out)!r}: {exc.strerror}") from None
    packets, flow, flows = synthesize(config)
    ts_ns = int(round(config.start_time * 1e6)) * 1000 + packets.ts * 1000
    if config.nanosecond:
        # Sub-microsecond jitter; flows keep their order (steps within a flow are >= 1 us).
        ts_ns = ts_ns + np.random.default_rng(config.seed ^ 0x5EED).integers(0, 1000, len(packets))
        order = np.argsort(ts_ns, kind="stable")
        if not np.array_equal(order, np.arange(len(order))):
            packets, flow, ts_ns = packets.take(order), flow[order], ts_ns[order]
    pcap_path = out / "traffic.pcap"
    labels_path = out / "flows.csv"
    sec = ts_ns // 1_000_000_000
    frac = ts_ns % 1_000_000_000 if config.nanosecond else (ts_ns % 1_000_000_000) // 1000
    magic = _MAGIC_NS if config.nanosecond else _MAGIC_US
    with open(pcap_path, "wb") as fh:
        fh.write(struct.pack("<IHHiIII", magic, 2, 4, 0, 0, config.snaplen, _LINKTYPE_ETHERNET))
        for chunk in pcap_records(packets, sec, frac, config.snaplen):
            fh.write(chunk)
    result = SynthResult(pcap_path=pcap_path, labels_path=labels_path)
    _write_labels(labels_path, flows, flow, ts_ns, packets, result)
    log.info("wrote %d packets, %d flows to %s", len(packets), sum(result.flows.values()), out)
    return result


def _write_labels(
    path: Path,
    flows: list[Flow],
    flow: NDArray[np.int64],
    ts_ns: NDArray[np.int64],
    packets: Packets,
    result: SynthResult,
) -> None:
    """One row per flow that has packets, ordered by start; start/end cover its packets."""
    n_flows = len(flows)
    first = np.full(n_flows, np.iinfo(np.int64).max, dtype=np.int64)
    last = np.full(n_flows, -1, dtype=np.int64)
    np.minimum.at(first, flow, ts_ns)
    np.maximum.at(last, flow, ts_ns)
    count = np.bincount(flow, minlength=n_flows)
    # The row's 5-tuple is the one of the flow's first packet (packets are in time order).
    first_row = np.full(n_flows, -1, dtype=np.int64)
    first_row[flow[::-1]] = np.arange(len(flow) - 1, -1, -1)
    tcp = packets.proto == 6
    l4 = np.where(
        tcp,
        20 + packets.opt_len.astype(np.int64),
        np.where((packets.proto == 17) | (packets.proto == 1), 8, 0),
    )
    nbytes = np.bincount(flow, weights=34 + l4 + packets.pay_len, minlength=n_flows)
    start_us = first // 1000
    end_us = -(-last // 1000)  # ceil: [start, end] covers nanosecond stamps
    order = np.argsort(first, kind="stable")
    order = order[count[order] > 0]
    j = first_row[order]
    src, dst = packets.src[j].astype(np.int64), packets.dst[j].astype(np.int64)
    names = {v: ip_str(v) for v in np.unique(np.r_[src, dst]).tolist()}
    proto = np.array([f.proto for f in flows], dtype=np.int64)[order]
    ported = (proto == 6) | (proto == 17)
    sport = np.where(ported, packets.sport[j], 0)
    dport = np.where(ported, packets.dport[j], 0)
    s, e = start_us[order], end_us[order]
    label_of = {c: i for i, c in enumerate(CLASSES)}
    cls = np.array([label_of[flows[i].label] for i in order.tolist()], dtype=np.int64)
    cols = zip(
        src.tolist(), sport.tolist(), dst.tolist(), dport.tolist(), proto.tolist(),
        (s // 1_000_000).tolist(), (s % 1_000_000).tolist(),
        (e // 1_000_000).tolist(), (e % 1_000_000).tolist(), cls.tolist(), strict=True,
    )  # fmt: skip
    lines = [LABEL_HEADER] + [
        f"{names[a]},{sp},{names[b]},{dp},{pr},{ss}.{sf:06d},{es}.{ef:06d},{CLASSES[c]}"
        for a, sp, b, dp, pr, ss, sf, es, ef, c in cols
    ]
    per = {
        "packets": np.bincount(cls, weights=count[order], minlength=len(CLASSES)),
        "flows": np.bincount(cls, minlength=len(CLASSES)),
        "bytes": np.bincount(cls, weights=nbytes[order], minlength=len(CLASSES)),
    }
    for name, values in per.items():  # report classes in CLASSES order
        setattr(result, name, {c: int(v) for c, v in zip(CLASSES, values, strict=True) if v > 0})
    path.write_text("\n".join(lines) + "\n")
