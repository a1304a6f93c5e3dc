"""What an image in a request can cost in input tokens, by the model family that reads it.

A reservation must cover what the provider can really bill (an image reserved as 1,600 tokens
was billed 25,500 on gpt-4o-mini), so each image is counted by its family's published rule at
the size its data URL says, and at the family's largest when the size is unknown (an https URL
OpenAI fetches, an unreadable header). "auto" detail is counted as "high", its upper bound.
Rules (published by each vendor, read 2026-12-07; the figures in docs/ with their sources):
- OpenAI, tiles: fit in 2048x2048, shortest side down to 768, base + per 512px tile.
- OpenAI, patches: 32px patches, at most 1,536, times the model's multiplier.
- Claude (3 to 4.5): long edge down to 1568, width x height / 750, at most about 1,600.
- Nova: about 2,600 at most (its table's largest); Llama: 4 tiles of 1,601.
- Any other model: the largest of these (gpt-4o-mini's 8 tiles: 48,169).
"""

from __future__ import annotations

import base64
import binascii
import math
import struct
from collections.abc import Callable

Size = tuple[int, int] | None
Rule = Callable[[Size], int]


def _tiles(base: int, per_tile: int) -> Rule:
    def tokens(size: Size) -> int:
        if size is None:
            return base + 8 * per_tile  # 768 x 2048: the most tiles after scaling
        fit = min(1.0, 2048 / max(size))
        width, height = size[0] * fit, size[1] * fit
        scale = min(1.0, 768 / min(width, height))
        return base + math.ceil(width * scale / 512) * math.ceil(height * scale / 512) * per_tile

    return tokens


def _patches(multiplier: float) -> Rule:
    def tokens(size: Size) -> int:
        patches = 1536 if size is None else math.ceil(size[0] / 32) * math.ceil(size[1] / 32)
        return math.ceil(min(1536, patches) * multiplier)

    return tokens


def _claude(size: Size) -> int:
    if size is None:
        return 1600
    width, height = size
    scale = min(1.0, 1568 / max(width, height))
    return max(1, min(1600, math.ceil(width * scale * height * scale / 750)))


def _flat(tokens: int) -> Rule:
    return lambda size: tokens


# Longest prefix first wins: a mini model before its family.
_OPENAI: tuple[tuple[str, Rule], ...] = (
    ("gpt-4o-mini", _tiles(2833, 5667)),
    ("gpt-4.1-mini", _patches(1.62)),
    ("gpt-4.1-nano", _patches(2.46)),
    ("gpt-5-mini", _patches(1.62)),
    ("gpt-5-nano", _patches(2.46)),
    ("o4-mini", _patches(1.72)),
    ("computer-use", _tiles(65, 129)),
    ("gpt-5", _tiles(70, 140)),
    ("o1", _tiles(75, 150)),
    ("o3", _tiles(75, 150)),
    ("gpt-4", _tiles(85, 170)),
    ("chatgpt-4o", _tiles(85, 170)),
)
_BEDROCK: tuple[tuple[str, Rule], ...] = (
    ("anthropic.", _claude),
    ("amazon.nova", _flat(2600)),
    ("meta.llama", _flat(4 * 1601)),
)
UNKNOWN = _tiles(2833, 5667)(None)
"""An image on a model of no known family: the most any family above bills for one."""


def image_tokens(model: str, url: str) -> int:
    """The most input tokens one image (its URL or data URL) can cost on `model`."""
    rule = _rule(model)
    return UNKNOWN if rule is None else rule(image_size(url))


def _rule(model: str) -> Rule | None:
    for prefix, rule in _OPENAI:
        if model.startswith(prefix):
            return rule
    return next((rule for family, rule in _BEDROCK if family in model), None)


HEADER_BYTES = 96 * 1024
"""How much of an image is decoded to find its size (a JPEG's frame header follows its EXIF)."""


def image_size(url: str) -> Size:
    """Width and height from a data URL's PNG, GIF, WebP or JPEG header; None if unknown."""
    if not url.startswith("data:"):
        return None
    head = url.partition(",")[2][: HEADER_BYTES * 4 // 3]
    try:
        data = base64.b64decode(head[: len(head) - len(head) % 4])
    except (binascii.Error, ValueError):
        return None
    for reader in (_png, _gif, _webp, _jpeg):
        try:
            size = reader(data)
        except (struct.error, IndexError):
            size = None
        if size is not None:
            return size if size[0] > 0 and size[1] > 0 else None
    return None


def _png(data: bytes) -> Size:
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def _gif(data: bytes) -> Size:
    if data[:6] not in (b"GIF87a", b"GIF89a"):
        return None
    width, height = struct.unpack("<HH", data[6:10])
    return width, height


def _webp(data: bytes) -> Size:
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        return None
    chunk = data[12:16]
    if chunk == b"VP8X":
        return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
    if chunk == b"VP8L":
        bits = int.from_bytes(data[21:25], "little")
        return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    if chunk == b"VP8 ":
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    return None


_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # frame headers (not DHT, JPG, DAC)


def _jpeg(data: bytes) -> Size:
    if data[:2] != b"\xff\xd8":
        return None
    at = 2
    while at + 4 <= len(data):
        if data[at] != 0xFF:
            return None
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker in _SOF:
            height, width = struct.unpack(">HH", data[at + 5 : at + 9])
            return width, height
        at += 2 + int.from_bytes(data[at + 2 : at + 4], "big")
    return None
