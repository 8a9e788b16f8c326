"""Generated image corpus for the web tests: good images in every format and mode load_image must
handle, and bad inputs with the status code the API must answer. Everything is made in memory."""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass

import numpy as np
from PIL import Image

NOT_IMAGE = (415, "unsupported_media_type")
CORRUPT = (422, "corrupt_image")
TOO_LARGE = (413, "image_too_large")


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


def draw_face(image: np.ndarray, cx: int, cy: int, size: int) -> np.ndarray:
    """Draw a plain cartoon face (skin oval, eyes, brows, nose, mouth) that the YuNet detector finds
    with ~0.9 confidence: lets tests exercise detection without shipping photos of people."""
    import cv2

    out = image.copy()

    def px(f: float) -> int:
        return max(1, int(size * f))

    cv2.ellipse(out, (cx, cy), (px(0.28), px(0.36)), 0, 0, 360, (215, 170, 140), -1)
    for side in (-1, 1):
        eye = (cx + side * px(0.11), cy - px(0.07))
        cv2.ellipse(out, eye, (px(0.05), px(0.025)), 0, 0, 360, (255, 255, 255), -1)
        cv2.circle(out, eye, px(0.02), (20, 30, 40), -1)
        brow_y = cy - px(0.14)
        cv2.line(out, (cx + side * px(0.06), brow_y), (cx + side * px(0.17), brow_y), (60, 50, 40), px(0.015))
    cv2.line(out, (cx, cy - px(0.03)), (cx, cy + px(0.07)), (170, 120, 100), px(0.015))
    cv2.ellipse(out, (cx, cy + px(0.15)), (px(0.08), px(0.03)), 0, 0, 360, (170, 80, 80), -1)
    return cv2.GaussianBlur(out, (0, 0), max(0.5, size / 150))


def face_photo(width: int = 640, height: int = 480, seed: int = 0) -> np.ndarray:
    """A synthetic photo with one cartoon face in the middle (RGB uint8)."""
    background = photo(width, height, seed)
    return draw_face(background, width // 2, height // 2, int(min(width, height) * 0.8))


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
    dot = encode(Image.new("RGB", (1, 1), (200, 10, 10)), "PNG")
    size = (320, 240)
    return [
        Case("jpeg", "photo.jpg", "image/jpeg", jpeg, 200, size=size),
        Case("jpeg-wrong-extension-and-type", "photo.png", "application/octet-stream", jpeg, 200, size=size),
        Case("png-named-jpg", "picture.jpg", "image/jpeg", png, 200, size=size),
        Case("one-pixel", "dot.png", "image/png", dot, 200, size=(1, 1)),
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
    text = b"just some text, not an image\n" * 20
    html = b"<!doctype html><html><body><img src=x></body></html>"
    pdf = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n"
    zipped = b"PK\x03\x04" + bytes(rng.integers(0, 256, 300, dtype=np.uint8))
    noise = bytes(rng.integers(0, 256, 4096, dtype=np.uint8))
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>'
    return [
        Case("empty-file", "empty.jpg", "image/jpeg", b"", *NOT_IMAGE),
        Case("text-file", "notes.txt", "text/plain", text, *NOT_IMAGE),
        Case("html", "page.html", "text/html", html, *NOT_IMAGE),
        Case("pdf-magic", "doc.pdf", "application/pdf", pdf, *NOT_IMAGE),
        Case("zip", "archive.zip", "application/zip", zipped, *NOT_IMAGE),
        Case("random-bytes", "noise.jpg", "image/jpeg", noise, *NOT_IMAGE),
        Case("svg", "vector.svg", "image/svg+xml", svg, *NOT_IMAGE),
        Case("truncated-jpeg", "cut.jpg", "image/jpeg", jpeg[: len(jpeg) // 2], *CORRUPT),
        Case("truncated-png", "cut.png", "image/png", png[: len(png) // 2], *CORRUPT),
        Case("corrupt-jpeg-body", "broken.jpg", "image/jpeg", corrupt, *CORRUPT),
        Case("png-header-20000x20000", "huge.png", "image/png", png_header_only(20000, 20000), *TOO_LARGE),
        Case("decompression-bomb-png", "bomb.png", "image/png", bomb, *TOO_LARGE),
    ]
