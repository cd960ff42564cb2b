"""Flow registry and packet recorder: unique 5-tuples, per-class packet budgets, label rows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pktlstm.synth.frames import DTYPES, MAX_OPTS, Packets


@dataclass(frozen=True)
class Flow:
    """One label row: the 5-tuple as seen on the flow's first packet, and its class."""

    src: int
    sport: int
    dst: int
    dport: int
    proto: int
    label: str


class Recorder:
    """Collects packets in blocks, flow by flow, under a packet budget per class.

    A 5-tuple (in either direction) is given to one flow only, for the whole capture,
    so that matching label rows to packets by 5-tuple and time is unambiguous.
    """

    def __init__(self) -> None:
        self.flows: list[Flow] = []
        self._keys: set[tuple[int, int, int, int, int]] = set()
        self._blocks: list[dict[str, Any]] = []
        self.label = ""
        self.remaining = 0

    def begin(self, label: str, budget: int) -> None:
        """Start recording packets of class ``label``; at most ``budget`` more are kept."""
        self.label = label
        self.remaining = budget

    def new_flow(self, src: int, sport: int, dst: int, dport: int, proto: int) -> int | None:
        """Register a flow of the current class; None when the 5-tuple is already taken."""
        a, b = (src, sport), (dst, dport)
        key = (*min(a, b), *max(a, b), proto)
        if key in self._keys:
            return None
        self._keys.add(key)
        self.flows.append(Flow(src, sport, dst, dport, proto, self.label))
        return len(self.flows) - 1

    def add(
        self,
        flow: int | NDArray[np.int64],
        ts: NDArray[np.int64],
        payload: list[bytes] | tuple[NDArray[np.uint8], NDArray[np.int64]],
        opts: NDArray[np.uint8] | None = None,
        **cols: Any,
    ) -> int:
        """Add ``len(ts)`` packets (the rest of the class budget at most); returns how many.

        ``cols`` are Packets columns as arrays of length ``len(ts)`` or scalars; omitted
        columns are zero. ``payload`` is a list of bytes or (flat bytes, lengths).
        ``opts`` is ``(k, 40)`` TCP option bytes (``opt_len`` gives the used length).
        """
        k = min(int(ts.shape[0]), self.remaining)
        if k <= 0:
            return 0
        if isinstance(payload, list):
            lens = np.fromiter((len(x) for x in payload[:k]), dtype=np.int64, count=k)
            flat = np.frombuffer(b"".join(payload[:k]), dtype=np.uint8)
        else:
            flat, lens = payload
            lens = lens[:k]
            flat = flat[: int(lens.sum())]
        block: dict[str, Any] = {"n": k, "ts": ts[:k], "flow": _cut(flow, k), "payload": flat}
        block["pay_len"] = lens
        block["opts"] = None if opts is None else opts[:k]
        for name, value in cols.items():
            block[name] = _cut(value, k)
        self._blocks.append(block)
        self.remaining -= k
        return k

    def packets(self) -> tuple[Packets, NDArray[np.int64]]:
        """All recorded packets (in recording order) and the flow index of each."""
        sizes = [b["n"] for b in self._blocks]
        n = int(sum(sizes))
        cols: dict[str, Any] = {}
        for name, dtype in DTYPES.items():
            if name in ("payload", "opts"):
                continue
            parts = [np.broadcast_to(np.asarray(b.get(name, 0), dtype=dtype), (b["n"],)) for b in self._blocks]
            cols[name] = np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)
        opts = np.zeros((n, MAX_OPTS), dtype=np.uint8)
        pos = 0
        for b in self._blocks:
            if b["opts"] is not None:
                opts[pos : pos + b["n"], : b["opts"].shape[1]] = b["opts"]
            pos += b["n"]
        parts = [b["payload"] for b in self._blocks]
        payload = np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint8)
        fparts = [np.broadcast_to(np.asarray(b["flow"], dtype=np.int64), (b["n"],)) for b in self._blocks]
        flow = np.concatenate(fparts) if fparts else np.zeros(0, dtype=np.int64)
        return Packets(**cols, opts=opts, payload=payload), flow


def _cut(value: Any, k: int) -> Any:
    if isinstance(value, np.ndarray) and value.ndim > 0:
        return value[:k]
    if isinstance(value, list):
        return np.asarray(value[:k])
    return value
