"""Publication dates and tags: read from article heads and JSONL fields, conservatively."""

from __future__ import annotations

import json

import pytest

from rag.errors import InputError
from rag.index.dates import date_in_head, parse_date
from rag.index.documents import load_file


@pytest.mark.parametrize(
    "head, expected",
    [
        ("2025年9月1日 星期一\n\n正文第一段。", "2025-09-01"),
        ("证券日报 2025年9月1日 星期一 A1版\n标题", "2025-09-01"),
        ("标题\n发布时间：2025-09-01 10:30\n正文。", "2025-09-01"),
        ("（2025/9/1）\n正文", "2025-09-01"),
        ("新华社北京2025年9月1日电 记者王某报道", "2025-09-01"),
        ("2017年3月1日，国务院发布通知。", "2017-03-01"),
        ("2025年12月11日闭幕的中央经济工作会议部署了任务。", ""),  # an event inside a sentence
        ("2025年9月1日起施行新规", ""),  # a headline about a date, not a dateline
        ("标题\n正文第一段。\n正文第二段。\n2025年9月1日", ""),  # past the head
        ("8月9日，河南省人民政府发布政策。", ""),  # no year: not guessed
        ("2025年2月30日 星期日", ""),  # not a day
    ],
)
def test_date_in_head_reads_only_publication_positions(head, expected):
    assert date_in_head(head) == expected


@pytest.mark.parametrize(
    "value, expected",
    [("2025-09-01", "2025-09-01"), ("2025-09-01T10:00:00+08:00", "2025-09-01"), ("2025/9/1", "2025-09-01"), ("2025年9月1日", "2025-09-01"), ("9/1/2025", ""), ("昨天", "")],
)
def test_parse_date_accepts_common_field_formats(value, expected):
    assert parse_date(value) == expected


def test_a_page_header_dates_every_article_of_the_file(tmp_path):
    page = tmp_path / "page.txt"
    page.write_text(
        "2025年8月28日 星期四\n\n本报记者 张三\n\n河南设立总规模30亿元的人工智能产业基金。\n\n河南基金\n\n"
        "本报记者 李四\n\n广西计划组建人工智能产业基金。\n\n广西基金\n",
        encoding="utf-8",
    )
    documents = load_file(page)
    assert len(documents) == 2 and {d.date for d in documents} == {"2025-08-28"}


def test_jsonl_rows_keep_their_date_and_tags(tmp_path):
    path = tmp_path / "news.jsonl"
    rows = [
        {"id": "a", "text": "河南设立人工智能产业基金。", "date": "2025-09-01T08:00:00", "tags": ["财经", "河南"]},
        {"id": "b", "text": "2024年5月6日，广西发布算力规划。", "tags": "科技, 广西"},
        {"id": "c", "text": "没有日期的文章。"},
    ]
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    found = {d.doc_id: (d.date, d.tags) for d in load_file(path)}
    assert found == {"a": ("2025-09-01", ("财经", "河南")), "b": ("2024-05-06", ("科技", "广西")), "c": ("", ())}


@pytest.mark.parametrize(
    "row, message",
    [({"id": "a", "text": "正文。", "date": "上周"}, "line 1: 'date'"), ({"id": "a", "text": "正文。", "tags": 3}, "line 1: 'tags'")],
)
def test_a_bad_jsonl_date_or_tags_field_is_a_clear_error(tmp_path, row, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(row, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(InputError, match=message):
        load_file(path)
