"""Passages cut down to the sentences that match the question, so the prompt stays short.

The first token waits for the model to read the whole prompt (60-80 tokens/s on 2 cores), and
the passages are most of it. A passage longer than its budget keeps the sentences that share the
most words with the question, in their original order, with ``…`` where text was left out.
"""

from __future__ import annotations

import re

from rag.index.lexical import tokenize

GAP = "…"
_SENTENCE = re.compile(r"[^。！？!?；;\n]+[。！？!?；;\n]*")


def focus_passage(text: str, question: str, budget: int) -> str:
    """``text`` itself when it fits ``budget`` characters, else as many of its sentences as fit,
    those sharing the most words with ``question`` first (at least the best one), in passage
    order, with ``…`` where text was left out."""
    if len(text) <= budget:
        return text
    sentences = [match.group() for match in _SENTENCE.finditer(text)]
    words = set(tokenize(question))
    scores = [len(words.intersection(tokenize(sentence))) for sentence in sentences]
    if not any(scores):
        return text[:budget] + GAP
    kept: set[int] = set()
    used = 0
    for index in sorted(range(len(sentences)), key=lambda i: (-scores[i], i)):
        if kept and used + len(sentences[index]) > budget:  # the best match always stays
            continue
        kept.add(index)
        used += len(sentences[index])
    return _joined(sentences, kept)


def _joined(sentences: list[str], kept: set[int]) -> str:
    """The kept sentences in order, a gap mark wherever sentences were dropped before or between them."""
    parts: list[str] = []
    for index, sentence in enumerate(sentences):
        if index in kept:
            parts.append(sentence.strip())
        elif not parts or parts[-1] != GAP:
            parts.append(GAP)
    while parts and parts[-1] == GAP:
        parts.pop()
    return "".join(parts)
