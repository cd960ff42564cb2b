"""Masking policies zero exactly the fields they name, in field and byte words alike."""

from __future__ import annotations

import numpy as np
import pytest

from pktlstm.errors import ConfigError
from pktlstm.tokens import TokenizerConfig, tokenize, word_names

from .conftest import batch_of


def words_by_name(frame: bytes, config: TokenizerConfig) -> dict[str, int]:
    b = batch_of([frame])
    names = word_names(int(b.ip_version[0]), int(b.proto[0]))
    return dict(zip(names, tokenize(b, config)[0].tolist(), strict=True))


def test_ids_masks_identifiers_and_keeps_the_rest(frames):
    w = words_by_name(frames["tcp4"], TokenizerConfig(policy="ids"))
    for name in ["eth.dst0", "eth.src2", "ip.src0", "ip.dst1", "ip.id", "ip.checksum"]:
        assert w[name] == 0, name
    assert w["tcp.checksum"] == 0
    assert (w["ip.ttl"], w["tcp.sport"], w["tcp.dport"], w["tcp.window"]) == (64, 51000, 443, 29200)


def test_strict_also_masks_ttl_and_ports(frames):
    w = words_by_name(frames["tcp4"], TokenizerConfig(policy="strict"))
    assert (w["ip.ttl"], w["tcp.sport"], w["tcp.dport"]) == (0, 0, 0)
    assert w["tcp.window"] == 29200
    u = words_by_name(frames["udp4"], TokenizerConfig(policy="strict"))
    assert (u["udp.sport"], u["udp.dport"], u["udp.checksum"]) == (0, 0, 0)


def test_ipv6_ids_masks_addresses_and_flow_label(frames):
    w = words_by_name(frames["icmp6"], TokenizerConfig(policy="ids"))
    assert (w["ip6.src0"], w["ip6.dst1"], w["ip6.flow_lo"], w["ip6.flow_hi"]) == (0, 0, 0, 0)
    assert w["icmp.checksum"] == 0
    assert (w["ip6.hlim"], w["icmp.rest0"]) == (255, 0x1234)


def test_overrides(frames):
    cfg = TokenizerConfig(policy="ids", mask_add=("tcp.window",), mask_remove=("ip.src",))
    w = words_by_name(frames["tcp4"], cfg)
    assert w["tcp.window"] == 0
    assert (w["ip.src0"], w["ip.src1"]) == (0x0A01, 0x0203)


def test_byte_words_masked_like_fields(frames):
    b = tokenize(batch_of([frames["tcp4"]]), TokenizerConfig(words="bytes", policy="ids"))[0]
    assert not b[0:12].any()  # MACs
    assert not b[26:34].any()  # IPv4 addresses
    assert b[22] == 64  # TTL kept under ids


def test_masking_leaves_the_batch_untouched(frames):
    batch = batch_of([frames["tcp4"]])
    before = batch.header.copy()
    tokenize(batch, TokenizerConfig(policy="strict"))
    np.testing.assert_array_equal(batch.header, before)


@pytest.mark.parametrize(
    "kwargs",
    [{"words": "chars"}, {"policy": "paranoid"}, {"mask_add": ("ip.nope",)}],
)
def test_bad_config_names_the_field(kwargs):
    with pytest.raises(ConfigError, match=next(iter(kwargs))):
        TokenizerConfig(**kwargs)


def test_config_round_trip():
    cfg = TokenizerConfig(words="bytes", policy="strict", mask_add=("tcp.window",))
    assert TokenizerConfig.from_dict(cfg.to_dict()) == cfg
