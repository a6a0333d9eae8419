"""LLM backends behind one small interface: ``stream(messages) -> Iterator[str]``.

(Placeholder: the backends are being written; see the Generator protocol below.)
"""

from __future__ import annotations

from typing import Iterator, Protocol, Sequence, TypedDict, runtime_checkable


class Message(TypedDict):
    role: str  # "system" | "user" | "assistant"
    content: str


@runtime_checkable
class Generator(Protocol):
    """A chat model. ``stream`` yields text pieces; ``last_usage`` holds token counts afterwards."""

    model_id: str
    last_usage: dict[str, int]

    def stream(self, messages: Sequence[Message], max_tokens: int = 512) -> Iterator[str]:
        """Yield the reply in pieces as they are generated (temperature 0)."""
        ...
