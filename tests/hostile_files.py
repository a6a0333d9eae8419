"""A corpus of hostile input files, made from nothing: parser, decompression and render bombs,
broken encodings, binary data under a text name, symbolic links and odd names, beside one normal
article. Used by tests/test_hostile_files.py and scripts/bench_hostile_ingest.py.

    python tests/hostile_files.py OUTDIR

Each file comes with what an ingest must do with it (:class:`Expected`): take it in, refuse it
with a reason that contains ``reason``, either of the two (a parse whose time depends on the
machine), or skip it (a symbolic link is never followed).
"""

from __future__ import annotations

import os
import random
import struct
import sys
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

NORMAL_ARTICLE = (
    "青海设立盐湖锂资源开发基金\n\n"
    "青海省发布盐湖产业高质量发展方案，设立总规模80亿元的盐湖锂资源开发基金，"
    "支持碳酸锂提纯技术攻关和储能电池产业链建设。方案提出到2027年建成世界级盐湖产业基地。\n"
)
NORMAL_QUERY = "盐湖锂资源开发基金"
SENTENCE = "人工智能产业基金重点投向算力基础设施和大模型应用场景，推动制造业数字化转型。"


class Expected(NamedTuple):
    """``outcome``: "ingest", "refuse", "either" or "skip"; a refusal's reason contains ``reason``."""

    outcome: str
    reason: str = ""


def build_hostile_corpus(folder: Path) -> dict[str, Expected]:
    """Write the corpus into ``folder`` (created); each file's name with what an ingest must do."""
    folder.mkdir(parents=True, exist_ok=True)
    expected: dict[str, Expected] = {}
    for name, (write, outcome) in _FILES.items():
        write(folder / name)
        expected[name] = outcome
    expected.update(_links(folder))
    return expected


# ------------------------------------------------------------------ parser bombs


def _bracket_bomb(path: Path) -> None:
    path.write_bytes(b"[" * 1_000_000)  # took the old regexes half an hour


def _link_bomb(path: Path) -> None:
    path.write_bytes(b"[a](" * 250_000)


def _deep_html(path: Path) -> None:
    path.write_bytes(b"<html><body>" + b"<div>" * 100_000 + "深层嵌套的正文。".encode() + b"</div>" * 100_000 + b"</body></html>")


# ------------------------------------------------------------------ decompression and render bombs


def _zip_bomb(path: Path) -> None:
    """A .docx whose document.xml inflates to 250 MB (over the 200 MB cap) from a file of 250 KB."""
    paragraph = "<w:p><w:r><w:t>炸</w:t></w:r></w:p>".encode()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", _CONTENT_TYPES)
        archive.writestr("_rels/.rels", _RELS)
        with archive.open("word/document.xml", "w", force_zip64=True) as part:
            part.write(b'<?xml version="1.0"?><w:document xmlns:w="' + _W + b'"><w:body>')
            block = paragraph * (1 << 15)
            for _ in range(250_000_000 // len(block)):
                part.write(block)
            part.write(b"</w:body></w:document>")


_W = b"http://schemas.openxmlformats.org/wordprocessingml/2006/main"
_CONTENT_TYPES = (
    '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Override PartName="/word/document.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>'
)
_RELS = (
    '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Target="word/document.xml" '
    'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument"/></Relationships>'
)


def _page_bomb(path: Path) -> None:
    """2,001 blank pages (over the 2,000-page cap): each would be rendered and OCR'd."""
    _write_pdf(path, [((612, 792), b"")] * 2001)


def _huge_page(path: Path) -> None:
    """A page of 14400 x 14400 pt (200 x 200 inches) without text, then a page with a text layer:
    rendered at 144 dpi the first would be 829 Mpx (3.3 GB)."""
    text = b"BT /F1 14 Tf 72 720 Td (Hostile corpus: a normal page after a huge one.) Tj ET"
    _write_pdf(path, [((14400, 14400), b""), ((612, 792), text)])


def _write_pdf(path: Path, pages: list[tuple[tuple[int, int], bytes]]) -> None:
    """A PDF written by hand: pages of the given sizes and content streams, Helvetica as /F1."""
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b""]
    font = 3
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    kids = []
    for (width, height), content in pages:
        stream = len(objects) + 1
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content))
        kids.append(len(objects) + 1)
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] /Contents %d 0 R /Resources << /Font << /F1 %d 0 R >> >> >>"
            % (width, height, stream, font)
        )
    objects[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(b"%d 0 R" % k for k in kids), len(kids))
    body, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, obj in enumerate(objects, start=1):
        offsets.append(len(body))
        body += b"%d 0 obj\n%s\nendobj\n" % (number, obj)
    xref = len(body)
    body += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    body += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    body += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    path.write_bytes(bytes(body))


def _png_claiming(path: Path, width: int, height: int) -> None:
    """A PNG header claiming ``width`` x ``height`` pixels (8-bit grey), with one empty row of data."""
    _write_png(path, width, height, zlib.compress(b"\x00" * (width + 1)))


def _png_80_mpx(path: Path) -> None:
    """A real, all-black 10000 x 8000 PNG (80 Mpx, over the 50 Mpx cap, under PIL's own limits):
    80 KB on disk, 240 MB once decoded to RGB."""
    width, height = 10_000, 8_000
    packer, row = zlib.compressobj(9), b"\x00" * (width + 1)
    data = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    _write_png(path, width, height, data)


def _write_png(path: Path, width: int, height: int, data: bytes) -> None:
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b""))


# ------------------------------------------------------------------ encodings, binary data, sizes


def _invalid_bytes(path: Path) -> None:
    path.write_bytes(b"\xff\xfe\x80\x81" * 1000)  # neither UTF-8 nor GB18030


def _utf8_with_a_bad_byte(path: Path) -> None:
    path.write_bytes(SENTENCE.encode() + b"\xff" + SENTENCE.encode())


def _utf16_without_bom(path: Path) -> None:
    path.write_bytes((SENTENCE * 20).encode("utf-16-le"))  # no NUL byte in CJK code units


def _huge_line(path: Path) -> None:
    """10 MB of Chinese sentences on one line (under the 200 MB file cap)."""
    line = SENTENCE.encode()
    path.write_bytes(line * (10_000_000 // len(line)))


def _binary(path: Path) -> None:
    path.write_bytes(random.Random(7).randbytes(65536))


def _named(text: str) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        path.write_text(text, encoding="utf-8")

    return write


_FILES: dict[str, tuple[Callable[[Path], None], Expected]] = {
    "normal.txt": (_named(NORMAL_ARTICLE), Expected("ingest")),
    "bracket-bomb.md": (_bracket_bomb, Expected("either", "parsing took longer")),
    "link-bomb.md": (_link_bomb, Expected("either", "parsing took longer")),
    "deep.html": (_deep_html, Expected("either", "deep.html")),
    "zip-bomb.docx": (_zip_bomb, Expected("refuse", "over the 200 MB limit for Word files")),
    "page-bomb.pdf": (_page_bomb, Expected("refuse", "over the 2000-page limit")),
    "huge-page.pdf": (_huge_page, Expected("ingest")),
    "pixel-claim.png": (lambda path: _png_claiming(path, 100_000, 100_000), Expected("refuse", "too large to decode")),
    "pixel-80mpx.png": (_png_80_mpx, Expected("refuse", "over the 50 Mpx limit")),
    "invalid-bytes.txt": (_invalid_bytes, Expected("refuse", "not UTF-8 or GB18030")),
    "utf8-bad-byte.txt": (_utf8_with_a_bad_byte, Expected("refuse", "not UTF-8 or GB18030")),
    "utf16-no-bom.txt": (_utf16_without_bom, Expected("refuse", "not UTF-8 or GB18030")),
    "huge-line.txt": (_huge_line, Expected("ingest")),
    "binary.txt": (_binary, Expected("refuse", "binary file")),
    "bidi-\u202etxt.md": (_named("# 双向文字\n\n文件名里有从右到左的控制字符。\n"), Expected("either")),
    "zero-\u200bwidth.txt": (_named("零宽字符\n\n文件名里有零宽空格。\n"), Expected("either")),
}


def _links(folder: Path) -> dict[str, Expected]:
    """Symbolic links: out of the folder, to a file in it, and to nothing."""
    links = {"link-outside.txt": Path("/etc/hostname"), "link-inside.txt": folder / "normal.txt"}
    links["link-dangling.txt"] = folder / "missing.txt"
    for name, target in links.items():
        os.symlink(target, folder / name)
    return {name: Expected("skip") for name in links}


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python tests/hostile_files.py OUTDIR")
    for name, expected in build_hostile_corpus(Path(sys.argv[1])).items():
        print(f"{name!a}\t{expected.outcome}\t{expected.reason}")
