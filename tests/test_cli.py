"""The command line as a user meets it: help that teaches, one-line errors, no tracebacks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from pktlstm.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_help_lists_the_stages():
    out = run("--help").stdout
    for command in ("inspect", "tokens", "synth", "build", "train", "eval", "demo", "detect"):
        assert command in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["tokens", "/nonexistent.pcap"], "/nonexistent.pcap"),
        (["build", "/nonexistent.pcap", "--labels", "folder", "--out", "x"], "not found"),
        (["tokens", __file__, "--policy", "paranoid"], "policy='paranoid'"),
    ],
)
def test_user_errors_are_one_line(args, message):
    result = run(*args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 2  # one message, maybe wrapped once


def test_not_a_capture_names_the_file(tmp_path: Path):
    text = tmp_path / "notes.pcap"
    text.write_text("certainly not a capture\n")
    result = run("tokens", str(text))
    assert result.returncode == 2
    assert "notes.pcap" in result.stderr and "Traceback" not in result.stderr
