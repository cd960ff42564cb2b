"""Capture input: pcap, pcapng and live interfaces into columnar PacketBatch chunks."""

from pktlstm.io.batch import HEADER_BYTES, L3_OFFSET, DecodeStats, PacketBatch
from pktlstm.io.decode import FRAME_PAD, SUPPORTED_LINKTYPES, decode_frames
from pktlstm.io.reader import CaptureConfig, CaptureInfo, CaptureReader, open_capture, read_capture

__all__ = [
    "FRAME_PAD",
    "HEADER_BYTES",
    "L3_OFFSET",
    "SUPPORTED_LINKTYPES",
    "CaptureConfig",
    "CaptureInfo",
    "CaptureReader",
    "DecodeStats",
    "PacketBatch",
    "decode_frames",
    "open_capture",
    "read_capture",
]
