"""The blocks a card is assembled from before it is rendered to Markdown or HTML.

Their text uses a tiny inline markup (``**bold**``, ``[text](https://...)``, code spans, backslash escapes).
"""

from __future__ import annotations

from typing import Any

Block = tuple[Any, ...]  # ("h", level, text) | ("p", text) | ("ul", [text]) | ("table", [header], [[cell]])
