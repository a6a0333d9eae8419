"""``rag kb``: create, list and remove knowledge bases (the CLI acts as the local administrator)."""

from __future__ import annotations

import json
import sys
from typing import Optional

import typer
from rich.table import Table

from rag.accounts.kbs import registry_for
from rag.config import Settings
from rag.console import fail, out, shown
from rag.errors import RagError
from rag.index.locations import redact, store_exists

kb_app = typer.Typer(help="Knowledge bases: separate collections with their own readers and editors.", no_args_is_help=True)


@kb_app.command("create")
def kb_create(
    name: str = typer.Argument(..., help="Lower-case letters, digits, - and _ (used in model ids rag-zh:NAME)."),
    title: Optional[str] = typer.Option(None, "--title", help="The name people see, e.g. 人事制度."),
    index: Optional[str] = typer.Option(
        None, "--index", help="Where its index lives: a directory or a Milvus URI (default: index/NAME)."
    ),
) -> None:
    """Register a knowledge base; `rag ingest --kb NAME` then fills it."""
    try:
        kb = registry_for(Settings()).create(name, title, index)
    except RagError as exc:
        fail(exc)
        return
    out.print(f"created knowledge base {shown(kb.name)} ({shown(kb.title)}) at {shown(redact(kb.location))}", highlight=False)


@kb_app.command("list")
def kb_list(as_json: bool = typer.Option(False, "--json", help="Print a JSON list.")) -> None:
    """Every knowledge base with its title and index location."""
    try:
        kbs = registry_for(Settings()).list()
    except RagError as exc:
        fail(exc)
        return
    if as_json:
        sys.stdout.write(
            json.dumps([{**kb.to_dict(), "exists": store_exists(kb.location)} for kb in kbs], ensure_ascii=False, indent=2) + "\n"
        )
        return
    table = Table("name", "title", "index", "written")
    for kb in kbs:
        table.add_row(
            shown(kb.name), shown(kb.title), shown(redact(kb.location)), "yes" if store_exists(kb.location) else "not yet"
        )
    out.print(table)


@kb_app.command("remove")
def kb_remove(name: str = typer.Argument(..., help="The knowledge base to forget.")) -> None:
    """Forget a knowledge base and its grants; its index files stay (delete them yourself)."""
    try:
        kb = registry_for(Settings()).remove(name)
    except RagError as exc:
        fail(exc)
        return
    out.print(f"removed knowledge base {shown(kb.name)}; its index stays at {shown(redact(kb.location))}", highlight=False)
