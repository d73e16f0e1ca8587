"""One document, two renderings: Markdown for GitHub and one self-contained HTML file.

The report is built as a list of blocks (a heading, a paragraph, a table, a code block,
an image, a list). ``to_markdown`` links images as files next to the .md; ``to_html``
embeds them as base64 data URIs, so the .html file can be mailed or opened anywhere.
Inline markup in text is the Markdown subset both understand: ``code`` and **bold**.
"""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2


@dataclass(frozen=True)
class Para:
    text: str


@dataclass(frozen=True)
class Bullets:
    items: tuple[str, ...]


@dataclass(frozen=True)
class Code:
    text: str


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Image:
    path: Path  # a PNG in the report folder
    alt: str
    caption: str


Block = Heading | Para | Bullets | Code | Table | Image


# --- Markdown


def _md_cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|") or " "


def _md(block: Block) -> str:
    if isinstance(block, Heading):
        return f"{'#' * block.level} {block.text}"
    if isinstance(block, Para):
        return block.text
    if isinstance(block, Bullets):
        return "\n".join(f"- {' '.join(item.split())}" for item in block.items)
    if isinstance(block, Code):
        return f"```\n{block.text}\n```"
    if isinstance(block, Table):
        lines = ["| " + " | ".join(_md_cell(h) for h in block.header) + " |"]
        lines.append("|" + "---|" * len(block.header))
        lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in block.rows]
        return "\n".join(lines)
    if isinstance(block, Image):
        return f"![{block.alt}]({block.path.name})\n\n*{block.caption}*"
    raise TypeError(f"not a report block: {block!r}")


def to_markdown(blocks: list[Block]) -> str:
    """GitHub-flavoured Markdown; images are linked by file name (they sit beside it)."""
    return "\n\n".join(_md(b) for b in blocks) + "\n"


# --- HTML

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 1100px;
       margin: 2em auto; padding: 0 1em; color: #1b1b1b; line-height: 1.45; }
h1, h2, h3 { line-height: 1.2; } h2 { border-bottom: 1px solid #ddd; padding-bottom: .2em; }
table { border-collapse: collapse; margin: .8em 0; font-size: .9em; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
td.ok { background: #e9f7ec; } td.bad { background: #fde8e8; color: #8a1111; font-weight: 600; }
pre { background: #f6f8fa; padding: .8em; overflow-x: auto; font-size: .9em; }
code { background: #f6f8fa; padding: 0 .2em; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: .85em; color: #555; }
"""

# Sets <body data-images-loaded="N" data-images-total="M"> once the page has loaded: a
# browser test reads it to know that every embedded image decoded.
LOAD_CHECK = """
window.addEventListener("load", function () {
  var images = Array.prototype.slice.call(document.images);
  var loaded = images.filter(function (im) { return im.complete && im.naturalWidth > 0; });
  document.body.dataset.imagesLoaded = String(loaded.length);
  document.body.dataset.imagesTotal = String(images.length);
});
"""


def _inline(text: str) -> str:
    """Escape, then turn ``code`` and **bold** into their tags."""
    out = html.escape(str(text), quote=False)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", out)


def _td(text: str) -> str:
    text = str(text)
    cls = ' class="ok"' if text.startswith("✓") else ' class="bad"' if text.startswith("✗") else ""
    return f"<td{cls}>{_inline(text)}</td>"


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _html(block: Block) -> str:
    if isinstance(block, Heading):
        anchor = re.sub(r"[^a-z0-9_-]+", "-", block.text.lower()).strip("-")
        return f'<h{block.level} id="{anchor}">{_inline(block.text)}</h{block.level}>'
    if isinstance(block, Para):
        return f"<p>{_inline(block.text)}</p>"
    if isinstance(block, Bullets):
        return "<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in block.items) + "</ul>"
    if isinstance(block, Code):
        return f"<pre>{html.escape(block.text, quote=False)}</pre>"
    if isinstance(block, Table):
        head = "".join(f"<th>{_inline(h)}</th>" for h in block.header)
        body = "".join("<tr>" + "".join(_td(c) for c in row) + "</tr>" for row in block.rows)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    if isinstance(block, Image):
        return (
            f'<figure><img src="{_data_uri(block.path)}" alt="{html.escape(block.alt)}">'
            f"<figcaption>{_inline(block.caption)}</figcaption></figure>"
        )
    raise TypeError(f"not a report block: {block!r}")


def to_html(blocks: list[Block], title: str) -> str:
    """One self-contained HTML page: inline CSS, images as data URIs, no external request."""
    body = "\n".join(_html(b) for b in blocks)
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>\n'
        f"<style>{CSS}</style>\n<script>{LOAD_CHECK}</script></head>\n"
        f"<body>\n{body}\n</body></html>\n"
    )


__all__ = [
    "Block",
    "Bullets",
    "Code",
    "Heading",
    "Image",
    "Para",
    "Table",
    "to_html",
    "to_markdown",
]
