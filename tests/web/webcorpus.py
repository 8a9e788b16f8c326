"""Generated image corpus for the web tests: good images in every format and mode load_image must
handle, and bad inputs with the status code the API must answer. Everything is made in memory."""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class Case:
    name: str
    filename: str
    content_type: str
    data: bytes
    status: int  # expected status when posted alone
    code: str | None = None  # expected error code (None for 200)
    size: tuple[int, int] | None = None  # expected image_size [w, h] on success


def photo(width: int = 640, height: int = 480, seed: int = 0) -> np.ndarray:
    """A smooth synthetic 'photo' (gradients + blobs), RGB uint8."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    image = np.stack(
        [
            120 + 80 * np.sin(x / 57.0 + seed),
            110 + 70 * np.cos(y / 43.0),
            130 + 60 * np.sin((x + y) / 91.0),
        ],
        axis=2,
    )
    for _ in range(6):
        cx, cy, r = rng.uniform(0, width), rng.uniform(0, height), rng.uniform(20, 90)
        mask = (x - cx) ** 2 + (y - cy) ** 2 < r**2
        image[mask] = rng.uniform(0, 255, size=3)
    return np.clip(image, 0, 255).astype(np.uint8)


def encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def jpeg_bytes(width: int = 640, height: int = 480, seed: int = 0, quality: int = 90) -> bytes:
    return encode(Image.fromarray(photo(width, height, seed)), "JPEG", quality=quality)


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares width x height but carries a tiny (invalid) body."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))


def exif_rotated_jpeg() -> bytes:
    """640x480 pixels stored, EXIF orientation 6 (rotate 90°): the upright image is 480x640."""
    image = Image.fromarray(photo(640, 480, seed=3))
    exif = Image.Exif()
    exif[0x0112] = 6
    return encode(image, "JPEG", exif=exif.tobytes())


def animated_gif() -> bytes:
    frames = [Image.fromarray(photo(160, 120, seed=s)).convert("P", palette=Image.Palette.ADAPTIVE) for s in range(3)]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def good_cases() -> list[Case]:
    rgb = Image.fromarray(photo(320, 240, seed=1))
    jpeg = encode(rgb, "JPEG", quality=90)
    png = encode(rgb, "PNG")
    gray16 = Image.fromarray(np.asarray(rgb.convert("L"), dtype=np.uint16) * 257)
    rgba = rgb.copy()
    rgba.putalpha(Image.fromarray(np.tile(np.linspace(0, 255, 320, dtype=np.uint8), (240, 1))))
    palette = rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    size = (320, 240)
    return [
        Case("jpeg", "photo.jpg", "image/jpeg", jpeg, 200, size=size),
        Case("jpeg-wrong-extension-and-type", "photo.png", "application/octet-stream", jpeg, 200, size=size),
        Case("png-named-jpg", "picture.jpg", "image/jpeg", png, 200, size=size),
        Case("one-pixel", "dot.png", "image/png", encode(Image.new("RGB", (1, 1), (200, 10, 10)), "PNG"), 200, size=(1, 1)),
        Case("animated-gif", "anim.gif", "image/gif", animated_gif(), 200, size=(160, 120)),
        Case("webp", "photo.webp", "image/webp", encode(rgb, "WEBP", quality=80), 200, size=size),
        Case("tiff", "photo.tiff", "image/tiff", encode(rgb, "TIFF", compression="tiff_lzw"), 200, size=size),
        Case("bmp", "photo.bmp", "image/bmp", encode(rgb, "BMP"), 200, size=size),
        Case("png-16-bit-gray", "deep.png", "image/png", encode(gray16, "PNG"), 200, size=size),
        Case("cmyk-jpeg", "print.jpg", "image/jpeg", encode(rgb.convert("CMYK"), "JPEG"), 200, size=size),
        Case("palette-png", "palette.png", "image/png", encode(palette, "PNG"), 200, size=size),
        Case("rgba-png", "alpha.png", "image/png", encode(rgba, "PNG"), 200, size=size),
        Case("grayscale-jpeg", "gray.jpg", "image/jpeg", encode(rgb.convert("L"), "JPEG"), 200, size=size),
        Case("exif-rotated-jpeg", "rotated.jpg", "image/jpeg", exif_rotated_jpeg(), 200, size=(480, 640)),
    ]


def bad_cases() -> list[Case]:
    jpeg = jpeg_bytes(320, 240, seed=2)
    png = encode(Image.fromarray(photo(320, 240, seed=2)), "PNG")
    corrupt = bytearray(jpeg)  # headers intact, Huffman tables wrecked: the decoder must fail
    at = corrupt.index(b"\xff\xc4")
    while at >= 0:
        length = int.from_bytes(corrupt[at + 2 : at + 4], "big")
        corrupt[at + 5 : at + 2 + length] = b"\xff" * (length - 3)
        at = corrupt.find(b"\xff\xc4", at + 2 + length)
    corrupt = bytes(corrupt)
    bomb = encode(Image.new("1", (8000, 6000), 0), "PNG")  # 48 MP that compress to a few kB
    rng = np.random.default_rng(7)
    return [
        Case("empty-file", "empty.jpg", "image/jpeg", b"", 415, "unsupported_media_type"),
        Case("text-file", "notes.txt", "text/plain", b"just some text, not an image\n" * 20, 415, "unsupported_media_type"),
        Case("html", "page.html", "text/html", b"<!doctype html><html><body><img src=x></body></html>", 415, "unsupported_media_type"),
        Case("pdf-magic", "doc.pdf", "application/pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n", 415, "unsupported_media_type"),
        Case("zip", "archive.zip", "application/zip", b"PK\x03\x04" + bytes(rng.integers(0, 256, 300, dtype=np.uint8)), 415, "unsupported_media_type"),
        Case("random-bytes", "noise.jpg", "image/jpeg", bytes(rng.integers(0, 256, 4096, dtype=np.uint8)), 415, "unsupported_media_type"),
        Case("svg", "vector.svg", "image/svg+xml", b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>', 415, "unsupported_media_type"),
        Case("truncated-jpeg", "cut.jpg", "image/jpeg", jpeg[: len(jpeg) // 2], 422, "corrupt_image"),
        Case("truncated-png", "cut.png", "image/png", png[: len(png) // 2], 422, "corrupt_image"),
        Case("corrupt-jpeg-body", "broken.jpg", "image/jpeg", corrupt, 422, "corrupt_image"),
        Case("png-header-20000x20000", "huge.png", "image/png", png_header_only(20000, 20000), 413, "image_too_large"),
        Case("decompression-bomb-png", "bomb.png", "image/png", bomb, 413, "image_too_large"),
    ]
