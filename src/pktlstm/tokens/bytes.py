"""Byte words: the first 54 bytes of the normalised header, one word per byte (vocabulary 256)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

# The paper keeps n = 54 bytes: 14 Ethernet + 20 IPv4 + 20 TCP (Algorithm 1).
N_BYTE_WORDS = 54


def byte_words(header: NDArray[np.uint8]) -> NDArray[np.uint16]:
    """Byte words (n, 54) uint16 from a normalised header window (n, >= 54), zero-padded."""
    return header[:, :N_BYTE_WORDS].astype(np.uint16)
