"""Flow-level baseline: CICFlowMeter-style flow statistics from the captures, gradient-boosted trees.

The detector operators know: packets are grouped into flow records (the dataset's own flow
keys, cut by the usual idle and active timeouts), each record becomes a vector of statistics
(``FEATURES``: durations, packet and byte counts per direction, sizes, inter-arrival times, TCP
flag counts, ...) and a ``HistGradientBoostingClassifier`` judges it when the record ends.

Features are computed from the captures listed in the dataset card, read again with the same
reader, and joined to the dataset rows by (capture, record index): a record's dataset flow
decides its split, so baseline train/validation/test flows are exactly the packet model's.

``flow_records(dataset, config)`` -> ``FlowRecords``; ``FlowBaseline(config).fit(records)``
trains on the train split and chooses the alert threshold on validation flows (best F1, the
same rule as the packet model); ``score(records)`` gives ``P(malicious)`` per record, higher
means more malicious.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pktlstm.dataset import REMOVED, SPLIT_CODES, Dataset
from pktlstm.errors import ArtifactError, ConfigError
from pktlstm.io import CaptureConfig, open_capture
from pktlstm.train import choose_threshold

log = logging.getLogger(__name__)

NS = 1_000_000_000  # nanoseconds per second

# TCP flag bits counted per record, in FEATURES order.
TCP_FLAGS = {"fin": 0x01, "syn": 0x02, "rst": 0x04, "psh": 0x08, "ack": 0x10, "urg": 0x20,
             "ece": 0x40, "cwr": 0x80}  # fmt: skip

# Per-record features (CICFlowMeter family). "fwd" is the direction of the record's first
# packet, "bwd" the other; sizes are frame lengths on the wire (bytes), times seconds.
# Undefined values (no backward packet, one packet only) are NaN in ``FlowRecords.features``;
# the classifier sees them as -1 (sklearn's binning fails on a column that is all NaN).
FEATURES: tuple[str, ...] = (
    "protocol",  # IP protocol number (0 when not IP)
    "dst_port",  # destination port of the first packet (0 without ports)
    "duration",  # last - first packet time
    "fwd_packets", "bwd_packets", "fwd_bytes", "bwd_bytes",
    "len_min", "len_max", "len_mean", "len_std",
    "fwd_len_mean", "fwd_len_max", "bwd_len_mean", "bwd_len_max",
    "iat_mean", "iat_std", "iat_min", "iat_max",  # gaps between consecutive packets
    "fwd_iat_mean", "bwd_iat_mean",  # mean gap between packets of one direction
    "bytes_per_s", "packets_per_s",
    "down_up_ratio",  # bwd_packets / fwd_packets
    "init_win_fwd", "init_win_bwd",  # TCP window of the first packet each way
    *(f"{name}_count" for name in TCP_FLAGS),
)  # fmt: skip


@dataclass(frozen=True)
class FlowConfig:
    """Flow records and the classifier of the baseline.

    Fields:
        idle_timeout_s: a gap longer than this ends a record (nfstream / CICFlowMeter: 120 s).
        active_timeout_s: a record older than this ends at its next packet (nfstream: 1800 s).
        max_iter: boosting iterations of the classifier.
        learning_rate: boosting learning rate.
        max_train_records: train on a seeded random sample of at most this many records.
        seed: seeds the classifier and the sample.
    """

    idle_timeout_s: float = 120.0
    active_timeout_s: float = 1800.0
    max_iter: int = 200
    learning_rate: float = 0.1
    max_train_records: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        checks = [
            ("idle_timeout_s", self.idle_timeout_s, self.idle_timeout_s > 0, "> 0"),
            ("active_timeout_s", self.active_timeout_s, self.active_timeout_s > 0, "> 0"),
            ("max_iter", self.max_iter, self.max_iter >= 1, "at least 1"),
            ("learning_rate", self.learning_rate, 0 < self.learning_rate <= 1, "in (0, 1]"),
            ("max_train_records", self.max_train_records,
             self.max_train_records is None or self.max_train_records >= 1, "None or >= 1"),
        ]  # fmt: skip
        for name, value, ok, allowed in checks:
            if not ok:
                raise ConfigError(f"flow.{name}={value!r}: must be {allowed}")


@dataclass(frozen=True)
class PacketFacts:
    """What the baseline needs of every dataset row, read back from the captures.

    All arrays have one entry per dataset row (n,): ``wirelen`` bytes, ``direction`` 0/1,
    ``tcp_flags`` byte, ``proto`` IP protocol, ``dport`` destination port, ``window`` TCP
    window (-1 when not TCP).
    """

    wirelen: NDArray[np.int64]
    direction: NDArray[np.uint8]
    tcp_flags: NDArray[np.uint8]
    proto: NDArray[np.uint8]
    dport: NDArray[np.uint16]
    window: NDArray[np.int32]


def packet_facts(dataset: Dataset, chunk_packets: int = 65536) -> PacketFacts:
    """Read the dataset's source captures again and align their packets to its rows.

    Rows are matched by (capture index, record index). Raises ``ArtifactError`` when a source
    capture is missing or no longer holds every row's packet (changed since the build).
    """
    capture = np.asarray(dataset.column("capture"))
    pkt_index = np.asarray(dataset.column("pkt_index"))
    n = capture.shape[0]
    wirelen = np.zeros(n, dtype=np.int64)
    direction = np.zeros(n, dtype=np.uint8)
    flags = np.zeros(n, dtype=np.uint8)
    proto = np.zeros(n, dtype=np.uint8)
    dport = np.zeros(n, dtype=np.uint16)
    window = np.full(n, -1, dtype=np.int32)
    found = np.zeros(n, dtype=bool)
    for cid, source in enumerate(dataset.card.get("sources", [])):
        rows = np.flatnonzero(capture == cid)
        if rows.size == 0:
            continue
        path = Path(source["path"])
        if not path.is_file():
            raise ArtifactError(
                f"{dataset.path}: source capture {path} not found; the flow baseline reads the "
                "captures the dataset was built from (run where it was built)"
            )
        wanted = pkt_index[rows]
        with open_capture(path, CaptureConfig(chunk_packets=chunk_packets), capture_id=cid) as rd:
            for batch in rd:
                pos = np.searchsorted(wanted, batch.pkt_index)
                hit = pos < wanted.size
                hit[hit] = wanted[pos[hit]] == batch.pkt_index[hit]
                if not hit.any():
                    continue
                dst = rows[pos[hit]]
                b = batch[hit]
                wirelen[dst] = b.wirelen
                direction[dst] = b.direction
                flags[dst] = b.tcp_flags
                proto[dst] = b.proto
                dport[dst] = b.dport
                tcp = (b.proto == 6) & (b.l4_off >= 0) & (b.ip_version > 0)
                off = np.minimum(b.l4_off.astype(np.int64) + 14, b.header.shape[1] - 2)
                r = np.arange(len(b))
                win = (b.header[r, off].astype(np.int32) << 8) | b.header[r, off + 1]
                window[dst] = np.where(tcp & (off == b.l4_off.astype(np.int64) + 14), win, -1)
                found[dst] = True
    if not found.all():
        raise ArtifactError(
            f"{dataset.path}: {int((~found).sum())} dataset rows have no packet in the source "
            "captures (captures changed since the build?)"
        )
    return PacketFacts(wirelen, direction, flags, proto, dport, window)


@dataclass
class FlowRecords:
    """Flow records of a dataset, one row per record (m,); a dataset flow may have several.

    ``flow`` dataset flow key; ``features`` (m, len(FEATURES)) float64; ``malicious`` True when
    any packet of the record is; ``start_ns``/``end_ns`` first and last packet times;
    ``expire_ns`` when an exporter emits the record: the last packet when FIN or RST was seen,
    else the earlier of last packet + idle timeout and first packet + active timeout. A
    decision at ``end_ns`` is a lower bound on the baseline's delay, at ``expire_ns`` what a
    flow exporter gives (times past the capture's end included); ``split`` split code of the record's dataset flow (255 when
    the whole flow was removed); ``capture`` source index; ``packets`` packets in the record.
    """

    flow: NDArray[np.uint64]
    features: NDArray[np.float64]
    malicious: NDArray[np.bool_]
    start_ns: NDArray[np.int64]
    end_ns: NDArray[np.int64]
    expire_ns: NDArray[np.int64]
    split: NDArray[np.uint8]
    capture: NDArray[np.uint32]
    packets: NDArray[np.int64]

    def __len__(self) -> int:
        return int(self.flow.shape[0])

    def select(self, mask: NDArray[np.bool_]) -> FlowRecords:
        """The records where ``mask`` is True."""
        return FlowRecords(**{k: v[mask] for k, v in self.__dict__.items()})


def flow_records(
    dataset: Dataset, config: FlowConfig | None = None, facts: PacketFacts | None = None
) -> FlowRecords:
    """Cut every dataset flow into records by the timeouts and compute ``FEATURES`` of each.

    Uses every row of the dataset (also rows removed from evaluation as duplicates: a flow
    exporter sees every packet). ``facts`` may be passed to avoid reading the captures again.
    """
    config = config or FlowConfig()
    facts = facts or packet_facts(dataset)
    flow = np.asarray(dataset.column("flow"))
    ts = np.asarray(dataset.column("ts_ns"))
    split_rows = np.asarray(dataset.column("split"))
    mal_rows = np.asarray(dataset.column("label")) > 0
    capture = np.asarray(dataset.column("capture"))
    n = flow.shape[0]
    if n == 0:
        raise ArtifactError(f"{dataset.path}: the dataset has no rows")

    # Flow split codes: the lowest split code of each flow's rows.
    keys, inverse = np.unique(flow, return_inverse=True)
    flow_code = np.full(keys.shape[0], REMOVED, dtype=np.int64)
    np.minimum.at(flow_code, inverse, split_rows.astype(np.int64))

    order = np.lexsort((ts, flow))  # by flow, then time (stable: capture order on ties)
    f, t = flow[order], ts[order]
    seg_start = _segment_starts(f, t, config)
    starts = np.flatnonzero(seg_start)
    m = starts.size
    seg = np.cumsum(seg_start) - 1  # record index of every sorted packet

    wl = facts.wirelen[order].astype(np.float64)
    first_dir = facts.direction[order][starts]
    fwd = facts.direction[order] == first_dir[seg]
    bwd = ~fwd
    count = np.diff(np.r_[starts, n]).astype(np.float64)
    t0, t1 = t[starts], np.maximum.reduceat(t, starts)
    duration = np.maximum(t1 - t0, 0) / NS

    def total(x: NDArray[Any]) -> NDArray[np.float64]:
        return np.add.reduceat(np.asarray(x, dtype=np.float64), starts)

    def masked_max(x: NDArray[np.float64], mask: NDArray[np.bool_]) -> NDArray[np.float64]:
        out = np.maximum.reduceat(np.where(mask, x, -np.inf), starts)
        return np.where(np.isfinite(out), out, np.nan)

    def masked_min(x: NDArray[np.float64], mask: NDArray[np.bool_]) -> NDArray[np.float64]:
        out = np.minimum.reduceat(np.where(mask, x, np.inf), starts)
        return np.where(np.isfinite(out), out, np.nan)

    def ratio(a: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.float64]:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(b > 0, a / np.where(b > 0, b, 1), np.nan)

    n_fwd, n_bwd = total(fwd), total(bwd)
    b_fwd, b_bwd = total(wl * fwd), total(wl * bwd)
    len_mean = total(wl) / count
    len_var = np.maximum(total(wl * wl) / count - len_mean**2, 0.0)

    # Inter-arrival gaps inside a record (the first packet of a record has none).
    gap = np.r_[0.0, np.diff(t).astype(np.float64) / NS]
    has_gap = ~seg_start
    gap = np.where(has_gap, np.maximum(gap, 0.0), 0.0)
    n_gap = count - 1
    iat_mean = ratio(total(gap), n_gap)
    iat_var = np.maximum(ratio(total(gap * gap), n_gap) - iat_mean**2, 0.0)
    tf = t.astype(np.float64) / NS
    fwd_span = masked_max(tf, fwd) - masked_min(tf, fwd)
    bwd_span = masked_max(tf, bwd) - masked_min(tf, bwd)

    win = facts.window[order].astype(np.float64)
    first_fwd_win = _first_where(win, fwd & (win >= 0), starts, n)
    first_bwd_win = _first_where(win, bwd & (win >= 0), starts, n)
    flags = facts.tcp_flags[order]
    closed = total((flags & 0x05) != 0) > 0  # FIN or RST seen
    idle_ns, active_ns = int(config.idle_timeout_s * NS), int(config.active_timeout_s * NS)
    expire = np.where(closed, t1, np.minimum(t1 + idle_ns, t0 + active_ns))
    columns = [
        facts.proto[order][starts].astype(np.float64),
        facts.dport[order][starts].astype(np.float64),
        duration,
        n_fwd, n_bwd, b_fwd, b_bwd,
        np.minimum.reduceat(wl, starts), np.maximum.reduceat(wl, starts), len_mean,
        np.sqrt(len_var),
        ratio(b_fwd, n_fwd), masked_max(wl, fwd), ratio(b_bwd, n_bwd), masked_max(wl, bwd),
        iat_mean, np.sqrt(iat_var), masked_min(gap, has_gap), masked_max(gap, has_gap),
        ratio(fwd_span, n_fwd - 1), ratio(bwd_span, n_bwd - 1),
        ratio(b_fwd + b_bwd, duration), ratio(count, duration),
        ratio(n_bwd, n_fwd),
        first_fwd_win, first_bwd_win,
        *(total((flags & bit) != 0) for bit in TCP_FLAGS.values()),
    ]  # fmt: skip
    features = np.stack(columns, axis=1)
    assert features.shape == (m, len(FEATURES))
    return FlowRecords(
        flow=f[starts],
        features=features,
        malicious=np.logical_or.reduceat(mal_rows[order], starts),
        start_ns=t0,
        end_ns=t1,
        expire_ns=expire.astype(np.int64),
        split=flow_code[inverse[order][starts]].astype(np.uint8),
        capture=capture[order][starts].astype(np.uint32),
        packets=count.astype(np.int64),
    )


def _segment_starts(
    flow: NDArray[np.uint64], ts: NDArray[np.int64], config: FlowConfig
) -> NDArray[np.bool_]:
    """True at the first packet of every record: a new flow, an idle gap, an active timeout."""
    n = flow.shape[0]
    new_flow = np.r_[True, flow[1:] != flow[:-1]]
    idle = np.r_[False, np.diff(ts) > int(config.idle_timeout_s * NS)]
    start = new_flow | idle
    active = int(config.active_timeout_s * NS)
    # Active timeouts: only records longer than the timeout need a sequential pass.
    firsts = np.flatnonzero(start)
    lasts = np.r_[firsts[1:], n] - 1
    for a, b in zip(firsts.tolist(), lasts.tolist(), strict=True):
        if ts[b] - ts[a] <= active:
            continue
        began = ts[a]
        for i in range(a + 1, b + 1):
            if ts[i] - began > active:
                start[i] = True
                began = ts[i]
    return start


def _first_where(
    x: NDArray[np.float64], mask: NDArray[np.bool_], starts: NDArray[np.intp], n: int
) -> NDArray[np.float64]:
    """Per record, ``x`` at the first packet where ``mask`` holds (NaN when none)."""
    idx = np.where(mask, np.arange(n), n)
    first = np.minimum.reduceat(idx, starts)
    return np.where(first < n, x[np.minimum(first, n - 1)], np.nan)


def flow_verdicts(
    records: FlowRecords,
    scores: NDArray[np.floating[Any]],
    threshold: float,
    decide_ns: NDArray[np.int64] | None = None,
) -> tuple[NDArray[np.uint64], NDArray[np.float64], NDArray[np.int64]]:
    """Per dataset flow: (keys, best record score, time of the first alert in ns or -1).

    A flow's alert time is the earliest ``decide_ns`` (default ``records.end_ns``) of its
    records scoring ``>= threshold``.
    """
    decide = records.end_ns if decide_ns is None else decide_ns
    keys, inverse = np.unique(records.flow, return_inverse=True)
    best = np.full(keys.shape[0], -np.inf)
    np.maximum.at(best, inverse, np.asarray(scores, dtype=np.float64))
    alert = np.full(keys.shape[0], np.iinfo(np.int64).max, dtype=np.int64)
    hit = np.asarray(scores) >= threshold
    np.minimum.at(alert, inverse[hit], decide[hit])
    alert[alert == np.iinfo(np.int64).max] = -1
    return keys, best, alert


class FlowBaseline:
    """Gradient-boosted trees over flow records; ``fit`` returns self.

    After ``fit``: ``model_`` (the sklearn classifier), ``threshold_`` (chosen on the
    validation flows: best F1 of "any record scores >= threshold", as for the packet model),
    ``train_records_`` (records used for training).

    >>> baseline = FlowBaseline(FlowConfig(max_iter=50))  # doctest: +SKIP
    >>> baseline.fit(flow_records(Dataset.open("ds"))).threshold_  # doctest: +SKIP
    """

    def __init__(self, config: FlowConfig | None = None) -> None:
        self.config = config or FlowConfig()

    def fit(self, records: FlowRecords) -> FlowBaseline:
        """Train on records of train-split flows; choose the threshold on validation flows."""
        from sklearn.ensemble import HistGradientBoostingClassifier

        cfg = self.config
        train = records.select(records.split == SPLIT_CODES["train"])
        if len(train) == 0:
            raise ConfigError("flow baseline: no flow record in the train split")
        if cfg.max_train_records is not None and len(train) > cfg.max_train_records:
            rng = np.random.default_rng(cfg.seed)
            pick = np.zeros(len(train), dtype=bool)
            pick[rng.choice(len(train), cfg.max_train_records, replace=False)] = True
            train = train.select(pick)
        y = train.malicious.astype(np.int64)
        if y.min() == y.max():
            raise ConfigError(
                "flow baseline: the train split has one class only; need benign and malicious flows"
            )
        self.model_ = HistGradientBoostingClassifier(
            max_iter=cfg.max_iter, learning_rate=cfg.learning_rate, random_state=cfg.seed
        ).fit(_model_input(train.features), y)
        self.train_records_ = len(train)
        val = records.select(records.split == SPLIT_CODES["validation"])
        if len(val):
            keys, best, _ = flow_verdicts(val, self.score(val), 1.0)
            truth = _flow_truth(val, keys)
            self.threshold_ = choose_threshold(best, truth)
        else:
            log.warning("flow baseline: empty validation split; threshold 0.5")
            self.threshold_ = 0.5
        return self

    def score(self, records: FlowRecords) -> NDArray[np.float64]:
        """``P(malicious)`` of every record (m,); higher means more malicious."""
        if len(records) == 0:
            return np.zeros(0)
        proba = self.model_.predict_proba(_model_input(records.features))
        return np.asarray(proba[:, 1], dtype=np.float64)


def _model_input(features: NDArray[np.float64]) -> NDArray[np.float64]:
    """Features as the classifier reads them: NaN (undefined) -> -1, every value is >= 0."""
    return np.nan_to_num(features, nan=-1.0, posinf=-1.0, neginf=-1.0)


def _flow_truth(records: FlowRecords, keys: NDArray[np.uint64]) -> NDArray[np.bool_]:
    """Per flow key (sorted, as from ``np.unique``): True when any of its records is malicious."""
    truth = np.zeros(keys.shape[0], dtype=bool)
    np.logical_or.at(truth, np.searchsorted(keys, records.flow), records.malicious)
    return truth
