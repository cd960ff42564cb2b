"""Packets -> words: the paper's 33 field words or 54 byte words, with identifier masking."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pktlstm.errors import ConfigError
from pktlstm.io.batch import PacketBatch
from pktlstm.tokens.bytes import N_BYTE_WORDS, byte_words
from pktlstm.tokens.fields import N_FIELD_WORDS, field_words, word_names
from pktlstm.tokens.masking import FIELDS, POLICIES, masked_fields
from pktlstm.tokens.vocab import PAD, UNK, Vocabulary

__all__ = [
    "FIELDS",
    "PAD",
    "POLICIES",
    "UNK",
    "TokenizerConfig",
    "Vocabulary",
    "describe_words",
    "tokenize",
    "word_names",
]

WORD_TYPES = ("fields", "bytes")


@dataclass(frozen=True)
class TokenizerConfig:
    """How packets become words.

    words: ``fields`` (33 header-field words, vocabulary < 65,536) or ``bytes`` (54 byte words,
        vocabulary 256): the two readings of "word" in Hwang et al. (2019).
    policy: ``none`` (exactly the paper), ``ids`` (default: MACs, IP addresses, IP id / flow
        label and checksums zeroed) or ``strict`` (``ids`` plus TTL / hop limit and ports).
    mask_add, mask_remove: per-field overrides of the policy (names from ``FIELDS``).
    """

    words: str = "fields"
    policy: str = "ids"
    mask_add: tuple[str, ...] = ()
    mask_remove: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.words not in WORD_TYPES:
            raise ConfigError(f"words={self.words!r}: choose one of {', '.join(WORD_TYPES)}")
        if self.policy not in POLICIES:
            raise ConfigError(f"policy={self.policy!r}: choose one of {', '.join(POLICIES)}")
        for attr in ("mask_add", "mask_remove"):
            for name in getattr(self, attr):
                if name not in FIELDS:
                    raise ConfigError(
                        f"{attr}: unknown field {name!r}; maskable fields: {', '.join(FIELDS)}"
                    )
        object.__setattr__(self, "mask_add", tuple(self.mask_add))
        object.__setattr__(self, "mask_remove", tuple(self.mask_remove))

    @property
    def n_words(self) -> int:
        """Words per packet: 33 field words or 54 byte words."""
        return N_FIELD_WORDS if self.words == "fields" else N_BYTE_WORDS

    @property
    def masked(self) -> list[str]:
        """Names of the fields this configuration zeroes."""
        return masked_fields(self.policy, self.mask_add, self.mask_remove)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["mask_add"] = list(self.mask_add)
        data["mask_remove"] = list(self.mask_remove)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TokenizerConfig:
        return cls(
            words=data.get("words", "fields"),
            policy=data.get("policy", "ids"),
            mask_add=tuple(data.get("mask_add", ())),
            mask_remove=tuple(data.get("mask_remove", ())),
        )


def tokenize(batch: PacketBatch, config: TokenizerConfig | None = None) -> NDArray[np.uint16]:
    """Words of every packet: (n, 33) or (n, 54) uint16, masked as ``config`` says.

    The same function serves training and detection, so a model sees identical words in both.
    """
    config = config or TokenizerConfig()
    if config.words == "bytes":
        return byte_words(batch, config.masked)
    return field_words(batch, config.masked)


def describe_words(
    batch: PacketBatch, config: TokenizerConfig
) -> list[tuple[str, list[tuple[int, str, int]]]]:
    """Per packet: a one-line title and its words as (index, field name, value), for humans."""
    words = tokenize(batch, config)
    described = []
    for i in range(len(batch)):
        version, proto = int(batch.ip_version[i]), int(batch.proto[i])
        if config.words == "fields":
            names = word_names(version, proto, bool(batch.l4_off[i] >= 0))
        else:
            names = [f"byte{j}" for j in range(words.shape[1])]
        title = (
            f"IPv{version} proto {proto}" if version else f"ethertype 0x{batch.ethertype[i]:04x}"
        )
        rows = [(j, n, int(w)) for j, (n, w) in enumerate(zip(names, words[i], strict=True))]
        described.append((title, rows))
    return described
