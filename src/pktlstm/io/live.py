"""Live capture on Linux: AF_PACKET socket, kernel BPF filter, promiscuous mode, kernel drops."""

from __future__ import annotations

import ctypes
import logging
import select
import shutil
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import numpy as np

from pktlstm.errors import CaptureError, ConfigError
from pktlstm.io.batch import DecodeStats, PacketBatch
from pktlstm.io.decode import FRAME_PAD, decode_frames

log = logging.getLogger(__name__)

# Linux socket constants (linux/if_packet.h, asm-generic/socket.h), not all in `socket`.
SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_MR_PROMISC = 1
PACKET_STATISTICS = 6  # struct tpacket_stats {u32 packets; u32 drops}, reset on read
SO_ATTACH_FILTER = 26
SO_RCVBUFFORCE = 33  # like SO_RCVBUF but may exceed rmem_max (needs CAP_NET_ADMIN)
ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4  # pkttype of frames this host sends
MSG_TRUNC = socket.MSG_TRUNC
MSG_DONTWAIT = socket.MSG_DONTWAIT
BPF_RET_K = 0x06  # classic BPF "ret #k" opcode

# Interface hardware types (/sys/class/net/IF/type, ARPHRD_*) -> (pcap LINKTYPE, tcpdump -y name).
_ARPHRD = {
    1: (1, "EN10MB"),  # ARPHRD_ETHER
    772: (1, "EN10MB"),  # ARPHRD_LOOPBACK: Linux gives loopback a zero Ethernet header
    65534: (101, "RAW"),  # ARPHRD_NONE (tun): raw IP
}
_LOOPBACK = 772


@dataclass(frozen=True)
class LiveConfig:
    """How a live interface is captured.

    iface: interface name (``ip link`` lists them).
    bpf: a tcpdump filter expression, compiled with ``tcpdump -ddd`` and run in the kernel.
    promisc: put the interface in promiscuous mode while capturing.
    snaplen: bytes kept per frame (the decoder needs the first 128; the filter sees all).
    chunk_packets: most frames per returned batch.
    poll_ms: an empty batch is returned after this long without traffic (lets the caller
        flush pending work and check for a stop request).
    buffer_bytes: kernel receive buffer; traffic beyond it while we are busy is dropped
        by the kernel and counted as ``capture.kernel_drops``.
    """

    iface: str
    bpf: str | None = None
    promisc: bool = False
    snaplen: int = 256
    chunk_packets: int = 1024
    poll_ms: float = 5.0
    buffer_bytes: int = 32 << 20

    def __post_init__(self) -> None:
        if not self.iface or "/" in self.iface or len(self.iface) > 15:
            raise ConfigError(f"iface={self.iface!r}: not an interface name (1-15 chars, no '/')")
        if not 64 <= self.snaplen <= 262144:
            raise ConfigError(f"snaplen={self.snaplen}: must be in 64..262144 bytes")
        if not 1 <= self.chunk_packets <= 1 << 20:
            raise ConfigError(f"chunk_packets={self.chunk_packets}: must be in 1..1048576")
        if not 0 < self.poll_ms <= 10_000:
            raise ConfigError(f"poll_ms={self.poll_ms}: must be in (0, 10000] ms")
        if not 1 << 16 <= self.buffer_bytes <= 1 << 31:
            raise ConfigError(f"buffer_bytes={self.buffer_bytes}: must be in 64 KiB..2 GiB")


def interface_type(iface: str) -> int:
    """The ARPHRD_* hardware type of ``iface``; CaptureError when it does not exist."""
    try:
        socket.if_nametoindex(iface)
        return int(Path(f"/sys/class/net/{iface}/type").read_text())
    except OSError:
        raise CaptureError(f"interface {iface!r} does not exist (see `ip link`)") from None


def compile_bpf(expr: str, dlt: str = "EN10MB", snaplen: int = 262144) -> list[tuple[int, ...]]:
    """Compile a tcpdump filter expression to classic BPF (code, jt, jf, k) instructions.

    Uses ``tcpdump -ddd`` (Debian package ``tcpdump``): no libpcap binding needed.
    Raises ConfigError naming the expression when it does not compile.
    """
    tcpdump = shutil.which("tcpdump") or next(
        (p for p in ("/usr/sbin/tcpdump", "/usr/bin/tcpdump") if Path(p).exists()), None
    )
    if tcpdump is None:
        raise CaptureError(
            "BPF filters are compiled with tcpdump: install it (apt install tcpdump)"
        )
    try:
        proc = subprocess.run(
            [tcpdump, "-ddd", "-y", dlt, "-s", str(snaplen), "--", expr],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CaptureError(f"cannot run tcpdump to compile the BPF filter: {exc}") from None
    if proc.returncode != 0:
        why = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "does not compile"
        why = why.removeprefix("tcpdump: ")
        raise ConfigError(f"bpf={expr!r}: {why}")
    lines = proc.stdout.split()
    try:
        count = int(lines[0])
        prog = [tuple(int(x) for x in lines[1 + 4 * i : 5 + 4 * i]) for i in range(count)]
    except (IndexError, ValueError):
        raise ConfigError(f"bpf={expr!r}: unexpected tcpdump output {proc.stdout[:80]!r}") from None
    if len(prog) != count or any(len(ins) != 4 for ins in prog):
        raise ConfigError(f"bpf={expr!r}: truncated tcpdump output")
    return prog


def attach_bpf(sock: socket.socket, prog: list[tuple[int, ...]]) -> None:
    """Attach classic BPF instructions to ``sock`` (SO_ATTACH_FILTER, struct sock_fprog)."""
    code = b"".join(struct.pack("HBBI", c, jt, jf, k) for c, jt, jf, k in prog)
    buf = ctypes.create_string_buffer(code, len(code))
    fprog = struct.pack("HL", len(prog), ctypes.addressof(buf))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)


class LiveCapture:
    """A live interface as an endless iterable of PacketBatch chunks; use as a context manager.

    Everything that can fail (interface, permissions, filter) fails in the constructor,
    before any packet is read. Frames go through the same ``decode_frames`` as files.
    Timestamps are taken in user space when a frame is read (ns since the epoch).
    ``stats.skipped["capture.kernel_drops"]`` counts frames the kernel dropped because we
    were too slow; ``kernel_packets`` counts what the filter accepted. Call ``stop()`` (any
    thread) to end the iteration.
    """

    def __init__(self, config: LiveConfig, capture_id: int = 0) -> None:
        self.config = config
        self.capture_id = capture_id
        self.stats = DecodeStats()
        self.kernel_packets = 0
        self._stop = threading.Event()
        self._index = 0
        hatype = interface_type(config.iface)
        if hatype not in _ARPHRD:
            raise CaptureError(
                f"interface {config.iface!r}: unsupported hardware type {hatype} "
                "(Ethernet, loopback and tun are supported)"
            )
        self.linktype, dlt = _ARPHRD[hatype]
        self._skip_outgoing = hatype == _LOOPBACK  # loopback shows each frame twice
        accept_all: list[tuple[int, ...]] = [(BPF_RET_K, 0, 0, 262144)]
        prog = compile_bpf(config.bpf, dlt) if config.bpf else accept_all
        # The filter keeps whole frames: a frame trimmed in the kernel would lose its wire
        # length; recv() truncates to snaplen and MSG_TRUNC reports the full length.
        try:
            # Protocol 0: receive nothing until bound, so no frame gets in before the filter.
            self._sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        except PermissionError:
            raise CaptureError(f"capturing on {config.iface!r} needs root or CAP_NET_RAW") from None
        try:
            self._setup(prog)
        except OSError as exc:
            self._sock.close()
            raise CaptureError(
                f"cannot capture on {config.iface!r}: {exc.strerror or exc}"
            ) from None
        self._buf = np.zeros(config.chunk_packets * config.snaplen + FRAME_PAD, np.uint8)
        self._view = memoryview(self._buf.data)

    def _setup(self, prog: list[tuple[int, ...]]) -> None:
        cfg = self.config
        sock = self._sock
        try:
            sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, cfg.buffer_bytes)
        except OSError:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, cfg.buffer_bytes)
        attach_bpf(sock, prog)
        sock.bind((cfg.iface, ETH_P_ALL))
        if cfg.promisc:
            ifindex = socket.if_nametoindex(cfg.iface)
            mreq = struct.pack("iHH8s", ifindex, PACKET_MR_PROMISC, 0, b"")
            sock.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, mreq)
        self._kernel_stats()  # reset the counters: count from now on
        self.stats.skipped["capture.kernel_drops"] = 0

    def _kernel_stats(self) -> None:
        packets, drops = struct.unpack(
            "II", self._sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8)
        )
        self.kernel_packets += packets
        if drops:
            self.stats.skipped["capture.kernel_drops"] += drops

    def stop(self) -> None:
        """Ask the iteration to end (returns within ``poll_ms``)."""
        self._stop.set()

    def read_chunk(self) -> PacketBatch:
        """Wait up to ``poll_ms`` for traffic; return what is queued (maybe nothing)."""
        cfg = self.config
        if not select.select([self._sock], [], [], cfg.poll_ms / 1000)[0]:
            self._kernel_stats()
            return PacketBatch.empty()
        n_max, snap = cfg.chunk_packets, cfg.snaplen
        offsets = np.empty(n_max, np.int64)
        caplens = np.empty(n_max, np.int64)
        wirelens = np.empty(n_max, np.int64)
        ts = np.empty(n_max, np.int64)
        recv, view, now = self._sock.recvfrom_into, self._view, time.time_ns
        flags = MSG_TRUNC | MSG_DONTWAIT
        n = off = 0
        while n < n_max:
            try:
                size, addr = recv(view[off : off + snap], snap, flags)
            except BlockingIOError:
                break
            if self._skip_outgoing and addr[2] == PACKET_OUTGOING:
                continue
            ts[n] = now()
            offsets[n], caplens[n], wirelens[n] = off, min(size, snap), size
            off += snap
            n += 1
        self._kernel_stats()
        index = np.arange(self._index, self._index + n, dtype=np.uint64)
        self._index += n
        batch, skipped = decode_frames(
            self._buf, offsets[:n], caplens[:n], wirelens[:n], ts[:n], self.linktype, index,
            self.capture_id,
        )  # fmt: skip
        self.stats.packets += n
        self.stats.bytes += int(wirelens[:n].sum())
        self.stats.skipped.update(skipped)
        return batch

    def __iter__(self) -> Iterator[PacketBatch]:
        """Batches of frames as they arrive; empty batches when idle for ``poll_ms``."""
        while not self._stop.is_set():
            yield self.read_chunk()

    def close(self) -> None:
        self._stop.set()
        self._sock.close()

    def __enter__(self) -> LiveCapture:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def open_live(config: LiveConfig, capture_id: int = 0) -> LiveCapture:
    """Open a live interface for capture (see ``LiveCapture``).

    Raises:
        CaptureError: no such interface, unsupported type, no permission, tcpdump missing.
        ConfigError: the BPF expression does not compile.
    """
    return LiveCapture(config, capture_id)
