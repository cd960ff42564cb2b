"""Malicious traffic: Mirai's attack vectors, its telnet scanner and brute force, SSH brute force, nmap."""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pktlstm.synth.benign import dns_answer, dns_query, http_response, split_counts
from pktlstm.synth.frames import MAX_OPTS, Packets, _be, ip_packets
from pktlstm.synth.hosts import Host
from pktlstm.synth.session import ACK, FIN, PSH, RST, SYN, Ctx, emit_pair, open_tcp

_S = 1_000_000  # microseconds per second

# Mirai's HTTP flood user agents (table.c) and a few of its telnet credentials (scanner.c).
MIRAI_UA = [
    "Mozilla/5.0 (Windows NT 10.0; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/51.0.2704.103 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/52.0.2743.116 Safari/537.36",
    "Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/51.0.2704.103 Safari/537.36",
    "Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/52.0.2743.116 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_11_6) AppleWebKit/601.7.7 (KHTML, like Gecko) Version/9.1.2 Safari/601.7.7",
]
CREDS = [
    ("root", "xc3511"), ("root", "vizxv"), ("root", "admin"), ("admin", "admin"), ("root", "888888"),
    ("root", "xmhdipc"), ("root", "default"), ("root", "juantech"), ("root", "123456"), ("root", "54321"),
    ("support", "support"), ("root", ""), ("admin", "password"), ("root", "root"), ("root", "12345"),
    ("user", "user"), ("admin", ""), ("root", "pass"), ("admin", "admin1234"), ("root", "1111"),
]  # fmt: skip
VSE_PAYLOAD = b"\xff\xff\xff\xffTSource Engine Query\x00"
TOP_PORTS = [21, 22, 23, 25, 53, 80, 110, 111, 135, 139, 143, 443, 445, 554, 993, 995, 1723, 1883, 3306, 3389, 5900, 8080, 8443, 8888]  # fmt: skip


def _episodes(ctx: Ctx, budget: int) -> list[tuple[int, int, int]]:
    """Split an attack's packets into 1-3 episodes: (start us, length us, packets)."""
    rng = ctx.rng
    m = 1 + int(budget > 300) + int(budget > 3000)
    counts = split_counts(budget, rng.dirichlet(np.ones(m)) + 0.3)
    out = []
    for n in counts:
        length = int(rng.uniform(0.03, 0.2) * ctx.duration_us)
        out.append((int(rng.integers(0, max(1, ctx.duration_us - length))), length, n))
    return out


def _times(ctx: Ctx, start: int, length: int, k: int) -> NDArray[np.int64]:
    return np.sort(ctx.rng.integers(start, start + max(length, 1), k))


def _bots(ctx: Ctx) -> list[Host]:
    bots = ctx.net.infected()
    n = int(ctx.rng.integers(1, 4))
    return [bots[int(i)] for i in ctx.rng.choice(len(bots), n, replace=False)]


def _rand_payload(ctx: Ctx, k: int, size: int) -> tuple[NDArray[np.uint8], NDArray[np.int64]]:
    return ctx.rng.integers(0, 256, k * size, dtype=np.uint8), np.full(k, size, dtype=np.int64)


def _size(ctx: Ctx) -> int:
    """Flood payload size: Mirai's default 512 or an operator's smaller ``len``."""
    return int(
        ctx.rng.choice([512, 256, 128, 64, 32, 16, 0], p=[0.15, 0.2, 0.2, 0.2, 0.1, 0.1, 0.05])
    )


def _pool(
    ctx: Ctx,
    srcs: NDArray[np.int64],
    sports: NDArray[np.int64],
    dst: int,
    dports: NDArray[np.int64],
    proto: int,
) -> NDArray[np.int64]:
    """Register flows (src_i, sport_i, dst, dport_i); returns row indices that got a flow,
    with the flow ids in ``ctx`` order (rows whose 5-tuple was taken are dropped)."""
    ids = np.full(srcs.shape[0], -1, dtype=np.int64)
    for i in range(srcs.shape[0]):
        f = ctx.rec.new_flow(int(srcs[i]), int(sports[i]), dst, int(dports[i]), proto)
        ids[i] = -1 if f is None else f
    return ids


class _Flood:
    """Packets of one flood episode from bots to a victim over a bounded set of flows."""

    def __init__(
        self, ctx: Ctx, n_flows: int, victim: Host, proto: int, dport: int | None, spoof: bool
    ) -> None:
        rng = ctx.rng
        self.ctx, self.victim, self.proto, self.spoof = ctx, victim, proto, spoof
        bots = _bots(ctx)
        bot_i = rng.integers(0, len(bots), n_flows)
        srcs = np.array([bots[i].ip for i in bot_i], dtype=np.int64)
        if spoof:
            srcs = rng.integers(0x0B000000, 0xDF000000, n_flows)
        sports = rng.integers(1024, 65536, n_flows)
        dports = np.full(n_flows, dport) if dport is not None else rng.integers(1, 65536, n_flows)
        ids = _pool(ctx, srcs, sports, victim.ip, dports, proto)
        keep = ids >= 0
        self.flow, self.src, self.sport, self.dport = (
            ids[keep],
            srcs[keep],
            sports[keep],
            dports[keep],
        )
        self.bot = [bots[i] for i in bot_i[keep]]
        self.smac = np.array([b.mac for b in self.bot], dtype=np.uint64)
        self.dmac = ctx.net.macs(self.bot[0], victim)[1] if self.bot else 0

    def send(self, ts: NDArray[np.int64], payload: Any, **cols: Any) -> NDArray[np.int64]:
        """Attack packets at times ``ts`` on random flows of the pool; returns the flow rows."""
        rng, k = self.ctx.rng, ts.shape[0]
        row: NDArray[np.int64] = np.asarray(rng.integers(0, self.flow.shape[0], k), dtype=np.int64)
        base: dict[str, Any] = {
            "src": self.src[row], "dst": self.victim.ip, "smac": self.smac[row], "dmac": self.dmac,
            "sport": self.sport[row], "dport": self.dport[row], "proto": self.proto, "ttl": 64,
            "df": 0, "ip_id": rng.integers(0, 65536, k),
        }  # fmt: skip
        base.update(cols)
        self.ctx.rec.add(self.flow[row], ts, payload, **base)
        return row

    def reply(
        self, row: NDArray[np.int64], ts: NDArray[np.int64], payload: Any, **cols: Any
    ) -> None:
        """The victim's answers on flows ``row`` (only sent when sources are real)."""
        v, k = self.victim, row.shape[0]
        base: dict[str, Any] = {
            "src": v.ip,
            "dst": self.src[row],
            "smac": self.ctx.net.macs(v, self.bot[0])[0],
            "dmac": self.smac[row],
            "sport": self.dport[row],
            "dport": self.sport[row],
            "proto": self.proto,
            "ttl": v.ttl,
            "df": int(v.stack.df),
            "ip_id": self.ctx.rng.integers(0, 65536, k),
        }
        base.update(cols)
        self.ctx.rec.add(self.flow[row], ts, payload, **base)


def _victim(ctx: Ctx) -> Host:
    return ctx.net.external(ctx.rng, "server_windows" if ctx.rng.random() < 0.2 else "server_linux")


def _mirai_syn_opts(ctx: Ctx, k: int) -> NDArray[np.uint8]:
    """attack_tcp_syn's options: MSS 1400+rand, SACK_PERM, TS(rand, 0), NOP, WS 6."""
    o = np.zeros((k, MAX_OPTS), dtype=np.uint8)
    o[:, 0:2] = (2, 4)
    o[:, 2:4] = _be(1400 + ctx.rng.integers(0, 16, k), 2)
    o[:, 4:8] = (4, 2, 8, 10)
    o[:, 8:12] = _be(ctx.rng.integers(0, 1 << 32, k), 4)
    o[:, 16:20] = (1, 3, 3, 6)
    return o


def _answered(k: int, frac: float, per: int) -> tuple[int, int]:
    """(requests, answered) with requests + per * answered == k."""
    ans = int(k * frac / (1 + per * frac))
    return k - per * ans, ans


def syn_flood(ctx: Ctx, budget: int) -> None:
    rng = ctx.rng
    for start, length, k in _episodes(ctx, budget):
        victim, spoof = _victim(ctx), rng.random() < 0.3
        dport = int(rng.choice([80, 443, 22])) if rng.random() < 0.7 else None
        flood = _Flood(ctx, max(1, min(k // 6, 2000)), victim, 6, dport, spoof)
        per = 0 if spoof else (2 if dport else 1)
        n, m = _answered(k, 0.25, per) if per else (k, 0)
        ts = _times(ctx, start, length, n)
        seq = rng.integers(0, 1 << 32, n)
        row = flood.send(ts, [b""] * n, seq=seq, flags=SYN, win=rng.integers(0, 65536, n), df=1,
                         opts=_mirai_syn_opts(ctx, n), opt_len=20)  # fmt: skip
        if m == 0:
            continue
        pick = rng.choice(n, m, replace=False)
        t_rep = ts[pick] + int(rng.integers(10_000, 120_000))
        if dport:  # open port: SYN-ACK, then the bot's kernel resets (no socket)
            flood.reply(row[pick], t_rep, [b""] * m, seq=rng.integers(0, 1 << 32, m), ack=seq[pick] + 1,
                        flags=SYN | ACK, win=victim.stack.syn_window, opts=_mss_opts(m, 1460), opt_len=4)  # fmt: skip
            flood.send(t_rep + 60, [b""] * m, seq=seq[pick] + 1, flags=RST, win=0, df=1, ip_id=0)
        else:
            flood.reply(row[pick], t_rep, [b""] * m, ack=seq[pick] + 1, flags=RST | ACK, win=0)


def _mss_opts(k: int, mss: int) -> NDArray[np.uint8]:
    o = np.zeros((k, MAX_OPTS), dtype=np.uint8)
    o[:, 0:2] = (2, 4)
    o[:, 2:4] = _be(np.full(k, mss), 2)
    return o


def ack_flood(ctx: Ctx, budget: int) -> None:
    rng = ctx.rng
    for start, length, k in _episodes(ctx, budget):
        victim, spoof = _victim(ctx), rng.random() < 0.3
        dport = int(rng.choice([80, 443])) if rng.random() < 0.5 else None
        flood = _Flood(ctx, max(1, min(k // 6, 2000)), victim, 6, dport, spoof)
        n, m = _answered(k, 0.15, 1) if not spoof else (k, 0)
        ts = _times(ctx, start, length, n)
        ack = rng.integers(0, 1 << 32, n)
        row = flood.send(ts, _rand_payload(ctx, n, _size(ctx)), seq=rng.integers(0, 1 << 32, n), ack=ack,
                         flags=ACK, win=rng.integers(0, 65536, n))  # fmt: skip
        if m:
            pick = rng.choice(n, m, replace=False)
            flood.reply(
                row[pick],
                ts[pick] + int(rng.integers(10_000, 120_000)),
                [b""] * m,
                seq=ack[pick],
                flags=RST,
                win=0,
            )


def udp_flood(ctx: Ctx, budget: int) -> None:
    rng = ctx.rng
    for start, length, k in _episodes(ctx, budget):
        dport = int(rng.choice([53, 80, 443, 123])) if rng.random() < 0.3 else None
        flood = _Flood(ctx, max(1, min(k // 6, 2000)), _victim(ctx), 17, dport, rng.random() < 0.2)
        flood.send(_times(ctx, start, length, k), _rand_payload(ctx, k, _size(ctx)))


def udpplain_flood(ctx: Ctx, budget: int) -> None:
    """attack_udp_plain: ordinary UDP sockets, so kernel headers (DF, counting IP ids)."""
    rng = ctx.rng
    for start, length, k in _episodes(ctx, budget):
        victim = _victim(ctx)
        socks = []
        for bot in _bots(ctx):
            dport = (
                int(rng.integers(1, 65536))
                if rng.random() < 0.5
                else int(rng.choice([80, 53, 443]))
            )
            sport = bot.ephemeral_port()
            f = ctx.rec.new_flow(bot.ip, sport, victim.ip, dport, 17)
            if f is not None:
                socks.append((f, bot, sport, dport))
        size = _size(ctx) or 512
        for (f, bot, sport, dport), n in zip(
            socks, split_counts(k, np.ones(len(socks))), strict=True
        ):
            ts = _times(ctx, start, length, n)
            emit_pair(ctx, f, bot, victim, sport, dport, 17, ts, np.zeros(n, dtype=bool),
                      _rand_payload(ctx, n, size))  # fmt: skip


def vse_flood(ctx: Ctx, budget: int) -> None:
    rng = ctx.rng
    for start, length, k in _episodes(ctx, budget):
        victim, spoof = _victim(ctx), rng.random() < 0.2
        flood = _Flood(ctx, max(1, min(k // 6, 2000)), victim, 17, 27015, spoof)
        n, m = _answered(k, 0.1, 1) if not spoof else (k, 0)
        ts = _times(ctx, start, length, n)
        row = flood.send(ts, [VSE_PAYLOAD] * n)
        if m:
            pick = rng.choice(n, m, replace=False)
            info = b"\xff\xff\xff\xffI\x11" + ctx.rand_bytes(int(rng.integers(60, 160)))
            flood.reply(row[pick], ts[pick] + rng.integers(10_000, 150_000, m), [info] * m)


def dns_water_torture(ctx: Ctx, budget: int) -> None:
    """attack_udp_dns: random 12-char labels under the target domain, sent to the resolver."""
    rng = ctx.rng
    letters = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz0123456789", dtype=np.uint8)
    for start, length, k in _episodes(ctx, budget):
        resolver = ctx.net.hosts["router"][0] if rng.random() < 0.6 else ctx.net.pick("internet")
        domain = str(
            rng.choice(
                ["example-shop.com", "bank-online.net", "game-server.org", "news-portal.info"]
            )
        )
        flood = _Flood(ctx, max(1, min(k // 4, 2000)), resolver, 17, 53, False)
        n, m = _answered(k, 0.5, 1)
        labels = letters[rng.integers(0, letters.size, (n, 12))]
        txids = rng.integers(0, 65536, n)
        qs = [
            dns_query(int(txids[i]), labels[i].tobytes().decode() + "." + domain) for i in range(n)
        ]
        ts = _times(ctx, start, length, n)
        row = flood.send(ts, qs)
        pick = np.sort(rng.choice(n, m, replace=False))
        ans = [dns_answer(ctx, qs[i], 1, rcode=3 if rng.random() < 0.7 else 2) for i in pick]
        flood.reply(row[pick], ts[pick] + rng.integers(2_000, 400_000, m), ans)


def _gre(ctx: Ctx, budget: int, eth: bool) -> None:
    """attack_gre_ip / attack_gre_eth: GRE carrying IPv4/UDP (optionally inside Ethernet)."""
    rng = ctx.rng
    for start, length, k in _episodes(ctx, budget):
        victim = _victim(ctx)
        flows = []
        for bot in _bots(ctx):
            f = ctx.rec.new_flow(bot.ip, 0, victim.ip, 0, 47)
            if f is not None:
                flows.append((f, bot))
        size = _size(ctx)
        inner_src = int(rng.integers(0, 1 << 32))
        const = rng.random() < 0.5
        # Inner payload bytes the capture can show (outer Eth+IP, GRE, inner Eth, IP+UDP);
        # the rest are zeros, so that inner checksums hold for the captured bytes.
        seen = int(np.clip(ctx.snaplen - 34 - 4 - 14 * eth - 28, 0, size))
        for (f, bot), n in zip(flows, split_counts(k, np.ones(len(flows))), strict=True):
            outer_id = rng.integers(0, 65536, n)
            inner = Packets(
                ts=np.zeros(n, np.int64), smac=np.zeros(n, np.uint64), dmac=np.zeros(n, np.uint64),
                src=np.full(n, inner_src, np.uint32),
                dst=np.full(n, victim.ip if const else (~(inner_src - 1024)) & 0xFFFFFFFF, np.uint32),
                proto=np.full(n, 17, np.uint8), ttl=np.full(n, 64, np.uint8), tos=np.zeros(n, np.uint8),
                df=np.ones(n, np.uint8), ip_id=((~(outer_id - 1000)) & 0xFFFF).astype(np.uint16),
                sport=rng.integers(0, 65536, n).astype(np.uint16), dport=rng.integers(0, 65536, n).astype(np.uint16),
                seq=np.zeros(n, np.uint32), ack=np.zeros(n, np.uint32), flags=np.zeros(n, np.uint8),
                win=np.zeros(n, np.uint16), opt_len=np.zeros(n, np.uint8), opts=np.zeros((n, MAX_OPTS), np.uint8),
                pay_len=np.full(n, size, np.int64), pay_cap=np.full(n, seen, np.int64),
                pay_start=np.arange(n, dtype=np.int64) * seen, payload=rng.integers(0, 256, n * seen, dtype=np.uint8),
            )  # fmt: skip
            flat, lens = ip_packets(inner)
            if eth:
                macs = rng.integers(0, 256, (n, 12), dtype=np.uint8)
                head = np.concatenate([np.tile(np.frombuffer(b"\x00\x00\x65\x58", np.uint8), (n, 1)), macs,
                                       np.tile(np.frombuffer(b"\x08\x00", np.uint8), (n, 1))], axis=1)  # fmt: skip
            else:
                head = np.tile(np.frombuffer(b"\x00\x00\x08\x00", np.uint8), (n, 1))
            hl = head.shape[1]
            body = flat.reshape(n, -1)  # all inner packets have the same length
            payload = np.concatenate([head, body], axis=1).ravel()
            ts = _times(ctx, start, length, n)
            ctx.rec.add(
                f, ts, (payload, lens + hl), src=bot.ip, dst=victim.ip, smac=bot.mac,
                dmac=ctx.net.router_mac, proto=47, ttl=64, df=1, ip_id=outer_id,
            )  # fmt: skip


def greip_flood(ctx: Ctx, budget: int) -> None:
    _gre(ctx, budget, eth=False)


def greeth_flood(ctx: Ctx, budget: int) -> None:
    _gre(ctx, budget, eth=True)


def stomp_flood(ctx: Ctx, budget: int) -> None:
    """attack_tcp_stomp: a real connection, then ACK|PSH floods with its learnt seq/ack."""
    rng = ctx.rng
    for start, length, k in _episodes(ctx, budget):
        victim = _victim(ctx)
        dport = int(rng.choice([80, 443, 8080]))
        size = _size(ctx) or 768
        for bot, n in zip(bots := _bots(ctx), split_counts(k, np.ones(len(bots))), strict=True):
            got = open_tcp(ctx, bot, victim, dport, start, int(rng.uniform(10_000, 120_000)))
            if got is None or n <= 0:
                continue
            tcp, f = got
            tcp.handshake()
            before = ctx.rec.remaining
            tcp.emit(f)
            n -= before - ctx.rec.remaining
            if n <= 0:
                continue
            n_ack = int(n * 0.1)
            n_fl = n - n_ack
            ts = np.sort(rng.integers(tcp.t + 1000, start + length + 1001, n_fl))
            seq0, ack0 = tcp.next_seq()
            emit_pair(ctx, f, bot, victim, tcp.sport, dport, 6, ts, np.zeros(n_fl, dtype=bool),
                      _rand_payload(ctx, n_fl, size), seq=(seq0 + np.arange(n_fl)) & 0xFFFFFFFF, ack=ack0,
                      flags=ACK | PSH, win=rng.integers(0, 65536, n_fl), ip_id=rng.integers(0, 65536, n_fl))  # fmt: skip
            if n_ack:
                t_ack = np.sort(rng.choice(ts, n_ack)) + int(rng.integers(10_000, 120_000))
                emit_pair(ctx, f, bot, victim, tcp.sport, dport, 6, t_ack, np.ones(n_ack, dtype=bool),
                          [b""] * n_ack, seq=ack0, ack=(seq0 + 1) & 0xFFFFFFFF, flags=ACK,
                          win=victim.stack.data_window)  # fmt: skip


def http_flood(ctx: Ctx, budget: int) -> None:
    """attack_app_http: many connections from the bots' ordinary stack, GET / with Mirai's UAs."""
    rng = ctx.rng
    for start, length, k in _episodes(ctx, budget):
        victim = _victim(ctx)
        host = str(rng.choice(["www.victim-shop.com", "api.target.net", "portal.example.org"]))
        bots = _bots(ctx)
        ctx_rem_end = max(0, ctx.rec.remaining - k)
        while ctx.rec.remaining > ctx_rem_end:
            bot = bots[int(rng.integers(len(bots)))]
            rtt = int(rng.uniform(10_000, 150_000))
            got = open_tcp(ctx, bot, victim, 80, int(rng.integers(start, start + length)), rtt)
            if got is None:
                continue
            tcp, f = got
            tcp.handshake()
            ua = MIRAI_UA[int(rng.integers(len(MIRAI_UA)))]
            for _ in range(int(rng.integers(1, 5))):
                req = (f"GET / HTTP/1.1\r\nUser-Agent: {ua}\r\nHost: {host}\r\nConnection: keep-alive\r\n"
                       "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/webp,*/*;q=0.8\r\n"
                       "Accept-Language: en-US,en;q=0.8\r\nContent-Type: application/x-www-form-urlencoded\r\n\r\n").encode()  # fmt: skip
                tcp.write(0, req, dt=int(rng.integers(200, 20_000)))
                if rng.random() < 0.3:
                    tcp.write(
                        1,
                        http_response(ctx, 0, "503 Service Unavailable", "nginx"),
                        dt=rtt + 500_000,
                    )
                else:
                    tcp.write(1, http_response(ctx, int(rng.integers(200, 6000))), dt=rtt + 5000)
            if rng.random() < 0.5:
                tcp.close(0, dt=1000)
            else:
                tcp.reset(0, dt=1000)
            tcp.emit(f)


def telnet_scan(ctx: Ctx, budget: int) -> None:
    """Mirai's scanner: raw SYNs to random IPv4 addresses on 23 (2323 one time in ten),
    sequence number == destination address, fixed source port and window per bot."""
    rng = ctx.rng
    for start, length, k in _episodes(ctx, budget):
        bot = _bots(ctx)[0]
        sport, win = int(rng.integers(1024, 65536)), int(rng.integers(0, 65536))
        n_rst, n_sa = int(k * 0.05), int(k * 0.01)
        n = k - n_rst - 2 * n_sa
        dst = rng.integers(0x01000000, 0xDF000000, n)
        lan = rng.random(n) < 0.05
        dst[lan] = 0x0A000000 + rng.integers(2, 255, int(lan.sum()))
        dport = np.where(rng.integers(0, 10, n) == 0, 2323, 23)
        flows = np.array(
            [
                ctx.rec.new_flow(bot.ip, sport, int(d), int(p), 6) or -1
                for d, p in zip(dst, dport, strict=True)
            ]
        )
        ok = np.flatnonzero(flows >= 0)
        dst, dport, flows = dst[ok], dport[ok], flows[ok]
        n = ok.size
        ts = _times(ctx, start, length, n)
        ctx.rec.add(flows, ts, [b""] * n, src=bot.ip, dst=dst, smac=bot.mac, dmac=ctx.net.router_mac,
                    sport=sport, dport=dport, proto=6, ttl=64, df=0, ip_id=rng.integers(0, 65536, n),
                    seq=dst, flags=SYN, win=win)  # fmt: skip
        for count, synack in ((n_rst, False), (n_sa, True)):
            pick = rng.choice(n, min(count, n), replace=False)
            m = pick.size
            t = ts[pick] + rng.integers(20_000, 300_000, m)
            ttl = np.where(rng.random(m) < 0.8, 64, 128) - rng.integers(6, 24, m)
            ctx.rec.add(flows[pick], t, [b""] * m, src=dst[pick], dst=bot.ip, smac=ctx.net.router_mac, dmac=bot.mac,
                        sport=dport[pick], dport=sport, proto=6, ttl=ttl, df=1, ack=dst[pick] + 1,
                        seq=rng.integers(0, 1 << 32, m) if synack else 0, flags=(SYN | ACK) if synack else (RST | ACK),
                        win=5840 if synack else 0, opts=_mss_opts(m, 1460) if synack else None, opt_len=4 if synack else 0)  # fmt: skip
            if synack:
                ctx.rec.add(flows[pick], t + 80, [b""] * m, src=bot.ip, dst=dst[pick], smac=bot.mac,
                            dmac=ctx.net.router_mac, sport=sport, dport=dport[pick], proto=6, ttl=64, df=1,
                            seq=dst[pick] + 1, flags=RST, win=0)  # fmt: skip


def telnet_bruteforce(ctx: Ctx, budget: int) -> None:
    """Mirai's loader-side login: IAC negotiation, login/password prompts, busybox checks."""
    rng = ctx.rng
    while ctx.rec.remaining > 0:
        bot = _bots(ctx)[0]
        victim = ctx.net.external(rng, "busybox") if rng.random() < 0.8 else ctx.net.pick("camera")
        if victim.ip == bot.ip:
            continue
        rtt = int(rng.uniform(20_000, 200_000)) if victim.role == "internet" else 500
        t = int(rng.integers(0, max(1, ctx.duration_us - 30 * _S)))
        for _ in range(int(rng.integers(1, 6))):
            got = open_tcp(ctx, bot, victim, 23 if rng.random() < 0.9 else 2323, t, rtt)
            if got is None:
                break
            tcp, f = got
            tcp.handshake()
            tcp.write(1, b"\xff\xfd\x01\xff\xfd\x1f\xff\xfb\x01\xff\xfb\x03", dt=rtt // 2 + 5000)
            tcp.write(0, b"\xff\xfc\x01\xff\xfc\x1f\xff\xfe\x01\xff\xfe\x03", dt=300)
            tcp.write(1, b"\r\nlogin: ", dt=rtt + 2000)
            user, pw = CREDS[int(rng.integers(len(CREDS)))]
            tcp.write(0, user.encode() + b"\r\n", dt=int(rng.integers(1000, 50_000)))
            tcp.write(1, b"Password: ", dt=rtt)
            tcp.write(0, pw.encode() + b"\r\n", dt=int(rng.integers(1000, 50_000)))
            if rng.random() < 0.15:
                tcp.write(1, b"\r\nBusyBox v1.19.4 built-in shell (ash)\r\n# ", dt=rtt + 100_000)
                for cmd in (
                    b"enable\r\n",
                    b"system\r\n",
                    b"shell\r\n",
                    b"sh\r\n",
                    b"/bin/busybox ECCHI\r\n",
                ):
                    tcp.write(0, cmd, dt=5000)
                    tcp.write(
                        1, b"ECCHI: applet not found\r\n# " if b"busybox" in cmd else b"# ", dt=rtt
                    )
            else:
                tcp.write(
                    1, b"\r\nLogin incorrect\r\n", dt=rtt + int(rng.integers(500_000, 2_500_000))
                )
            tcp.close(0, dt=int(rng.integers(1000, 30_000)))
            tcp.emit(f)
            t = tcp.t + int(rng.integers(100_000, 2 * _S))
            if ctx.rec.remaining <= 0:
                return


def ssh_bruteforce(ctx: Ctx, budget: int) -> None:
    """Password guessing over SSH: many short sessions, 1-3 failed attempts each."""
    from pktlstm.synth.benign import _ssh_handshake

    rng = ctx.rng
    while ctx.rec.remaining > 0:
        if rng.random() < 0.7:
            attacker, server = ctx.net.external(rng, "server_linux"), ctx.net.pick("sshd")
            rtt = int(rng.uniform(20_000, 250_000))
        else:
            attacker, server = ctx.net.pick("linux"), ctx.net.external(rng, "server_linux")
            rtt = int(rng.uniform(20_000, 250_000))
        banner = str(
            rng.choice(
                ["SSH-2.0-libssh_0.9.6", "SSH-2.0-Go", "SSH-2.0-PUTTY", "SSH-2.0-libssh2_1.9.0"]
            )
        )
        t = int(rng.integers(0, max(1, ctx.duration_us - 60 * _S)))
        for _ in range(int(rng.integers(3, 30))):
            got = open_tcp(ctx, attacker, server, 22, t, rtt)
            if got is None:
                break
            tcp, f = got
            tcp.handshake()
            _ssh_handshake(ctx, tcp, banner.encode() + b"\r\n", rtt)
            for _ in range(int(rng.integers(1, 4))):
                tcp.write(0, int(rng.choice([84, 100, 116])), dt=int(rng.integers(1000, 30_000)))
                tcp.write(
                    1, int(rng.choice([36, 52])), dt=rtt + int(rng.integers(500_000, 2_000_000))
                )
            tcp.close(int(rng.integers(2)), dt=int(rng.integers(1000, 50_000)))
            tcp.emit(f)
            t = tcp.t + int(rng.integers(50_000, 3 * _S))
            if ctx.rec.remaining <= 0:
                return


def port_scan(ctx: Ctx, budget: int) -> None:
    """nmap -sS: raw SYNs (window 1024, MSS only, random TTL 37-59), SYN-ACK or RST replies."""
    rng = ctx.rng
    for start, length, k in _episodes(ctx, budget):
        scanner = ctx.net.hosts["linux"][int(rng.integers(2))]
        target = ctx.net.pick(
            str(rng.choice(["sshd", "nvr", "camera", "fileserver", "windows", "internet"]))
        )
        if target.ip == scanner.ip:
            continue
        opened = set(int(p) for p in rng.choice(TOP_PORTS, 4, replace=False))
        sport = int(rng.integers(32768, 65000))
        ports = np.r_[TOP_PORTS, rng.permutation(np.arange(1, 65536))[:k]]
        rng.shuffle(ports)
        # Each probed port costs: probe + (SYN-ACK + RST) when open, probe + RST when closed,
        # probe + retransmission when filtered (Windows hosts drop silently).
        silent = target.stack.name.endswith("windows") or target.role == "internet"
        rows: list[tuple[int, int, int]] = []  # (flow, port, packets)
        used = 0
        for p in ports:
            cost = 3 if int(p) in opened else 2
            if used + cost > k:
                break
            f = ctx.rec.new_flow(scanner.ip, sport, target.ip, int(p), 6)
            if f is not None:
                rows.append((f, int(p), cost))
                used += cost
        for p in ports if not rows else []:  # too few packets left for a full probe
            f = ctx.rec.new_flow(scanner.ip, sport, target.ip, int(p), 6)
            if f is not None and int(p) not in opened:
                rows.append((f, int(p), 1))
                used = 1
                break
        rem = k - used
        t = _times(ctx, start, max(1, length // 20), len(rows))
        smac, dmac = ctx.net.macs(scanner, target)
        tmac, _ = ctx.net.macs(target, scanner)
        rtt = 300 if target.role != "internet" else int(rng.uniform(10_000, 100_000))
        cols: dict[str, list[Any]] = {name: [] for name in ("flow", "ts", "src", "dst", "smac", "dmac", "sport", "dport", "ttl", "df", "seq", "ack", "flags", "win", "opt_len")}  # fmt: skip
        for i, (f, p, cost) in enumerate(rows):
            extra = rem if i == len(rows) - 1 else 0  # nmap retransmissions
            seq = int(rng.integers(0, 1 << 32))
            for j in range(cost + extra):
                t_j = (
                    int(t[i])
                    + j * rtt
                    + (1_000_000 if j and not (p in opened or not silent) else 0)
                )
                if j == 0 or (p not in opened and silent) or j >= cost:  # probe or retransmission
                    vals = (
                        scanner.ip,
                        target.ip,
                        smac,
                        dmac,
                        sport,
                        p,
                        int(rng.integers(37, 60)),
                        0,
                        seq,
                        0,
                        SYN,
                        1024,
                        4,
                    )
                elif p in opened and j == 1:
                    vals = (
                        target.ip,
                        scanner.ip,
                        tmac,
                        smac,
                        p,
                        sport,
                        target.ttl,
                        1,
                        int(rng.integers(0, 1 << 32)),
                        seq + 1,
                        SYN | ACK,
                        target.stack.syn_window,
                        4,
                    )
                elif p in opened:
                    vals = (
                        scanner.ip,
                        target.ip,
                        smac,
                        dmac,
                        sport,
                        p,
                        64,
                        1,
                        seq + 1,
                        0,
                        RST,
                        0,
                        0,
                    )
                else:
                    vals = (
                        target.ip,
                        scanner.ip,
                        tmac,
                        smac,
                        p,
                        sport,
                        target.ttl,
                        1,
                        0,
                        seq + 1,
                        RST | ACK,
                        0,
                        0,
                    )
                cols["flow"].append(f)
                cols["ts"].append(t_j)
                for name, v in zip(list(cols)[2:], vals, strict=True):
                    cols[name].append(v)
        arr: dict[str, Any] = {name: np.asarray(v, dtype=np.int64) for name, v in cols.items()}
        n = arr["ts"].shape[0]
        flow, ts = arr.pop("flow"), arr.pop("ts")
        arr["seq"] &= 0xFFFFFFFF
        arr["ack"] &= 0xFFFFFFFF
        ctx.rec.add(
            flow,
            ts,
            [b""] * n,
            opts=_mss_opts(n, 1460),
            proto=6,
            ip_id=rng.integers(0, 65536, n),
            **arr,
        )


# Attack classes in the order of the class list, with their generators.
ATTACKS: dict[str, Callable[[Ctx, int], None]] = {
    "syn_flood": syn_flood,
    "ack_flood": ack_flood,
    "udp_flood": udp_flood,
    "udpplain_flood": udpplain_flood,
    "vse_flood": vse_flood,
    "dns_water_torture": dns_water_torture,
    "greip_flood": greip_flood,
    "greeth_flood": greeth_flood,
    "stomp_flood": stomp_flood,
    "http_flood": http_flood,
    "telnet_scan": telnet_scan,
    "telnet_bruteforce": telnet_bruteforce,
    "ssh_bruteforce": ssh_bruteforce,
    "port_scan": port_scan,
}
_unused = (FIN, struct)
