"""Tests for pktlstm.lab.services: server configs bound to lab addresses, a login that refuses all."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from pktlstm.lab.scenario import Scenario, scenario_from_dict
from pktlstm.lab.services import DOMAIN, SITE_FILES, SITE_PAGES, client_key, prepare_servers


def _scenario(services: list[str], web_name: str = "web") -> Scenario:
    return scenario_from_dict(
        {
            "name": "t",
            "duration": 5.0,
            "hosts": [
                {"name": web_name, "address": "198.18.3.1", "services": services},
                {"name": "cli", "address": "198.18.3.2"},
            ],
        }
    )


def test_servers_listen_on_their_lab_address(tmp_path: Path) -> None:
    servers = prepare_servers(_scenario(["http", "dns", "mqtt", "telnet", "iperf3"]), tmp_path)
    by = {s.service: s for s in servers}
    assert set(by) == {"http", "dns", "mqtt", "telnet", "iperf3"}
    assert {s.listen for s in servers} == {
        ("tcp", 80),
        ("udp", 53),
        ("tcp", 1883),
        ("tcp", 23),
        ("tcp", 5201),
    }
    nginx = (tmp_path / "web" / "nginx.conf").read_text()
    assert "listen 198.18.3.1:80;" in nginx and "daemon off;" in nginx
    assert by["http"].argv[:2] == ("nginx", "-c")
    assert "listener 1883 198.18.3.1" in (tmp_path / "web" / "mosquitto.conf").read_text()
    assert by["iperf3"].argv == ("iperf3", "-s", "-B", "198.18.3.1", "-p", "5201")
    for page in (*SITE_PAGES, *SITE_FILES):
        assert (tmp_path / "web" / "www" / page).stat().st_size > 0


def test_dns_answers_for_lab_names_only(tmp_path: Path) -> None:
    prepare_servers(_scenario(["http", "dns"]), tmp_path)
    conf = (tmp_path / "web" / "dnsmasq.conf").read_text().splitlines()
    assert "no-resolv" in conf and "listen-address=198.18.3.1" in conf
    assert f"host-record=cli.{DOMAIN},198.18.3.2" in conf
    assert f"cname=www.{DOMAIN},web.{DOMAIN}" in conf
    www = tmp_path / "www-host"
    prepare_servers(_scenario(["http", "dns"], web_name="www"), www)
    assert not any(
        line.startswith("cname=")
        for line in (www / "www" / "dnsmasq.conf").read_text().splitlines()
    )


@pytest.mark.skipif(shutil.which("sh") is None, reason="needs /bin/sh")
def test_telnet_login_refuses_every_password(tmp_path: Path) -> None:
    prepare_servers(_scenario(["telnet"]), tmp_path)
    inetd = (tmp_path / "web" / "inetd.conf").read_text()
    login = tmp_path / "web" / "fake-login.sh"
    assert f"-E {login}" in inetd
    res = subprocess.run(
        ["sh", str(login)],
        input="root\nsecret\nadmin\nadmin\n",
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert res.stdout.count("Login incorrect") == 2
    assert res.returncode == 0


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("ssh-keygen") is None, reason="needs root and ssh-keygen"
)
def test_sshd_uses_lab_keys_and_refuses_root_passwords(tmp_path: Path) -> None:
    (srv,) = prepare_servers(_scenario(["ssh"]), tmp_path)
    assert srv.argv[0] == "/usr/sbin/sshd" and "-D" in srv.argv
    conf = (tmp_path / "web" / "sshd_config").read_text()
    assert "ListenAddress 198.18.3.1" in conf and "PermitRootLogin prohibit-password" in conf
    pub = client_key(tmp_path).with_suffix(".pub").read_text()
    assert (tmp_path / "ssh" / "authorized_keys").read_text() == pub
