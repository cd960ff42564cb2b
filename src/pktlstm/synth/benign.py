"""Benign traffic: web (HTTP, TLS), DNS, NTP, SSH, camera RTSP/RTP, MQTT, ping, and look-alikes."""

from __future__ import annotations

import struct
from collections.abc import Callable

import numpy as np

from pktlstm.synth.hosts import Host
from pktlstm.synth.session import ACK, RST, SYN, Ctx, TcpConv, emit_pair, new_flow_port, open_tcp

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


def web_http(ctx: Ctx) -> None:
    """A browser page over plain HTTP: keep-alive requests, responses, FIN or RST close."""
    client, server = _client(ctx), ctx.net.pick("internet")
    rtt = _rtt(ctx, server)
    conv = open_tcp(ctx, client, server, 80, _start(ctx, 60 * _S), rtt)
    if conv is None:
        return
    tcp, flow = conv
    rng = ctx.rng
    tcp.handshake()
    site, ua = str(rng.choice(SITES)), BROWSER_UA[int(rng.integers(len(BROWSER_UA)))]
    for _ in range(int(rng.integers(1, 7))):
        tcp.write(
            0, http_request(site, str(rng.choice(PATHS)), ua), dt=int(rng.exponential(2 * _S))
        )
        tcp.write(1, http_response(ctx, _body(ctx)), dt=rtt + int(rng.exponential(20_000)))
    r = rng.random()
    if r < 0.5:
        tcp.close(int(rng.integers(2)), dt=int(rng.exponential(5 * _S)))
    elif r < 0.8:
        tcp.reset(0, dt=int(rng.exponential(3 * _S)))
    tcp.emit(flow)


def _tls_record(ctx: Ctx, ctype: int, n: int, prefix: bytes = b"") -> bytes:
    body = prefix + ctx.rand_bytes(max(0, n - 5 - len(prefix)))
    return bytes([ctype, 3, 3]) + struct.pack("!H", len(body)) + body


def web_tls(ctx: Ctx) -> None:
    """HTTPS: ClientHello/ServerHello sizes, encrypted requests and responses, close_notify."""
    client, server = _client(ctx), ctx.net.pick("internet")
    rtt = _rtt(ctx, server)
    conv = open_tcp(ctx, client, server, 443, _start(ctx, 90 * _S), rtt)
    if conv is None:
        return
    tcp, flow = conv
    rng = ctx.rng
    tcp.handshake()
    hello = int(rng.choice([517, 517, 583, 252, 289, 1780]))
    tcp.write(0, _tls_record(ctx, 22, hello, b"\x01\x00"), dt=int(rng.integers(100, 2000)))
    tcp.write(1, _tls_record(ctx, 22, int(rng.integers(1200, 2400)), b"\x02\x00"), dt=rtt)
    tcp.write(0, _tls_record(ctx, 20, 6) + _tls_record(ctx, 23, int(rng.integers(58, 90))), dt=500)
    for _ in range(int(rng.integers(1, 9))):
        tcp.write(
            0, _tls_record(ctx, 23, int(rng.integers(90, 700))), dt=int(rng.exponential(1.5 * _S))
        )
        tcp.write(1, _tls_record(ctx, 23, _body(ctx) + 30), dt=rtt + int(rng.exponential(30_000)))
    r = rng.random()
    if r < 0.6:
        tcp.write(0, _tls_record(ctx, 21, 31), dt=int(rng.exponential(10 * _S)))
        tcp.close(0, dt=200)
    elif r < 0.8:
        tcp.reset(0, dt=int(rng.exponential(5 * _S)))
    tcp.emit(flow)


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


def dns_burst(ctx: Ctx) -> None:
    """A page load's lookups: several names in a short burst (some CDN labels look random)."""
    rng = ctx.rng
    client = ctx.net.pick(str(rng.choice(["windows", "macos", "linux", "camera", "windows"])))
    resolver = ctx.net.hosts["router"][0]
    t = _start(ctx, 2 * _S)
    flows, sports, ts, pay = [], [], [], []
    for _ in range(int(rng.integers(1, 12))):
        name = str(rng.choice(SITES))
        if rng.random() < 0.3:
            label = "".join(
                rng.choice(list("abcdefghijklmnopqrstuvwxyz0123456789"), int(rng.integers(8, 20)))
            )
            name = f"{label}.cloudfront.net"
        qtypes = [1, 28] if client.stack.name in ("windows", "macos") else [1]
        for qtype in qtypes:
            got = new_flow_port(ctx, client, resolver, 53, 17)
            if got is None:
                continue
            flow, sport = got
            q = dns_query(int(rng.integers(0, 65536)), name, qtype)
            a = dns_answer(ctx, q, qtype, rcode=3 if rng.random() < 0.04 else 0)
            t += int(rng.integers(50, 30_000))
            flows += [flow, flow]
            sports += [sport, sport]
            ts += [t, t + int(rng.integers(300, 60_000))]
            pay += [q, a]
    if flows:
        rev = np.tile([False, True], len(flows) // 2)
        emit_pair(
            ctx, np.array(flows), client, resolver, np.array(sports), 53, 17, np.array(ts), rev, pay
        )


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


def ssh_session(ctx: Ctx) -> None:
    """Interactive SSH: handshake, public-key login, keystrokes with echoes, command output."""
    rng = ctx.rng
    client = ctx.net.pick(str(rng.choice(["linux", "macos", "windows"])))
    server = ctx.net.pick("sshd") if rng.random() < 0.6 else ctx.net.pick("internet")
    rtt = _rtt(ctx, server)
    conv = open_tcp(ctx, client, server, 22, _start(ctx, 120 * _S), rtt)
    if conv is None:
        return
    tcp, flow = conv
    tcp.handshake()
    _ssh_handshake(ctx, tcp, b"SSH-2.0-OpenSSH_9.6\r\n", rtt)
    tcp.write(0, int(rng.choice([412, 604])), dt=int(rng.integers(5000, 90000)))
    tcp.write(1, 36, dt=rtt)
    for _ in range(int(rng.integers(5, 60))):
        tcp.pkt(0, 0x18, ctx.rand_bytes(36), dt=int(rng.exponential(250_000)))
        tcp.pkt(1, 0x18, ctx.rand_bytes(36), dt=rtt)
        if rng.random() < 0.5:
            tcp.pkt(0, ACK, dt=int(rng.integers(100, 40000)))
        if rng.random() < 0.15:
            tcp.write(1, int(rng.integers(100, 3000)), dt=int(rng.integers(1000, 200000)))
    tcp.close(0, dt=int(rng.exponential(2 * _S)))
    tcp.emit(flow)


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


def mqtt(ctx: Ctx) -> None:
    """A sensor's MQTT session to the broker: CONNECT, periodic PUBLISH, PINGREQ."""
    rng = ctx.rng
    sensor = ctx.net.pick(str(rng.choice(["sensor", "sensor", "camera"])))
    broker = ctx.net.pick("broker")
    rtt = _rtt(ctx, broker)
    length = int(rng.uniform(0.3, 0.95) * ctx.duration_us)
    conv = open_tcp(ctx, sensor, broker, 1883, _start(ctx, length), rtt)
    if conv is None:
        return
    tcp, flow = conv
    tcp.handshake()
    cid = f"sensor-{sensor.ip & 255:03d}".encode()
    tcp.write(
        0,
        b"\x10"
        + bytes([12 + len(cid)])
        + b"\x00\x04MQTT\x04\x02\x00\x3c"
        + struct.pack("!H", len(cid))
        + cid,
        dt=2000,
    )
    tcp.write(1, b"\x20\x02\x00\x00", dt=rtt)
    period = float(rng.choice([2, 5, 10, 30]))
    t_end = tcp.t + length
    while tcp.t < t_end and len(tcp.dirs) < 4000:
        topic = b"site/telemetry/" + cid
        msg = f'{{"t":{rng.normal(21, 3):.2f},"h":{rng.uniform(20, 80):.1f},"bat":{int(rng.integers(50, 100))}}}'.encode()
        body = struct.pack("!H", len(topic)) + topic + msg
        tcp.write(
            0, b"\x30" + bytes([len(body)]) + body, dt=int(period * _S * rng.uniform(0.9, 1.1))
        )
        if rng.random() < 0.05:
            tcp.write(0, b"\xc0\x00", dt=1000)
            tcp.write(1, b"\xd0\x00", dt=rtt)
    tcp.emit(flow)


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


def syn_retry(ctx: Ctx) -> None:
    """Connection attempts to an unreachable or closed service: SYN retransmissions, or RST."""
    rng = ctx.rng
    client = ctx.net.pick(str(rng.choice(["windows", "linux", "camera", "macos"])))
    server = ctx.net.pick("internet")
    rtt = _rtt(ctx, server)
    conv = open_tcp(
        ctx, client, server, int(rng.choice([443, 80, 8080, 5223, 993])), _start(ctx, 10 * _S), rtt
    )
    if conv is None:
        return
    tcp, flow = conv
    if rng.random() < 0.3:
        tcp.pkt(0, SYN)
        tcp.pkt(1, RST | ACK, dt=rtt)
    else:
        gaps = [1, 2, 4] if client.stack.name != "windows" else [1, 2]
        tcp.pkt(0, SYN)
        for g in gaps[: int(rng.integers(1, len(gaps) + 1))]:
            tcp.pkt(0, SYN, dt=g * _S)
    tcp.emit(flow)


def iot_poll(ctx: Ctx) -> None:
    """A camera polling its cloud over many short HTTP/1.1 connections (Connection: close)."""
    rng = ctx.rng
    cam, cloud = ctx.net.pick("camera"), ctx.net.pick("internet")
    period = int(rng.integers(5, 40)) * _S
    t = _start(ctx, 10 * period)
    for _ in range(int(rng.integers(3, 15))):
        rtt = _rtt(ctx, cloud)
        conv = open_tcp(ctx, cam, cloud, 80, t, rtt)
        if conv is None:
            return
        tcp, flow = conv
        tcp.handshake()
        tcp.write(
            0,
            f"GET /api/v1/heartbeat?uid={cam.mac & 0xFFFFFF:06x} HTTP/1.1\r\nHost: p2p.cam-cloud.net\r\nUser-Agent: Wget\r\nConnection: close\r\n\r\n".encode(),
            dt=300,
        )
        tcp.write(
            1, http_response(ctx, int(rng.integers(20, 200)), server="openresty"), dt=rtt + 2000
        )
        tcp.close(1, dt=100)
        tcp.emit(flow)
        t += period + int(rng.integers(0, _S))
        if ctx.rec.remaining <= 0 or t > ctx.duration_us:
            return


# Benign kinds and their share of benign packets.
KINDS: dict[str, tuple[float, Callable[[Ctx], None]]] = {
    "tls": (0.30, web_tls),
    "http": (0.14, web_http),
    "dns": (0.13, dns_burst),
    "ssh": (0.10, ssh_session),
    "rtsp": (0.08, camera_stream),
    "mqtt": (0.10, mqtt),
    "ntp": (0.02, ntp),
    "ping": (0.03, ping),
    "syn_retry": (0.03, syn_retry),
    "iot_poll": (0.07, iot_poll),
}


def generate_benign(ctx: Ctx, budget: int) -> None:
    """Record exactly ``budget`` benign packets (the last sessions may be cut short)."""
    shares = np.array([w for w, _ in KINDS.values()])
    counts = split_counts(budget, shares)
    carry = 0
    for (_, fn), n in zip(KINDS.values(), counts, strict=True):
        ctx.rec.begin("benign", n + carry)
        _fill(ctx, fn)
        carry = ctx.rec.remaining
    if carry:  # a kind that could not place all its packets: top up with HTTPS
        ctx.rec.begin("benign", carry)
        _fill(ctx, web_tls)


def _fill(ctx: Ctx, fn: Callable[[Ctx], None]) -> None:
    stall = 0
    while ctx.rec.remaining > 0 and stall < 200:
        before = ctx.rec.remaining
        fn(ctx)
        stall = stall + 1 if ctx.rec.remaining == before else 0


def split_counts(total: int, shares: np.ndarray) -> list[int]:
    """Integers proportional to ``shares`` summing to ``total`` (largest remainder)."""
    raw = shares / shares.sum() * total
    out = np.floor(raw).astype(np.int64)
    order = np.argsort(-(raw - out), kind="stable")
    out[order[: total - int(out.sum())]] += 1
    return [int(x) for x in out]
