"""Request bodies: an in-memory multipart parser (the size limit is ``middleware.BodySizeLimitMiddleware``).

Uploads never touch the disk: the body (at most ``max_upload_bytes``) is read into memory and split
into parts here, instead of Starlette's form parser, which spools files over 1 MB to temporary files.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from .errors import ApiError


@dataclass
class Upload:
    filename: str
    content_type: str
    data: bytes


@dataclass
class Form:
    files: list[Upload] = field(default_factory=list)
    fields: dict[str, str] = field(default_factory=dict)  # first value of each text field


_MAX_PARTS = 100
_MAX_FIELD_BYTES = 64 * 1024


def clean_filename(raw: str) -> str:
    """The last path component of a client-given name, without control characters, at most 200 chars."""
    name = re.split(r"[\\/]", raw)[-1]
    name = "".join(ch for ch in name if ch.isprintable())
    return name[:200] or "upload"


def _too_many_parts() -> ApiError:
    return ApiError(422, "too_many_parts", f"at most {_MAX_PARTS} form fields per request")


def _add_field(form: Form, name: str, value: str) -> None:
    """An option given twice is ambiguous: refused, not decided by its first or last value."""
    if name in form.fields:
        raise ApiError(422, "duplicate_field", f"form field '{name[:50]}' given more than once")
    form.fields[name] = value


def parse_form(body: bytes, content_type: str | None, file_field: str = "file", max_files: int = 20) -> Form:
    """Split a ``multipart/form-data`` (or urlencoded, which cannot carry files) body held in memory."""
    mime, options = parse_options_header(content_type or "")
    mime_str = mime.decode("latin-1").lower()
    if mime_str == "application/x-www-form-urlencoded":
        # counted before parsing: a body of millions of tiny fields took seconds of the event loop
        try:
            pairs = parse_qsl(body.decode("latin-1"), keep_blank_values=True, max_num_fields=_MAX_PARTS)
        except ValueError:
            raise _too_many_parts() from None
        form = Form()
        for key, value in pairs:
            _add_field(form, key, value)
        return form
    if mime_str != "multipart/form-data":
        raise ApiError(
            415,
            "unsupported_content_type",
            f"send the images as multipart/form-data (field '{file_field}'), not "
            + (mime_str or "a body without a content type"),
        )
    boundary = options.get(b"boundary")
    if not boundary:
        raise ApiError(400, "malformed_multipart", "multipart body without a boundary")
    return _parse_multipart(body, boundary, file_field, max_files)


def _parse_multipart(body: bytes, boundary: bytes, file_field: str, max_files: int) -> Form:
    parts = _PartCollector(file_field, max_files)
    try:  # the parser refuses some boundaries (e.g. over 256 bytes) already when it is built
        parser = MultipartParser(boundary, parts.callbacks())
        parser.write(body)
        parser.finalize()
    except FormParserError as exc:
        raise ApiError(400, "malformed_multipart", f"malformed multipart body: {exc}") from None
    if not parts.ended:
        raise ApiError(400, "malformed_multipart", "malformed multipart body: the closing boundary is missing")
    return parts.form


class _PartCollector:
    """The multipart parser's callbacks: each part's headers and bytes, collected into a ``Form``
    (files under ``file_field``, text fields elsewhere) as soon as the part ends."""

    def __init__(self, file_field: str, max_files: int) -> None:
        self.file_field = file_field
        self.max_files = max_files
        self.form = Form()
        self.ended = False
        self._parts = 0
        self._headers: list[tuple[bytes, bytes]] = []
        self._header_name = b""
        self._header_value = b""
        self._data: list[bytes] = []

    def callbacks(self) -> dict[str, Callable[..., None]]:
        names = ("part_begin", "part_data", "part_end", "header_field", "header_value", "header_end", "end")
        return {f"on_{name}": getattr(self, f"on_{name}") for name in names}

    def on_part_begin(self) -> None:
        self._parts += 1
        if self._parts > _MAX_PARTS:
            raise _too_many_parts()
        self._headers, self._data = [], []

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        self._headers.append((self._header_name.lower(), self._header_value))
        self._header_name, self._header_value = b"", b""

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        self._data.append(data[start:end])

    def on_part_end(self) -> None:
        headers = dict(self._headers)
        _, disposition = parse_options_header(headers.get(b"content-disposition", b""))
        name = disposition.get(b"name", b"").decode("utf-8", "replace")
        content = b"".join(self._data)
        if name == self.file_field:
            self._add_file(
                disposition.get(b"filename", b""), headers.get(b"content-type", b"application/octet-stream"), content
            )
        elif b"filename" in disposition:  # a file under another name is a mistake worth naming
            raise ApiError(
                422, "unknown_field", f"file sent in the form field '{name[:40]}': send images in '{self.file_field}'"
            )
        elif name:
            if len(content) > _MAX_FIELD_BYTES:
                raise ApiError(422, "field_too_large", f"form field '{name[:50]}' is too long")
            _add_field(self.form, name, content.decode("utf-8", "replace"))

    def _add_file(self, raw_name: bytes, content_type: bytes, content: bytes) -> None:
        if len(self.form.files) >= self.max_files:
            raise ApiError(422, "too_many_files", f"at most {self.max_files} files per request")
        mime = content_type.decode("latin-1")
        filename = clean_filename(raw_name.decode("utf-8", "replace"))
        self.form.files.append(Upload(filename=filename, content_type=mime[:100], data=content))

    def on_end(self) -> None:
        self.ended = True
