"""Capture files end to end: pcap / pcapng / gzip variants, chunking, damage, errors, fuzzing."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pktlstm.errors import CaptureError, ConfigError
from pktlstm.io import CaptureConfig, PacketBatch, open_capture, read_capture
from tests.io import builders as b

FRAMES = [
    b.ether(b.ipv4(6, b.tcp(1000 + i, 80)), 0x0800)
    if i % 3
    else b.ether(b.ipv6(17, b.udp()), 0x86DD)
    for i in range(10)
]


def write(tmp_path: Path, data: bytes, name: str = "x.pcap") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def check_frames(batch: PacketBatch, frames: list[bytes] = FRAMES) -> None:
    assert len(batch) == len(frames)
    for i, frame in enumerate(frames):
        assert bytes(batch.header[i, : len(frame)]) == frame
    assert list(batch.pkt_index) == list(range(len(frames)))


@pytest.mark.parametrize("big", [False, True])
@pytest.mark.parametrize("nano", [False, True])
@pytest.mark.parametrize("compressed", [False, True])
def test_classic_pcap_variants(tmp_path: Path, big: bool, nano: bool, compressed: bool) -> None:
    data = b.pcap(FRAMES, big=big, nano=nano)
    path = write(tmp_path, b.gz(data) if compressed else data, "capture.bin")
    with open_capture(path, capture_id=3) as reader:
        batch = PacketBatch.concat(list(reader))
        assert reader.info.format == "pcap" and reader.info.compressed == compressed
        assert reader.info.linktypes == [1] and reader.info.nanosecond == nano
    check_frames(batch)
    scale = 1 if nano else 1000
    expected_ts = [(1_600_000_000 + i) * 10**9 + i * 1000 * scale for i in range(10)]
    assert batch.ts_ns.tolist() == expected_ts
    assert set(batch.capture_id.tolist()) == {3}
    assert reader.stats.packets == 10 and not reader.stats.skipped
    assert reader.stats.bytes == sum(len(f) for f in FRAMES)


@pytest.mark.parametrize("big", [False, True])
@pytest.mark.parametrize("compressed", [False, True])
def test_pcapng_interfaces_options_and_unknown_blocks(
    tmp_path: Path, big: bool, compressed: bool
) -> None:
    raw = b.ipv4(17, b.udp(1, 2))
    data = (
        b.shb(big)
        + b.idb(1, big)  # microseconds by default
        + b.unknown_block(big)
        + b.idb(101, big, tsresol=9)  # nanoseconds
        + b.idb(113, big, tsresol=0x80 | 10)  # 2**-10 s
        + b.epb(FRAMES[0], 0, ts=1_000_000, big=big)
        + b.epb(raw, 1, ts=5_000_000_123, big=big)
        + b.epb(b.sll(raw, 0x0800), 2, ts=3 * 1024 + 512, big=big)
        + b.spb(FRAMES[1], big=big)
    )
    path = write(tmp_path, b.gz(data) if compressed else data, "capture.pcapng")
    with open_capture(path) as reader:
        batch = PacketBatch.concat(list(reader))
        info = reader.info
    assert info.format == "pcapng" and info.linktypes == [1, 101, 113] and info.interfaces == 3
    assert batch.linktype.tolist() == [1, 101, 113, 1]
    assert batch.ts_ns.tolist() == [10**9, 5_000_000_123, 3_500_000_000, 0]
    assert batch.sport.tolist() == [5353, 1, 1, 1001]
    assert not reader.stats.skipped
    np.testing.assert_array_equal(batch.header[1], batch.header[2])


def test_pcapng_sections_with_different_byte_orders_reset_interfaces(tmp_path: Path) -> None:
    data = (
        b.shb(False)
        + b.idb(1, False)
        + b.epb(FRAMES[0], 0, False)
        + b.shb(True)
        + b.idb(101, True)
        + b.epb(b.ipv4(6, b.tcp()), 0, big=True)
        + b.epb(FRAMES[0], 1, big=True)  # interface 1 does not exist in this section
    )
    batch, stats = read_capture(write(tmp_path, data, "s.pcapng"))
    assert batch.linktype.tolist() == [1, 101]
    assert stats.skipped == {"decoder.bad_header": 1}
    assert batch.pkt_index.tolist() == [0, 1]


def test_chunks_are_bounded_and_concatenate_to_the_whole(tmp_path: Path) -> None:
    frames = [
        b.ether(b.ipv4(17, b.udp(i % 65536, 53, bytes(i % 300))), 0x0800) for i in range(3000)
    ]
    path = write(tmp_path, b.pcap(frames))  # ~1 MB: many refills of a 64 KiB buffer
    config = CaptureConfig(chunk_packets=256, read_bytes=1 << 16)
    with open_capture(path, config) as reader:
        batches = list(reader)
    assert [len(x) for x in batches[:-1]] == [256] * (len(batches) - 1)
    whole, _ = read_capture(path)
    got = PacketBatch.concat(batches)
    for name in vars(whole):
        np.testing.assert_array_equal(getattr(got, name), getattr(whole, name), err_msg=name)
    assert got.sport.tolist() == [i % 65536 for i in range(3000)]


def test_big_pcapng_blocks_grow_the_buffer(tmp_path: Path) -> None:
    jumbo = b.ether(b.ipv4(17, b.udp()), 0x0800) + bytes(200_000)
    data = b.shb() + b.idb(1) + b.epb(FRAMES[0]) + b.epb(jumbo) + b.epb(FRAMES[2])
    path = write(tmp_path, data, "j.pcapng")
    batch, stats = read_capture(path, CaptureConfig(read_bytes=1 << 16))
    assert (
        batch.caplen.tolist() == [len(FRAMES[0]), len(jumbo), len(FRAMES[2])] and not stats.skipped
    )


@pytest.mark.parametrize("cut", [1, 10, 16, 30])
def test_truncated_last_record_yields_the_rest(tmp_path: Path, cut: int) -> None:
    data = b.pcap(FRAMES)
    batch, stats = read_capture(write(tmp_path, data[:-cut]))
    check_frames(batch, FRAMES[:9])
    assert stats.skipped == {"decoder.truncated": 1}


def test_truncated_gzip_stream_yields_the_rest(tmp_path: Path) -> None:
    data = b.gz(b.pcap(FRAMES * 50))
    batch, stats = read_capture(write(tmp_path, data[: len(data) // 2]))
    assert 0 < len(batch) < 500 and stats.skipped["capture.read_error"] == 1
    assert batch.pkt_index.tolist() == list(range(len(batch)))


def test_impossible_caplen_is_skipped_and_reading_resynchronises(tmp_path: Path) -> None:
    data = bytearray(b.pcap(FRAMES))
    # record 3's header: caplen field of 1 GB
    pos = 24 + sum(16 + len(f) for f in FRAMES[:3])
    struct.pack_into("<I", data, pos + 8, 1 << 30)
    batch, stats = read_capture(write(tmp_path, bytes(data)))
    assert stats.skipped == {"decoder.invalid_length": 1}
    assert batch.pkt_index.tolist() == [0, 1, 2, 4, 5, 6, 7, 8, 9]


def test_corrupt_pcapng_block_is_counted_and_skipped(tmp_path: Path) -> None:
    blocks = [b.epb(f) for f in FRAMES]
    broken = bytearray(blocks[4])
    struct.pack_into("<I", broken, 4, 0x7FFFFFF0)  # absurd block length
    data = b.shb() + b.idb(1) + b"".join(blocks[:4]) + bytes(broken) + b"".join(blocks[5:])
    batch, stats = read_capture(write(tmp_path, data, "c.pcapng"))
    assert stats.skipped == {"decoder.bad_block": 1}
    check_frames(batch, FRAMES[:4] + FRAMES[5:])


def test_pcapng_trailing_length_mismatch_is_a_corrupt_block(tmp_path: Path) -> None:
    broken = bytearray(b.epb(FRAMES[1]))
    broken[-4:] = b"\x00\x00\x00\x00"
    data = b.shb() + b.idb(1) + b.epb(FRAMES[0]) + bytes(broken) + b.epb(FRAMES[2])
    batch, stats = read_capture(write(tmp_path, data, "c.pcapng"))
    assert stats.skipped == {"decoder.bad_block": 1} and len(batch) == 2


def test_unsupported_link_type_is_counted(tmp_path: Path) -> None:
    batch, stats = read_capture(write(tmp_path, b.pcap(FRAMES, linktype=9)))
    assert len(batch) == 0 and stats.skipped == {"decoder.unsupported_linktype": 10}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"<!DOCTYPE html><html><body>hello</body></html>", "looks like text"),
        (b"\x7fELF\x02\x01\x01\x00" + bytes(100), "7f 45 4c 46"),
        (b"\xd4\xc3\xb2\xa1\x02\x00", "cut short"),
        (b.gz(b"just some text, compressed"), "gzip"),
        (b"\x1f\x8b\x08\x00garbage", "gzip"),
    ],
    ids=["empty", "text", "elf", "short-header", "gzip-text", "bad-gzip"],
)
def test_a_file_that_is_not_a_capture_raises_one_capture_error(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = write(tmp_path, content, "notes.txt")
    with pytest.raises(CaptureError, match=message) as info:
        open_capture(path)
    assert "notes.txt" in str(info.value)


def test_missing_file_and_directory_raise_capture_error(tmp_path: Path) -> None:
    with pytest.raises(CaptureError, match="nope.pcap"):
        read_capture(tmp_path / "nope.pcap")
    with pytest.raises(CaptureError, match="directory"):
        read_capture(tmp_path)


@pytest.mark.parametrize(
    "kwargs",
    [{"chunk_packets": 0}, {"read_bytes": 10}, {"max_caplen": -1}, {"chunk_packets": 1.5}],
)
def test_config_is_validated(kwargs: dict) -> None:
    with pytest.raises(ConfigError, match=next(iter(kwargs))):
        CaptureConfig(**kwargs)


def _read_bytes(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "fuzz.bin"
    path.write_bytes(data)
    try:
        reader = open_capture(path, CaptureConfig(chunk_packets=7))
    except CaptureError:
        return
    with reader:
        for batch in reader:
            assert batch.header.shape == (len(batch), 128)
        assert reader.stats.packets >= 0


VALID_PCAP = b.pcap(FRAMES[:5] + [b.sll(b.ipv4(6, b.tcp()), 0x0800)])
VALID_PCAPNG = b.shb() + b.idb(1) + b.idb(0) + b"".join(b.epb(f) for f in FRAMES[:4])


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    base=st.sampled_from([VALID_PCAP, VALID_PCAPNG]),
    edits=st.lists(st.tuples(st.integers(0, 2000), st.integers(0, 255)), max_size=12),
    cut=st.integers(0, 2000),
)
def test_mutated_captures_never_crash(
    tmp_path: Path, base: bytes, edits: list[tuple[int, int]], cut: int
) -> None:
    data = bytearray(base)
    for pos, value in edits:
        data[pos % len(data)] = value
    _read_bytes(tmp_path, bytes(data[: max(len(data) - cut, 0)]))


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    magic=st.sampled_from([b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x0a\x0d\x0d\x0a", b""]),
    body=st.binary(max_size=600),
)
def test_random_bytes_never_crash(tmp_path: Path, magic: bytes, body: bytes) -> None:
    _read_bytes(tmp_path, magic + body)
