"""Everything a plug-in supplies is shown as text, never as markup: a hostile plug-in's
names and messages, through `gradparity validate --out`, parsed back as a browser and a
spreadsheet would read them."""

from __future__ import annotations

import csv
from html.parser import HTMLParser

import pandas as pd
import pytest
from markdown_it import MarkdownIt

from harness.cli import main
from harness.escaping import code, csv_cell, fence, lit, terminal, write_csv
from harness.report.render import Bullets, Code, Heading, Para, Table, to_html, to_markdown

SCRIPT = "<script>alert(1)</script>"
TAGS = f'{SCRIPT} <img src=x onerror="alert(2)"> <svg onload=alert(3)> [go](javascript:alert(4))'
FORMULA = '=HYPERLINK("http://example.invalid","x")'

HOSTILE = f"""
import numpy as np

TAGS = {TAGS!r}
FORMULA = {FORMULA!r}


def grads(p, x, case):
    if case.name == "card_affine_square":  # a gradient, and two tensors named as attacks
        u = 3 * p["x"] + 1
        return {{"x": 6 * u, TAGS: np.zeros(3), FORMULA: np.zeros(1)}}
    raise ValueError("bad input ``` " + TAGS + "\\n# a heading\\n" + TAGS + " ``` " + FORMULA)


class Stage:
    stage = "custom"
    names = (TAGS, FORMULA)

    def inputs(self, rng):
        return rng.standard_normal(3), rng.standard_normal(3)

    def forward(self, a, b):
        return a * b, (a, b)

    def backward(self, d, cache):
        a, b = cache
        return d * b + 1.0, d * a + 1.0  # both wrong, so both names are reported
"""


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def parse(html: str) -> Tags:
    found = Tags()
    found.feed(html)
    return found


def assert_inert(html: str, images: set[str], own_scripts: int = 0) -> None:
    found = parse(html)
    names = [tag for tag, _ in found.tags]
    assert names.count("script") == own_scripts and "svg" not in names and "iframe" not in names
    for tag, attrs in found.tags:
        assert not any(key.startswith("on") for key in attrs), (tag, attrs)
        assert not str(attrs.get("href", "")).lower().startswith("javascript"), (tag, attrs)
        if tag == "img":
            assert attrs.get("src") in images or attrs["src"].startswith("data:image/png;base64,")
    assert SCRIPT in "".join(found.text)  # shown, as text


@pytest.fixture(scope="module")
def validated(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile")
    (folder / "hostile.py").write_text(HOSTILE)
    out = {}
    for attr, extra in (("grads", ["--case", "card_affine_square", "--case", "deep_chain"]),
                        ("Stage", [])):  # fmt: skip
        out[attr] = folder / f"out-{attr}"
        code_ = main(["validate", f"{folder / 'hostile.py'}:{attr}", *extra,
                      "--reference", "reference", "--out", str(out[attr]), "--quiet"])  # fmt: skip
        assert code_ == 1
    return out


@pytest.mark.parametrize("attr", ["grads", "Stage"])
@pytest.mark.parametrize("name", ["diagnostics.md", "report.md"])
def test_markdown_from_a_hostile_plugin_renders_no_live_tag(validated, attr, name):
    folder = validated[attr]
    text = (folder / name).read_text()
    html = MarkdownIt("commonmark").enable("table").render(text)
    assert_inert(html, {p.name for p in folder.glob("*.png")})


@pytest.mark.parametrize("attr", ["grads", "Stage"])
def test_the_html_report_of_a_hostile_plugin_has_only_its_own_script(validated, attr):
    html = (validated[attr] / "report.html").read_text()
    assert_inert(html, set(), own_scripts=1)
    own = [attrs for tag, attrs in parse(html).tags if tag == "script"]
    assert own == [{}]  # the page's load check, inline, no src


@pytest.mark.parametrize("attr", ["grads", "Stage"])
def test_no_csv_cell_starts_a_formula(validated, attr):
    seen = 0
    for path in validated[attr].glob("*.csv"):
        with path.open(newline="") as f:
            for row in csv.reader(f):
                for cell in row:
                    if cell[:1] in ("=", "+", "-", "@"):
                        float(cell)  # only a number may start so
                    seen += FORMULA in cell
    assert seen  # the formula is there, as text


def test_a_backtick_fence_in_a_message_cannot_close_its_code_block():
    message = f"one ``` {SCRIPT}\n```\n{SCRIPT}"
    md = to_markdown([Code(message)])
    html = MarkdownIt("commonmark").render(md)
    assert parse(html).tags == [("pre", {}), ("code", {})]
    assert fence("a ```` b").startswith("`````\n")


@pytest.mark.parametrize(
    "text",
    [
        TAGS,
        FORMULA,
        "a `tick` and ``two``",
        "**bold** _em_ \\ back __init__ a_b_",
        "x | y",
        "# h\n> q",
    ],
)
def test_lit_and_code_show_the_text_itself_in_both_renderings(text):
    folded = " ".join(text.split())
    for markup in (lit(text), code(text)):
        md = (
            MarkdownIt("commonmark")
            .enable("table")
            .render(to_markdown([Para(markup), Bullets((markup,)), Table(("h",), ((markup,),))]))
        )
        html = to_html([Para(markup), Heading(text)], "t")
        for rendered in (md, html):
            found = parse(rendered)
            assert not any(tag in ("script", "img", "svg", "a", "em", "h1") for tag, _ in found.tags
                           if not (tag == "script" and rendered is html))  # fmt: skip
            assert folded in "".join(found.text).replace("\n", " ") or text in "".join(found.text)


def test_csv_cell_and_terminal():
    assert csv_cell("=1+1") == "'=1+1" and csv_cell("-x") == "'-x" and csv_cell("ok") == "ok"
    assert csv_cell(-1.5) == -1.5
    assert terminal("red \x1b[31m\r") == "red \\x1b[31m\\x0d"


# --- control characters: shown as escapes, never sent, in every output a user case reaches

CLEAR, BEL = "\x1b[2J", "\x07"
LINK = "\x1b]8;;http://127.0.0.1/\x1b\\here\x1b]8;;\x1b\\"  # an OSC-8 hyperlink
SUM, CMD = "\r=2+3", "\r=cmd|' /C calc'!A0"  # a row split by a bare CR, then a formula

ALLOWED_CONTROLS = {"\n", "\t"}


def raw_controls(text: str) -> list[str]:
    """The C0/C1 control characters and DELs in ``text`` other than line break and tab."""
    return sorted({c for c in text if (ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F)
                   and c not in ALLOWED_CONTROLS})  # fmt: skip


FORMULA_CHARS = ("=", "+", "-", "@", "\t", "\r")


def assert_csv_safe(path) -> int:
    """Every row as wide as the header, and no cell (nor any line inside one) that a
    spreadsheet would start as a formula, unless it is a number; returns the row count."""
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows, path
    for row in rows:
        assert len(row) == len(rows[0]), (path.name, row)
        for cell in row:
            for line in cell.split("\n"):
                if line.startswith(FORMULA_CHARS):
                    float(line)  # only a number may start so
    return len(rows)


CELLS = {  # a cell as a table holds it, and as it must parse back from the CSV
    "x\r=2+3": "x\\x0d=2+3",
    "x\r=cmd|' /C calc'!A0": "x\\x0d=cmd|' /C calc'!A0",
    "=1+1": "'=1+1",
    "a\n=1+1": "a\n'=1+1",
    "a\n\t=1\n@b\nok": "a\n'\t=1\n'@b\nok",
    "-x\n+y": "'-x\n'+y",
    'a "quote", a comma': 'a "quote", a comma',
    "\tlead": "'\tlead",
    f"clear{CLEAR}": "clear\\x1b[2J",
    "plain": "plain",
}


def test_write_csv_parses_back_whole_with_every_formula_neutralised(tmp_path):
    table = pd.DataFrame({"text": list(CELLS), "number": [-1.5] * len(CELLS),
                          "=name\r": ["-"] * len(CELLS)})  # fmt: skip
    path = tmp_path / "t.csv"
    write_csv(table, path)
    assert raw_controls(path.read_bytes().decode("utf-8")) == []
    assert assert_csv_safe(path) == len(CELLS) + 1
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["text", "number", "'=name\\x0d"]
    assert [r[0] for r in rows[1:]] == list(CELLS.values())
    assert {r[1] for r in rows[1:]} == {"-1.5"} and {r[2] for r in rows[1:]} == {"'-"}


def test_both_renderings_show_a_control_character_in_every_kind_of_block():
    blocks = [
        Heading(f"heading{CLEAR}"),
        Para(lit(f"para{BEL}") + " " + code(f"span{LINK}")),
        Bullets((lit(f"item\x7f{SUM}"),)),
        Table((lit("head\x9b"),), ((code(f"cell{CMD}"),),)),
        Code(f"block{CLEAR}{SUM}\nnext line\tand a tab"),
    ]
    for text in (to_markdown(blocks), to_html(blocks, f"title{BEL}")):
        assert raw_controls(text) == []
        for shown in ("heading\\x1b", "para\\x07", "span\\x1b]8;;", "item\\x7f", "head\\x9b",
                      "block\\x1b[2J\\x0d=2+3", "next line\tand a tab"):  # fmt: skip
            assert shown in text
