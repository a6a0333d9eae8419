"""LDAP logins against a real OpenLDAP ``slapd`` that each test module starts on loopback with a
small tree (Debian package ``slapd``; skipped, saying so, only when its binary is absent)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import FAKE_MODEL_ID
from test_kb_access import cli

from rag.accounts.audit import audit_for
from rag.accounts.ldap import LdapDirectory, LdapSettings, group_name
from rag.components import Components
from rag.config import Settings
from rag.errors import RagError
from rag.models.fakes import HashingEmbedder, ScriptedGenerator
from rag.web.app import WebApp
from rag.web.logins import NOBODY

SLAPD = shutil.which("slapd") or "/usr/sbin/slapd"
SLAPADD = shutil.which("slapadd") or "/usr/sbin/slapadd"
SCHEMA = Path("/etc/ldap/schema")
BASE = "dc=example,dc=org"
ROOT_PASSWORD = "root-secret"
TREE = f"""dn: {BASE}
objectClass: dcObject
objectClass: organization
o: Example
dc: example

dn: ou=people,{BASE}
objectClass: organizationalUnit
ou: people

dn: ou=groups,{BASE}
objectClass: organizationalUnit
ou: groups

dn: uid=alice,ou=people,{BASE}
objectClass: inetOrgPerson
uid: alice
cn: Alice
sn: A
userPassword: alice-ldap-pw
businessCategory: cn=finance,ou=groups,{BASE}

dn: uid=bob,ou=people,{BASE}
objectClass: inetOrgPerson
uid: bob
cn: Bob
sn: B
userPassword: bob-ldap-pw

dn: uid=evil*,ou=people,{BASE}
objectClass: inetOrgPerson
uid: evil*
cn: Evil
sn: E
userPassword: evil-pw

dn: cn=hr,ou=groups,{BASE}
objectClass: groupOfNames
cn: hr
member: uid=alice,ou=people,{BASE}

dn: cn=staff,ou=groups,{BASE}
objectClass: groupOfNames
cn: staff
member: uid=alice,ou=people,{BASE}
member: uid=bob,ou=people,{BASE}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def slapd(tmp_path_factory) -> Iterator[str]:
    """The URL of a slapd serving :data:`TREE` on a free loopback port (mdb database in a temp dir)."""
    if not Path(SLAPD).is_file():
        pytest.skip(f"slapd not found at {SLAPD}: apt-get install -y slapd ldap-utils (Debian) to run the LDAP tests")
    work = tmp_path_factory.mktemp("slapd")
    (work / "data").mkdir()
    schemas = "".join(f"include {SCHEMA / name}.schema\n" for name in ("core", "cosine", "inetorgperson", "nis"))
    conf = work / "slapd.conf"
    conf.write_text(
        schemas
        + f"""modulepath /usr/lib/ldap
moduleload back_mdb
pidfile {work}/slapd.pid
database mdb
maxsize 10485760
suffix "{BASE}"
rootdn "cn=admin,{BASE}"
rootpw {ROOT_PASSWORD}
directory {work}/data
access to attrs=userPassword by self read by anonymous auth by * none
access to * by * read
""",
        encoding="utf-8",
    )
    (work / "tree.ldif").write_text(TREE, encoding="utf-8")
    subprocess.run([SLAPADD, "-f", str(conf), "-l", str(work / "tree.ldif")], check=True, capture_output=True, timeout=60)
    port = free_port()
    url = f"ldap://127.0.0.1:{port}"
    # -d 0: stays in the foreground (its process is ours to stop), logging nothing
    server = subprocess.Popen([SLAPD, "-h", f"{url}/", "-f", str(conf), "-d", "0"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"slapd did not start: {server.stderr.read().decode() if server.stderr else ''}") from None
                time.sleep(0.1)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


def directory(url: str, **changes: str) -> LdapDirectory:
    settings = LdapSettings(
        url=url,
        base_dn=BASE,
        user_template=f"uid={{user}},ou=people,{BASE}",
        group_attribute="businessCategory",  # a DN-valued attribute standing in for memberOf
        group_filter="(&(objectClass=groupOfNames)(member={dn}))",
    )
    return LdapDirectory(LdapSettings(**{**settings.__dict__, **changes}))


def test_a_bind_as_the_user_gives_its_groups(slapd):
    ldap = directory(slapd)
    assert ldap.authenticate("alice", "alice-ldap-pw") == {"finance", "hr", "staff"}
    assert ldap.authenticate("bob", "bob-ldap-pw") == {"staff"}
    assert ldap.authenticate("alice", "wrong") is None
    assert ldap.authenticate("alice", "") is None  # an empty password would be an anonymous bind
    assert ldap.authenticate("nobody", "x") is None
    assert ldap.authenticate("evil*", "evil-pw") is None  # not a name rag-zh users can have


def test_users_can_be_found_by_a_search_filter(slapd):
    ldap = directory(slapd, user_template="", user_filter="(&(objectClass=inetOrgPerson)(uid={user}))", group_attribute="")
    assert ldap.authenticate("alice", "alice-ldap-pw") == {"hr", "staff"}
    assert ldap.authenticate("bob", "alice-ldap-pw") is None
    searching = directory(slapd, user_template="", user_filter="(uid={user})", bind_dn=f"cn=admin,{BASE}", bind_password=ROOT_PASSWORD)
    assert searching.authenticate("bob", "bob-ldap-pw") == {"staff"}


def test_an_unreachable_directory_fails_the_login(caplog):
    ldap = directory(f"ldap://127.0.0.1:{free_port()}")
    assert ldap.authenticate("alice", "alice-ldap-pw") is None
    assert "LDAP login of alice" in caplog.text


def test_settings_come_from_the_environment_and_are_checked(monkeypatch):
    assert LdapSettings.from_env() is None
    monkeypatch.setenv("RAG_LDAP_URL", "ldap://127.0.0.1:389")
    monkeypatch.setenv("RAG_LDAP_BASE_DN", BASE)
    with pytest.raises(RagError, match="RAG_LDAP_USER_TEMPLATE"):
        LdapSettings.from_env()
    monkeypatch.setenv("RAG_LDAP_USER_TEMPLATE", "uid={user},ou=people," + BASE)
    found = LdapSettings.from_env()
    assert found is not None and found.group_attribute == "memberOf"
    assert group_name("cn=hr,ou=groups," + BASE) == "hr" and group_name("finance") == "finance"


def test_ldap_groups_map_to_the_grants_of_groups_of_the_same_name(slapd, tmp_path, corpus_dir):
    cli("ingest", corpus_dir / "compute.txt")
    cli("kb", "create", "hr")
    cli("ingest", corpus_dir / "henan.txt", "--kb", "hr")
    cli("kb", "grant", "hr", "--group", "hr", "--role", "reader")
    cli("users", "add", "bob", "--admin")  # an LDAP user made administrator: a row without a password
    settings = Settings()
    models = Components(settings, HashingEmbedder(model_id=FAKE_MODEL_ID), ScriptedGenerator())
    app = WebApp(settings, models, feedback_file=tmp_path / "feedback.jsonl")
    app.logins.directory = directory(slapd)
    assert app.logins.required()
    assert app.logins.check("alice", "alice-ldap-pw") and not app.logins.check("alice", "nope")
    alice = app.principal(SimpleNamespace(username="alice"))
    assert alice.groups == {"finance", "hr", "staff"} and not alice.admin
    assert [kb.name for kb in app.library.readable(alice)] == ["hr"]
    *_, last = app.ask("基金规模是多少？", [], request=SimpleNamespace(username="alice"))
    assert {hit.kb for hit in last[1][-1].passages} == {"hr"}
    assert app.logins.check("bob", "bob-ldap-pw") and app.principal(SimpleNamespace(username="bob")).admin
    assert app.principal(SimpleNamespace(username="carol")) == NOBODY  # never logged in
    failures = [row.actor for row in audit_for(settings).rows() if row.action == "login failure"]
    assert failures == ["?"]  # alice is in the directory, not in RAG_DB: named as unknown
