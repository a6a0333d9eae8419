"""The 管理 tab in headless Chromium, with the fake models (fast): an administrator adds a user, grants
it a KB, creates an API key (shown once) and revokes it; the new user logs in and sees no 管理 tab."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from conftest import FAKE_MODEL_ID
from test_browser import CHROMIUM_ARGS, browser, free_port  # noqa: F401 - fixtures shared with the real-model run
from test_browser_kb import logged_in
from test_kb_access import cli
from test_web_access import PASSWORD

from rag.accounts.audit import audit_for
from rag.accounts.db import Database
from rag.accounts.keys import Keys
from rag.components import Components
from rag.config import Settings
from rag.models.fakes import HashingEmbedder, ScriptedGenerator
from rag.web.app import WebApp, launch_app

pytestmark = pytest.mark.browser
NEW_PASSWORD = "erin's password"


@pytest.fixture
def url(tmp_path, corpus_dir, monkeypatch) -> Iterator[str]:
    """A page with logins over two KBs; carol is an administrator, alice is not."""
    monkeypatch.setenv("RAG_INDEX", str(tmp_path / "default-index"))
    monkeypatch.setenv("RAG_DB", str(tmp_path / "rag.db"))
    monkeypatch.setenv("RAG_EMBED_MODEL", FAKE_MODEL_ID)
    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path / "data"))
    cli("kb", "create", "hr", "--title", "人事")
    cli("ingest", corpus_dir / "henan.txt", "--kb", "hr")
    cli("users", "add", "carol", "--admin", "--password-stdin", input=PASSWORD + "\n")
    cli("users", "add", "alice", "--password-stdin", input=PASSWORD + "\n")
    settings = Settings()
    app = WebApp(settings, Components(settings, HashingEmbedder(model_id=FAKE_MODEL_ID), ScriptedGenerator()))
    demo = app.build()
    port = free_port()
    launch_app(demo, "127.0.0.1", port, app.logins.check, block=False)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()


def wait_for_text(page, selector: str, text: str) -> None:
    page.wait_for_function(
        "([sel, text]) => (document.querySelector(sel)?.innerText || '').includes(text)", arg=[selector, text], timeout=30_000
    )


def test_an_administrator_manages_users_grants_and_keys(browser, url, tmp_path):  # noqa: F811 - the shared fixture
    with logged_in(browser, url, "carol", PASSWORD) as page:
        page.wait_for_selector("#rag-question textarea", timeout=60_000)
        page.get_by_role("tab", name="管理").click()
        wait_for_text(page, "#rag-admin-users", "alice")  # filled on page load, for administrators

        page.fill("#rag-admin-user-name textarea", "erin")
        page.fill("#rag-admin-user-password input", "short")
        page.click("#rag-admin-user-add")
        wait_for_text(page, "#rag-admin-user-status", "密码太短")
        page.fill("#rag-admin-user-password input", NEW_PASSWORD)
        page.click("#rag-admin-user-add")
        wait_for_text(page, "#rag-admin-user-status", "已添加用户「erin」")
        wait_for_text(page, "#rag-admin-users", "erin")

        page.get_by_role("tab", name="授权").click()
        page.click("#rag-admin-grant-kb input")
        page.get_by_role("option", name="hr").click()
        page.fill("#rag-admin-grant-name textarea", "erin")
        page.click("#rag-admin-grant")
        wait_for_text(page, "#rag-admin-grant-status", "用户「erin」现在是知识库「hr」的读者")
        wait_for_text(page, "#rag-admin-grants", "erin")

        page.get_by_role("tab", name="API 密钥").click()
        page.fill("#rag-admin-key-user textarea", "erin")
        page.fill("#rag-admin-key-label textarea", "report-bot")
        page.click("#rag-admin-key-create")
        wait_for_text(page, "#rag-admin-key-status", "只显示这一次")
        secret = page.locator("#rag-admin-key-secret textarea").input_value()
        assert secret.startswith("rag-")
        keys_table = page.locator("#rag-admin-keys").inner_text()
        assert "report-bot" in keys_table and secret[:8] in keys_table and secret not in keys_table
        assert Keys(Database(Settings().db_file)).principal(secret).name == "erin"  # the key shown works
        page.screenshot(path=str(tmp_path / "admin-keys.png"))

        page.once("dialog", lambda dialog: dialog.accept())  # 确定要撤销这个密钥吗？
        page.click("#rag-admin-key-choice input")
        page.get_by_role("option", name="1 · report-bot（erin）").click()
        page.click("#rag-admin-key-revoke")
        wait_for_text(page, "#rag-admin-key-status", "已撤销密钥 1")
        assert page.locator("#rag-admin-key-secret textarea").input_value() == ""  # shown once, gone now
        assert Keys(Database(Settings().db_file)).principal(secret) is None

        page.reload()  # a reload never shows the key again
        page.wait_for_selector("#rag-question textarea", timeout=60_000)
        page.get_by_role("tab", name="管理").click()
        wait_for_text(page, "#rag-admin-users", "erin")
        assert secret not in page.content()

    rows = [(r.actor, r.action, r.kbs, r.detail) for r in audit_for(Settings()).rows()]
    assert [row for row in rows if row[0] == "carol"] == [
        ("carol", "user add", (), "erin (no group)"),
        ("carol", "grant", ("hr",), "user erin reader"),
        ("carol", "key create", (), "1 report-bot of erin"),
        ("carol", "key revoke", (), "1 report-bot of erin"),
    ]

    for user, password in (("erin", NEW_PASSWORD), ("alice", PASSWORD)):  # the new user logs in; neither is an administrator
        with logged_in(browser, url, user, password) as page:
            page.wait_for_selector("#rag-question textarea", timeout=60_000)
            page.wait_for_timeout(1000)  # the page-load events have run
            assert page.get_by_role("tab", name="管理").count() == 0 and page.get_by_role("tab", name="审计").count() == 0
            assert page.locator("#rag-admin-users").count() == 0 and "carol" not in page.content()
