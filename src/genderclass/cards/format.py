"""Stored values as card text: nested look-up, numbers, percentages, intervals, escaping.

A value that is missing or not a finite number is shown as :data:`NOT_MEASURED`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

NOT_MEASURED = "not measured"
NOT_APPLICABLE = "n/a"


def lookup(data: Any, *keys: str) -> Any:
    """``data[k1][k2]...`` or None when any level is missing or not a dict."""
    for key in keys:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def number(x: Any) -> float | None:
    """``x`` as a float, or None when it is not a finite number (booleans are not numbers)."""
    if isinstance(x, bool) or not isinstance(x, int | float):
        return None
    x = float(x)
    return None if math.isnan(x) or math.isinf(x) else x


def pct(x: Any) -> str:
    """A proportion as a percentage with one decimal (0.9412 -> "94.1%")."""
    v = number(x)
    return NOT_MEASURED if v is None else f"{100 * v:.1f}%"


def ci_text(ci: Any) -> str:
    """A 95% interval of proportions ([0.92, 0.958] -> "92.0%–95.8%")."""
    if isinstance(ci, list | tuple) and len(ci) == 2 and all(number(v) is not None for v in ci):
        return f"{pct(ci[0])}–{pct(ci[1])}"
    return NOT_MEASURED


def pct_ci(x: Any, ci: Any) -> str:
    """ "94.1% (95% CI 92.0%–95.8%)"; the interval part says "not measured" when missing."""
    if number(x) is None:
        return NOT_MEASURED
    return f"{pct(x)} (95% CI {ci_text(ci)})"


def dec(x: Any, digits: int = 3) -> str:
    """A number with a fixed count of decimals (0.04213 -> "0.042")."""
    v = number(x)
    return NOT_MEASURED if v is None else f"{v:.{digits}f}"


def count(x: Any) -> str:
    """A count with thousands separators (12345 -> "12,345")."""
    v = number(x)
    return NOT_MEASURED if v is None else f"{int(v):,}"


def points(x: Any) -> str:
    """A difference of proportions in percentage points (0.05 -> "5.0 percentage points")."""
    v = number(x)
    return NOT_MEASURED if v is None else f"{100 * v:.1f} percentage points"


_MD_SPECIAL = re.compile(r"([\\`*_\[\]|<>#])")
_ABSOLUTE_PATH = re.compile(r"(?<![\w.~/])(?:/|~/|[A-Za-z]:[\\/])[^\s'\"]*")


def esc(value: Any) -> str:
    """Data as literal card text (Markdown specials backslash-escaped)."""
    return _MD_SPECIAL.sub(r"\\\1", " ".join(str(value).split()))


def code(value: Any) -> str:
    """Data as a code span."""
    text = " ".join(str(value).replace("`", "'").split())
    return f"`{text}`" if text else NOT_MEASURED


def public(value: Any) -> str:
    """Drop the machine-specific part of absolute paths (``/home/x/data/utkface`` -> ``…/utkface``)."""

    def short(match: re.Match) -> str:
        parts = [p for p in re.split(r"[\\/]", match.group(0)) if p]
        return "…/" + parts[-1] if parts else "…"

    return _ABSOLUTE_PATH.sub(short, str(value))


def or_missing(value: Any, fmt: Callable[[Any], str] = esc) -> str:
    """``fmt(value)``, or "not measured" when the value is None or empty."""
    return NOT_MEASURED if value is None or value == "" else fmt(value)
