"""Logins and knowledge bases in headless Chromium, with the fake models (fast): a reader logs in
and sees only their KB's passages; the 知识库 and 审计 tabs are not theirs."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
from conftest import FAKE_MODEL_ID
from test_browser import CHROMIUM_ARGS, browser, free_port  # noqa: F401 - fixtures shared with the real-model run
from test_kb_access import TITLES, cli
from test_web_access import PASSWORD

from rag.accounts.audit import audit_for
from rag.components import Components
from rag.config import Settings
from rag.models.fakes import HashingEmbedder, ScriptedGenerator
from rag.web.app import WebApp, launch_app

pytestmark = pytest.mark.browser


@pytest.fixture
def url(tmp_path, corpus_dir, monkeypatch) -> Iterator[str]:
    """A page with logins over four KBs; alice reads hr only."""
    # browser tests keep the environment as configured (conftest): point everything at tmp_path here
    monkeypatch.setenv("RAG_INDEX", str(tmp_path / "default-index"))
    monkeypatch.setenv("RAG_DB", str(tmp_path / "rag.db"))
    monkeypatch.setenv("RAG_EMBED_MODEL", FAKE_MODEL_ID)
    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path / "data"))
    (corpus_dir / "library.txt").write_text(f"{TITLES['default']}\n\n市图书馆自9月起每天开放到晚上10点，周一照常开放。\n", encoding="utf-8")
    cli("ingest", corpus_dir / "library.txt")
    for kb, file in (("hr", "henan.txt"), ("finance", "compute.txt"), ("public", "robots.md")):
        cli("kb", "create", kb)
        cli("ingest", corpus_dir / file, "--kb", kb)
    cli("users", "add", "alice", "--group", "hr", "--password-stdin", input=PASSWORD + "\n")
    cli("kb", "grant", "hr", "--group", "hr", "--role", "reader")
    settings = Settings()
    app = WebApp(settings, Components(settings, HashingEmbedder(model_id=FAKE_MODEL_ID), ScriptedGenerator()))
    demo = app.build()
    port = free_port()
    launch_app(demo, "127.0.0.1", port, app.logins.check, block=False)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()


@contextlib.contextmanager
def logged_in(browser, url: str, user: str, password: str) -> Iterator:  # noqa: F811 - the shared fixture
    context = browser.new_context(viewport={"width": 1440, "height": 1000}, locale="zh-CN")
    page = context.new_page()
    page.goto(url)
    page.locator("input[type=text]").first.fill(user)
    page.locator("input[type=password]").fill(password)
    page.keyboard.press("Enter")
    try:
        yield page
    finally:
        context.close()


def test_a_reader_logs_in_and_sees_only_their_kb(browser, url, tmp_path):  # noqa: F811 - the shared fixture
    with logged_in(browser, url, "alice", "not the password") as page:
        page.wait_for_timeout(1500)
        assert page.locator("#rag-question textarea").count() == 0  # still the login form
    with logged_in(browser, url, "alice", PASSWORD) as page:
        page.wait_for_selector("#rag-question textarea", timeout=60_000)
        page.fill("#rag-question textarea", "规模 开放 产业 算力 基金是多少？")
        page.click("#rag-send")
        page.wait_for_selector("#rag-sources .rag-passage", timeout=60_000)
        sources = page.locator("#rag-sources").inner_text()
        assert TITLES["hr"] in sources and "hr" in page.locator("#rag-sources .rag-kb").first.inner_text()
        assert not any(title in sources for kb, title in TITLES.items() if kb != "hr")
        page.get_by_role("tab", name="检索测试").click()
        page.fill("#rag-probe-query textarea", "规模 开放 产业 算力")
        page.click("#rag-probe-run")
        page.wait_for_selector("#rag-probe-results .rag-hit", timeout=30_000)
        probe = page.locator("#rag-probe-results").inner_text()
        assert TITLES["hr"] in probe and not any(title in probe for kb, title in TITLES.items() if kb != "hr")
        page.get_by_role("tab", name="知识库").click()
        page.wait_for_function("() => document.querySelector('#rag-kb-summary').innerText.includes('没有可以修改')", timeout=30_000)
        assert page.get_by_role("tab", name="审计").count() == 0
        page.screenshot(path=str(tmp_path / "reader.png"))
    actions = [(row.actor, row.action) for row in audit_for(Settings()).rows()]
    assert ("?", "login failure") not in actions and ("alice", "login failure") in actions
    assert ("alice", "ask") in actions and ("alice", "search") in actions
