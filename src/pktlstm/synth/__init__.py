"""Synthetic labelled traffic: benign sessions and Mirai-style attacks as a pcap plus flow labels."""

from pktlstm.synth.config import CLASSES, DEFAULT_MIX, SynthConfig, parse_mix
from pktlstm.synth.synthesizer import LABEL_HEADER, SynthResult, generate

__all__ = [
    "CLASSES",
    "DEFAULT_MIX",
    "LABEL_HEADER",
    "SynthConfig",
    "SynthResult",
    "generate",
    "parse_mix",
]
