"""The generation queue: first come first served, positions, a bound, and places given up."""

from __future__ import annotations

import threading

import pytest
from conftest import FAKE_MODEL_ID

from rag.models.fakes import HashingEmbedder, ScriptedGenerator
from rag.qa.pipeline import QAPipeline
from rag.qa.queue import GenerationQueue, QueueFull
from rag.qa.retriever import Retriever

HENAN = "河南设立的人工智能产业基金规模是多少？"


def make_pipeline(index, reply: str) -> tuple[QAPipeline, ScriptedGenerator]:
    generator = ScriptedGenerator(reply)
    return QAPipeline(Retriever(index, HashingEmbedder(model_id=FAKE_MODEL_ID)), generator), generator


def test_tickets_are_served_in_arrival_order_with_their_positions():
    queue = GenerationQueue(capacity=3)
    first, second, third = queue.enter(), queue.enter(), queue.enter()
    assert [t.position() for t in (first, second, third)] == [0, 1, 2]
    assert first.wait(0) and not second.wait(0.01)
    first.leave()
    assert second.wait(0) and third.position() == 1
    second.leave()
    third.leave()
    assert queue.waiting() == 0


def test_a_full_queue_refuses_at_once_with_a_retry_hint():
    queue = GenerationQueue(capacity=2, seconds_per_answer=5)
    held = [queue.enter(), queue.enter()]
    with pytest.raises(QueueFull) as full:
        queue.enter()
    assert full.value.retry_after_s == 10
    held[1].leave()  # a waiting caller that gives up frees a place at once
    assert queue.enter().position() == 1


def test_a_waiter_wakes_when_the_holder_leaves():
    queue = GenerationQueue()
    holder, waiter = queue.enter(), queue.enter()
    woke = threading.Event()
    thread = threading.Thread(target=lambda: waiter.wait(10) and woke.set())
    thread.start()
    assert not woke.wait(0.05)
    holder.leave()
    thread.join(5)
    assert woke.is_set()


def test_the_pipeline_reports_its_place_until_the_model_is_free(sample_index):
    pipeline, _ = make_pipeline(sample_index, "河南设立了总规模30亿元的人工智能产业基金[1]。")
    holder = pipeline.queue.enter()  # another request holds the model
    events = pipeline.stream(HENAN)
    assert next(events).kind == "passages"  # retrieval does not wait for the model
    queued = next(events)
    assert (queued.kind, queued.position) == ("queued", 1)
    holder.leave()
    rest = list(events)
    assert rest[-1].kind == "done" and not rest[-1].answer.refused
    assert "queue_ms" in rest[-1].answer.timings and pipeline.queue.waiting() == 0


def test_closing_an_answer_stream_gives_up_its_place(sample_index):
    pipeline, _ = make_pipeline(sample_index, "河南设立了总规模30亿元的人工智能产业基金[1]。")
    holder = pipeline.queue.enter()
    events = pipeline.stream(HENAN)
    next(events), next(events)
    assert pipeline.queue.waiting() == 2
    events.close()
    assert pipeline.queue.waiting() == 1
    holder.leave()
