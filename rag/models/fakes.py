"""Deterministic test doubles, first-class like the real backends (``fake:hashing``, ``fake:scripted``).

* :class:`HashingEmbedder`: hashed character n-grams; similar texts get similar vectors.
* :class:`ScriptedGenerator`: scripted replies, or by default an extractive reply that quotes the
  first sentence of passage [1] with its citation, so a whole pipeline runs without a model.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable, Iterator, Sequence

import numpy as np

from rag.models.embedders import TextKind, normalise_rows
from rag.models.generators import Completion, Message, Usage

Replies = str | Sequence[str] | Callable[[Sequence[Message]], str]

_PASSAGE_ONE = re.compile(r"^\[1\][^\n]*\n(?P<text>.+?)(?:\n\n\[2\]|\n\n问题：)", re.MULTILINE | re.DOTALL)
_QUESTION = re.compile(r"^问题：(?P<question>.+)$", re.MULTILINE)
_FOLLOW_UP = re.compile(r"^追问：(?P<question>.+)$", re.MULTILINE)
_SENTENCE = re.compile(r"[^。！？!?\n]+[。！？!?]?")


class HashingEmbedder:
    """Deterministic fake: hashed character n-grams. Fast, no model; for tests only."""

    def __init__(self, dim: int = 256, model_id: str = "fake:hashing-ngrams") -> None:
        self.dim = dim
        self.model_id = model_id

    def embed(self, texts: Sequence[str], kind: TextKind = "passage") -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for n in (1, 2, 3):
                for i in range(max(len(text) - n + 1, 0)):
                    digest = hashlib.blake2b(text[i : i + n].encode("utf-8"), digest_size=8).digest()
                    out[row, int.from_bytes(digest, "little") % self.dim] += 1.0
            if not text:
                out[row, 0] = 1.0
        return normalise_rows(out)


def extractive_reply(messages: Sequence[Message]) -> str:
    """The sentence of passage [1] sharing most character pairs with the question, cited ``[1]``.

    A rewrite request gets its follow-up back; a prompt without passages gets the refusal.
    """
    user = messages[-1]["content"] if messages else ""
    if follow_up := _FOLLOW_UP.search(user):
        return follow_up.group("question").strip()
    passage = _PASSAGE_ONE.search(user)
    if passage is None:
        return "根据现有资料，无法回答这个问题。"
    question = _QUESTION.search(user)
    pairs = _pairs(question.group("question") if question else "")
    sentences = [m.group(0).strip() for m in _SENTENCE.finditer(passage.group("text")) if m.group(0).strip()]
    best = max(sentences, key=lambda sentence: len(pairs & _pairs(sentence)))
    return f"{best.rstrip('。！？!?')}[1]。"


def _pairs(text: str) -> set[str]:
    return {text[i : i + 2] for i in range(len(text) - 1)}


class ScriptedGenerator:
    """Deterministic fake: yields scripted replies in pieces of ``piece_chars`` characters.

    ``replies`` is one reply, a list used in order (the last one repeats once it runs out), or a
    function choosing the reply from the messages. Every call's messages are kept in ``calls``;
    each piece counts as one completion token, each prompt character as one prompt token.
    ``piece_delay_s`` waits before each piece, standing in for a slow model (queue tests).
    """

    def __init__(
        self,
        replies: Replies = extractive_reply,
        model_id: str = "fake:scripted",
        piece_chars: int = 2,
        piece_delay_s: float = 0.0,
    ) -> None:
        if not callable(replies):
            replies = [replies] if isinstance(replies, str) else list(replies)
            if not replies:
                raise ValueError("ScriptedGenerator needs at least one reply")
        self._replies = replies
        self.model_id = model_id
        self.piece_chars = piece_chars
        self.piece_delay_s = piece_delay_s
        self.calls: list[list[Message]] = []

    @classmethod
    def from_setting(cls, model: str) -> ScriptedGenerator:
        """The fake named by ``RAG_LLM_MODEL`` with ``RAG_LLM_BACKEND=fake:scripted``.

        A JSON string or list gives the replies; a JSON object may also set ``piece_delay_s``;
        anything else (the default model name) gives the extractive reply.
        """
        try:
            spec = json.loads(model)
        except json.JSONDecodeError:
            return cls()
        if isinstance(spec, dict):
            return cls(spec.get("replies") or extractive_reply, piece_delay_s=float(spec.get("piece_delay_s", 0.0)))
        if isinstance(spec, (str, list)):
            return cls(spec)
        return cls()

    def _next_reply(self, messages: Sequence[Message]) -> str:
        if callable(self._replies):
            return self._replies(messages)
        return self._replies[min(len(self.calls), len(self._replies) - 1)]

    def stream(self, messages: Sequence[Message], max_tokens: int = 512) -> Completion:
        reply = self._next_reply(messages)
        self.calls.append([Message(role=m["role"], content=m["content"]) for m in messages])
        return Completion(lambda usage: self._pieces(reply, messages, max_tokens, usage))

    def _pieces(self, reply: str, messages: Sequence[Message], max_tokens: int, usage: Usage) -> Iterator[str]:
        pieces = [reply[i : i + self.piece_chars] for i in range(0, len(reply), self.piece_chars)][:max_tokens]
        usage.update(prompt_tokens=sum(len(m["content"]) for m in messages), completion_tokens=0)
        for piece in pieces:
            if self.piece_delay_s:
                time.sleep(self.piece_delay_s)
            usage["completion_tokens"] += 1
            yield piece
