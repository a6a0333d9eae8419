"""Users, groups, grants and roles: `rag users`, `rag kb grant/revoke` and the permission checks."""

from __future__ import annotations

import json
import sqlite3

import pytest
from typer.testing import CliRunner

from rag.accounts.db import Database
from rag.accounts.kbs import KbNotFound, registry_for
from rag.accounts.permissions import Forbidden, Permissions
from rag.accounts.users import LOCAL_OWNER, Users
from rag.cli import app
from rag.config import Settings
from rag.errors import InputError

runner = CliRunner()


def run(*args, **kwargs):
    return runner.invoke(app, [str(a) for a in args], **kwargs)


@pytest.fixture
def kbs(tmp_path, monkeypatch):
    """The database at $RAG_DB with knowledge bases hr and finance besides default."""
    monkeypatch.setenv("RAG_DB", str(tmp_path / "rag.db"))
    for name in ("hr", "finance"):
        assert run("kb", "create", name).exit_code == 0
    return tmp_path / "rag.db"


def test_users_add_list_with_groups_admin_and_a_password_from_stdin(kbs):
    assert run("users", "list").output.startswith("no users: single-user mode")
    added = run("users", "add", "alice", "--group", "hr", "--group", "staff", "--password-stdin", input="correct horse\n")
    assert added.exit_code == 0, added.output
    assert run("users", "add", "root", "--admin").exit_code == 0
    assert "exists already" in run("users", "add", "alice").output
    assert "at least 8" in run("users", "add", "bob", "--password-stdin", input="short\n").output
    assert "cannot name" in run("users", "add", "bad name").output
    listed = {row["name"]: row for row in json.loads(run("users", "list", "--json").stdout)}
    assert listed["alice"]["groups"] == ["hr", "staff"] and listed["alice"]["password"] and not listed["alice"]["admin"]
    assert listed["root"]["admin"] and not listed["root"]["password"]
    accounts = Users(Database(kbs))
    assert accounts.check_password("alice", "correct horse")
    assert not accounts.check_password("alice", "wrong horse")
    assert not accounts.check_password("root", "")  # no password: keys only
    stored = sqlite3.connect(kbs).execute("SELECT password FROM users WHERE name = 'alice'").fetchone()[0]
    assert "correct horse" not in stored and stored.startswith("scrypt$")


def test_grants_by_user_and_group_the_strongest_role_wins_and_revoke_takes_effect(kbs):
    run("users", "add", "alice", "--group", "hr")
    run("users", "add", "bob")
    assert run("kb", "grant", "hr", "--group", "hr", "--role", "reader").exit_code == 0
    assert run("kb", "grant", "hr", "--user", "alice", "--role", "editor").exit_code == 0
    assert run("kb", "grant", "finance", "--user", "bob", "--role", "reader").exit_code == 0
    assert "give --user U or --group G" in run("kb", "grant", "hr", "--role", "reader").output
    assert "unknown role" in run("kb", "grant", "hr", "--user", "bob", "--role", "owner").output
    assert "no user named" in run("kb", "grant", "hr", "--user", "carol", "--role", "reader").output
    assert "no knowledge base" in run("kb", "grant", "legal", "--user", "bob", "--role", "reader").output
    permissions = Permissions(Database(kbs), registry_for(Settings()))
    accounts = permissions.users
    alice, bob = accounts.principal("alice"), accounts.principal("bob")
    assert alice and bob
    assert [kb.name for kb in permissions.readable(alice)] == ["hr"]
    assert permissions.role(alice, "hr") == "editor" and permissions.editable(alice, "hr").name == "hr"
    assert [kb.name for kb in permissions.resolve(bob)] == ["finance"]
    with pytest.raises(KbNotFound):  # exists, but not for bob: the same answer as a missing one
        permissions.resolve(bob, ["hr"])
    with pytest.raises(KbNotFound):
        permissions.resolve(bob, ["nope"])
    with pytest.raises(Forbidden):
        permissions.editable(bob, "finance")
    with pytest.raises(Forbidden):
        permissions.require_admin(bob)
    assert [kb.name for kb in permissions.readable(LOCAL_OWNER)] == ["default", "finance", "hr"]
    assert run("kb", "revoke", "hr", "--user", "alice").exit_code == 0
    assert permissions.role(alice, "hr") == "reader"  # still a reader through group hr
    assert "had no" in run("kb", "revoke", "hr", "--user", "alice").output
    run("kb", "remove", "finance")
    assert permissions.readable(bob) == [] and Users(Database(kbs)).grants("finance") == []


def test_an_ldap_group_counts_like_a_local_one(kbs):
    accounts = Users(Database(kbs))
    accounts.add("carol")
    accounts.grant("finance", "group", "finance-team", "reader")
    assert accounts.roles(accounts.principal("carol", extra_groups=["finance-team"])) == {"finance": "reader"}
    with pytest.raises(InputError):
        accounts.grant("finance", "group", "a group", "reader")
