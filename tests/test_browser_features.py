"""Evidence highlighting, 查看全文, 检索测试 and saved conversations in headless Chromium.

The real page and server over the sample corpus, with the fast fakes (hashing embedder, scripted
LLM that quotes passage [1]) so these run in seconds; ``tests/test_browser.py`` keeps the
real-model run. ``RAG_SCREENSHOT_DIR=docs`` refreshes ``docs/screenshot-probe.png``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
from conftest import FAKE_MODEL_ID, SAMPLE_CORPUS
from test_browser import ANSWER_DONE, browser, opened, running, shots  # noqa: F401 - fixtures shared with the real-model run

from rag.components import Components
from rag.config import Settings
from rag.index.ingest import ingest
from rag.models.fakes import HashingEmbedder, ScriptedGenerator
from rag.web.app import WebApp

pytestmark = pytest.mark.browser

HENAN = "河南设立的人工智能产业基金规模是多少？"


@pytest.fixture(scope="module")
def fake_server(tmp_path_factory) -> Iterator[str]:
    """The URL of a page over the sample corpus with the fake models and its own conversation file."""
    work = tmp_path_factory.mktemp("web-fake")
    embedder = HashingEmbedder(model_id=FAKE_MODEL_ID)
    settings = replace(
        Settings(), index_dir=work / "index", embed_model=FAKE_MODEL_ID, conversations_db=work / "conversations.db"
    )
    ingest([SAMPLE_CORPUS], settings.index_dir, embedder)
    app = WebApp(settings, Components(settings, embedder, ScriptedGenerator()), feedback_file=work / "feedback.jsonl")
    with running(app) as url:
        yield url


@pytest.fixture
def page(browser, fake_server):  # noqa: F811 - the shared fixture
    with opened(browser, fake_server) as page:
        yield page


def ask(page, question: str) -> None:
    page.fill("#rag-question textarea", question)
    page.click("#rag-send")
    page.wait_for_function(ANSWER_DONE, timeout=60_000)


def in_view(page, selector: str) -> bool:
    """Whether the element is inside the sources panel's visible area and the window."""
    return page.evaluate(
        """sel => { const el = document.querySelector(sel); const r = el.getBoundingClientRect();
        const p = document.querySelector('#rag-sources').getBoundingClientRect();
        return r.height > 0 && r.top >= Math.max(0, p.top) - 1 && r.bottom <= Math.min(innerHeight, p.bottom) + 1; }""",
        selector,
    )


def wait_for_document(page) -> None:
    """Until the 查看全文 dialog shows its marked evidence."""
    page.wait_for_function(
        """() => { const m = document.querySelector('#rag-doc-view .rag-modal:not([hidden]) mark.rag-evidence');
        return !!m && m.getBoundingClientRect().height > 0; }""",
        timeout=30_000,
    )


def test_evidence_is_highlighted_and_a_citation_click_scrolls_to_it(page):
    ask(page, HENAN)
    answer = page.locator('#rag-chat [data-testid="bot"]').last
    link = answer.locator("a.rag-cite:not(.rag-unverified)").first
    target = link.get_attribute("href").lstrip("#")
    evidence = page.locator(f"#{target} mark.rag-evidence")
    assert evidence.count() == 1 and "30亿元" in evidence.inner_text().replace(" ", "")
    page.evaluate("document.querySelector('#rag-sources').scrollTop = 10000")  # the passage scrolled away
    link.click()
    page.wait_for_function("id => document.querySelector('#' + id + ' mark.rag-evidence-active')", arg=target)
    page.wait_for_timeout(800)  # the smooth scroll
    assert in_view(page, f"#{target} mark.rag-evidence")
    assert page.locator("mark.rag-evidence-active").count() == 1


def test_full_document_view_locates_the_chunk_and_the_evidence(page, shots):  # noqa: F811
    ask(page, HENAN)
    card = page.locator("#rag-sources .rag-passage.rag-cited").first
    chunk_text = card.locator(".rag-text").inner_text()
    card.locator("a.rag-fulltext").click()
    modal = page.locator("#rag-doc-view .rag-modal")
    wait_for_document(page)
    full = modal.locator(".rag-doc-text").inner_text()
    assert len(full) > len(chunk_text) and "30亿元" in modal.locator("mark.rag-evidence").inner_text().replace(" ", "")
    assert modal.locator(".rag-doc-chunk").inner_text().replace("\n", "") == chunk_text.replace("\n", "")
    assert page.evaluate(
        """() => { const m = document.querySelector('#rag-doc-view mark.rag-evidence').getBoundingClientRect();
        const box = document.querySelector('.rag-doc-text').getBoundingClientRect();
        return m.top >= box.top - 1 && m.bottom <= box.bottom + 1; }"""
    )
    page.screenshot(path=str(shots / "screenshot-fulltext.png"))
    modal.locator(".rag-modal-close").click()
    assert not modal.is_visible()
    card.locator("a.rag-fulltext").click()  # the same document opens again
    wait_for_document(page)


def test_retrieval_test_page_lists_dense_bm25_and_fused(page, shots):  # noqa: F811
    page.get_by_role("tab", name="检索测试").click()
    page.fill("#rag-probe-query textarea", "八大算力枢纽节点总算力规模")
    page.click("#rag-probe-run")
    page.wait_for_selector("#rag-probe-results .rag-ranking", timeout=30_000)
    for mode in ("dense", "bm25", "hybrid"):
        hits = page.locator(f'.rag-ranking[data-mode="{mode}"] li.rag-hit')
        assert hits.count() == 5, mode
        ranks = [hits.nth(i).locator(".rag-num").inner_text() for i in range(5)]
        assert ranks == ["1", "2", "3", "4", "5"]
        assert all(float(hits.nth(i).locator(".rag-score").inner_text()) > 0 for i in range(5))
    assert "215.5" in page.locator('.rag-ranking[data-mode="bm25"] li.rag-hit').first.inner_text()
    page.screenshot(path=str(shots / "screenshot-probe.png"))


def test_a_conversation_survives_a_reload_and_can_be_renamed_and_deleted(page):
    ask(page, HENAN)
    history = page.locator("#rag-conversations")
    # saved: the list marks this conversation and the browser keeps its id (other tests saved theirs too)
    page.wait_for_function(
        "() => document.querySelector('#rag-conversations input:checked') && localStorage.getItem('rag-conversation')",
        timeout=30_000,
    )
    assert HENAN[:20] in history.locator("label:has(input:checked)").inner_text()
    page.reload()
    page.wait_for_function(
        "q => [...document.querySelectorAll('#rag-chat [data-testid=\"user\"]')].some(e => e.innerText.includes(q))",
        arg=HENAN,
        timeout=30_000,
    )
    assert "30亿" in page.locator('#rag-chat [data-testid="bot"]').last.inner_text().replace(" ", "")
    assert page.locator("#rag-sources mark.rag-evidence").count() >= 1
    page.fill("#rag-conv-title textarea, #rag-conv-title input", "河南基金问答")
    page.click("#rag-conv-rename")
    history.get_by_text("河南基金问答").wait_for(timeout=30_000)
    page.click("#rag-new")
    page.wait_for_function("() => !document.querySelector('#rag-chat [data-testid=\"bot\"]')")
    history.get_by_text("河南基金问答").click()
    page.wait_for_function(ANSWER_DONE, timeout=30_000)
    page.click("#rag-conv-delete")
    page.wait_for_function("() => !document.querySelector('#rag-chat [data-testid=\"bot\"]')")
    assert history.get_by_text("河南基金问答").count() == 0
