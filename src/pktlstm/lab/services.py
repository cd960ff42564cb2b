"""Servers of the lab (nginx, sshd, dnsmasq, mosquitto, telnetd, iperf3): configs and commands."""

from __future__ import annotations

import random
import subprocess
from dataclasses import dataclass
from pathlib import Path

from pktlstm.lab.scenario import SERVICE_PORTS, Host, Scenario

DOMAIN = "lab.test"
"""DNS zone that dnsmasq answers for (a reserved test name: nothing outside resolves it)."""

SITE_PAGES = ("index.html", "about.html", "news.html", "shop.html", "contact.html", "docs.html")
"""Pages of the generated web site; clients fetch these (and a few missing ones)."""
SITE_FILES = ("img/logo.png", "img/banner.jpg", "files/report.pdf", "files/data.bin")
"""Binary files of the generated web site (random bytes of various sizes)."""

TOOLS: dict[str, tuple[str, ...]] = {
    "http": ("nginx",),
    "ssh": ("/usr/sbin/sshd", "ssh-keygen"),
    "dns": ("dnsmasq",),
    "mqtt": ("mosquitto",),
    "telnet": ("inetutils-inetd", "telnetd"),
    "iperf3": ("iperf3",),
}
"""Executables each service needs (sshd must be started by its absolute path)."""

_FAKE_LOGIN = """#!/bin/sh
# Lab telnet login: prompts like login(1) and refuses every password; no shell is ever given.
while :; do
  printf 'lab login: '
  read -r user || exit 0
  printf 'Password: '
  read -r pass || exit 0
  sleep 1
  printf '\\r\\nLogin incorrect\\r\\n'
done
"""


@dataclass(frozen=True)
class Server:
    """One server to start before the timeline runs.

    Attributes:
        name: unique name in the run (``HOST-SERVICE``).
        host: lab host it runs on.
        service: service kind.
        argv: command line (run in the host's namespace).
        listen: (transport, port) it must listen on before the timeline starts.
    """

    name: str
    host: str
    service: str
    argv: tuple[str, ...]
    listen: tuple[str, int]


def client_key(work: Path) -> Path:
    """Private key benign ssh clients log in with (its public half is authorized on lab sshd)."""
    return work / "ssh" / "client_ed25519"


def prepare_servers(scenario: Scenario, work: Path) -> list[Server]:
    """Write every config, key and web site the servers need under ``work``; return the servers.

    Args:
        scenario: the scenario (its hosts' ``services`` say what to start).
        work: private working folder of this run (root-owned).
    """
    servers: list[Server] = []
    if any("ssh" in h.services for h in scenario.hosts):
        _ssh_keys(work / "ssh")
    for h in scenario.hosts:
        hw = work / h.name
        hw.mkdir(parents=True, exist_ok=True)
        for svc in h.services:
            argv = _SETUP[svc](h, hw, work, scenario)
            servers.append(Server(f"{h.name}-{svc}", h.name, svc, argv, SERVICE_PORTS[svc]))
    return servers


def _ssh_keys(d: Path) -> None:
    d.mkdir(parents=True, exist_ok=True)
    for key in ("host_ed25519", "client_ed25519"):
        if not (d / key).exists():
            subprocess.run(
                [
                    "ssh-keygen",
                    "-q",
                    "-t",
                    "ed25519",
                    "-N",
                    "",
                    "-C",
                    "pktlstm-lab",
                    "-f",
                    str(d / key),
                ],
                check=True,
                capture_output=True,
                timeout=30,
            )
    (d / "authorized_keys").write_text((d / "client_ed25519.pub").read_text())


def _http(h: Host, hw: Path, work: Path, scenario: Scenario) -> tuple[str, ...]:
    www = hw / "www"
    rng = random.Random(scenario.seed)
    for page in SITE_PAGES:
        links = "".join(f'<li><a href="/{p}">{p}</a></li>' for p in SITE_PAGES)
        imgs = "".join(f'<img src="/{f}">' for f in SITE_FILES[:2])
        filler = " ".join(
            rng.choice(("lorem", "ipsum", "packet", "network", "lab"))
            for _ in range(rng.randint(50, 2000))
        )
        (www / page).parent.mkdir(parents=True, exist_ok=True)
        (www / page).write_text(
            f"<html><head><title>{page}</title></head><body><ul>{links}</ul>{imgs}<p>{filler}</p></body></html>\n"
        )
    for f in SITE_FILES:
        (www / f).parent.mkdir(parents=True, exist_ok=True)
        (www / f).write_bytes(rng.randbytes(rng.randint(2_000, 300_000)))
    tmp = hw / "nginx-tmp"
    tmp.mkdir(exist_ok=True)
    conf = hw / "nginx.conf"
    conf.write_text(
        f"""daemon off;
user root;
worker_processes 1;
pid {hw}/nginx.pid;
error_log {hw}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log {hw}/nginx-access.log;
  client_body_temp_path {tmp}/body; proxy_temp_path {tmp}/proxy;
  fastcgi_temp_path {tmp}/fastcgi; uwsgi_temp_path {tmp}/uwsgi; scgi_temp_path {tmp}/scgi;
  types {{ text/html html; image/png png; image/jpeg jpg; application/pdf pdf; }}
  default_type application/octet-stream;
  keepalive_timeout 15;
  server {{
    listen {h.address}:80;
    server_name {h.name}.{DOMAIN};
    root {www};
    index index.html;
  }}
}}
"""
    )
    return ("nginx", "-c", str(conf), "-p", str(hw))


def _ssh(h: Host, hw: Path, work: Path, scenario: Scenario) -> tuple[str, ...]:
    keys = work / "ssh"
    conf = hw / "sshd_config"
    conf.write_text(
        f"""Port 22
ListenAddress {h.address}
HostKey {keys}/host_ed25519
PidFile {hw}/sshd.pid
AuthorizedKeysFile {keys}/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication yes
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
UseDNS no
MaxAuthTries 6
MaxStartups 200:30:400
LoginGraceTime 20
LogLevel ERROR
Subsystem sftp internal-sftp
"""
    )
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation directory
    return ("/usr/sbin/sshd", "-D", "-e", "-f", str(conf))


def _dns(h: Host, hw: Path, work: Path, scenario: Scenario) -> tuple[str, ...]:
    lines = [
        f"listen-address={h.address}",
        "bind-interfaces",
        "port=53",
        "no-resolv",
        "no-hosts",
        "no-poll",
        "user=root",
        "pid-file=",
        "log-queries",
        f"log-facility={hw}/dnsmasq.log",
        f"local=/{DOMAIN}/",
        f"mx-host={DOMAIN},mail.{DOMAIN},10",
        f'txt-record={DOMAIN},"v=spf1 -all"',
    ]
    web = [x.name for x in scenario.hosts if "http" in x.services]
    if web and web[0] != "www":
        lines.append(f"cname=www.{DOMAIN},{web[0]}.{DOMAIN}")
    lines += [f"host-record={x.name}.{DOMAIN},{x.address}" for x in scenario.hosts]
    lines.append(f"host-record=mail.{DOMAIN},{h.address}")
    conf = hw / "dnsmasq.conf"
    conf.write_text("\n".join(lines) + "\n")
    return ("dnsmasq", "--keep-in-foreground", f"--conf-file={conf}")


def _mqtt(h: Host, hw: Path, work: Path, scenario: Scenario) -> tuple[str, ...]:
    conf = hw / "mosquitto.conf"
    conf.write_text(
        f"user root\nlistener 1883 {h.address}\nallow_anonymous true\npersistence false\n"
        "log_dest stderr\nlog_type error\n"
    )
    return ("mosquitto", "-c", str(conf))


def _telnet(h: Host, hw: Path, work: Path, scenario: Scenario) -> tuple[str, ...]:
    login = hw / "fake-login.sh"
    login.write_text(_FAKE_LOGIN)
    login.chmod(0o755)
    conf = hw / "inetd.conf"
    conf.write_text(f"telnet stream tcp nowait root /usr/sbin/telnetd telnetd -h -E {login}\n")
    return ("inetutils-inetd", "-d", "-p", str(hw / "inetd.pid"), str(conf))


def _iperf3(h: Host, hw: Path, work: Path, scenario: Scenario) -> tuple[str, ...]:
    return ("iperf3", "-s", "-B", h.address, "-p", "5201")


_SETUP = {
    "http": _http,
    "ssh": _ssh,
    "dns": _dns,
    "mqtt": _mqtt,
    "telnet": _telnet,
    "iperf3": _iperf3,
}
