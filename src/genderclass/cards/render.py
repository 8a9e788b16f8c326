"""Card blocks to Markdown and to a self-contained HTML page (inline markup, table of contents, page style)."""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence

from .blocks import Block


def _md_cell(text: str) -> str:
    return text.replace("\n", " ")


def to_markdown(blocks: Iterable[Block]) -> str:
    """The blocks as a Markdown document."""
    out: list[str] = []
    for block in blocks:
        kind = block[0]
        if kind == "h":
            out.append("#" * block[1] + " " + block[2])
        elif kind == "p":
            out.append(block[1])
        elif kind == "ul":
            out.append("\n".join(f"- {item}" for item in block[1]))
        elif kind == "table":
            header, rows = block[1], block[2]
            lines = [
                "| " + " | ".join(_md_cell(h) for h in header) + " |",
                "|" + "|".join("---" for _ in header) + "|",
            ]
            lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
            out.append("\n".join(lines))
        else:  # pragma: no cover - programming error
            raise ValueError(f"unknown block {kind!r}")
    return "\n\n".join(out) + "\n"


_ESCAPED = re.compile(r"\\([\\`*_\[\]|<>#])")
_CODE = re.compile(r"`([^`]*)`")
_LINK = re.compile(r"\[([^\]]+)\]\((https?://[^)\s]+)\)")
_BOLD = re.compile(r"\*\*(.+?)\*\*")


def inline_html(text: str) -> str:
    """The card's inline markup to HTML; all text is HTML-escaped."""
    # NUL marks the stashed fragments below: one in the data (a CSV's group name, say) looped forever
    text = text.replace("\x00", "\ufffd")
    stash: list[str] = []

    def keep(fragment: str) -> str:
        stash.append(fragment)
        return f"\x00{len(stash) - 1}\x00"

    # code spans first (their content is literal), then escaped characters, then links and bold
    text = _CODE.sub(lambda m: keep(f"<code>{html.escape(m.group(1))}</code>"), text)
    text = _ESCAPED.sub(lambda m: keep(html.escape(m.group(1))), text)
    text = html.escape(text, quote=False)
    text = _LINK.sub(lambda m: keep(f'<a href="{html.escape(m.group(2), quote=True)}">{m.group(1)}</a>'), text)
    text = _BOLD.sub(r"<strong>\1</strong>", text)
    while "\x00" in text:
        text = re.sub(r"\x00(\d+)\x00", lambda m: stash[int(m.group(1))], text)
    return text


def _plain(text: str) -> str:
    """Text without backslash escapes (for titles and anchors)."""
    return _ESCAPED.sub(r"\1", text).replace("\x00", "\ufffd")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;line-height:1.5;color:#1d1d1f;
max-width:62rem;margin:2rem auto;padding:0 1rem}
h1{font-size:1.8rem;border-bottom:2px solid #ddd;padding-bottom:.3rem}
h2{font-size:1.35rem;margin-top:2.2rem;border-bottom:1px solid #eee;padding-bottom:.2rem}
table{border-collapse:collapse;margin:.6rem 0 1.2rem;font-size:.92rem;display:block;overflow-x:auto}
th,td{border:1px solid #d0d0d5;padding:.3rem .55rem;text-align:left;vertical-align:top}
th{background:#f3f3f6}tr:nth-child(even) td{background:#fafafb}
code{background:#f3f3f6;padding:.05rem .3rem;border-radius:3px;font-size:.88em;word-break:break-word}
a{color:#0b5cad}li{margin:.2rem 0}
nav ol{columns:2;font-size:.95rem}
""".strip()


def to_html(blocks: Sequence[Block]) -> str:
    """The blocks as a self-contained HTML page, with a table of contents after the title."""
    title = next((b[2] for b in blocks if b[0] == "h" and b[1] == 1), "Model card")
    body: list[str] = []
    toc = [b[2] for b in blocks if b[0] == "h" and b[1] == 2]
    for block in blocks:
        kind = block[0]
        if kind == "h":
            level, text = block[1], block[2]
            anchor = f' id="{_slug(_plain(text))}"' if level > 1 else ""
            body.append(f"<h{level}{anchor}>{inline_html(text)}</h{level}>")
            if level == 1 and toc:
                links = "".join(f'<li><a href="#{_slug(_plain(t))}">{inline_html(t)}</a></li>' for t in toc)
                body.append(f"<nav><ol>{links}</ol></nav>")
        elif kind == "p":
            body.append(f"<p>{inline_html(block[1])}</p>")
        elif kind == "ul":
            body.append("<ul>" + "".join(f"<li>{inline_html(item)}</li>" for item in block[1]) + "</ul>")
        elif kind == "table":
            head = "".join(f'<th scope="col">{inline_html(h)}</th>' for h in block[1])
            rows = "".join("<tr>" + "".join(f"<td>{inline_html(c)}</td>" for c in row) + "</tr>" for row in block[2])
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        else:  # pragma: no cover - programming error
            raise ValueError(f"unknown block {kind!r}")
    plain_title = html.escape(_plain(title))
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{plain_title}</title>\n<style>\n{CSS}\n</style>\n</head>\n<body>\n<main>\n"
        + "\n".join(body)
        + "\n</main>\n</body>\n</html>\n"
    )
