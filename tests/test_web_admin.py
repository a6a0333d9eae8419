"""The 管理 tab's 用户, 授权 and API 密钥 screens: administrators only (the handlers check again on
every click), the CLI's own code underneath, every change audited in the administrator's name."""

from __future__ import annotations

import pytest
from test_web_access import PASSWORD, as_user, web  # noqa: F401 - the shared fixture

from rag.accounts.audit import audit_for
from rag.accounts.keys import Keys
from rag.accounts.users import Users
from rag.config import Settings
from rag.web.accounts_tab import NOT_ADMIN


def admin_rows(web):  # noqa: F811 - the shared fixture
    return [(r.actor, r.action, r.kbs, r.detail, r.outcome) for r in audit_for(Settings()).rows() if r.action != "ask"]


@pytest.fixture
def screens(web):  # noqa: F811 - the shared fixture
    return web.accounts


def principal(web, name):  # noqa: F811 - the shared fixture
    return web.principal(as_user(name))


def test_a_non_administrator_gets_a_notice_never_a_row_nor_a_change(web, screens):  # noqa: F811
    alice = principal(web, "alice")
    users, grants, keys, kb_choices, key_choices = screens.load(alice)
    assert (users, grants, keys, kb_choices["choices"], key_choices["choices"]) == ([], [], [], [], [])
    before = admin_rows(web)
    status, _, table = screens.add_user(alice, "mallory", "hr", True, PASSWORD)
    assert status == f"❌ {NOT_ADMIN}" and table == []
    assert screens.grant(alice, "finance", "user", "alice", "editor") == (f"❌ {NOT_ADMIN}", [], [])
    assert screens.revoke(alice, "hr", "group", "hr") == (f"❌ {NOT_ADMIN}", [], [])
    status, secret, table, choices = screens.create_key(alice, "alice", "mine")
    assert status == f"❌ {NOT_ADMIN}" and secret == "" and table == [] and choices["choices"] == []
    key, bobs = Keys(web.models.database()).create("bob", "bobs")
    status, _, table, _ = screens.revoke_key(alice, str(key.id))
    assert status == f"❌ {NOT_ADMIN}" and table == []
    accounts = Users(web.models.database())
    assert accounts.principal("mallory") is None
    assert web.library.permissions.role(alice, "finance") is None and accounts.roles(alice) == {"hr": "reader", "public": "editor"}
    assert [k.user for k in Keys(web.models.database()).all()] == ["bob"] and Keys(web.models.database()).principal(bobs) is not None
    assert admin_rows(web) == before  # nothing happened, so nothing was audited
    assert not web.kb_choices(as_user("alice"))[3]["visible"] and web.kb_choices(as_user("carol"))[3]["visible"]


def test_an_administrator_adds_a_user_with_groups_and_a_password(web, screens):  # noqa: F811
    carol = principal(web, "carol")
    status, password, table = screens.add_user(carol, " erin ", "hr， finance", False, PASSWORD)
    assert status == "✅ 已添加用户「erin」（可以用密码登录）。" and password == ""
    assert next(row for row in table if row[0] == "erin")[:5] == ["erin", "", "finance, hr", "", "密码"]  # groups' grants are not hers
    assert web.logins.check("erin", PASSWORD) and web.principal(as_user("erin")).groups == {"hr", "finance"}
    assert screens.add_user(carol, "bot", "", True, "")[0] == "✅ 已添加管理员「bot」（没有密码，只能用 API 密钥）。"
    assert web.principal(as_user("bot")).admin
    assert admin_rows(web)[-2:] == [
        ("carol", "user add", (), "erin (finance, hr)", "ok"),
        ("carol", "user add", (), "bot (no group, admin)", "ok"),
    ]
    status, password, _ = screens.add_user(carol, "frank", "", False, "short")
    assert status == "❌ 密码太短：至少需要 8 个字符。" and password == "short"  # kept to fix
    assert screens.add_user(carol, "erin", "", False, PASSWORD)[0] == "❌ 用户「erin」已经存在。"
    assert "不能作用户名" in screens.add_user(carol, "张三", "", False, PASSWORD)[0]
    assert "不能作组名" in screens.add_user(carol, "frank", "人事", False, PASSWORD)[0]
    assert screens.add_user(carol, "  ", "", False, PASSWORD)[0] == "请填写用户名。"
    assert Users(web.models.database()).principal("frank") is None


def test_grants_and_revokes_are_the_clis_with_the_administrators_name(web, screens):  # noqa: F811
    carol = principal(web, "carol")
    dave = principal(web, "dave")
    assert web.library.readable(dave) == []
    status, grants, users = screens.grant(carol, "finance", "user", "dave", "reader")
    assert status == "✅ 用户「dave」现在是知识库「finance」的读者。"
    assert ["finance", "用户", "dave", "读者"] in grants
    assert [kb.name for kb in web.library.readable(principal(web, "dave"))] == ["finance"]
    assert next(row for row in users if row[0] == "dave")[3] == "finance:读者"
    status, grants, _ = screens.grant(carol, "public", "group", "hr", "editor")
    assert status == "✅ 组「hr」现在是知识库「public」的编辑。" and ["public", "组", "hr", "编辑"] in grants
    assert screens.revoke(carol, "finance", "user", "dave")[0] == "✅ 用户「dave」在知识库「finance」上的权限已撤销。"
    assert web.library.readable(principal(web, "dave")) == []
    assert screens.revoke(carol, "finance", "user", "dave")[0].startswith("ℹ️")
    assert admin_rows(web)[-4:] == [
        ("carol", "grant", ("finance",), "user dave reader", "ok"),
        ("carol", "grant", ("public",), "group hr editor", "ok"),
        ("carol", "revoke", ("finance",), "user dave", "ok"),
        ("carol", "revoke", ("finance",), "user dave", "none"),
    ]
    assert screens.grant(carol, "finance", "user", "ghost", "reader")[0] == "❌ 没有名为「ghost」的用户，请先在「用户」页添加。"
    assert screens.grant(carol, "nope", "user", "dave", "reader")[0] == "❌ 没有名为「nope」的知识库。"
    assert "unknown role" in screens.grant(carol, "finance", "user", "dave", "owner")[0]
    assert screens.grant(carol, "finance", "robot", "dave", "reader")[0].startswith("❌")
    assert screens.grant(carol, "", "user", "dave", "reader")[0] == "请选择知识库，并填写用户名或组名。"
    assert web.library.readable(principal(web, "dave")) == []


def test_a_key_is_shown_once_listed_by_its_start_and_revoked(web, screens):  # noqa: F811
    carol = principal(web, "carol")
    status, secret, table, choices = screens.create_key(carol, "dave", "report-bot")
    assert status.startswith("✅ 已为「dave」创建密钥 1（report-bot）") and "只显示这一次" in status
    keys = Keys(web.models.database())
    assert secret.startswith("rag-") and keys.principal(secret).name == "dave"
    assert table == [["1", "dave", "report-bot", secret[:8] + "…", table[0][4], ""]]
    assert not any(secret in cell for row in table for cell in row)  # only its first characters are ever listed again
    assert choices["choices"] == [("1 · report-bot（dave）", "1")]
    assert all(secret not in str(part) for part in screens.load(carol))  # a reload never shows it
    status, box, table, choices = screens.revoke_key(carol, "1")
    assert status == "✅ 已撤销密钥 1（report-bot，dave），它从下一次请求起失效。" and box == ""
    assert keys.principal(secret) is None and table[0][5] and choices["choices"] == []
    assert admin_rows(web)[-2:] == [
        ("carol", "key create", (), "1 report-bot of dave", "ok"),
        ("carol", "key revoke", (), "1 report-bot of dave", "ok"),
    ]
    assert screens.create_key(carol, "ghost", "")[0] == "❌ 没有名为「ghost」的用户，请先在「用户」页添加。"
    assert screens.revoke_key(carol, "42")[0] == "❌ 没有编号为 42 的 API 密钥。"
    assert screens.revoke_key(carol, None)[0] == "请先选择要撤销的密钥。"
    assert [k.id for k in keys.all()] == [1]
