"""A scanned (image-only) PDF and a table answered with the real models, citing the right page and row."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from scans import image_pdf, table_docx, wrap

from rag.config import Settings
from rag.index.ingest import ingest
from rag.models.embedders import embedder_for
from rag.models.generators import make_generator
from rag.qa.pipeline import QAPipeline
from rag.qa.retriever import Retriever

pytestmark = pytest.mark.real

PAGES = [
    [
        "青松市统计局发布上半年经济运行情况。全市地区生产总值同比增长百分之五点八，规模以上工业增加值增长百分之七点二，"
        "社会消费品零售总额保持平稳增长，居民人均可支配收入稳步提高，就业形势总体稳定。",
        "上半年，全市高新技术企业数量持续增加，研发投入强度进一步提高，科技成果转化步伐加快，创新驱动发展的态势更加明显。",
    ],
    [
        "青松市轨道交通建设有序推进。地铁3号线全长42.6公里，设车站28座，其中换乘站9座，计划于2027年底建成通车，"
        "建成后将连接高铁站、市中心和科学城，沿线居民出行时间预计缩短一半以上。",
        "地铁5号线一期工程已完成全部盾构区间施工，正在进行轨道铺设和机电设备安装，各项工作按计划推进，质量安全总体可控。",
    ],
    [
        "青松市生态环境局介绍，今年以来全市空气质量优良天数比例达到百分之八十九，主要河流断面水质全部达到三类以上标准，"
        "城市建成区绿地率提高到百分之四十一，公园绿地服务半径覆盖率持续提升，人居环境明显改善。",
        "下一步，全市将继续推进工业企业超低排放改造，加强扬尘治理和机动车污染防治，持续改善生态环境质量。",
    ],
]


FUNDS = [
    ["区", "基金规模", "设立年份"],
    ["东湖区", "12亿元", "2021年"],
    ["西山区", "8亿元", "2023年"],
    ["南岸区", "20亿元", "2024年"],
]


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory) -> QAPipeline:
    """One index over a scanned (image-only) PDF and a Word file with a table."""
    folder = tmp_path_factory.mktemp("scans")
    image_pdf(folder / "青松市通讯.pdf", [[line for paragraph in page for line in [*wrap(paragraph), ""]] for page in PAGES])
    table_docx(folder / "青松市产业基金.docx", "下表列出青松市各区设立的产业基金。", FUNDS, "以上数据来自青松市财政局。")
    settings = replace(Settings(), index_dir=folder / "index")
    embedder = embedder_for(settings)
    report = ingest([folder], settings.index_dir, embedder)
    assert report.files_failed == [] and report.warnings == [] and len(report.documents_added) == 2
    return QAPipeline(Retriever(settings.index_dir, embedder), make_generator(settings))


def cited_chunks(answer) -> list:
    return [answer.passages[c.n - 1].chunk for c in answer.citations if c.verified]


def test_an_answer_from_a_scanned_pdf_cites_its_page(pipeline):
    answer = pipeline.ask("青松市地铁3号线全长多少公里？")
    assert not answer.refused, answer.answer
    assert "42.6" in re.sub(r"\s+", "", answer.answer)
    cited = [chunk for chunk in cited_chunks(answer) if "42.6" in chunk.text]
    assert cited and all(chunk.page == 2 for chunk in cited), answer.to_dict()


def test_a_table_cell_is_answered_from_its_row(pipeline):
    answer = pipeline.ask("青松市西山区的产业基金是哪一年设立的？")  # a cell of the second value column
    assert not answer.refused, answer.answer
    assert "2023" in re.sub(r"\s+", "", answer.answer)
    row = "| 西山区 | 8亿元 | 2023年 |"
    assert any(row in chunk.text and "设立年份" in chunk.text for chunk in cited_chunks(answer)), answer.to_dict()
