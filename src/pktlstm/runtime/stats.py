"""Runtime counters: log-binned latency histograms (p50/p99 in O(1) memory)."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

# Bins: 100 per decade (each ~2.3% wide) from 1 microsecond to 1000 seconds, in ns.
_BINS_PER_DECADE = 100
_LO_EXP, _HI_EXP = 3, 12


class LatencyHistogram:
    """Durations in nanoseconds, kept as counts in log-spaced bins.

    Quantiles are exact to within one bin (2.3%); memory is constant however many values
    are added. Values below 1 us count in the first bin, above 1000 s in the last.

    >>> h = LatencyHistogram()
    >>> h.add(np.array([1_000_000] * 99 + [50_000_000]))
    >>> round(h.quantile(0.5) / 1e6, 1), round(h.quantile(1.0) / 1e6)
    (1.0, 50)
    """

    def __init__(self) -> None:
        self.counts = np.zeros((_HI_EXP - _LO_EXP) * _BINS_PER_DECADE, np.int64)

    def __len__(self) -> int:
        return int(self.counts.sum())

    def add(self, ns: NDArray[Any]) -> None:
        """Add durations ``(n,)`` in ns (negative values count as zero)."""
        if len(ns) == 0:
            return
        x = np.maximum(np.asarray(ns, np.float64), 1.0)
        idx = np.floor((np.log10(x) - _LO_EXP) * _BINS_PER_DECADE).astype(np.int64)
        np.clip(idx, 0, len(self.counts) - 1, out=idx)
        self.counts += np.bincount(idx, minlength=len(self.counts))

    def quantile(self, q: float) -> float:
        """The ``q`` quantile in ns (geometric middle of its bin); NaN when empty."""
        total = int(self.counts.sum())
        if total == 0:
            return float("nan")
        rank = min(max(q, 0.0), 1.0) * (total - 1)
        b = int(np.searchsorted(np.cumsum(self.counts), rank, side="right"))
        return float(10 ** (_LO_EXP + (b + 0.5) / _BINS_PER_DECADE))

    def summary_ms(self) -> dict[str, float | None]:
        """``{"p50": ms, "p99": ms}`` (None when empty), rounded to microseconds."""
        if not len(self):
            return {"p50": None, "p99": None}
        return {k: round(self.quantile(q) / 1e6, 3) for k, q in (("p50", 0.5), ("p99", 0.99))}

    def merge(self, other: LatencyHistogram) -> None:
        self.counts += other.counts

    def reset(self) -> None:
        self.counts[:] = 0
