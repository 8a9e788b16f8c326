"""Image decoding: every odd input either decodes to RGB uint8 correctly or raises a typed error."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageFile

from genderclass.imageio import (
    CorruptImageError,
    ImageError,
    ImageTooLargeError,
    NotAnImageError,
    file_sha1,
    load_image,
)


def _encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def _noise(height: int = 64, width: int = 80, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header declares width x height RGB; the pixel data is a few bytes only."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 16))
        + _png_chunk(b"IEND", b"")
    )


def test_error_types_carry_codes():
    assert issubclass(NotAnImageError, ImageError) and issubclass(ImageError, ValueError)
    assert (NotAnImageError.status, CorruptImageError.status, ImageTooLargeError.status) == (415, 422, 413)
    assert len({NotAnImageError.code, CorruptImageError.code, ImageTooLargeError.code}) == 3


@pytest.mark.parametrize("as_path", [False, True])
def test_empty_input(tmp_path, as_path):
    source = tmp_path / "empty.jpg" if as_path else b""
    if as_path:
        source.write_bytes(b"")
    with pytest.raises(NotAnImageError):
        load_image(source)


@pytest.mark.parametrize(
    "content",
    [
        b"hello, this is a text file, not a photo\n" * 20,
        b'{"json": true}',
        b"%PDF-1.4\n" + bytes(300),
        bytes(range(256)) * 8,
    ],
)
def test_non_images(tmp_path, content):
    with pytest.raises(NotAnImageError):
        load_image(content)
    path = tmp_path / "fake.jpg"  # the extension lies
    path.write_bytes(content)
    with pytest.raises(NotAnImageError):
        load_image(path)


def test_corrupt_body_with_valid_signature():
    with pytest.raises(ImageError):
        load_image(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    with pytest.raises(ImageError):
        load_image(b"\xff\xd8\xff\xe0" + bytes(500))


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated_files(fmt):
    data = _encode(Image.fromarray(_noise()), fmt)
    with pytest.raises(CorruptImageError):
        load_image(data[: len(data) // 2])
    with pytest.raises(ImageError):  # cut inside the header: any typed image error, never a crash
        load_image(data[:30])


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(ImageError):
        load_image(tmp_path / "nope.png")
    with pytest.raises(ImageError):
        load_image(tmp_path)


def test_huge_header_rejected_before_decoding(monkeypatch):
    data = _png_header_only(30000, 30000)

    def no_decoding(self, *args, **kwargs):
        raise AssertionError("pixel data must not be decoded for an over-size image")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    with pytest.raises(ImageTooLargeError, match="30000x30000"):
        load_image(data)


def test_a_side_longer_than_the_warps_take_is_refused_under_the_pixel_limit():
    """40,000 x 1 is far under 40 MP, but OpenCV cannot warp it: a clear 413, not a crash later."""
    with pytest.raises(ImageTooLargeError, match="40000x1, over the limit of 32000 px a side"):
        load_image(_encode(Image.new("L", (40000, 1)), "PNG"))
    assert load_image(_encode(Image.new("L", (32000, 1)), "PNG")).shape == (1, 32000, 3)
    with pytest.raises(ImageTooLargeError, match="33000x10"):  # an array given directly, too
        load_image(np.zeros((10, 33000, 3), np.uint8))


def test_a_broken_header_of_a_real_format_is_corrupt_not_unknown(tmp_path):
    png = _encode(Image.new("L", (30, 20)), "PNG")
    broken = png[:29] + bytes(4) + png[33:]  # the IHDR chunk's CRC zeroed
    with pytest.raises(CorruptImageError, match="PNG header"):
        load_image(broken)
    with pytest.raises(NotAnImageError):
        load_image(b"just a text file, not an image")
    with pytest.raises(NotAnImageError, match="folder without image files"):
        load_image(tmp_path)


def test_max_pixels_argument():
    data = _encode(Image.fromarray(_noise(20, 30)), "PNG")
    with pytest.raises(ImageTooLargeError):
        load_image(data, max_pixels=599)
    assert load_image(data, max_pixels=600).shape == (20, 30, 3)
    assert load_image(data, max_pixels=0).shape == (20, 30, 3)  # 0 disables the limit


def test_sources_path_bytes_pil_agree(tmp_path):
    rgb = _noise()
    path = tmp_path / "x.png"
    Image.fromarray(rgb).save(path)
    for source in (path, str(path), path.read_bytes(), bytearray(path.read_bytes()), Image.open(path)):
        out = load_image(source)
        assert out.dtype == np.uint8 and out.shape == (64, 80, 3)
        np.testing.assert_array_equal(out, rgb)
    assert file_sha1(path) == __import__("hashlib").sha1(path.read_bytes()).hexdigest()


def test_grayscale():
    gray = np.random.default_rng(1).integers(0, 256, (10, 12), dtype=np.uint8)
    out = load_image(_encode(Image.fromarray(gray), "PNG"))
    assert out.shape == (10, 12, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[:, :, c], gray)


def test_rgba_alpha_dropped_not_composited():
    """Fingerprint BMP/PNGs carry a meaningless 0/255 alpha: the RGB values must survive untouched."""
    rng = np.random.default_rng(2)
    gray = rng.integers(0, 256, (30, 20), dtype=np.uint8)
    rgba = np.dstack([gray, gray, gray, rng.choice([0, 255], (30, 20)).astype(np.uint8)])
    for fmt in ("PNG", "BMP"):
        out = load_image(_encode(Image.fromarray(rgba, "RGBA"), fmt))
        assert out.shape == (30, 20, 3)
        for c in range(3):
            np.testing.assert_array_equal(out[:, :, c], gray)


def test_gray_alpha_dropped():
    la = np.zeros((6, 6, 2), np.uint8)
    la[..., 0] = 123
    out = load_image(_encode(Image.fromarray(la, "LA"), "PNG"))
    assert (out == 123).all()


def test_bmp_32bit_like_socofing():
    rgb = _noise(103, 96)
    rgbx = np.dstack([rgb, np.zeros((103, 96), np.uint8)])  # unused fourth byte = 0
    data = _encode(Image.fromarray(rgbx, "RGBA"), "BMP")
    assert struct.unpack("<H", data[28:30])[0] == 32  # really a 32-bit BMP
    out = load_image(data)
    np.testing.assert_array_equal(out, rgb)


def test_16bit_png():
    values = np.array([[0, 256, 32768, 65535]], dtype=np.uint16)
    image = Image.fromarray(values)
    assert image.mode.startswith("I;16")
    out = load_image(_encode(image, "PNG"))
    assert out.dtype == np.uint8 and out.shape == (1, 4, 3)
    assert out[0, :, 0].tolist() == [0, 0, 127, 255]  # scaled from 16 to 8 bits, not clipped or stretched


def test_16bit_png_decodes_without_a_float64_copy_of_the_image():
    """A 40 MP 16-bit PNG of a few kB must not cost a server several float64 copies (~1 GB) to decode."""
    import tracemalloc

    height, width = 1500, 1600
    values = (np.arange(height * width, dtype=np.uint32).reshape(height, width) % 65536).astype(np.uint16)
    data = _encode(Image.fromarray(values), "PNG")
    tracemalloc.start()
    try:
        out = load_image(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    gray = np.clip(values / 65535.0 * 255.0, 0, 255).astype(np.uint8)  # the scale, unchanged
    np.testing.assert_array_equal(out, np.repeat(gray[:, :, None], 3, axis=2))
    assert peak < 10 * height * width  # bytes: 2 read + 1 gray + 3 RGB a pixel, and a block of rows; was 24


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_float_tiff_with_a_non_finite_pixel_is_refused_not_decoded_black(bad):
    values = np.linspace(0.0, 1.0, 12, dtype=np.float32).reshape(3, 4)
    np.testing.assert_array_equal(load_image(_encode(Image.fromarray(values, "F"), "TIFF"))[2, 3], [255, 255, 255])
    values[0, 0] = bad
    with pytest.raises(CorruptImageError, match="NaN or infinite"):
        load_image(_encode(Image.fromarray(values, "F"), "TIFF"))


def test_16bit_png_dark_image_is_not_stretched():
    values = np.full((4, 4), 1000, dtype=np.uint16)
    values[0, 0] = 3000
    out = load_image(_encode(Image.fromarray(values), "PNG"))
    assert int(out[0, 0, 0]) == int(3000 / 65535 * 255)
    assert int(out[1, 1, 0]) == int(1000 / 65535 * 255)


def test_cmyk_jpeg():
    cmyk = Image.new("CMYK", (16, 16), (255, 0, 0, 0))  # pure cyan
    out = load_image(_encode(cmyk, "JPEG", quality=95))
    assert out.shape == (16, 16, 3)
    np.testing.assert_allclose(out.reshape(-1, 3).mean(axis=0), [0, 255, 255], atol=8)


def test_palette_with_transparency_keeps_colours():
    image = Image.new("P", (4, 4), 0)
    image.putpalette([0, 0, 0, 10, 200, 30] + [0] * 762)
    image.putpixel((0, 0), 1)
    out = load_image(_encode(image, "PNG", transparency=1))  # index 1 is fully transparent
    assert out[0, 0].tolist() == [10, 200, 30]
    assert out[1, 1].tolist() == [0, 0, 0]


def test_animated_gif_first_frame():
    frames = [Image.new("RGB", (10, 10), (255, 0, 0)), Image.new("RGB", (10, 10), (0, 0, 255))]
    data = _encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)
    assert getattr(Image.open(io.BytesIO(data)), "n_frames", 1) == 2
    out = load_image(data)
    assert out.shape == (10, 10, 3)
    assert out[5, 5].tolist() == [255, 0, 0]
    opened = Image.open(io.BytesIO(data))
    opened.seek(1)
    assert load_image(opened)[5, 5].tolist() == [255, 0, 0]  # a PIL image left on frame 2


def test_exif_orientation_applied():
    stored = np.zeros((20, 40, 3), np.uint8)  # 40 wide, 20 high as stored
    stored[:, :20] = (255, 0, 0)  # left half red
    image = Image.fromarray(stored)
    exif = image.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    out = load_image(_encode(image, "JPEG", exif=exif, quality=95))
    assert out.shape == (40, 20, 3)  # displayed portrait
    top, bottom = out[:18].reshape(-1, 3).mean(axis=0), out[22:].reshape(-1, 3).mean(axis=0)
    assert top[0] > 200 and bottom[0] < 50  # the stored left half is now on top


@pytest.mark.parametrize(
    ("array", "expected_first"),
    [
        (np.full((3, 4), 9, np.uint8), [9, 9, 9]),
        (np.full((3, 4, 1), 9, np.uint8), [9, 9, 9]),
        (np.dstack([np.full((3, 4, 3), 7, np.uint8), np.zeros((3, 4), np.uint8)]), [7, 7, 7]),
        (np.full((3, 4, 3), 0.5, np.float32), [127, 127, 127]),
        (np.full((3, 4, 3), 300.0), [255, 255, 255]),
        (np.full((3, 4), 32896, np.uint16), [128, 128, 128]),  # 16 bits, as a 16-bit PNG is read
    ],
)
def test_numpy_arrays(array, expected_first):
    out = load_image(array)
    assert out.shape == (3, 4, 3) and out.dtype == np.uint8
    assert out[0, 0].tolist() == expected_first


def test_a_uint16_array_reads_as_the_same_16_bit_png(tmp_path):
    gray = np.linspace(0, 65535, 12, dtype=np.uint16).reshape(3, 4)
    Image.fromarray(gray).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode.startswith("I")
    assert np.abs(load_image(gray).astype(int) - load_image(tmp_path / "g16.png").astype(int)).max() <= 1


def test_numpy_bad_values():
    with pytest.raises(ImageError, match="NaN or infinite"):
        load_image(np.full((3, 4), np.nan))
    with pytest.raises(ImageError, match="real pixel values"):
        load_image(np.zeros((3, 4), np.complex64))
    with pytest.raises(ImageError, match="got shape"):
        load_image(np.array(5))  # a 0-d array: an error for this image, not an IndexError for the batch


def test_numpy_bad_shape():
    with pytest.raises(ImageError):
        load_image(np.zeros((3, 4, 2), np.uint8))
    with pytest.raises(ImageError):
        load_image(np.zeros((2, 3, 4, 3), np.uint8))
    for empty in (np.zeros((0, 10, 3), np.uint8), np.zeros((5, 0)), np.zeros((0, 0, 1), np.float32)):
        with pytest.raises(ImageError, match="no pixels"):
            load_image(empty)


@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_jpeg_fast_path_matches_pillow(mode, tmp_path):
    image = Image.fromarray(_noise()).convert(mode)
    data = _encode(image, "JPEG", quality=90)
    expected = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    path = tmp_path / "photo.jpg"
    path.write_bytes(data)
    for source in (data, path):
        out = load_image(source)
        assert out.shape == expected.shape and out.dtype == np.uint8
        assert np.abs(out.astype(int) - expected).max() <= 2


def _scans(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of each scan of a JPEG, from its SOS marker to the next scan or the EOI."""
    starts = [i for i in range(len(data) - 1) if data[i : i + 2] == b"\xff\xda"]
    return list(zip(starts, [*starts[1:], len(data) - 2], strict=True))


def test_progressive_jpeg_with_too_many_scans_is_refused_before_decoding():
    """Each scan is a pass over the whole image: 1,000 empty scans of 40 MP, 216 kB, took 51 s."""
    from genderclass.config import MAX_JPEG_SCANS

    data = _encode(Image.new("L", (64, 64), 128), "JPEG", progressive=True)
    scans = _scans(data)
    assert load_image(data).shape == (64, 64, 3) and 1 < len(scans) <= MAX_JPEG_SCANS
    start, end = scans[-1]
    repeated = data[:start] + data[start:end] * (MAX_JPEG_SCANS + 1) + data[start:]
    with pytest.raises(ImageTooLargeError, match=f"over the limit of {MAX_JPEG_SCANS}"):
        load_image(repeated)
    # SOS bytes inside a segment (a comment here; an EXIF thumbnail or ICC profile elsewhere) are no scans
    comment = b"\xff\xda" * (MAX_JPEG_SCANS + 1)
    commented = data[:2] + b"\xff\xfe" + (len(comment) + 2).to_bytes(2, "big") + comment + data[2:]
    assert load_image(commented).shape == (64, 64, 3)


def test_a_path_like_object_is_read_as_its_path(tmp_path):
    from pathlib import PurePath

    path = tmp_path / "x.png"
    Image.new("RGB", (5, 4), (10, 20, 30)).save(path)
    assert load_image(PurePath(path)).shape == (4, 5, 3)
