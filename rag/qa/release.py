"""Verified streaming: the model's text is released sentence by sentence, once the check keeps it.

While the model writes, :meth:`Release.feed` cuts the draft after its last settled sentence
(:func:`rag.qa.citations.settled_end`: one that no later text can extend, not even by a marker
after its full stop), checks that prefix exactly as the finished answer is checked
(:func:`check_draft`: form repair, citation check, form flaw, the question's script) and
releases what the check adds past the text released before. :meth:`Release.finish` checks the
whole draft the same way and gives the answer.

**Invariant**: the released pieces, joined, are a prefix of the answer :meth:`Release.finish`
returns; the pipeline sends the rest of it last, so a client's text ends equal to the answer.

Why the check of a prefix is, as a rule, a prefix of the check of the whole: the citation check
rewrites each sentence on its own (markers kept, marked ``[n?]``, repointed or added), and the
sentences of a settled prefix are the first sentences of the whole. Its global rules:

* no citation verified: everything withheld as the refusal. Monotonic: a verified citation stays
  verified as sentences are added. So nothing is released before the first verified sentence,
  and a sentence before it (kept as ``[n?]``) is released together with it;
* the whole text reads as a refusal (the refusal sentence, or a short text with a refusal hint),
  a form flaw (a copied timestamp) anywhere, or a span repeated later merged into the first
  (:func:`rag.qa.answer_form.merge_repeated_spans`): these can appear only with later text.
  Then the answer is the checked text already released, with its citations, never one that
  takes back what a client has shown.

Once anything is released the attempt's answer is neither a refusal nor of the wrong form, so the
pipeline never retries it; a draft that is withheld or retried released nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from rag.index.chunking import Chunk
from rag.qa.answer_form import form_flaw, repair
from rag.qa.citations import CheckedAnswer, check_answer, sentences, settled_end
from rag.qa.parts import Part, off_topic
from rag.qa.qualifiers import answers_question, qualifiers
from rag.text_script import Script, in_script, to_simplified


def check_draft(
    draft: str, question: str, shown: Sequence[Chunk], chunks: Sequence[Chunk], script: Script, asks: Sequence[Part] = ()
) -> tuple[CheckedAnswer, str | None]:
    """The checked answer of ``draft`` (its text in ``script``) and its form flaw, if any.

    ``question`` and ``shown`` (the passages as the model read them) are in Simplified; the
    citations point into ``chunks``, and a sentence is kept only if it answers ``question``
    (:mod:`rag.qa.qualifiers`). For a question of several ``asks`` about one subject, a sentence
    about the subject that answers none of them is left out first (:func:`rag.qa.parts.off_topic`):
    the model was asked for these facts only.
    """
    text = to_simplified(draft)
    if asks:
        text = "".join(sentence + gap for sentence, gap in sentences(text) if not off_topic(sentence, asks, question))
    given = qualifiers(question).given
    checked = check_answer(repair(text, shown), chunks, answers_question(question, chunks), given)
    flaw = None if checked.refused else form_flaw(checked.text, question)
    return replace(checked, text=in_script(checked.text, script)), flaw


class Release:
    """The verified text of one attempt's growing draft (see the module docstring)."""

    def __init__(
        self, question: str, shown: Sequence[Chunk], chunks: Sequence[Chunk], script: Script, asks: Sequence[Part] = ()
    ) -> None:
        self._check_args = (question, shown, chunks, script, asks)
        self.released = ""  # the text released so far, in the question's script
        self._checked: CheckedAnswer | None = None  # the check that released it
        self._settled = 0

    def feed(self, draft: str) -> str:
        """The text to release now that the model has written ``draft`` ("" when nothing new)."""
        settled = settled_end(draft)
        if settled <= self._settled:
            return ""
        self._settled = settled
        checked, flaw = check_draft(draft[:settled], *self._check_args)
        if not self._continues(checked, flaw) or checked.text == self.released:
            return ""
        new = checked.text[len(self.released) :]
        self.released, self._checked = checked.text, checked
        return new

    def finish(self, draft: str) -> tuple[CheckedAnswer, str | None]:
        """The answer of the whole ``draft`` and its form flaw; the checked text released so far
        instead when that answer would not continue it."""
        checked, flaw = check_draft(draft, *self._check_args)
        if self._checked is None or self._continues(checked, flaw):
            return checked, flaw
        return self._checked, None

    def _continues(self, checked: CheckedAnswer, flaw: str | None) -> bool:
        """``checked`` may be shown and starts with the released text."""
        return not checked.refused and flaw is None and checked.text.startswith(self.released)
