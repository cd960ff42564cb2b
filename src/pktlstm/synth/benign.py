"""Benign traffic: web (HTTP, TLS), DNS, NTP, SSH, camera RTSP/RTP, MQTT, ping, and look-alikes."""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pktlstm.synth.hosts import Host
from pktlstm.synth.session import (
    ACK,
    RST,
    SYN,
    Ctx,
    TcpBatch,
    TcpConv,
    emit_pair,
    new_flow_port,
    open_tcp,
    pair_row,
)  # fmt: skip

_S = 1_000_000  # microseconds per second

SITES = [
    "www.example.com", "news.example.org", "cdn.jsdelivr.net", "api.github.com", "www.wikipedia.org",
    "static.cloudflareinsights.com", "fonts.gstatic.com", "www.bbc.co.uk", "mail.google.com",
    "update.microsoft.com", "ocsp.digicert.com", "connectivity-check.ubuntu.com", "www.apple.com",
    "time.windows.com", "weather.example.net", "shop.example.com", "img.example-cdn.net",
]  # fmt: skip
BROWSER_UA = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
]
_CLIENTS = ["windows", "windows", "macos", "linux"]
PATHS = ["/", "/index.html", "/static/app.js", "/css/site.css", "/img/logo.png", "/api/v1/items?page=2", "/favicon.ico", "/news/today"]  # fmt: skip


def _rtt(ctx: Ctx, server: Host) -> int:
    """Round-trip time to ``server`` in microseconds (LAN < 1 ms, internet 10-150 ms)."""
    if server.role == "internet":
        return int(ctx.rng.uniform(8_000, 150_000))
    return int(ctx.rng.uniform(150, 900))


def _start(ctx: Ctx, length_us: int) -> int:
    return int(ctx.rng.integers(0, max(1, ctx.duration_us - length_us)))


def _client(ctx: Ctx) -> Host:
    return ctx.net.pick(str(ctx.rng.choice(["windows", "windows", "macos", "linux"])))


def _pick_many(ctx: Ctx, roles: list[str], n: int) -> list[Host]:
    """``n`` hosts: a role drawn from ``roles`` (repeats weight it), then a host of it."""
    role = ctx.rng.integers(0, len(roles), n).tolist()
    u = ctx.rng.random(n).tolist()
    groups = [ctx.net.hosts[r] for r in roles]
    return [groups[r][int(x * len(groups[r]))] for r, x in zip(role, u, strict=True)]


def _rtts(ctx: Ctx, servers: list[Host]) -> NDArray[np.int64]:
    """Round-trip times to ``servers`` in microseconds (LAN < 1 ms, internet 10-150 ms)."""
    far = np.array([h.role == "internet" for h in servers], dtype=bool)
    u = ctx.rng.random(len(servers))
    return np.where(far, 8_000 + u * 142_000, 150 + u * 750).astype(np.int64)


def _exp(ctx: Ctx, scale: float, n: int) -> NDArray[np.int64]:
    return ctx.rng.exponential(scale, n).astype(np.int64)


@functools.cache
def http_request(host: str, path: str, ua: str, keep_alive: bool = True) -> bytes:
    conn = "keep-alive" if keep_alive else "close"
    return (
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {ua}\r\n"
        "Accept: text/html,application/xhtml+xml,*/*;q=0.8\r\nAccept-Encoding: gzip, deflate\r\n"
        f"Accept-Language: en-US,en;q=0.9\r\nConnection: {conn}\r\n\r\n"
    ).encode()


def http_response(ctx: Ctx, body: int, status: str = "200 OK", server: str = "nginx") -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\nServer: {server}\r\nContent-Type: text/html; charset=utf-8\r\n"
        f"Content-Length: {body}\r\nConnection: keep-alive\r\nCache-Control: max-age=600\r\n\r\n"
    ).encode()
    return head + ctx.rand_bytes(body)


def _body(ctx: Ctx) -> int:
    return int(min(4_000, ctx.rng.lognormal(6.2, 1.0)))


def _bodies(ctx: Ctx, n: int) -> NDArray[np.int64]:
    return np.minimum(4_000, ctx.rng.lognormal(6.2, 1.0, n)).astype(np.int64)


@functools.cache
def _http_head(body: int, status: str = "200 OK", server: str = "nginx") -> bytes:
    """Response head of ``http_response`` (the body follows: ``body`` random bytes)."""
    return (
        f"HTTP/1.1 {status}\r\nServer: {server}\r\nContent-Type: text/html; charset=utf-8\r\n"
        f"Content-Length: {body}\r\nConnection: keep-alive\r\nCache-Control: max-age=600\r\n\r\n"
    ).encode()


def web_http(ctx: Ctx, n: int) -> None:
    """Browser pages over plain HTTP: keep-alive requests, responses, FIN or RST close."""
    rng = ctx.rng
    clients, servers = _pick_many(ctx, _CLIENTS, n), _pick_many(ctx, ["internet"], n)
    rtt = _rtts(ctx, servers)
    tcp = TcpBatch(ctx, n)
    tcp.handshake(rtt)
    site, ua = rng.integers(0, len(SITES), n), rng.integers(0, len(BROWSER_UA), n)
    rounds = rng.integers(1, 7, n)
    for r in range(6):
        sel = np.flatnonzero(rounds > r)
        path = rng.integers(0, len(PATHS), n)
        reqs = [http_request(SITES[site[j]], PATHS[path[j]], BROWSER_UA[ua[j]]) for j in sel]
        tcp.write(0, dt=_exp(ctx, 2 * _S, n), sel=sel, text=reqs)
        body = _bodies(ctx, n)
        heads = [_http_head(int(body[j])) for j in sel]
        tlen = np.array([len(h) for h in heads], dtype=np.int64)
        size = np.zeros(n, dtype=np.int64)
        size[sel] = tlen + body[sel]
        tcp.write(1, size, dt=rtt + _exp(ctx, 20_000, n), sel=sel, text=heads)
    end = rng.random(n)
    tcp.close(rng.integers(0, 2, n), rtt, dt=_exp(ctx, 5 * _S, n), sel=end < 0.5)
    tcp.reset(0, dt=_exp(ctx, 3 * _S, n), sel=(end >= 0.5) & (end < 0.8))
    tcp.emit(clients, servers, 80, rtt)


def _tls_record(ctx: Ctx, ctype: int, n: int, prefix: bytes = b"") -> bytes:
    body = prefix + ctx.rand_bytes(max(0, n - 5 - len(prefix)))
    return bytes([ctype, 3, 3]) + struct.pack("!H", len(body)) + body


@functools.cache
def _tls_head(ctype: int, n: int, prefix: bytes = b"") -> bytes:
    """The first bytes of ``_tls_record(ctype, n, prefix)``: header and prefix."""
    return (
        bytes([ctype, 3, 3]) + struct.pack("!H", max(0, n - 5 - len(prefix)) + len(prefix)) + prefix
    )


def _tls_write(
    ctx: Ctx, tcp: TcpBatch, d: int, sizes: NDArray[np.int64], ctype: int, dt: Any,
    sel: NDArray[np.int64], prefix: bytes = b"", lead: bytes = b"",
) -> None:  # fmt: skip
    """Write one TLS record of ``sizes[j]`` bytes (after ``lead``) on connections ``sel``."""
    heads = [lead + _tls_head(ctype, int(sizes[j]), prefix) for j in sel]
    total = np.zeros(tcp.n, dtype=np.int64)
    total[sel] = np.maximum(sizes[sel], 5 + len(prefix)) + len(lead)
    tcp.write(d, total, dt=dt, sel=sel, text=heads)


def web_tls(ctx: Ctx, n: int) -> None:
    """HTTPS: ClientHello/ServerHello sizes, encrypted requests and responses, close_notify."""
    rng = ctx.rng
    clients, servers = _pick_many(ctx, _CLIENTS, n), _pick_many(ctx, ["internet"], n)
    rtt = _rtts(ctx, servers)
    tcp = TcpBatch(ctx, n)
    tcp.handshake(rtt)
    every = np.arange(n)
    hello = np.array([517, 517, 583, 252, 289, 1780])[rng.integers(0, 6, n)]
    _tls_write(ctx, tcp, 0, hello, 22, rng.integers(100, 2000, n), every, b"\x01\x00")
    _tls_write(ctx, tcp, 1, rng.integers(1200, 2400, n), 22, rtt, every, b"\x02\x00")
    ccs = b"\x14\x03\x03\x00\x01\x01"
    _tls_write(ctx, tcp, 0, rng.integers(58, 90, n), 23, 500, every, lead=ccs)
    rounds = rng.integers(1, 9, n)
    for r in range(8):
        sel = np.flatnonzero(rounds > r)
        _tls_write(ctx, tcp, 0, rng.integers(90, 700, n), 23, _exp(ctx, 1.5 * _S, n), sel)
        _tls_write(ctx, tcp, 1, _bodies(ctx, n) + 30, 23, rtt + _exp(ctx, 30_000, n), sel)
    end = rng.random(n)
    notify = np.flatnonzero(end < 0.6)
    _tls_write(ctx, tcp, 0, np.full(n, 31), 21, _exp(ctx, 10 * _S, n), notify)
    tcp.close(0, rtt, dt=200, sel=notify)
    tcp.reset(0, dt=_exp(ctx, 5 * _S, n), sel=(end >= 0.6) & (end < 0.8))
    tcp.emit(clients, servers, 443, rtt)


def dns_name(name: str) -> bytes:
    return b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\x00"


def dns_query(txid: int, name: str, qtype: int = 1) -> bytes:
    return (
        struct.pack("!HHHHHH", txid, 0x0100, 1, 0, 0, 0)
        + dns_name(name)
        + struct.pack("!HH", qtype, 1)
    )


def dns_answer(ctx: Ctx, query: bytes, qtype: int, rcode: int = 0) -> bytes:
    """A resolver reply to ``query``: the question echoed, 1-4 records (none on error)."""
    txid = query[:2]
    n = 0 if rcode else int(ctx.rng.integers(1, 5))
    head = txid + struct.pack("!HHHHH", 0x8180 | rcode, 1, n, 0, 0)
    rd = 4 if qtype == 1 else 16
    ans = b"".join(
        struct.pack(
            "!HHHIH",
            0xC00C,
            qtype if qtype in (1, 28) else 1,
            1,
            int(ctx.rng.integers(30, 3600)),
            rd,
        )
        + ctx.rand_bytes(rd)
        for _ in range(n)
    )
    return head + query[12:] + ans


def _dns_reply(query: bytes, qtype: int, rcode: int, ttls: list[int], rdata: bytes) -> bytes:
    """A resolver reply to ``query``: the question echoed, one record per TTL."""
    rd = 4 if qtype == 1 else 16
    rtype = qtype if qtype in (1, 28) else 1
    head = query[:2] + struct.pack("!HHHHH", 0x8180 | rcode, 1, len(ttls), 0, 0)
    ans = b"".join(
        struct.pack("!HHHIH", 0xC00C, rtype, 1, t, rd) + rdata[i * rd : (i + 1) * rd]
        for i, t in enumerate(ttls)
    )
    return head + query[12:] + ans


def dns_burst(ctx: Ctx, n: int) -> None:
    """Page loads' lookups: several names in a short burst each (some CDN labels look random)."""
    rng = ctx.rng
    clients = _pick_many(ctx, ["windows", "macos", "linux", "camera", "windows"], n)
    resolver = ctx.net.hosts["router"][0]
    names = rng.integers(1, 12, n)
    t_burst = rng.integers(0, max(1, ctx.duration_us - 2 * _S), n)
    alnum = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz0123456789", dtype=np.uint8)
    letters = alnum[rng.integers(0, alnum.size, (int(names.sum()), 20))].tobytes()
    label_len = rng.integers(8, 20, int(names.sum())).tolist()
    cdn = (rng.random(int(names.sum())) < 0.3).tolist()
    site = rng.integers(0, len(SITES), int(names.sum())).tolist()
    rdata = ctx.pool()
    pair_rows, flows, ts, pay, rev, conn = [], [], [], [], [], []
    q_i = 0
    for j in range(n):
        client = clients[j]
        qtypes = [1, 28] if client.stack.name in ("windows", "macos") else [1]
        pair = pair_row(ctx, client, resolver, 0, 53)
        t = int(t_burst[j])
        k = len(qtypes) * int(names[j])
        gaps = rng.integers(50, 30_000, k).tolist()
        waits = rng.integers(300, 60_000, k).tolist()
        txids = rng.integers(0, 65536, k).tolist()
        fail = (rng.random(k) < 0.04).tolist()
        n_ans = rng.integers(1, 5, k).tolist()
        ttl = rng.integers(30, 3600, 4 * k).tolist()
        r_at = rng.integers(0, rdata.size - 64, k).tolist()
        e = 0
        for _ in range(int(names[j])):
            if cdn[q_i]:
                name = letters[q_i * 20 : q_i * 20 + label_len[q_i]].decode() + ".cloudfront.net"
            else:
                name = SITES[site[q_i]]
            q_i += 1
            for qtype in qtypes:
                got = new_flow_port(ctx, client, resolver, 53, 17)
                if got is None:
                    e += 1
                    continue
                flow, sport = got
                q = dns_query(txids[e], name, qtype)
                rc = 3 if fail[e] else 0
                ttls = [] if rc else ttl[4 * e : 4 * e + n_ans[e]]
                a = _dns_reply(q, qtype, rc, ttls, rdata[r_at[e] : r_at[e] + 64].tobytes())
                t += gaps[e]
                pair_rows.append((*pair[:10], sport, 53, *pair[12:]))
                c = len(pair_rows) - 1
                flows += [flow, flow]
                ts += [t, t + waits[e]]
                pay += [q, a]
                rev += [0, 1]
                conn += [c, c]
                e += 1
    if flows:
        ctx.rec.add(
            np.array(flows), np.array(ts, dtype=np.int64), pay, pair=np.array(pair_rows),
            conn=np.array(conn), rev=np.array(rev), proto=17,
        )  # fmt: skip


def ntp(ctx: Ctx) -> None:
    """An NTP client polling a pool server from port 123 every 64-256 s."""
    rng = ctx.rng
    client = ctx.net.pick(str(rng.choice(["linux", "windows", "camera", "macos"])))
    server = ctx.net.pick("internet")
    got = new_flow_port(ctx, client, server, 123, 17, sport=123)
    if got is None:
        return
    flow, _ = got
    poll = int(rng.choice([64, 128, 256])) * _S
    t0 = int(rng.integers(0, poll))
    starts = np.arange(t0, ctx.duration_us - _S, poll)
    if starts.size == 0:
        return
    rtt = _rtt(ctx, server)
    ts = np.stack([starts, starts + rtt]).T.ravel()
    rev = np.tile([False, True], starts.size)
    lead = 0xE3 if client.stack.name == "windows" else 0x23
    pay = []
    for _ in starts:
        pay.append(bytes([lead]) + ctx.rand_bytes(47))
        pay.append(bytes([0x24, 2]) + ctx.rand_bytes(46))
    emit_pair(ctx, flow, client, server, 123, 123, 17, ts, rev, pay)


def _ssh_handshake(ctx: Ctx, tcp: TcpConv, client_banner: bytes, rtt: int) -> None:
    rng = ctx.rng
    tcp.write(1, b"SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.6\r\n", dt=rtt // 2 + 2000)
    tcp.write(0, client_banner, dt=int(rng.integers(200, 3000)))
    tcp.write(0, int(rng.integers(1000, 1500)), dt=200)  # KEXINIT
    tcp.write(1, int(rng.integers(1000, 1100)), dt=rtt)
    tcp.write(0, 48, dt=800)  # KEX_ECDH_INIT
    tcp.write(1, int(rng.integers(500, 1100)), dt=rtt + 3000)  # ECDH reply + NEWKEYS
    tcp.write(0, 16, dt=500)  # NEWKEYS
    tcp.write(0, 44, dt=100)  # service request
    tcp.write(1, 44, dt=rtt)


def _ssh_handshake_batch(ctx: Ctx, tcp: TcpBatch, banners: list[bytes], rtt: Any) -> None:
    """``_ssh_handshake`` on every connection of ``tcp`` (one client banner each)."""
    rng, n = ctx.rng, tcp.n
    tcp.write(1, dt=rtt // 2 + 2000, text=b"SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.6\r\n")
    tcp.write(0, dt=rng.integers(200, 3000, n), text=banners)
    tcp.write(0, rng.integers(1000, 1500, n), dt=200)  # KEXINIT
    tcp.write(1, rng.integers(1000, 1100, n), dt=rtt)
    tcp.write(0, 48, dt=800)  # KEX_ECDH_INIT
    tcp.write(1, rng.integers(500, 1100, n), dt=rtt + 3000)  # ECDH reply + NEWKEYS
    tcp.write(0, 16, dt=500)  # NEWKEYS
    tcp.write(0, 44, dt=100)  # service request
    tcp.write(1, 44, dt=rtt)


def ssh_session(ctx: Ctx, n: int) -> None:
    """Interactive SSH: handshake, public-key login, keystrokes with echoes, command output."""
    rng = ctx.rng
    clients = _pick_many(ctx, ["linux", "macos", "windows"], n)
    local = (rng.random(n) < 0.6).tolist()
    servers = [
        ctx.net.pick("sshd") if lo else h
        for lo, h in zip(local, _pick_many(ctx, ["internet"], n), strict=True)
    ]
    rtt = _rtts(ctx, servers)
    tcp = TcpBatch(ctx, n)
    tcp.handshake(rtt)
    _ssh_handshake_batch(ctx, tcp, [b"SSH-2.0-OpenSSH_9.6\r\n"] * n, rtt)
    tcp.write(0, np.array([412, 604])[rng.integers(0, 2, n)], dt=rng.integers(5000, 90000, n))
    tcp.write(1, 36, dt=rtt)
    keys = rng.integers(5, 60, n)
    for r in range(int(keys.max())):
        sel = keys > r
        tcp.pkt(0, 0x18, 36, dt=_exp(ctx, 250_000, n), sel=sel)
        tcp.pkt(1, 0x18, 36, dt=rtt, sel=sel)
        tcp.pkt(0, ACK, dt=rng.integers(100, 40000, n), sel=sel & (rng.random(n) < 0.5))
        out = sel & (rng.random(n) < 0.15)
        tcp.write(1, rng.integers(100, 3000, n), dt=rng.integers(1000, 200000, n), sel=out)
    tcp.close(0, rtt, dt=_exp(ctx, 2 * _S, n))
    tcp.emit(clients, servers, 22, rtt)


def camera_stream(ctx: Ctx) -> None:
    """The NVR pulls a camera's RTSP stream: control over TCP 554, RTP video as large UDP."""
    rng = ctx.rng
    cam, nvr = ctx.net.pick("camera"), ctx.net.pick("nvr")
    rtt = _rtt(ctx, cam)
    length = int(min(ctx.duration_us * 0.9, rng.uniform(30, 400) * _S))
    t0 = _start(ctx, length)
    conv = open_tcp(ctx, nvr, cam, 554, t0, rtt)
    if conv is None:
        return
    tcp, flow = conv
    tcp.handshake()
    url = f"rtsp://{cam.ip >> 24 & 255}.{cam.ip >> 16 & 255}.{cam.ip >> 8 & 255}.{cam.ip & 255}:554/stream1"
    for i, verb in enumerate(["OPTIONS", "DESCRIBE", "SETUP", "PLAY"]):
        req = (
            f"{verb} {url} RTSP/1.0\r\nCSeq: {i + 2}\r\nUser-Agent: LibVLC/3.0.18\r\n\r\n".encode()
        )
        tcp.write(0, req, dt=int(rng.integers(300, 3000)))
        resp = (
            f"RTSP/1.0 200 OK\r\nCSeq: {i + 2}\r\nServer: Hipcam RealServer/V1.0\r\n\r\n".encode()
        )
        tcp.write(1, resp + ctx.rand_bytes(420 if verb == "DESCRIBE" else 0), dt=rtt + 2000)
    t_play = tcp.t
    for _ in range(int(length // (30 * _S))):
        tcp.write(0, f"GET_PARAMETER {url} RTSP/1.0\r\nCSeq: 9\r\n\r\n".encode(), dt=30 * _S)
        tcp.write(1, b"RTSP/1.0 200 OK\r\nCSeq: 9\r\n\r\n", dt=rtt)
    tcp.emit(flow)
    # RTP: camera port pair -> NVR port pair; frames at 15-25 fps, key frame every 2 s.
    cport, nport = 2 * int(rng.integers(3000, 4000)), 2 * int(rng.integers(25000, 30000))
    got = new_flow_port(ctx, cam, nvr, nport, 17, sport=cport)
    if got is None:
        return
    rflow, _ = got
    fps = int(rng.choice([15, 20, 25]))
    budget = min(ctx.rec.remaining, int(length / _S * fps * 1.5))
    if budget <= 0:
        return
    frames = np.arange(int(length / _S * fps))
    per_frame = np.where(
        frames % (2 * fps) == 0, rng.integers(6, 14, frames.size), rng.integers(1, 3, frames.size)
    )
    per_frame = per_frame[: np.searchsorted(np.cumsum(per_frame), budget) + 1]
    k = int(min(per_frame.sum(), budget))
    frame_of = np.repeat(np.arange(per_frame.size), per_frame)[:k]
    ts = t_play + 5000 + frame_of * (_S // fps) + np.arange(k) % 16 * int(rng.integers(80, 300))
    last = np.r_[frame_of[1:] != frame_of[:-1], True]
    sizes = np.where(last, rng.integers(150, 700, k), rng.integers(600, 1000, k))
    ssrc = ctx.rand_bytes(4)
    seq0, ts0 = int(rng.integers(0, 65536)), int(rng.integers(0, 1 << 32))
    pay = [
        struct.pack("!BBHI", 0x80, 0x60 | (0x80 if last[i] else 0), (seq0 + i) & 0xFFFF, (ts0 + int(frame_of[i]) * (90000 // fps)) & 0xFFFFFFFF)
        + ssrc + ctx.rand_bytes(int(sizes[i]))
        for i in range(k)
    ]  # fmt: skip
    emit_pair(ctx, rflow, cam, nvr, cport, nport, 17, ts, np.zeros(k, dtype=bool), pay, tos=0)


def mqtt(ctx: Ctx, n: int) -> None:
    """Sensors' MQTT sessions to the broker: CONNECT, periodic PUBLISH, PINGREQ."""
    rng = ctx.rng
    sensors = _pick_many(ctx, ["sensor", "sensor", "camera"], n)
    brokers = _pick_many(ctx, ["broker"], n)
    rtt = _rtts(ctx, brokers)
    length = rng.uniform(0.3, 0.95, n) * ctx.duration_us
    tcp = TcpBatch(ctx, n)
    tcp.handshake(rtt)
    cids = [f"sensor-{h.ip & 255:03d}".encode() for h in sensors]
    connect = [
        b"\x10"
        + bytes([12 + len(c)])
        + b"\x00\x04MQTT\x04\x02\x00\x3c"
        + struct.pack("!H", len(c))
        + c
        for c in cids
    ]
    tcp.write(0, dt=2000, text=connect)
    tcp.write(1, dt=rtt, text=b"\x20\x02\x00\x00")
    period = np.array([2.0, 5.0, 10.0, 30.0])[rng.integers(0, 4, n)]
    rounds = np.clip(length / (period * _S), 1, 1300).astype(np.int64)
    topics = [struct.pack("!H", 15 + len(c)) + b"site/telemetry/" + c for c in cids]
    for r in range(int(rounds.max())):
        sel = np.flatnonzero(rounds > r)
        temp, hum = rng.normal(21, 3, n), rng.uniform(20, 80, n)
        bat = rng.integers(50, 100, n)
        msgs = []
        for j in sel.tolist():
            body = topics[j] + f'{{"t":{temp[j]:.2f},"h":{hum[j]:.1f},"bat":{bat[j]}}}'.encode()
            msgs.append(b"\x30" + bytes([len(body)]) + body)
        tcp.write(
            0, dt=(period * _S * rng.uniform(0.9, 1.1, n)).astype(np.int64), sel=sel, text=msgs
        )
        ping_ = sel[rng.random(sel.size) < 0.05]
        tcp.write(0, dt=1000, sel=ping_, text=b"\xc0\x00")
        tcp.write(1, dt=rtt, sel=ping_, text=b"\xd0\x00")
    tcp.emit(sensors, brokers, 1883, rtt)


def ping(ctx: Ctx) -> None:
    """ICMP echo requests and replies (Linux 56-byte, Windows 32-byte payloads)."""
    rng = ctx.rng
    client = _client(ctx)
    target = ctx.net.pick(str(rng.choice(["router", "internet", "fileserver"])))
    got = new_flow_port(ctx, client, target, 0, 1, sport=0)
    if got is None:
        return
    flow, _ = got
    n = int(rng.integers(3, 12))
    t0 = _start(ctx, n * _S)
    rtt = _rtt(ctx, target)
    req_t = t0 + np.arange(n) * _S + rng.integers(0, 2000, n)
    ts = np.stack([req_t, req_t + rtt]).T.ravel()
    rev = np.tile([False, True], n)
    ident = int(rng.integers(1, 65536))
    seqs = np.repeat(np.arange(1, n + 1), 2)
    data = (
        b"abcdefghijklmnopqrstuvwabcdefghi"
        if client.stack.name == "windows"
        else ctx.rand_bytes(8) + bytes(range(16, 64))
    )
    flags = np.tile([8, 0], n)
    emit_pair(
        ctx,
        flow,
        client,
        target,
        0,
        0,
        1,
        ts,
        rev,
        [data] * (2 * n),
        flags=flags,
        seq=(ident << 16) | seqs,
    )


def syn_retry(ctx: Ctx, n: int) -> None:
    """Connection attempts to an unreachable or closed service: SYN retransmissions, or RST."""
    rng = ctx.rng
    clients = _pick_many(ctx, ["windows", "linux", "camera", "macos"], n)
    servers = _pick_many(ctx, ["internet"], n)
    rtt = _rtts(ctx, servers)
    dport = np.array([443, 80, 8080, 5223, 993])[rng.integers(0, 5, n)]
    tcp = TcpBatch(ctx, n)
    rst = rng.random(n) < 0.3
    tries = np.array([3 if h.stack.name != "windows" else 2 for h in clients])
    retx = np.where(rst, 0, rng.integers(0, 1 << 30, n) % tries + 1)
    tcp.pkt(0, SYN)
    tcp.pkt(1, RST | ACK, dt=rtt, sel=rst)
    for i, gap in enumerate([1, 2, 4]):
        tcp.pkt(0, SYN, dt=gap * _S, sel=retx > i)
    tcp.emit(clients, servers, dport, rtt)


def iot_poll(ctx: Ctx, n: int) -> None:
    """Cameras polling their cloud over many short HTTP/1.1 connections (Connection: close)."""
    rng = ctx.rng
    cams, clouds = _pick_many(ctx, ["camera"], n), _pick_many(ctx, ["internet"], n)
    period = rng.integers(5, 40, n) * _S
    count = rng.integers(3, 15, n)
    start = rng.integers(0, np.maximum(1, ctx.duration_us - 10 * period))
    series = np.repeat(np.arange(n), count)
    m = series.size
    step = period[series] + rng.integers(0, _S, m)
    first = np.cumsum(count) - count
    before = np.cumsum(step) - step  # steps before each connection, all series
    t0 = start[series] + before - before[first][series]
    cam = [cams[i] for i in series.tolist()]
    cloud = [clouds[i] for i in series.tolist()]
    rtt = _rtts(ctx, cloud)
    tcp = TcpBatch(ctx, m)
    tcp.handshake(rtt)
    reqs = [
        f"GET /api/v1/heartbeat?uid={h.mac & 0xFFFFFF:06x} HTTP/1.1\r\nHost: p2p.cam-cloud.net\r\n"
        "User-Agent: Wget\r\nConnection: close\r\n\r\n".encode()
        for h in cam
    ]
    tcp.write(0, dt=300, text=reqs)
    body = rng.integers(20, 200, m)
    heads = [_http_head(int(b), server="openresty") for b in body]
    tcp.write(1, body + np.array([len(h) for h in heads]), dt=rtt + 2000, text=heads)
    tcp.close(1, rtt, dt=100)
    tcp.emit(cam, cloud, 80, rtt, t0=t0)


def _one_by_one(fn: Callable[[Ctx], None]) -> Callable[[Ctx, int], None]:
    """A batch generator from a one-session generator."""

    def run(ctx: Ctx, n: int) -> None:
        for _ in range(n):
            fn(ctx)

    return run


# Benign kinds: share of benign packets, generator of n sessions, first guess of packets
# per session (batch sizes adapt to what the kind really gives).
KINDS: dict[str, tuple[float, Callable[[Ctx, int], None], float]] = {
    "tls": (0.30, web_tls, 40.0),
    "http": (0.14, web_http, 25.0),
    "dns": (0.13, dns_burst, 15.0),
    "ssh": (0.10, ssh_session, 150.0),
    "rtsp": (0.08, _one_by_one(camera_stream), 5000.0),
    "mqtt": (0.10, mqtt, 80.0),
    "ntp": (0.02, _one_by_one(ntp), 5.0),
    "ping": (0.03, _one_by_one(ping), 14.0),
    "syn_retry": (0.03, syn_retry, 3.0),
    "iot_poll": (0.07, iot_poll, 100.0),
}


def generate_benign(ctx: Ctx, budget: int) -> None:
    """Record exactly ``budget`` benign packets (the last sessions may be cut short)."""
    shares = np.array([w for w, _, _ in KINDS.values()])
    counts = split_counts(budget, shares)
    carry = 0
    for (_, fn, per), n in zip(KINDS.values(), counts, strict=True):
        ctx.rec.begin("benign", n + carry)
        _fill(ctx, fn, per)
        carry = ctx.rec.remaining
    if carry:  # a kind that could not place all its packets: top up with HTTPS
        ctx.rec.begin("benign", carry)
        _fill(ctx, web_tls, 40.0)


def _fill(ctx: Ctx, fn: Callable[[Ctx, int], None], per: float) -> None:
    """Generate sessions in batches sized from the packets per session seen so far."""
    stall = 0
    made = sessions = 0
    while ctx.rec.remaining > 0 and stall < 20:
        before = ctx.rec.remaining
        n = int(min(20_000, max(1, np.ceil(before / per * 1.05))))
        fn(ctx, n)
        got = before - ctx.rec.remaining
        made, sessions = made + got, sessions + n
        per = max(1.0, made / sessions)
        stall = stall + 1 if got == 0 else 0


def split_counts(total: int, shares: np.ndarray) -> list[int]:
    """Integers proportional to ``shares`` summing to ``total`` (largest remainder)."""
    raw = shares / shares.sum() * total
    out = np.floor(raw).astype(np.int64)
    order = np.argsort(-(raw - out), kind="stable")
    out[order[: total - int(out.sum())]] += 1
    return [int(x) for x in out]
