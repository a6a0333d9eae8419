"""The chat's filter row and the last-sync line in headless Chromium, with the fake models (fast)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
from conftest import COMPUTE_ARTICLE, FAKE_MODEL_ID, FUND_ARTICLE, ROBOT_ARTICLE
from test_browser import browser, opened, running  # noqa: F401 - fixtures shared with the real-model run

from rag.components import Components
from rag.config import Settings
from rag.index.sync import sync
from rag.models.fakes import HashingEmbedder, ScriptedGenerator
from rag.web.app import WebApp

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def url(tmp_path_factory) -> Iterator[str]:
    """A page over a synced folder: compute.txt tagged 科技, henan.txt dated 2025-08-09."""
    work = tmp_path_factory.mktemp("web-filters")
    folder = work / "shared"
    (folder / "科技").mkdir(parents=True)
    (folder / "henan.txt").write_text("2025年8月9日 星期六\n\n" + FUND_ARTICLE, encoding="utf-8")
    (folder / "科技" / "compute.txt").write_text(COMPUTE_ARTICLE, encoding="utf-8")
    (folder / "robots.md").write_text(ROBOT_ARTICLE, encoding="utf-8")
    settings = replace(Settings(), index_dir=work / "index" / "main", embed_model=FAKE_MODEL_ID)
    embedder = HashingEmbedder(model_id=FAKE_MODEL_ID)
    sync(folder, settings.index_dir, embedder)
    app = WebApp(settings, Components(settings, embedder, ScriptedGenerator()), feedback_file=work / "feedback.jsonl")
    with running(app) as served:
        yield served


@pytest.fixture
def page(browser, url):  # noqa: F811 - the shared fixture
    with opened(browser, url) as page:
        yield page


def test_the_filter_row_restricts_the_passages_to_a_tag(page, tmp_path):
    page.get_by_text("筛选资料（可选）").click()
    page.click("#rag-tags input")
    page.get_by_role("option", name="科技").click()
    page.keyboard.press("Escape")
    page.fill("#rag-question textarea", "人工智能产业基金的规模是多少？")
    page.click("#rag-send")
    page.wait_for_selector("#rag-sources .rag-passage", timeout=60_000)
    files = page.locator("#rag-sources .rag-file").all_inner_texts()
    assert files and all("compute.txt" in text and "#科技" in text for text in files)
    page.screenshot(path=str(tmp_path / "filters.png"))


def test_the_knowledge_base_tab_shows_the_last_sync(page):
    page.get_by_role("tab", name="知识库").click()
    page.wait_for_function("() => document.querySelector('#rag-kb-summary').innerText.includes('上次同步')", timeout=30_000)
    assert "新增 3" in page.locator("#rag-kb-summary").inner_text()


def test_an_uploaded_file_joins_the_filter_choices_without_a_reload(page, tmp_path):
    article = tmp_path / "newcomer.txt"
    article.write_text(ROBOT_ARTICLE.replace("机器人", "无人机"), encoding="utf-8")
    page.get_by_role("tab", name="知识库").click()
    page.set_input_files("#rag-files input[type=file]", str(article))
    page.wait_for_timeout(1500)  # the browser uploads the file before the button can use it
    page.click("#rag-upload")
    page.wait_for_function("() => document.querySelector('#rag-kb-status').innerText.includes('已加入')", timeout=60_000)
    page.get_by_role("tab", name="问答").click()
    page.get_by_text("筛选资料（可选）").click()
    page.click("#rag-source-files input")
    assert page.get_by_role("option", name="newcomer.txt").is_visible()
