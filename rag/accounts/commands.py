"""``rag kb``, ``rag users``: knowledge bases, users and grants (the CLI acts as the local administrator:
whoever may open the database file)."""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, List, Optional

import typer
from rich.table import Table

from rag.accounts.admin import Administration, administration_for
from rag.accounts.audit import audit_for
from rag.accounts.db import Database
from rag.accounts.kbs import owned_folders, registry_for
from rag.accounts.users import LOCAL_OWNER, GrantKind
from rag.config import Settings
from rag.console import err, fail, out, shown
from rag.errors import RagError
from rag.files import private_file
from rag.index.locations import redact, store_exists, write_lock

kb_app = typer.Typer(help="Knowledge bases: separate collections with their own readers and editors.", no_args_is_help=True)
users_app = typer.Typer(help="Users of the web page and the API, their groups and administrators.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys: each acts as its user.", no_args_is_help=True)
GrantUser = typer.Option(None, "--user", help="The user (see `rag users list`).")
GrantGroup = typer.Option(None, "--group", help="A group (its members now or later, LDAP groups too).")


def administration() -> Administration:
    """Users, grants and keys of the configured database, changed as ``local`` (audited)."""
    return administration_for(Settings())


def audited(action: str, kbs: Sequence[str] = (), detail: str = "", outcome: str = "ok", private: str = "") -> None:
    """Record an action of the CLI (``local``, the administrator) in the audit log: ``detail`` (who was
    granted what, counts) always, ``private`` (file names, document ids) only with ``RAG_AUDIT_QUESTIONS=1``."""
    log = audit_for(Settings())
    log.record(LOCAL_OWNER.actor, action, kbs, log.details(detail, private), outcome, private=False)


def grantee(user: Optional[str], group: Optional[str]) -> tuple[GrantKind, str]:
    """(kind, name) of ``--user`` or ``--group``: exactly one of them."""
    if bool(user) == bool(group):
        raise RagError("give --user U or --group G")
    return ("user", user) if user else ("group", group or "")


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
        audited("kb create", [kb.name], redact(kb.location))
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
def kb_remove(
    name: str = typer.Argument(..., help="The knowledge base to forget."),
    delete_files: bool = typer.Option(
        False,
        "--delete-files",
        help="Also delete its index directory and uploaded files (only for a KB in the index root, not a Milvus URI or an --index elsewhere).",
    ),
) -> None:
    """Forget a knowledge base and its grants; its index files stay unless --delete-files."""
    try:
        settings = Settings()
        registry = registry_for(settings)
        kb = registry.get(name)
        folders = owned_folders(registry, kb, [settings.conversations_file, settings.feedback_file]) if delete_files else []
        with write_lock(kb.location) if folders else contextlib.nullcontext():  # no ingest is writing it now
            registry.remove(name)
            for folder in folders:
                shutil.rmtree(folder)
        audited("kb remove", [kb.name], "files deleted" if delete_files else f"files kept at {redact(kb.location)}")
    except (RagError, OSError) as exc:
        fail(exc)
        return
    if not delete_files:
        kept = f"its index stays at {shown(redact(kb.location))} (--delete-files deletes a KB's files with it)"
    else:
        kept = f"deleted {shown(', '.join(map(str, folders)))}" if folders else "it had no files yet"
    out.print(f"removed knowledge base {shown(kb.name)}; {kept}", highlight=False)


@kb_app.command("grant")
def kb_grant(
    kb: str = typer.Argument(..., help="The knowledge base."),
    user: Optional[str] = GrantUser,
    group: Optional[str] = GrantGroup,
    role: str = typer.Option(..., "--role", help="reader (ask, search, read) or editor (also upload, delete, sync)."),
) -> None:
    """Give a user or a group a role on a knowledge base (replaces the role it had there)."""
    try:
        kind, name = grantee(user, group)
        grant = administration().grant(LOCAL_OWNER, kb, kind, name, role)
    except RagError as exc:
        fail(exc)
        return
    out.print(f"{grant.kind} {shown(grant.principal)} is now {grant.role} of {shown(grant.kb)}", highlight=False)


@kb_app.command("revoke")
def kb_revoke(
    kb: str = typer.Argument(..., help="The knowledge base."),
    user: Optional[str] = GrantUser,
    group: Optional[str] = GrantGroup,
) -> None:
    """Take a user's or a group's role on a knowledge base away (from the next request on)."""
    try:
        kind, name = grantee(user, group)
        revoked = administration().revoke(LOCAL_OWNER, kb, kind, name)
    except RagError as exc:
        fail(exc)
        return
    out.print(f"{kind} {shown(name)} {'no longer has' if revoked else 'had no'} a role on {shown(kb)}", highlight=False)


@users_app.command("add")
def users_add(
    name: str = typer.Argument(..., help="The login name."),
    group: Optional[List[str]] = typer.Option(None, "--group", help="A group it belongs to (repeatable)."),
    admin: bool = typer.Option(False, "--admin", help="May do everything: every knowledge base, grants, keys, the audit log."),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read its web login password from the first line of stdin (else: API keys only)."
    ),
) -> None:
    """Add a user (once any user exists, the servers need a login or a key)."""
    try:
        password = sys.stdin.readline().rstrip("\r\n") if password_stdin else None
        user = administration().add_user(LOCAL_OWNER, name, group or [], admin, password)
    except RagError as exc:
        fail(exc)
        return
    groups = ", ".join(user.groups) or "no group"
    role = "administrator" if user.admin else "user"
    out.print(
        f"added {role} {shown(user.name)} ({shown(groups)}{', password set' if user.has_password else ''})", highlight=False
    )


@users_app.command("list")
def users_list(as_json: bool = typer.Option(False, "--json", help="Print a JSON list.")) -> None:
    """Every user with its groups and grants."""
    try:
        listed = administration().list_users(LOCAL_OWNER)
    except RagError as exc:
        fail(exc)
        return
    rows: list[dict[str, Any]] = [
        {
            "name": one.user.name,
            "admin": one.user.admin,
            "groups": list(one.user.groups),
            "password": one.user.has_password,
            "grants": one.grants,
            "created_at": one.user.created_at,
        }
        for one in listed
    ]
    if as_json:
        sys.stdout.write(json.dumps(rows, ensure_ascii=False, indent=2) + "\n")
        return
    if not rows:
        out.print("no users: single-user mode (the servers answer loopback without a login)")
        return
    table = Table("user", "admin", "groups", "grants", "login")
    for row in rows:
        grants_shown = ", ".join(f"{kb}:{role}" for kb, role in row["grants"].items())
        table.add_row(
            shown(row["name"]),
            "yes" if row["admin"] else "",
            shown(", ".join(row["groups"])),
            shown(grants_shown),
            "password" if row["password"] else "keys only",
        )
    out.print(table)


@keys_app.command("create")
def keys_create(
    user: str = typer.Option(..., "--user", help="The user the key acts as."),
    name: Optional[str] = typer.Option(None, "--name", help="A label for it (shown in `rag keys list` and the audit log)."),
) -> None:
    """Create an API key: printed once on stdout, only its hash is kept."""
    try:
        key, secret = administration().create_key(LOCAL_OWNER, user, name)
    except RagError as exc:
        fail(exc)
        return
    err.print(f"key {key.id} ({shown(key.label)}) for {shown(key.user)}; it is shown only now:", highlight=False)
    sys.stdout.write(secret + "\n")


@keys_app.command("list")
def keys_list(as_json: bool = typer.Option(False, "--json", help="Print a JSON list.")) -> None:
    """Every API key: id, user, label, its first characters, when created and revoked."""
    try:
        keys = administration().list_keys(LOCAL_OWNER)
    except RagError as exc:
        fail(exc)
        return
    if as_json:
        sys.stdout.write(json.dumps([key.to_dict() for key in keys], ensure_ascii=False, indent=2) + "\n")
        return
    table = Table("id", "user", "label", "starts with", "created", "revoked")
    for key in keys:
        table.add_row(str(key.id), shown(key.user), shown(key.label), shown(key.prefix), key.created_at, key.revoked_at or "")
    out.print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: int = typer.Argument(..., help="The key's id (see `rag keys list`).")) -> None:
    """Revoke an API key (from the next request on)."""
    try:
        key = administration().revoke_key(LOCAL_OWNER, key_id)
    except RagError as exc:
        fail(exc)
        return
    out.print(f"revoked key {key.id} ({shown(key.label)}) of {shown(key.user)}", highlight=False)


def audit_command(
    user: Optional[str] = typer.Option(None, "--user", help="Only this user's actions (its keys' included)."),
    kb: Optional[str] = typer.Option(None, "--kb", help="Only actions on this knowledge base."),
    since: Optional[str] = typer.Option(None, "--since", help="Only from this date on (2025-09-01, UTC)."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list."),
) -> None:
    """The audit log: who asked, searched, uploaded, deleted, granted or revoked what, and how it ended."""
    from rag.index.filters import iso_date

    try:
        rows = audit_for(Settings()).rows(user, kb, iso_date(since, "--since") if since else None)
    except RagError as exc:
        fail(exc)
        return
    if as_json:
        sys.stdout.write(json.dumps([row.to_dict() for row in rows], ensure_ascii=False, indent=2) + "\n")
        return
    table = Table("time (UTC)", "who", "action", "KBs", "detail", "outcome")
    for row in rows:
        table.add_row(row.time, shown(row.actor), row.action, shown(", ".join(row.kbs)), shown(row.detail), row.outcome)
    out.print(table)


conversations_app = typer.Typer(help="Saved conversations of the web page.", no_args_is_help=True)


@conversations_app.command("export")
def conversations_export(
    user: str = typer.Option(..., "--user", help="Whose conversations (only theirs are exported)."),
    conversation: Optional[str] = typer.Option(None, "--id", help="Only this conversation (default: all of the user's)."),
    fmt: str = typer.Option("md", "--format", help="md (Markdown) or json; both carry the cited passages."),
    out_file: Optional[Path] = typer.Option(None, "--out", help="Write to this file (0600) instead of stdout."),
) -> None:
    """Export a user's saved conversations with the passages their answers cited."""
    from rag.web.conversations import ConversationStore, conversations_markdown, import_conversations

    settings = Settings()
    try:
        if fmt not in ("md", "json"):
            raise RagError(f"unknown --format {fmt!r}; choose md or json")
        db = Database(settings.db_file)
        import_conversations(db, settings.conversations_file)
        found = ConversationStore(db).export(user, conversation)
    except RagError as exc:
        fail(exc)
        return
    text = json.dumps(found, ensure_ascii=False, indent=2) + "\n" if fmt == "json" else conversations_markdown(found)
    if out_file is None:
        sys.stdout.write(text)
        return
    private_file(out_file).write_text(text, encoding="utf-8")  # another user's questions: owner-only
    err.print(f"exported {len(found)} conversation(s) of {shown(user)} to {shown(out_file)}", highlight=False)
