"""OpenAI chat-completion bodies and stream chunks made from the pipeline's answer events.

The answer text keeps its ``[n]`` markers and ends with a sources footnote that plain chat
clients show. Every body also carries ``sources`` (our documented extra field): for each passage
shown to the model ``n``, ``chunk_id``, ``doc_id``, ``title``, ``source``, ``text`` and, once
answered, ``cited``, the supporting ``quote`` and its ``evidence`` (``[{start, end, text}]``,
offsets into ``text``). Streams start with the sources, then report
``queue_position`` while the model answers others, then the text: by default only the verified
sentences (the pipeline's ``text`` events), so the streamed content is always a prefix of the
final answer and, with the footnote, equals the non-streamed content; with ``rag_raw_stream``
the model's raw tokens instead (see :class:`ChunkStream`).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from typing import Any

from rag.api.schemas import ChatRequest
from rag.errors import InputError
from rag.models.generators import Message
from rag.qa.pipeline import Answer, Event
from rag.qa.prompts import REFUSAL
from rag.qa.retriever import SearchHit
from rag.text_script import to_simplified

MODEL_ID = "rag-zh"
FOOTNOTE_RULE = "\n\n---\n来源："


def conversation(request: ChatRequest) -> tuple[str, list[Message]]:
    """The question (the last message, from the user) and the earlier user/assistant turns."""
    last = request.messages[-1]
    if last.role != "user":
        raise InputError("the last message must come from the user (role 'user')")
    question = last.text().strip()
    if not question:
        raise InputError("the last user message has no text")
    history: list[Message] = []
    for message in request.messages[:-1]:
        if message.role in ("user", "assistant") and message.text().strip():
            text = message.text().split(FOOTNOTE_RULE)[0].strip()  # our own footnotes are not conversation
            history.append(Message(role=message.role, content=text))
    return question, history


def passages_payload(passages: Sequence[SearchHit], answer: Answer | None = None) -> list[dict[str, Any]]:
    """The ``sources`` field: every passage shown to the model, with its quote once answered."""
    cited = {c.n: c for c in answer.citations if c.verified} if answer else {}
    rows = []
    for n, hit in enumerate(passages, start=1):
        chunk = hit.chunk
        row: dict[str, Any] = {
            **({"kb": hit.kb} if hit.kb else {}),
            "n": n,
            "chunk_id": chunk.chunk_id,
            "doc_id": chunk.doc_id,
            "title": chunk.title,
            "source": chunk.source,
            "date": chunk.date,
            "tags": list(chunk.tags),
            "page": chunk.page,
            "text": chunk.text,
            "score": round(hit.score, 6),
        }
        if hit.parts:
            row["parts"] = list(hit.parts)  # a question in several parts: the sub-questions it served
        if answer is not None:
            row["cited"] = n in cited
            row["quote"] = cited[n].quote if n in cited else ""
            row["evidence"] = [cited[n].evidence()] if n in cited else []
        rows.append(row)
    return rows


def footnote(answer: Answer) -> str:
    """``---`` and one line per cited passage: ``[n] 《title》第N页 quote`` (the page for PDFs; nothing for a refusal)."""
    pages = [hit.chunk.page_label for hit in answer.passages]
    lines = [f"[{c.n}] 《{c.title}》{pages[c.n - 1]} {c.quote}".rstrip() for c in answer.citations if c.verified]
    return FOOTNOTE_RULE + "\n" + "\n".join(lines) if lines and not answer.refused else ""


def usage(answer: Answer) -> dict[str, int]:
    """OpenAI's ``usage`` from the real token counts of the answer (both attempts when retried)."""
    prompt = int(answer.timings.get("prompt_tokens", 0))
    completion = int(answer.timings.get("completion_tokens", 0))
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def completion_body(answer: Answer) -> dict[str, Any]:
    """The whole ``chat.completion`` response for a finished answer."""
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": MODEL_ID,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": answer.answer + footnote(answer)}, "finish_reason": "stop"}
        ],
        "usage": usage(answer),
        "sources": passages_payload(answer.passages, answer),
        "refused": answer.refused,
        "standalone_question": answer.standalone_question,
        "timings": answer.timings,
    }


class ChunkStream:
    """Turns answer events into ``chat.completion.chunk`` payloads.

    By default the content is the verified text (``text`` events). ``raw`` streams the model's
    tokens instead, for clients that show the final ``answer`` field of the last chunk: that text
    may differ from the checked answer, and a retry starts over after a blank line (``retry: true``).
    There a refusal is held back while the text could still be one, so when the pipeline retries
    a refusal from its first passage, clients never see the refusal it replaces.
    """

    def __init__(self, include_usage: bool, raw: bool = False) -> None:
        self.id = f"chatcmpl-{uuid.uuid4().hex}"
        self.created = int(time.time())
        self.include_usage = include_usage
        self.raw = raw
        self._held = ""
        self._sent_text = False
        self._position = -1

    def chunk(self, delta: dict[str, Any], finish_reason: str | None = None, **extra: Any) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": MODEL_ID,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
            **extra,
        }

    def on_event(self, event: Event) -> list[dict[str, Any]]:
        """The chunks to send for one event (often none)."""
        if event.kind == "passages":
            return [self.chunk({"role": "assistant", "content": ""}, sources=passages_payload(event.passages))]
        if event.kind == "queued":
            if event.position == self._position:
                return []
            self._position = event.position
            return [self.chunk({}, queue_position=event.position)]
        if event.answer is not None:
            return self._finish(event.answer)
        if self.raw:
            return self._raw(event)
        return [self.chunk({"content": event.text})] if event.kind == "text" else []

    def _raw(self, event: Event) -> list[dict[str, Any]]:
        """``rag_raw_stream``: the model's tokens, and a blank line where a retry starts over."""
        if event.kind == "token":
            return self._text(event.text)
        if event.kind != "retry":
            return []
        if not self._sent_text:
            self._held = ""
            return []
        self._sent_text = False
        return [self.chunk({"content": "\n\n"}, retry=True)]

    def _text(self, piece: str) -> list[dict[str, Any]]:
        if self._sent_text:
            return [self.chunk({"content": piece})]
        self._held += piece
        if REFUSAL.startswith(to_simplified(self._held.strip())):  # the refusal may come in Traditional
            return []
        held, self._held = self._held, ""
        self._sent_text = True
        return [self.chunk({"content": held})]

    def _finish(self, answer: Answer) -> list[dict[str, Any]]:
        chunks = []
        rest = ("" if self._sent_text or not self.raw else answer.answer) + footnote(answer)
        if rest:
            chunks.append(self.chunk({"content": rest}))
        chunks.append(
            self.chunk(
                {},
                "stop",
                sources=passages_payload(answer.passages, answer),
                refused=answer.refused,
                answer=answer.answer,
                timings=answer.timings,
            )
        )
        if self.include_usage:
            chunks.append({**self.chunk({}), "choices": [], "usage": usage(answer)})
        return chunks
