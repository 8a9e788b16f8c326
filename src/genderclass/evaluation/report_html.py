"""HTML building blocks of the evaluation report: number formatting, tables, inlined images and
the page around them. Knows nothing about metrics or figures."""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


def fmt(x: Any, digits: int = 3) -> str:
    """A number for a table cell: ints as they are, floats to ``digits`` places, None and NaN as a dash."""
    if x is None:
        return "—"
    if isinstance(x, bool):
        return str(x)
    if isinstance(x, int | np.integer):
        return str(int(x))
    try:
        xf = float(x)
    except (TypeError, ValueError):
        return str(x)
    if math.isnan(xf):
        return "—"
    return f"{xf:.{digits}f}"


def fmt_ci(value: Any, ci: Sequence[float] | None, digits: int = 3) -> str:
    """``value`` followed by its confidence interval ``[low, high]`` when there is one."""
    if value is None:
        return "—"
    if not ci:
        return fmt(value, digits)
    return f"{fmt(value, digits)} [{fmt(ci[0], digits)}, {fmt(ci[1], digits)}]"


_CSS = """
body { font-family: -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; margin: 0;
       background: #f6f7f9; color: #222; line-height: 1.45; }
main { max-width: 1050px; margin: 0 auto; padding: 24px 28px 48px; background: #fff; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.25em; border-bottom: 2px solid #e3e6ea; padding-bottom: 4px; margin-top: 2em; }
h3 { font-size: 1.05em; margin-top: 1.4em; }
table { border-collapse: collapse; margin: 0.6em 0 1em; font-size: 0.92em; }
th, td { border: 1px solid #d9dde2; padding: 4px 10px; text-align: right; }
th { background: #eef1f5; } td:first-child, th:first-child { text-align: left; }
tr.small td { color: #888; } tr.chosen td { background: #fff6d6; }
img { max-width: 100%; height: auto; border: 1px solid #e3e6ea; margin: 6px 0; }
.note { background: #fff8e6; border-left: 4px solid #f0b429; padding: 10px 14px; }
.muted { color: #666; font-size: 0.9em; }
"""


def img_tag(path: Path, alt: str) -> str:
    """The PNG at ``path`` inlined as a base64 data URI."""
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">'


def table(header: Sequence[str], rows: Sequence[Sequence[Any]], row_classes: Sequence[str] | None = None) -> str:
    """An HTML table, every cell escaped; ``row_classes`` gives a CSS class per row (empty: none)."""
    out = ["<table>", "<tr>" + "".join(f"<th>{html.escape(str(h))}</th>" for h in header) + "</tr>"]
    for i, row in enumerate(rows):
        cls = f' class="{html.escape(row_classes[i])}"' if row_classes and row_classes[i] else ""
        out.append(f"<tr{cls}>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def safe_name(text: str) -> str:
    """``text`` as a file name: anything but letters, digits, ``-`` and ``_`` becomes ``_``."""
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in text)


def page(title: str, body: Sequence[str]) -> str:
    """The whole HTML document around the ``body`` parts."""
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n<main>\n"
        + "\n".join(body)
        + "\n</main>\n</body>\n</html>\n"
    )
