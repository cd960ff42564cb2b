"""Field words against values dpkt decodes from the same literal frames."""

from __future__ import annotations

import dpkt
import numpy as np

from pktlstm.tokens import TokenizerConfig, tokenize, word_names
from pktlstm.tokens.fields import N_FIELD_WORDS

from .conftest import batch_of, tcp_v4

NONE = TokenizerConfig(policy="none")


def named(frame: bytes, words: np.ndarray) -> dict[str, int]:
    b = batch_of([frame])
    names = word_names(int(b.ip_version[0]), int(b.proto[0]))
    return {n: int(w) for n, w in zip(names, words, strict=True) if n not in ("pad",)}


def test_tcp_ipv4_words_match_dpkt(frames):
    frame = frames["tcp4"]
    words = tokenize(batch_of([frame]), NONE)
    assert words.shape == (1, N_FIELD_WORDS) and words.dtype == np.uint16
    w = named(frame, words[0])
    eth = dpkt.ethernet.Ethernet(frame)
    ip, tcp = eth.data, eth.data.data
    assert [w["eth.dst0"], w["eth.dst1"], w["eth.dst2"]] == [0x021A, 0xC500, 0x0001]
    assert w["eth.type"] == 0x0800
    assert (w["ip.version"], w["ip.ihl"], w["ip.tos"]) == (4, 5, 0x10)
    assert (w["ip.len"], w["ip.id"], w["ip.flags"], w["ip.frag"]) == (ip.len, 0xBEEF, 2, 0)
    assert (w["ip.ttl"], w["ip.proto"], w["ip.checksum"]) == (64, 6, ip.sum)
    assert (w["ip.src0"], w["ip.src1"]) == (0x0A01, 0x0203)
    assert (w["ip.dst0"], w["ip.dst1"]) == (0xC0A8, 0x0908)
    assert (w["tcp.sport"], w["tcp.dport"]) == (51000, 443)
    assert (w["tcp.seq0"], w["tcp.seq1"], w["tcp.ack0"], w["tcp.ack1"]) == (
        0x1122, 0x3344, 0x5566, 0x7788,
    )  # fmt: skip
    assert (w["tcp.offset"], w["tcp.flags"], w["tcp.window"]) == (5, 0x18, 29200)
    assert (w["tcp.checksum"], w["tcp.urgent"]) == (tcp.sum, 7)


def test_udp_pads_eight_zero_words(frames):
    words = tokenize(batch_of([frames["udp4"]]), NONE)[0]
    udp = dpkt.ethernet.Ethernet(frames["udp4"]).data.data
    assert list(words[21:25]) == [5353, 53, udp.ulen, udp.sum]
    assert not words[25:].any()


def test_ipv6_icmp_slots(frames):
    words = tokenize(batch_of([frames["icmp6"]]), NONE)[0]
    w = named(frames["icmp6"], words)
    assert (w["ip6.version"], w["ip6.hlen"], w["ip6.hlim"], w["ip6.nxt"]) == (6, 10, 255, 58)
    assert (w["ip6.flow_lo"], w["ip6.flow_hi"]) == (0xBCDE, 0xA)
    src = np.bitwise_xor.reduce(np.arange(16, dtype=np.uint8).reshape(4, 4), axis=0)
    assert (w["ip6.src0"], w["ip6.src1"]) == (src[0] << 8 | src[1], src[2] << 8 | src[3])
    assert (w["icmp.type"], w["icmp.code"], w["icmp.rest0"], w["icmp.rest1"]) == (128, 0, 0x1234, 9)


def test_non_ip_has_only_ethernet_words(frames):
    words = tokenize(batch_of([frames["arp"]]), NONE)[0]
    assert words[6] == 0x0806
    assert not words[7:].any()


def test_rows_are_independent(frames):
    order = ["tcp4", "udp4", "icmp6", "arp"]
    together = tokenize(batch_of([frames[k] for k in order]), NONE)
    for i, k in enumerate(order):
        np.testing.assert_array_equal(together[i], tokenize(batch_of([frames[k]]), NONE)[0])


def test_byte_words_are_first_54_bytes(frames):
    words = tokenize(batch_of([frames["tcp4"]]), TokenizerConfig(words="bytes", policy="none"))
    assert words.shape == (1, 54)
    assert bytes(words[0].astype(np.uint8)) == frames["tcp4"][:54]


def test_random_headers_never_crash_and_stay_in_shape():
    """Any header bytes and offsets (even impossible ones) give 33 words, no exception."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from pktlstm.io.batch import HEADER_BYTES

    @settings(max_examples=60, deadline=None)
    @given(
        st.binary(min_size=HEADER_BYTES, max_size=HEADER_BYTES),
        st.sampled_from([0, 4, 6]),
        st.integers(0, 255),
        st.integers(-1, 200),
        st.sampled_from(["none", "ids", "strict"]),
        st.sampled_from(["fields", "bytes"]),
    )
    def check(raw, version, proto, l4, policy, words):
        b = batch_of([tcp_v4()])
        b.header[0] = np.frombuffer(raw, dtype=np.uint8)
        b.ip_version[0], b.proto[0], b.l4_off[0] = version, proto, l4
        out = tokenize(b, TokenizerConfig(words=words, policy=policy))
        assert out.shape == (1, 33 if words == "fields" else 54)

    check()
