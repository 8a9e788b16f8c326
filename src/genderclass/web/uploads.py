"""Request bodies: an in-memory multipart parser (the size limit is ``middleware.BodySizeLimitMiddleware``).

Uploads never touch the disk: the body (at most ``max_upload_bytes``) is read into memory and split
into parts here, instead of Starlette's form parser, which spools files over 1 MB to temporary files.
"""

from __future__ import annotations

import re
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
    form = Form()
    state: dict = {"headers": [], "name": b"", "value": b"", "data": [], "ended": False, "parts": 0}

    def on_part_begin() -> None:
        state["parts"] += 1
        if state["parts"] > _MAX_PARTS:
            raise _too_many_parts()
        state["headers"], state["data"] = [], []

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["name"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state["value"] += data[start:end]

    def on_header_end() -> None:
        state["headers"].append((state["name"].lower(), state["value"]))
        state["name"], state["value"] = b"", b""

    def on_part_data(data: bytes, start: int, end: int) -> None:
        state["data"].append(data[start:end])

    def on_part_end() -> None:
        headers = dict(state["headers"])
        _, disposition = parse_options_header(headers.get(b"content-disposition", b""))
        name = disposition.get(b"name", b"").decode("utf-8", "replace")
        content = b"".join(state["data"])
        if name == file_field:
            if len(form.files) >= max_files:
                raise ApiError(422, "too_many_files", f"at most {max_files} files per request")
            raw_name = disposition.get(b"filename", b"").decode("utf-8", "replace")
            mime = headers.get(b"content-type", b"application/octet-stream").decode("latin-1")
            form.files.append(Upload(filename=clean_filename(raw_name), content_type=mime[:100], data=content))
        elif b"filename" in disposition:  # a file under another name is a mistake worth naming
            raise ApiError(
                422, "unknown_field", f"file sent in the form field '{name[:40]}': send images in '{file_field}'"
            )
        elif name:
            if len(content) > _MAX_FIELD_BYTES:
                raise ApiError(422, "field_too_large", f"form field '{name[:50]}' is too long")
            _add_field(form, name, content.decode("utf-8", "replace"))

    def on_end() -> None:
        state["ended"] = True

    callbacks = {
        "on_part_begin": on_part_begin,
        "on_part_data": on_part_data,
        "on_part_end": on_part_end,
        "on_header_field": on_header_field,
        "on_header_value": on_header_value,
        "on_header_end": on_header_end,
        "on_end": on_end,
    }
    try:  # the parser refuses some boundaries (e.g. over 256 bytes) already when it is built
        parser = MultipartParser(boundary, callbacks)
        parser.write(body)
        parser.finalize()
    except FormParserError as exc:
        raise ApiError(400, "malformed_multipart", f"malformed multipart body: {exc}") from None
    if not state["ended"]:
        raise ApiError(400, "malformed_multipart", "malformed multipart body: the closing boundary is missing")
    return form
