"""One document, two renderings: Markdown for GitHub and one self-contained HTML file.

The report is built as a list of blocks (a heading, a paragraph, a table, a code block,
an image, a list). ``to_markdown`` links images as files next to the .md; ``to_html``
embeds them as base64 data URIs, so the .html file can be mailed or opened anywhere.

Paragraphs, list items and table cells are *markup*: the Markdown subset both renderings
understand — ``code`` spans (any fence length), **bold** and backslash escapes. Anything
that came from data (a name, an error, a plug-in's message) is put into markup through
``harness.escaping.lit`` or ``code``, never as it is. Headings, image alt text and captions
are plain text, and code blocks verbatim: the renderers escape those themselves. Both
renderings show every control character (an ANSI escape, a bell, a carriage return) as its
``\\x1b``-style escape (``harness.escaping.terminal``), whichever block it came in.
"""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass
from pathlib import Path

from harness.escaping import fence, lit, terminal


@dataclass(frozen=True)
class Heading:
    text: str  # plain text
    level: int = 2


@dataclass(frozen=True)
class Para:
    text: str  # markup


@dataclass(frozen=True)
class Bullets:
    items: tuple[str, ...]  # markup


@dataclass(frozen=True)
class Code:
    text: str  # verbatim


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]  # markup
    rows: tuple[tuple[str, ...], ...]  # markup
    # each cell's style ("ok", "bad" or ""; ``Verdict.style``), row for row, where the
    # table's builder knows the verdict behind a cell; none given: no cell is styled
    styles: tuple[tuple[str, ...], ...] = ()


@dataclass(frozen=True)
class Image:
    path: Path  # a PNG in the report folder
    alt: str  # plain text
    caption: str  # plain text


Block = Heading | Para | Bullets | Code | Table | Image


# --- Markdown


_UNESCAPED_PIPE = re.compile(r"(?<!\\)\|")


def _md_line(markup: str) -> str:
    """Markup on one line: a line break inside could open a block of its own."""
    return " ".join(str(markup).split())


def _md_cell(markup: str) -> str:
    return _UNESCAPED_PIPE.sub(r"\\|", _md_line(markup)) or " "


def _md(block: Block) -> str:
    if isinstance(block, Heading):
        return f"{'#' * block.level} {lit(block.text)}"
    if isinstance(block, Para):
        return _md_line(block.text)
    if isinstance(block, Bullets):
        return "\n".join(f"- {_md_line(item)}" for item in block.items)
    if isinstance(block, Code):
        return fence(block.text)
    if isinstance(block, Table):
        lines = ["| " + " | ".join(_md_cell(h) for h in block.header) + " |"]
        lines.append("|" + "---|" * len(block.header))
        lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in block.rows]
        return "\n".join(lines)
    if isinstance(block, Image):
        return f"![{lit(block.alt)}]({block.path.name})\n\n*{lit(block.caption)}*"
    raise TypeError(f"not a report block: {block!r}")


def to_markdown(blocks: list[Block]) -> str:
    """GitHub-flavoured Markdown; images are linked by file name (they sit beside it)."""
    return terminal("\n\n".join(_md(b) for b in blocks) + "\n")


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


_TOKEN = re.compile(r"\\([!-/:-@\[-`{-~])|(`+)|\*\*")


def _inline(markup: str) -> str:
    """The report's markup as HTML: a backslash-escaped character as itself, a code span
    (closed by a run of as many backticks) as <code>, **bold** as <strong>; every other
    character escaped. Nothing in the text becomes a tag of its own."""
    markup, out, pos, bold = str(markup), [], 0, False
    while (m := _TOKEN.search(markup, pos)) is not None:
        out.append(html.escape(markup[pos : m.start()], quote=False))
        pos = m.end()
        if m.group(1) is not None:
            out.append(html.escape(m.group(1), quote=False))
        elif m.group(2) is not None:
            run = m.group(2)
            close = re.compile(f"(?<!`){run}(?!`)").search(markup, pos)
            if close is None:
                out.append(run)
                continue
            content = markup[pos : close.start()]
            if len(content) > 1 and content[0] == content[-1] == " " and content.strip():
                content = content[1:-1]
            out.append(f"<code>{html.escape(content, quote=False)}</code>")
            pos = close.end()
        elif bold or "**" in markup[pos:]:
            out.append("</strong>" if bold else "<strong>")
            bold = not bold
        else:
            out.append("**")
    out.append(html.escape(markup[pos:], quote=False))
    return "".join(out) + ("</strong>" if bold else "")


def _td(text: str, style: str = "") -> str:
    cls = f' class="{style}"' if style in ("ok", "bad") else ""
    return f"<td{cls}>{_inline(str(text))}</td>"


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _html(block: Block) -> str:
    if isinstance(block, Heading):
        anchor = re.sub(r"[^a-z0-9_-]+", "-", block.text.lower()).strip("-")
        return f'<h{block.level} id="{anchor}">{html.escape(block.text)}</h{block.level}>'
    if isinstance(block, Para):
        return f"<p>{_inline(block.text)}</p>"
    if isinstance(block, Bullets):
        return "<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in block.items) + "</ul>"
    if isinstance(block, Code):
        return f"<pre>{html.escape(block.text, quote=False)}</pre>"
    if isinstance(block, Table):
        head = "".join(f"<th>{_inline(h)}</th>" for h in block.header)
        styles = block.styles or ((),) * len(block.rows)
        body = "".join(
            "<tr>"
            + "".join(_td(c, style[i] if i < len(style) else "") for i, c in enumerate(row))
            + "</tr>"
            for row, style in zip(block.rows, styles, strict=True)
        )
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    if isinstance(block, Image):
        return (
            f'<figure><img src="{_data_uri(block.path)}" alt="{html.escape(block.alt)}">'
            f"<figcaption>{html.escape(block.caption)}</figcaption></figure>"
        )
    raise TypeError(f"not a report block: {block!r}")


def to_html(blocks: list[Block], title: str) -> str:
    """One self-contained HTML page: inline CSS, images as data URIs, no external request."""
    body = "\n".join(_html(b) for b in blocks)
    return terminal(
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
