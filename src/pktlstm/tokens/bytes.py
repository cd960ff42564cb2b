"""Byte words: the first 54 bytes of the normalised header, one word per byte (vocabulary 256)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from pktlstm.io.batch import PacketBatch
from pktlstm.tokens.layout import byte_span_table, byte_words_kernel

# The paper keeps n = 54 bytes: 14 Ethernet + 20 IPv4 + 20 TCP (Algorithm 1).
N_BYTE_WORDS = 54


def byte_words(batch: PacketBatch, masked: list[str] | None = None) -> NDArray[np.uint16]:
    """Byte words (n, 54) uint16: the header window's first 54 bytes, masked fields zeroed."""
    spans, counts = byte_span_table(masked or [])
    out = np.empty((len(batch), N_BYTE_WORDS), dtype=np.uint16)
    byte_words_kernel(batch.header, batch.ip_version, batch.proto, batch.l4_off, spans, counts, out)
    return out
