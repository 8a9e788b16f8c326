"""Decode any image users send (path, bytes, PIL image or array) into an RGB uint8 array.

Handles EXIF orientation, grayscale, CMYK, 16-bit, alpha (dropped, never composited: in
fingerprint BMPs the alpha byte is meaningless), palette and animated images (first frame).
Errors are typed so callers can map them to messages and HTTP status codes.
"""

from __future__ import annotations

import glob
import io
import os
import re
import warnings
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .config import MAX_JPEG_SCANS, MAX_PIXELS, MAX_SIDE

ImageSource = str | Path | bytes | bytearray | np.ndarray | Image.Image
_IMAGE_TYPES = (str, os.PathLike, bytes, bytearray, np.ndarray, Image.Image)

# We enforce our own limit from the header before decoding; PIL's own check would warn or
# raise with a less helpful message.
Image.MAX_IMAGE_PIXELS = None
# Decoded by content, never by name; other formats PIL knows (EPS runs Ghostscript) are refused.
ALLOWED_FORMATS = ("JPEG", "PNG", "BMP", "DIB", "GIF", "WEBP", "TIFF")
_JPEG_EOI = b"\xff\xd9"
_EXIF_ORIENTATION = 0x0112
# A JPEG marker: 0xFF and a code other than 0x00 (a stuffed 0xFF byte in entropy-coded data), 0xD0-0xD7
# (restart markers, inside a scan's data) or 0xFF (fill).
_JPEG_MARKER = re.compile(rb"\xff[\x01-\xcf\xd8-\xfe]")
_JPEG_SOS, _JPEG_EOI_CODE = 0xDA, 0xD9
_ROWS_PER_BLOCK = 256  # 16-bit, integer and float images are scaled to 8 bits this many rows at a time


class ImageError(ValueError):
    """An input that cannot be used as an image."""

    code = "invalid_image"
    status = 422


class NotAnImageError(ImageError):
    code = "unsupported_media_type"
    status = 415


class CorruptImageError(ImageError):
    code = "corrupt_image"
    status = 422


class ImageTooLargeError(ImageError):
    code = "image_too_large"
    status = 413


def _open(source: str | Path | bytes | bytearray) -> Image.Image:
    if isinstance(source, (bytes, bytearray)):
        if len(source) == 0:
            raise NotAnImageError("empty file")
        stream: io.BytesIO | str | Path = io.BytesIO(bytes(source))
    else:
        path = Path(source)
        if path.is_dir():
            raise NotAnImageError(f"{path} is a folder without image files")
        if not path.is_file():  # a pattern that reached here matched nothing (the CLI expands the others)
            raise ImageError(f"no file matches {path}" if glob.has_magic(str(path)) else f"no such file: {path}")
        if path.stat().st_size == 0:
            raise NotAnImageError("empty file")
        stream = path
    try:
        return Image.open(stream, formats=ALLOWED_FORMATS)
    except UnidentifiedImageError:
        if kind := _signature(source):  # starts like an image, but its header is broken
            raise CorruptImageError(f"image is truncated or corrupt: its {kind} header cannot be read") from None
        raise NotAnImageError("not a supported image (content is not JPEG/PNG/BMP/GIF/WebP/TIFF)") from None
    except Exception as exc:  # any decoder failure on hostile input is a corrupt file, never a crash
        raise CorruptImageError(f"cannot read image header: {exc}") from None


_SIGNATURES = {
    b"\x89PNG\r\n\x1a\n": "PNG",
    b"\xff\xd8\xff": "JPEG",
    b"GIF87a": "GIF",
    b"GIF89a": "GIF",
    b"II*\x00": "TIFF",
    b"MM\x00*": "TIFF",
}


def _signature(source: str | Path | bytes | bytearray) -> str | None:
    """The format a file's first bytes announce (None if they announce none we read)."""
    if isinstance(source, (bytes, bytearray)):
        head = bytes(source[:12])
    else:
        with open(source, "rb") as file:
            head = file.read(12)
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    return next((kind for magic, kind in _SIGNATURES.items() if head.startswith(magic)), None)


def _to_rgb_array(image: Image.Image) -> np.ndarray:
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        array = np.asarray(image)  # 2 or 4 bytes a pixel; as float64 at once, 8 (and 24 at the peak)
        if mode == "F" and not np.isfinite(array).all():  # one such pixel would blacken the whole image
            raise CorruptImageError("image holds NaN or infinite values")
        top = 65535.0 if mode.startswith("I;16") else max(float(array.max()), 1.0)
        gray = np.empty(array.shape, np.uint8)
        for start in range(0, array.shape[0], _ROWS_PER_BLOCK):  # same values, a few MB of floats at a time
            rows = array[start : start + _ROWS_PER_BLOCK].astype(np.float64)
            gray[start : start + _ROWS_PER_BLOCK] = np.clip(rows / top * 255.0, 0, 255).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if mode == "CMYK":
        return np.asarray(image.convert("RGB"))
    if mode in ("RGBA", "LA", "RGBa", "La"):
        image = image.convert(mode[0] if mode in ("LA", "La") else "RGB")
    if mode in ("P", "PA"):
        image = image.convert("RGBA").convert("RGB")
    if image.mode != "RGB":
        image = image.convert("RGB")
    return np.asarray(image)


def check_image_source(source: object) -> ImageSource:
    """``source`` as an image source, any path-like object (``os.PathLike``: a ``PurePath``, say) as a
    ``Path``; TypeError for what is no image source at all (None, a file object, a number): a
    caller's mistake, unlike an unreadable image (``ImageError``)."""
    if not isinstance(source, _IMAGE_TYPES):
        raise TypeError(f"an image is a path, encoded bytes, a PIL image or a NumPy array, not {type(source).__name__}")
    if isinstance(source, os.PathLike) and not isinstance(source, Path):
        return Path(os.fsdecode(source))
    return source


def load_image(source: ImageSource, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Return an RGB uint8 array (H, W, 3) or raise an ``ImageError`` subclass (``TypeError`` for
    what is no image source: :func:`check_image_source`)."""
    source = check_image_source(source)
    if isinstance(source, np.ndarray):  # already in memory: only what the crop cannot handle is refused
        if source.ndim not in (2, 3):
            raise ImageError(f"expected an HxW, HxWx1, HxWx3 or HxWx4 array, got shape {source.shape}")
        _check_side(source.shape[1], source.shape[0])
        return _array_to_rgb(source)
    image = source if isinstance(source, Image.Image) else _open(source)
    width, height = image.size
    if width <= 0 or height <= 0:
        raise CorruptImageError("image has no pixels")
    if max_pixels and width * height > max_pixels:
        raise ImageTooLargeError(
            f"image is {width}x{height} = {width * height / 1e6:.1f} MP, over the {max_pixels / 1e6:.0f} MP limit"
        )
    _check_side(width, height)
    encoded = _jpeg_bytes(source, image)  # a JPEG file is read once, for the scan count and the fast decoder
    if encoded is not None:
        _check_jpeg_scans(encoded)
        fast = _decode_complete_jpeg(encoded, image)
        if fast is not None:
            return fast
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if getattr(image, "n_frames", 1) > 1:
                image.seek(0)  # animated: the first frame
            image.load()
            image = ImageOps.exif_transpose(image) or image
            return np.ascontiguousarray(_to_rgb_array(image))
    except ImageError:
        raise
    except Exception as exc:  # hostile files raise all sorts (IndexError, struct.error, ...)
        raise CorruptImageError(f"image is truncated or corrupt: {exc}") from None


def _check_side(width: int, height: int) -> None:
    if max(width, height) > MAX_SIDE:
        raise ImageTooLargeError(f"image is {width}x{height}, over the limit of {MAX_SIDE} px a side")


def _jpeg_scans(data: bytes | bytearray) -> int:
    """How many scans (SOS segments) a JPEG holds: its segments walked by their lengths, so bytes
    inside metadata (an EXIF thumbnail, an ICC profile) are not counted; 0 for other data."""
    if not data.startswith(b"\xff\xd8"):
        return 0
    scans, position = 0, 2
    while (marker := _JPEG_MARKER.search(data, position)) is not None:
        start, code = marker.start(), data[marker.start() + 1]
        if code == _JPEG_EOI_CODE or start + 4 > len(data):
            break
        if code in (0x01, 0xD8):  # markers without a segment
            position = start + 2
            continue
        scans += code == _JPEG_SOS
        # the segment's length; after a scan header, its entropy-coded data up to the next marker
        position = start + 2 + int.from_bytes(data[start + 2 : start + 4], "big")
    return scans


def _jpeg_bytes(source: ImageSource, image: Image.Image) -> bytes | bytearray | None:
    """The encoded bytes of a JPEG (or MPO) given as a path or as bytes; None otherwise (other formats,
    PIL images)."""
    if image.format not in ("JPEG", "MPO") or not isinstance(source, (bytes, bytearray, str, Path)):
        return None
    return source if isinstance(source, (bytes, bytearray)) else Path(source).read_bytes()


def _check_jpeg_scans(data: bytes | bytearray) -> None:
    """Refuse a progressive JPEG with more scans than any encoder writes: each is a pass over every
    pixel, so a small file of many empty scans would take minutes to decode."""
    if (scans := _jpeg_scans(data)) > MAX_JPEG_SCANS:
        raise ImageTooLargeError(
            f"JPEG has {scans} scans, over the limit of {MAX_JPEG_SCANS} (ordinary progressive JPEGs have about 10)"
        )


def _decode_complete_jpeg(data: bytes | bytearray, image: Image.Image) -> np.ndarray | None:
    """Decode an intact RGB/gray JPEG (``data``, the bytes ``image`` was opened from) with OpenCV
    (about 3x faster than Pillow here, EXIF orientation applied), or return None to take the Pillow
    path: MPO files, other modes, and any file that does not end with the JPEG end marker
    (truncated files must fail there, not be decoded half grey)."""
    if image.format != "JPEG" or image.mode not in ("RGB", "L"):
        return None
    if not data.rstrip(b"\x00").endswith(_JPEG_EOI):
        return None
    try:
        rgb = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR_RGB)
        orientation = image.getexif().get(_EXIF_ORIENTATION, 1)
    except Exception:  # noqa: BLE001 - any failure: let Pillow decide and report
        return None
    width, height = image.size
    expected = (width, height) if orientation in (5, 6, 7, 8) else (height, width)
    if rgb is None or rgb.shape[:2] != expected:
        return None
    return np.ascontiguousarray(rgb)


def _array_to_rgb(array: np.ndarray) -> np.ndarray:
    if array.ndim in (2, 3) and 0 in array.shape[:2]:
        raise CorruptImageError(f"image has no pixels (array shape {array.shape})")
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
        raise ImageError(f"expected an HxW, HxWx1, HxWx3 or HxWx4 array, got shape {array.shape}")
    if array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    if array.shape[2] == 4:
        array = array[:, :, :3]
    if array.dtype != np.uint8:
        if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
            raise ImageError(f"expected an array of real pixel values, got dtype {array.dtype}")
        if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
            raise CorruptImageError("image array holds NaN or infinite values")
        if array.dtype == np.uint16:  # as a 16-bit image file is read: the full 16-bit range
            array = array / 257.0
        elif np.issubdtype(array.dtype, np.floating) and array.max() <= 1.0:
            array = array * 255.0
        array = np.clip(array, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(array)


def file_sha1(path: str | Path) -> str:
    import hashlib

    return hashlib.sha1(Path(path).read_bytes()).hexdigest()
