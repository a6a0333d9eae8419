"""Text from images with RapidOCR (PP-OCRv4 detection + recognition, Chinese models in the wheel).

The engine loads on first use, so files with a text layer never pay for it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from rag.errors import InputError
from rag.index.limits import ParseLimits

_engine: Any = None
_lock = threading.Lock()
_inherited: list[Any] = []


def _forget_engine() -> None:
    """In a forked child (:mod:`rag.index.isolation`): the engine's threads did not come along, nor
    did a thread that may have held the lock, so the child loads an engine of its own. The old one
    is kept, never freed: its destructor would wait for those threads forever."""
    global _engine, _lock
    _inherited.append(_engine)
    _engine, _lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_engine)


def _get_engine() -> Any:
    global _engine
    with _lock:
        if _engine is None:
            from rapidocr_onnxruntime import RapidOCR

            _engine = RapidOCR()
        return _engine


def ocr_image(image: Image.Image) -> str:
    """The text of ``image``, one line per text line, top to bottom."""
    engine = _get_engine()
    with _lock:  # one inference at a time: the session uses all cores anyway
        result, _ = engine(np.asarray(image.convert("RGB")))
    return reading_order(result or [])


_SENTENCE_END = tuple("。！？!?；;：:”）)")


@dataclass
class _Line:
    top: float
    bottom: float
    left: float
    right: float
    pieces: list[tuple[float, str]]

    @property
    def text(self) -> str:
        return _join([text for _, text in sorted(self.pieces)])


def reading_order(boxes: Sequence[Sequence[Any]]) -> str:
    """Join OCR boxes ``(corners, text, score)`` into paragraphs, one per line of output.

    Boxes whose vertical middles lie within half a line height of each other form one line,
    read left to right. A line joins the next into one paragraph unless a gap of almost a line
    height separates them (a blank line), or it stops well short of the right margin after a
    sentence end (the last line of a paragraph). One column per page: multi-column layouts
    come out row by row.
    """
    lines: list[_Line] = []
    for corners, text, _score in sorted(boxes, key=lambda box: _middle(box[0])):
        ys = [point[1] for point in corners]
        xs = [point[0] for point in corners]
        top, bottom = min(ys), max(ys)
        last = lines[-1] if lines else None
        if last and abs((top + bottom) / 2 - (last.top + last.bottom) / 2) <= max(bottom - top, last.bottom - last.top) / 2:
            last.pieces.append((min(xs), str(text)))
            last.top, last.bottom = min(last.top, top), max(last.bottom, bottom)
            last.left, last.right = min(last.left, min(xs)), max(last.right, max(xs))
        else:
            lines.append(_Line(top, bottom, min(xs), max(xs), [(min(xs), str(text))]))
    if not lines:
        return ""
    right_margin = max(line.right for line in lines)
    width = right_margin - min(line.left for line in lines)
    paragraphs = [[lines[0].text]]
    for previous, line in zip(lines, lines[1:]):
        gap = line.top - previous.bottom
        ends_short = previous.text.endswith(_SENTENCE_END) and previous.right < right_margin - 0.1 * width
        if gap > 0.9 * (previous.bottom - previous.top) or ends_short:
            paragraphs.append([])
        paragraphs[-1].append(line.text)
    return "\n".join(_join(paragraph) for paragraph in paragraphs)


def _middle(corners: Sequence[Sequence[float]]) -> float:
    ys = [point[1] for point in corners]
    return (min(ys) + max(ys)) / 2


def _join(pieces: Sequence[str]) -> str:
    """Pieces of one line or paragraph: a space only between two Latin letters or digits."""
    text = ""
    for piece in pieces:
        if text and text[-1].isascii() and text[-1].isalnum() and piece[:1].isascii() and piece[:1].isalnum():
            text += " "
        text += piece
    return text


def read_image_file(path: Path, max_pixels: int = ParseLimits.max_pixels) -> str:
    """The OCR text of an image file (.png, .jpg); an unreadable image, or one of more than
    ``max_pixels`` pixels, is an :class:`InputError`.

    The size is read from the header, before any pixel is decoded: a small file can claim a
    huge image (a decompression bomb). PIL refuses on its own only above twice its
    ``Image.MAX_IMAGE_PIXELS`` (179 Mpx), and just warns from 89 Mpx.
    """
    try:
        with Image.open(path) as image:
            _check_pixels(path, image.size, max_pixels)
            image.load()
            return ocr_image(image)
    except Image.DecompressionBombError as exc:  # refused by Image.open itself
        raise InputError(f"{path.name}: the image is too large to decode ({exc}); the file was skipped") from exc
    except (OSError, ValueError) as exc:
        raise InputError(f"{path.name}: cannot read this image ({exc})") from exc


def _check_pixels(path: Path, size: tuple[int, int], max_pixels: int) -> None:
    width, height = size
    if width * height > max_pixels:
        raise InputError(
            f"{path.name}: {width} x {height} pixels is over the {max_pixels / 1e6:.0f} Mpx limit for images "
            "(RAG_MAX_MEGAPIXELS); the file was skipped"
        )
