"""The chat in headless Chromium shows only verified text while the model writes: every state of
the answer bubble is a prefix of the final answer. Fast fakes (hashing embedder, a slow scripted
LLM whose first draft is withheld and retried), as in ``tests/test_browser_features.py``."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
from conftest import FAKE_MODEL_ID, SAMPLE_CORPUS
from test_browser import ANSWER_DONE, browser, running  # noqa: F401 - the shared browser fixture

from rag.components import Components
from rag.config import Settings
from rag.index.ingest import ingest
from rag.models.fakes import HashingEmbedder, ScriptedGenerator
from rag.web.app import WebApp

pytestmark = pytest.mark.browser

HENAN = "河南设立的人工智能产业基金规模是多少？"
DRAFTS = ["浙江省设立的人工智能产业基金总规模是50亿元[编号3]", "河南设立了总规模30亿元的人工智能产业基金[1]。它由8月9日发布的政策设立[1]。"]
WATCH = """() => {
  window.ragSeen = [];
  const chat = document.querySelector('#rag-chat');
  const note = () => {
    const bots = chat.querySelectorAll('[data-testid="bot"]');
    const last = bots[bots.length - 1];
    if (last && !last.querySelector('.rag-pending')) window.ragSeen.push(last.innerText.replace('▍', '').trim());
  };
  new MutationObserver(note).observe(chat, {subtree: true, childList: true, characterData: true});
}"""


@pytest.fixture(scope="module")
def chat_url(tmp_path_factory) -> Iterator[str]:
    work = tmp_path_factory.mktemp("web-verified")
    embedder = HashingEmbedder(model_id=FAKE_MODEL_ID)
    settings = replace(Settings(), index_dir=work / "index", embed_model=FAKE_MODEL_ID, conversations_db=work / "c.db")
    ingest([SAMPLE_CORPUS], settings.index_dir, embedder)
    generator = ScriptedGenerator(DRAFTS, piece_delay_s=0.05)  # slow enough for the page to show each piece
    app = WebApp(settings, Components(settings, embedder, generator), feedback_file=work / "feedback.jsonl")
    with running(app) as url:
        yield url


def test_the_page_shows_only_prefixes_of_the_final_answer(browser, chat_url):  # noqa: F811 - the shared fixture
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = context.new_page()
    page.goto(chat_url)
    page.wait_for_selector("#rag-question textarea", timeout=60_000)
    page.wait_for_selector("#rag-chat", state="attached", timeout=60_000)  # the page renders parts one by one
    page.evaluate(WATCH)
    page.fill("#rag-question textarea", HENAN)
    page.click("#rag-send")
    page.wait_for_function(ANSWER_DONE, timeout=60_000)
    final = page.locator('#rag-chat [data-testid="bot"]').last.inner_text().strip()
    seen = [text for text in page.evaluate("window.ragSeen") if text]
    context.close()
    assert final.startswith("河南设立了总规模30亿元的人工智能产业基金[1]。") and "浙江" not in final
    assert any(text.startswith("河南设立了") and text != final for text in seen)  # the first sentence came alone
    assert all(final.startswith(text) for text in seen), [text for text in seen if not final.startswith(text)]
