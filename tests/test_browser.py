"""The real web chat in headless Chromium: real models, the sample corpus, upload, delete, feedback.

Starts the Gradio server in this process on a free 127.0.0.1 port and drives it with
Playwright's Python API and the system Chromium (``apt-get install chromium``; no browser
download). Screenshots go to a temporary folder; ``RAG_SCREENSHOT_DIR=docs`` refreshes the
ones in ``docs/`` (a test run never changes tracked files otherwise).
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from rag.components import Components
from rag.config import REPO_ROOT, Settings
from rag.index.ingest import ingest
from rag.models.embedders import embedder_for
from rag.web.app import WebApp, launch_app
from rag.web.feedback import FeedbackStore

pytestmark = [pytest.mark.browser, pytest.mark.real]

CHROMIUM = os.environ.get("RAG_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ANSWER_MS = 300_000  # the 1.5B model needs 20-40 s per answer on 2 cores; more when the machine is busy
QINGLAN = (
    "青岚市设立未来产业基金\n\n"
    "青岚市人民政府近日宣布，设立总规模77亿元的青岚未来产业基金，重点支持人工智能和新材料企业。"
    "基金由市财政出资引导，吸引社会资本共同参与。\n"
)

ANSWER_DONE = """() => {
  const bots = document.querySelectorAll('#rag-chat [data-testid="bot"]');
  const last = bots[bots.length - 1];
  return !!last && !last.querySelector('.rag-cursor, .rag-pending') && last.innerText.trim().length > 0;
}"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[tuple[str, FeedbackStore]]:
    """(url, the feedback store in RAG_DB) of a running server over a fresh index of corpus/."""
    work = tmp_path_factory.mktemp("web-real")
    settings = replace(Settings(), index_dir=work / "index" / "main")
    embedder = embedder_for(settings)
    ingest([REPO_ROOT / "corpus"], settings.index_dir, embedder)
    app = WebApp(settings, Components(settings, embedder=embedder), feedback_file=work / "feedback.jsonl")
    app.models.preload()
    with running(app) as url:
        yield url, app.feedback


@contextlib.contextmanager
def running(app: WebApp) -> Iterator[str]:
    """The URL of ``app``'s page, served on a free loopback port until the block ends."""
    demo = app.build()
    port = free_port()
    launch_app(demo, "127.0.0.1", port, [], block=False)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).is_file():
        pytest.fail(f"Chromium not found at {CHROMIUM}: apt-get install -y chromium (or set RAG_CHROMIUM)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@contextlib.contextmanager
def opened(browser, url: str) -> Iterator:
    """A page of ``url`` in a fresh browser context, once the question box is there."""
    context = browser.new_context(viewport={"width": 1440, "height": 1000}, locale="zh-CN")
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())  # the delete confirmation
    page.goto(url)
    page.wait_for_selector("#rag-question textarea", timeout=60_000)
    try:
        yield page
    finally:
        context.close()


@pytest.fixture
def page(browser, server):
    with opened(browser, server[0]) as page:
        yield page


def ask(page, question: str) -> None:
    """Type a question, send it, and check the passages show up before the answer is finished."""
    page.get_by_role("tab", name="问答").click()
    page.fill("#rag-question textarea", question)
    page.click("#rag-send")
    page.wait_for_function(
        "q => [...document.querySelectorAll('#rag-sources .rag-question')].some(e => e.innerText.includes(q))",
        arg=question,
        timeout=60_000,
    )
    assert page.locator("#rag-chat .rag-pending, #rag-chat .rag-cursor").count() > 0, "passages came after the answer"
    page.wait_for_function(ANSWER_DONE, timeout=ANSWER_MS)


def last_answer(page) -> str:
    return page.locator('#rag-chat [data-testid="bot"]').last.inner_text()


@pytest.fixture()
def shots(tmp_path) -> Path:
    """Where screenshots go: $RAG_SCREENSHOT_DIR (e.g. docs) or this test's temporary folder."""
    folder = Path(os.environ.get("RAG_SCREENSHOT_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_cited_answer_highlight_and_feedback(page, server, shots):
    _, feedback = server
    ask(page, "河南设立的人工智能产业基金规模是多少？")
    answer = page.locator('#rag-chat [data-testid="bot"]').last
    assert "30亿" in answer.inner_text().replace(" ", "")
    link = answer.locator("a.rag-cite:not(.rag-unverified)").first
    target = link.get_attribute("href").lstrip("#")
    link.click()
    passage = page.locator(f"#{target}")
    page.wait_for_function("id => document.getElementById(id).classList.contains('rag-highlight')", arg=target)
    assert "30亿元" in passage.inner_text().replace(" ", "")
    assert passage.is_visible() and page.locator(".rag-highlight").count() == 1
    page.wait_for_timeout(800)  # the smooth scroll
    page.screenshot(path=str(shots / "screenshot-chat.png"))

    page.fill("#rag-comment textarea", "数字准确，出处清楚")
    page.click("#rag-up")
    page.wait_for_function("() => document.querySelector('#rag-feedback-status').innerText.includes('已记录')")
    record = feedback.records()[-1]
    assert record["vote"] == "up" and record["comment"] == "数字准确，出处清楚"
    assert record["question"] == "河南设立的人工智能产业基金规模是多少？" and "30亿" in record["answer"]
    assert record["citations"] and len(record["passage_chunk_ids"]) >= 1


def test_upload_answer_from_it_then_delete(page, tmp_path, shots):
    article = tmp_path / "青岚市未来产业基金.txt"
    article.write_text(QINGLAN, encoding="utf-8")
    page.get_by_role("tab", name="知识库").click()
    page.set_input_files("#rag-files input[type=file]", str(article))
    page.wait_for_timeout(1500)  # the browser uploads the file before the button can use it
    page.click("#rag-upload")
    page.wait_for_function("() => document.querySelector('#rag-kb-status').innerText.includes('已加入')", timeout=120_000)
    table = page.locator("#rag-docs")
    assert "青岚市未来产业基金.txt" in table.inner_text()
    page.wait_for_timeout(1500)  # let the "working" overlay fade
    page.screenshot(path=str(shots / "screenshot-kb.png"))

    ask(page, "青岚市设立的未来产业基金总规模是多少？")
    assert "77亿" in last_answer(page).replace(" ", "")
    assert "青岚市未来产业基金.txt" in page.locator("#rag-sources").inner_text()
    assert page.locator('#rag-chat [data-testid="bot"]').last.locator("a.rag-cite").count() >= 1

    page.get_by_role("tab", name="知识库").click()
    page.click("#rag-delete-choice input")
    page.get_by_role("option", name="青岚市设立未来产业基金（青岚市未来产业基金）").click()
    page.click("#rag-delete")
    page.wait_for_function("() => document.querySelector('#rag-kb-status').innerText.includes('已删除')", timeout=60_000)
    assert "青岚市未来产业基金.txt" not in table.inner_text()
