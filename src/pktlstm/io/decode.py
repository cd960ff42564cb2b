"""The vectorised frame decoder: raw frames -> normalised PacketBatch, for files and live capture."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import ArrayLike, NDArray

from pktlstm.io.batch import HEADER_BYTES, L3_OFFSET, PacketBatch

# Link types (pcap LINKTYPE_* values) the decoder understands.
LINKTYPE_NULL = 0  # BSD loopback: 4-byte address family in the writer's byte order
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW_12 = 12  # raw IP on most platforms (DLT_RAW)
LINKTYPE_RAW_14 = 14  # raw IP on OpenBSD (DLT_RAW)
LINKTYPE_RAW = 101  # raw IP, version from the first nibble
LINKTYPE_LOOP = 108  # OpenBSD loopback: like NULL, family in network byte order
LINKTYPE_LINUX_SLL = 113  # Linux "cooked" capture v1, 16-byte header
LINKTYPE_IPV4 = 228  # raw IPv4
LINKTYPE_IPV6 = 229  # raw IPv6
LINKTYPE_LINUX_SLL2 = 276  # Linux "cooked" capture v2, 20-byte header
SUPPORTED_LINKTYPES = frozenset(
    {
        LINKTYPE_NULL,
        LINKTYPE_ETHERNET,
        LINKTYPE_RAW_12,
        LINKTYPE_RAW_14,
        LINKTYPE_RAW,
        LINKTYPE_LOOP,
        LINKTYPE_LINUX_SLL,
        LINKTYPE_IPV4,
        LINKTYPE_IPV6,
        LINKTYPE_LINUX_SLL2,
    }
)
LINKTYPE_NAMES = {
    LINKTYPE_NULL: "null",
    LINKTYPE_ETHERNET: "ethernet",
    LINKTYPE_RAW_12: "raw",
    LINKTYPE_RAW_14: "raw",
    LINKTYPE_RAW: "raw",
    LINKTYPE_LOOP: "loop",
    LINKTYPE_LINUX_SLL: "linux_sll",
    LINKTYPE_IPV4: "ipv4",
    LINKTYPE_IPV6: "ipv6",
    LINKTYPE_LINUX_SLL2: "linux_sll2",
}

ETH_IPV4 = 0x0800
ETH_IPV6 = 0x86DD
ETH_VLAN_TAGS = (0x8100, 0x88A8, 0x9100)  # 802.1Q, 802.1ad (QinQ), legacy QinQ
MAX_VLAN_TAGS = 4  # tags removed at most; deeper stacks keep the tag as ethertype
AF_INET = 2
AF_INET6 = (10, 24, 28, 30)  # Linux, NetBSD/OpenBSD, FreeBSD, macOS
IPV6_EXT_HEADERS = (0, 43, 44, 51, 60)  # hop-by-hop, routing, fragment, AH, dest options
MAX_IPV6_EXT = 8  # extension headers walked at most
PROTO_TCP = 6
PROTO_UDP = 17
PORT_PROTOS = (6, 17, 33, 132, 136)  # TCP, UDP, DCCP, SCTP, UDP-Lite: ports in bytes 0-3

# Bytes of each frame read to find the link header and VLAN tags.
_LINK_WINDOW = 40
# Bytes of the network layer kept in the normalised window.
_L3_WINDOW = HEADER_BYTES - L3_OFFSET
# Padding a frame buffer needs past its last frame so window views never run off its end.
FRAME_PAD = _LINK_WINDOW + _L3_WINDOW + 8

# splitmix64 constants for the flow hash.
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


_COLUMNS = np.arange(HEADER_BYTES, dtype=np.uint8)
# Lookup tables indexed by link type / IP protocol.
_SUPPORTED_TABLE = np.zeros(max(SUPPORTED_LINKTYPES) + 1, dtype=bool)
_SUPPORTED_TABLE[list(SUPPORTED_LINKTYPES)] = True
_PORT_TABLE = np.zeros(256, dtype=bool)
_PORT_TABLE[list(PORT_PROTOS)] = True


def _is_vlan(eth: NDArray[np.int64]) -> NDArray[np.bool_]:
    return (eth == 0x8100) | (eth == 0x88A8) | (eth == 0x9100)


def _be16(
    a: NDArray[np.uint8], col: int | NDArray[np.int64], rows: Any = None
) -> NDArray[np.int64]:
    """Big-endian 16-bit value at column ``col`` (an int, or one per row) of a 2-D byte array."""
    if rows is None:
        return (a[:, col].astype(np.int64) << 8) | a[:, col + 1]
    return (a[rows, col].astype(np.int64) << 8) | a[rows, col + 1]


def mix64(z: NDArray[np.uint64]) -> NDArray[np.uint64]:
    """splitmix64 finaliser, element-wise (uint64 arithmetic wraps): a well-spread 64-bit mix."""
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


def flow_hash(
    proto: NDArray[np.uint64],
    a_hi: NDArray[np.uint64],
    a_lo: NDArray[np.uint64],
    a_port: NDArray[np.uint64],
    b_hi: NDArray[np.uint64],
    b_lo: NDArray[np.uint64],
    b_port: NDArray[np.uint64],
) -> tuple[NDArray[np.uint64], NDArray[np.uint8]]:
    """Bidirectional 64-bit flow hash and direction of endpoint pairs, shape ``(n,)`` each.

    Endpoints are ``(hi, lo, port)`` triples compared as unsigned integers in that order
    (the same as comparing address bytes then big-endian port). The hash covers ``proto``
    and the sorted pair, so both directions get the same value; direction is 0 when
    endpoint ``a`` sorts strictly before ``b``. Deterministic across runs and platforms.
    """
    a_first = (a_hi < b_hi) | (
        (a_hi == b_hi) & ((a_lo < b_lo) | ((a_lo == b_lo) & (a_port < b_port)))
    )
    lo_hi = np.where(a_first, a_hi, b_hi)
    lo_lo = np.where(a_first, a_lo, b_lo)
    hi_hi = np.where(a_first, b_hi, a_hi)
    hi_lo = np.where(a_first, b_lo, a_lo)
    ports = np.where(
        a_first, (a_port << np.uint64(16)) | b_port, (b_port << np.uint64(16)) | a_port
    )
    h = proto * _GOLDEN
    for word in (lo_hi, lo_lo, hi_hi, hi_lo, ports):
        h = (h ^ word) * _MIX1  # one multiply-xorshift round per word,
        h ^= h >> np.uint64(32)  # a full splitmix64 finaliser at the end
    return mix64(h), (~a_first).astype(np.uint8)


def ip_flow_id(
    src: NDArray[np.uint8],
    sport: NDArray[np.integer[Any]],
    dst: NDArray[np.uint8],
    dport: NDArray[np.integer[Any]],
    proto: NDArray[np.integer[Any]],
) -> NDArray[np.uint64]:
    """The reader's flow id of IP 5-tuples: (n, 16) addresses (IPv4-mapped), ports, protocol.

    Equal to ``PacketBatch.flow_id`` of the packets of that 5-tuple, in either direction, so
    label sources can match flows by id.
    """
    s64 = np.ascontiguousarray(src, dtype=np.uint8).view(">u8").astype(np.uint64)
    d64 = np.ascontiguousarray(dst, dtype=np.uint8).view(">u8").astype(np.uint64)
    fid, _ = flow_hash(
        np.asarray(proto, dtype=np.uint64),
        s64[:, 0], s64[:, 1], np.asarray(sport, dtype=np.uint64),
        d64[:, 0], d64[:, 1], np.asarray(dport, dtype=np.uint64),
    )  # fmt: skip
    return fid


def _addresses(
    l3: NDArray[np.uint8], is4: NDArray[np.bool_], is6: NDArray[np.bool_], at4: int, at6: int
) -> NDArray[np.uint8]:
    """``(n, 16)`` addresses: IPv4 at byte ``at4`` as ::ffff:a.b.c.d, IPv6 at ``at6``, else 0."""
    n = l3.shape[0]
    v4 = np.zeros((n, 16), dtype=np.uint8)
    v4[:, 10:12] = 0xFF
    v4[:, 12:] = l3[:, at4 : at4 + 4]
    if bool(is4.all()):
        return v4
    v6 = l3[:, at6 : at6 + 16]
    return np.where(is4[:, None], v4, np.where(is6[:, None], v6, np.uint8(0)))


def decode_frames(
    buf: NDArray[np.uint8],
    offsets: ArrayLike,
    caplens: ArrayLike,
    wirelens: ArrayLike,
    ts_ns: ArrayLike,
    linktypes: ArrayLike,
    pkt_index: ArrayLike,
    capture_id: ArrayLike = 0,
) -> tuple[PacketBatch, Counter[str]]:
    """Decode ``n`` raw frames stored in ``buf`` into a normalised PacketBatch.

    Args:
        buf: 1-D uint8 buffer holding the frames. If it has fewer than ``FRAME_PAD`` bytes
            after the end of the last frame, it is copied once into a padded buffer.
        offsets: ``(n,)`` byte offset of each frame's first (link-layer) byte in ``buf``.
        caplens, wirelens: ``(n,)`` captured and original frame lengths, bytes.
        ts_ns: ``(n,)`` timestamps, nanoseconds since the Unix epoch.
        linktypes: ``(n,)`` pcap LINKTYPE_* of each frame, or one value for all.
        pkt_index: ``(n,)`` record index of each frame within its capture.
        capture_id: ``(n,)`` or one value: which capture each frame came from.

    Returns:
        The batch of frames that decoded (in input order) and a Counter of skipped
        frames by reason: ``decoder.unsupported_linktype``, ``decoder.truncated`` (link
        or network header cut short) and ``decoder.bad_header`` (e.g. IP version or
        header length impossible). Never raises on malformed frame contents.
    """
    off = np.asarray(offsets, dtype=np.int64)
    n = off.shape[0]
    cap = np.asarray(caplens, dtype=np.int64)
    lt_in = np.asarray(linktypes, dtype=np.int64)
    lt = np.broadcast_to(lt_in, (n,))
    skipped: Counter[str] = Counter()
    if n == 0:
        return PacketBatch.empty(), skipped
    buf = np.asarray(buf, dtype=np.uint8)
    if buf.ndim != 1:
        raise ValueError(f"buf must be 1-D uint8, got shape {buf.shape}")
    if int(off.min()) < L3_OFFSET or int(off.max()) + FRAME_PAD > buf.shape[0]:
        # Room before the first frame (windows start 14 bytes before a network header)
        # and after the last one; copies the buffer once.
        padded = np.zeros(L3_OFFSET + max(buf.shape[0], int(off.max())) + FRAME_PAD, np.uint8)
        padded[L3_OFFSET : L3_OFFSET + buf.shape[0]] = buf
        buf, off = padded, off + L3_OFFSET
    rows = np.arange(n)
    window = sliding_window_view(buf, HEADER_BYTES)

    # The first HEADER_BYTES of each frame: already the normalised window for untagged
    # Ethernet, and the link header to parse for everything else.
    header = window[off]  # (n, 128)
    head = header[:, :_LINK_WINDOW]  # view
    if lt_in.ndim == 0:
        uniform = int(lt_in)
        known = np.full(n, uniform in SUPPORTED_LINKTYPES)
        is_eth = np.full(n, uniform == LINKTYPE_ETHERNET)
    else:
        uniform = -1
        known = _SUPPORTED_TABLE[np.clip(lt, 0, _SUPPORTED_TABLE.shape[0] - 1)] & (lt >= 0)
        is_eth = lt == LINKTYPE_ETHERNET
    eth_only = uniform == LINKTYPE_ETHERNET or bool(is_eth.all())
    if eth_only:
        net = np.full(n, 14, dtype=np.int64)
        eth = _be16(head, 12)
    else:
        net = np.zeros(n, dtype=np.int64)
        eth = np.zeros(n, dtype=np.int64)
        net[is_eth] = 14
        eth[is_eth] = _be16(head, 12)[is_eth]
        sll = lt == LINKTYPE_LINUX_SLL
        net[sll] = 16
        eth[sll] = _be16(head, 14)[sll]
        sll2 = lt == LINKTYPE_LINUX_SLL2
        net[sll2] = 20
        eth[sll2] = _be16(head, 0)[sll2]
        null = (lt == LINKTYPE_NULL) | (lt == LINKTYPE_LOOP)
        if null.any():
            fam = head[:, :4].astype(np.int64)
            fam_le = fam[:, 0] | (fam[:, 1] << 8) | (fam[:, 2] << 16) | (fam[:, 3] << 24)
            fam_be = fam[:, 3] | (fam[:, 2] << 8) | (fam[:, 1] << 16) | (fam[:, 0] << 24)
            family = np.where(fam_le > 0xFFFF, fam_be, fam_le)
            net[null] = 4
            fam_eth = np.where(
                family == AF_INET, ETH_IPV4, np.where(np.isin(family, AF_INET6), ETH_IPV6, 0)
            )
            eth[null] = fam_eth[null]
        raw = np.isin(lt, (LINKTYPE_RAW, LINKTYPE_RAW_12, LINKTYPE_RAW_14, 228, 229))
        if raw.any():
            version = head[:, 0] >> 4
            raw_eth = np.where(version == 4, ETH_IPV4, np.where(version == 6, ETH_IPV6, 0))
            eth[raw] = raw_eth[raw]
    # VLAN / QinQ tags: step over each, the inner ethertype follows the tag.
    for _ in range(MAX_VLAN_TAGS):
        tagged = _is_vlan(eth) & (net + 4 <= cap)
        if not tagged.any():
            break
        eth[tagged] = _be16(head, net[tagged] + 2, rows[tagged])
        net[tagged] += 4
    bad_link = known & ((cap < net) | _is_vlan(eth) & (cap < net + 4))

    # Normalised window: frames whose network header is not at 14 are gathered again
    # from 14 bytes before it; their MACs become the frame's own (Ethernet) or zero.
    moved = np.flatnonzero(net != L3_OFFSET)
    if moved.shape[0]:
        macs = np.where(is_eth[moved, None], header[moved, :12], 0).astype(np.uint8)
        header[moved] = window[off[moved] + net[moved] - L3_OFFSET]
        header[moved, :12] = macs
    header[:, 12] = eth >> 8
    header[:, 13] = eth & 0xFF
    l3 = header[:, L3_OFFSET:]
    avail = cap - net  # captured bytes from the network header on

    is4 = eth == ETH_IPV4
    is6 = eth == ETH_IPV6
    version = l3[:, 0] >> 4
    ihl = (l3[:, 0] & 0x0F).astype(np.int64)
    # IP packet end inside the window (drops Ethernet padding): total length / payload length.
    ip_end = np.where(is4, _be16(l3, 2), np.where(is6, _be16(l3, 4) + 40, avail))
    ip_end = np.where(ip_end < np.where(is4, ihl * 4, 40), avail, ip_end)  # jumbo / bogus
    limit = np.clip(np.minimum(avail, ip_end), 0, _L3_WINDOW)  # valid bytes of l3
    if int(limit.min()) < _L3_WINDOW:
        keep = (limit + L3_OFFSET).astype(np.uint8)[:, None] > _COLUMNS  # (n, 128)
        np.multiply(header, keep, out=header)
    bad_ip = (is4 & ((version != 4) | (ihl < 5))) | (is6 & (version != 6))
    short_ip = (is4 & (avail < 20)) | (is6 & (avail < 40))

    ok = known & ~bad_link & ~bad_ip & ~short_ip
    n_unknown = int(n - np.count_nonzero(known))
    if n_unknown:
        skipped["decoder.unsupported_linktype"] = n_unknown
    n_trunc = int(np.count_nonzero(bad_link | (known & ~bad_link & short_ip & ~bad_ip)))
    if n_trunc:
        skipped["decoder.truncated"] = n_trunc
    n_bad = int(np.count_nonzero(known & ~bad_link & bad_ip))
    if n_bad:
        skipped["decoder.bad_header"] = n_bad

    # Addresses (IPv4 as IPv4-mapped IPv6) and protocol.
    src = _addresses(l3, is4, is6, 12, 8)
    dst = _addresses(l3, is4, is6, 16, 24)
    proto = np.where(is4, l3[:, 9], np.where(is6, l3[:, 6], 0)).astype(np.int64)
    frag4 = (_be16(l3, 6) & 0x1FFF) != 0
    l4 = np.where(is4 & ~frag4, ihl * 4, -1)  # relative to l3
    if is6.any():
        l4 = _walk_ipv6(l3, is6, proto, l4, limit)
    has_l4 = (l4 >= 0) & (l4 < limit)
    l4 = np.where(has_l4, l4, -1)
    l4p = np.clip(l4, 0, _L3_WINDOW - 4)
    has_ports = has_l4 & (l4 + 4 <= limit) & _PORT_TABLE[proto]
    sport = np.where(has_ports, _be16(l3, l4p, rows), 0)
    dport = np.where(has_ports, _be16(l3, l4p + 2, rows), 0)
    has_flags = has_l4 & (l4 + 14 <= limit) & (proto == PROTO_TCP)
    tcp_flags = np.where(has_flags, l3[rows, np.clip(l4 + 13, 0, _L3_WINDOW - 1)], 0)
    is_ip = is4 | is6

    # Flow id and direction: IP endpoints, or MACs + ethertype for everything else.
    src64 = src.view(">u8").astype(np.uint64)
    dst64 = dst.view(">u8").astype(np.uint64)
    mac = np.zeros((n, 2, 8), dtype=np.uint8)
    mac[:, 0, 2:] = header[:, 6:12]
    mac[:, 1, 2:] = header[:, 0:6]
    mac64 = mac.view(">u8").reshape(n, 2).astype(np.uint64)
    zero = np.zeros(n, dtype=np.uint64)
    fid, direction = flow_hash(
        np.where(is_ip, proto, eth | 0x10000).astype(np.uint64),
        np.where(is_ip, src64[:, 0], zero),
        np.where(is_ip, src64[:, 1], mac64[:, 0]),
        sport.astype(np.uint64),
        np.where(is_ip, dst64[:, 0], zero),
        np.where(is_ip, dst64[:, 1], mac64[:, 1]),
        dport.astype(np.uint64),
    )

    batch = PacketBatch(
        ts_ns=np.array(ts_ns, dtype=np.int64).reshape(n),
        caplen=cap.astype(np.uint32),
        wirelen=np.asarray(wirelens, dtype=np.uint32).reshape(n),
        linktype=lt.astype(np.uint16),
        header=header,
        ethertype=eth.astype(np.uint16),
        ip_version=np.where(is4, 4, np.where(is6, 6, 0)).astype(np.uint8),
        proto=proto.astype(np.uint8),
        l4_off=np.where(l4 >= 0, l4 + L3_OFFSET, -1).astype(np.int16),
        src=src,
        dst=dst,
        sport=sport.astype(np.uint16),
        dport=dport.astype(np.uint16),
        tcp_flags=tcp_flags.astype(np.uint8),
        flow_id=fid,
        direction=direction,
        capture_id=np.broadcast_to(np.asarray(capture_id, dtype=np.uint32), (n,)).copy(),
        pkt_index=np.asarray(pkt_index, dtype=np.uint64).reshape(n),
    )
    if not ok.all():
        batch = batch[ok]
    return batch, skipped


def _walk_ipv6(
    l3: NDArray[np.uint8],
    is6: NDArray[np.bool_],
    proto: NDArray[np.int64],
    l4: NDArray[np.int64],
    limit: NDArray[np.int64],
) -> NDArray[np.int64]:
    """Follow IPv6 extension headers; updates ``proto`` in place, returns the l4 offsets.

    A header chain that runs past the captured window leaves ``proto`` at the last
    header type seen and no transport header; a non-first fragment gives the fragment's
    next header as ``proto`` and no transport header.
    """
    idx = np.flatnonzero(is6)
    cur = np.full(idx.shape[0], 40, dtype=np.int64)
    nh = proto[idx].copy()
    done_l4 = cur.copy()
    active = np.isin(nh, IPV6_EXT_HEADERS)
    for _ in range(MAX_IPV6_EXT):
        if not active.any():
            break
        lim = limit[idx]
        inside = active & (cur + 8 <= lim)
        stuck = active & ~inside
        done_l4[stuck] = -1
        active &= inside
        a = np.flatnonzero(active)
        rows, c = idx[a], cur[a]
        nxt = l3[rows, c].astype(np.int64)
        hlen = l3[rows, c + 1].astype(np.int64)
        t = nh[a]
        size = np.where(t == 51, (hlen + 2) * 4, np.where(t == 44, 8, (hlen + 1) * 8))
        nonfirst = (t == 44) & (_be16(l3, c + 2, rows) & 0xFFF8 != 0)
        nh[a] = nxt
        cur[a] = c + size
        done_l4[a] = np.where(nonfirst, -1, c + size)
        stopped = a[nonfirst]
        active[stopped] = False
        active[a] &= np.isin(nxt, IPV6_EXT_HEADERS)
    done_l4[active] = -1  # chain longer than MAX_IPV6_EXT
    proto[idx] = nh
    l4 = l4.copy()
    l4[idx] = done_l4
    return l4
