"""The command line's consoles and its one-line errors, shared by every ``rag`` subcommand module."""

from __future__ import annotations

import unicodedata

import typer
from rich.console import Console
from rich.markup import escape

from rag.index.locations import redact

out = Console(soft_wrap=True)
err = Console(stderr=True)


def fail(exc: Exception) -> None:
    """Print a user-facing error and exit 1 (no traceback)."""
    err.print(f"[bold red]错误 / error:[/] {escape(redact(str(exc)))}", highlight=False)
    raise typer.Exit(1)


def shown(text: object) -> str:
    """``text`` safe to print: console markup escaped, control, bidi and zero-width characters as
    ``\\uXXXX``, so a file name cannot restyle, reorder, hide or split a report line."""
    plain = "".join(f"\\u{ord(char):04x}" if unicodedata.category(char) in ("Cc", "Cf") else char for char in str(text))
    return escape(plain)
