"""Chinese tokenization (jieba) and a BM25 index over chunk tokens (bm25s).

Text is normalised to Simplified first, so Traditional and Simplified words match each other.
"""

from __future__ import annotations

import logging
import re
from functools import lru_cache
from typing import Any, Sequence

import numpy as np

from rag.text_script import TO_SIMPLIFIED, to_simplified

_WORD = re.compile(r"[\w\u4e00-\u9fff]", re.UNICODE)
# Function words that carry no topic; question words too, so questions match statements.
STOPWORDS = frozenset(
    "的 了 是 在 和 与 及 或 等 也 都 就 而 并 对 为 以 于 把 被 让 从 到 由 向 其 之 这 那 这个 那个 这些 那些 "
    "一个 有 没有 不 很 更 最 吗 呢 吧 啊 呀 么 什么 哪些 哪个 哪里 哪 多少 几 怎么 怎样 如何 为什么 是否 "
    "谁 何 请问 请 告诉 我 你 他 她 它 我们 你们 他们 可以 能 会 要 将 已 已经 还 又 上 下 中 个 年 月 日"
    .split()
)
# How tokens are made; stores record it, so tokens made otherwise are never matched with these.
LEXICAL_SCHEME = f"jieba-search+opencc-{TO_SIMPLIFIED}"


@lru_cache(maxsize=1)
def _jieba() -> Any:
    import jieba

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    return jieba


def tokenize(text: str) -> list[str]:
    """Search-mode jieba tokens of the Simplified form of ``text``, lower-cased, without
    punctuation and stopwords.

    Numbers keep their unit pieces (``30亿元`` -> ``30``, ``亿元``) so exact figures match.
    """
    tokens = []
    for token in _jieba().lcut_for_search(to_simplified(text).lower()):
        token = token.strip()
        if token and _WORD.search(token) and token not in STOPWORDS:
            tokens.append(token)
    return tokens


class BM25Index:
    """BM25 over pre-tokenized chunks; rebuilt in memory from stored tokens."""

    def __init__(self, corpus_tokens: Sequence[Sequence[str]]) -> None:
        import bm25s

        self.size = len(corpus_tokens)
        self._bm25 = bm25s.BM25()
        if self.size:
            self._bm25.index([list(t) for t in corpus_tokens], show_progress=False)

    def search(self, query_tokens: Sequence[str], k: int) -> list[tuple[int, float]]:
        """Rows and scores of the best ``k`` chunks with a positive score, best first."""
        if not self.size or not query_tokens:
            return []
        rows, scores = self._bm25.retrieve([list(query_tokens)], k=min(k, self.size), show_progress=False)
        return [(int(r), float(s)) for r, s in zip(rows[0], scores[0]) if s > 0 and np.isfinite(s)]
