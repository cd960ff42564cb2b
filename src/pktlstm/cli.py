"""Command line: parse arguments -> config dataclasses -> call stages; no logic of its own."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from pktlstm.errors import PktlstmError

app = typer.Typer(
    name="pktlstm",
    help=(
        "Packet-level malicious traffic detection: each packet header becomes a sentence of "
        "words, an embedding + LSTM judges it (after Hwang et al., 2019).\n\n"
        "Typical flow: synth or your captures -> build (labelled dataset, split by flow) -> "
        "train -> eval -> export -> detect. Try `pktlstm demo` first."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)

# Commands are grouped by stage below; each section calls one stage module.

# --- capture & tokens (issue 2) ------------------------------------------------------------

# --- synth, labels, build (issue 3) --------------------------------------------------------

# --- model, train, eval, demo (issue 4) ----------------------------------------------------

# --- export, detect (issue 5) --------------------------------------------------------------

# --- compare, audit (issue 6) --------------------------------------------------------------

# --- lab (issue 7) -------------------------------------------------------------------------


def main() -> None:
    """Entry point: user errors print one line and exit 2; Ctrl-C exits 130 quietly."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        app()
    except PktlstmError as exc:
        console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        console.print("interrupted")
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(0)


_unused = (Annotated, Path)  # imported for the command sections below
