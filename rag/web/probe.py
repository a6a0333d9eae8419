"""The 检索测试 tab: what dense, BM25 and fused retrieval each find for a question, to see why it was
answered badly."""

from __future__ import annotations

import logging
from typing import Any

import gradio as gr

from rag.accounts.kbs import Kb, KbNotFound
from rag.errors import RagError
from rag.qa.retriever import MAX_QUERY_CHARS
from rag.web.base import PageBase, friendly_error, no_kb_message, question_problem
from rag.web.render import rankings_html

log = logging.getLogger(__name__)

PROBE_K_RANGE = (1, 20)  # the 检索测试 slider


def probe_k(k: float) -> int:
    """The 检索测试 top-k the browser sent, held to the slider's range (a client may send any number)."""
    low, high = PROBE_K_RANGE
    return int(max(low, min(high, k)))


class ProbeTab(PageBase):
    """The handler and layout of the retrieval test."""

    def probe(self, query: str, k: float, kbs: list[str] | None = None, request: gr.Request | None = None) -> str:
        """The 检索测试 page: the dense, BM25 and fused top ``k`` (held to the slider's range) for ``query``,
        over the KBs picked (every readable one when none is)."""
        query = (query or "").strip()
        problem = question_problem(query)
        if problem:
            return f'<p class="rag-empty">{problem}</p>'
        principal = self.principal(request)
        chosen: list[Kb] = []
        try:
            chosen = self.library.resolve(principal, kbs or None)
            retriever = self.library.searcher(principal, [kb.name for kb in chosen])
            rankings = retriever.rankings(query, probe_k(k))
            self.library.record(principal, "search", retriever.kbs, query)
            return rankings_html(rankings)
        except KbNotFound:
            return f'<p class="rag-empty">{no_kb_message(kbs)}</p>'
        except Exception as exc:  # shown to the user; unexpected ones are logged
            if not isinstance(exc, RagError):
                log.exception("retrieval test for %r failed", query)
            return f'<p class="rag-empty">{friendly_error(exc, self.written(chosen))}</p>'

    def _probe_tab(self) -> Any:
        gr.Markdown(
            "输入问题，查看向量检索、关键词检索（BM25）和融合排序各自找到的段落、名次和分数，用来分析某个问题为什么没答好。"
        )
        with gr.Row():
            query = gr.Textbox(
                show_label=False, placeholder="输入要测试的问题", scale=5, max_length=MAX_QUERY_CHARS, elem_id="rag-probe-query"
            )
            top_k = gr.Slider(*PROBE_K_RANGE, value=5, step=1, label="每列显示条数（top-k）", scale=2, elem_id="rag-probe-k")
            run = gr.Button("检索", variant="primary", scale=1, min_width=80, elem_id="rag-probe-run")
        kb_picker = gr.Dropdown(
            label="知识库", multiselect=True, choices=[], visible=False, elem_id="rag-probe-kbs", info="不选则查全部"
        )
        results = gr.HTML(elem_id="rag-probe-results")
        for trigger in (query.submit, run.click):
            trigger(self.probe, [query, top_k, kb_picker], [results], concurrency_limit=None)
        return kb_picker
