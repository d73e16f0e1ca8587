"""Everything a plug-in supplies is shown as text, never as markup: a hostile plug-in's
names and messages, through `gradparity validate --out`, parsed back as a browser and a
spreadsheet would read them."""

from __future__ import annotations

import csv
import io
import sys
from html.parser import HTMLParser

import pandas as pd
import pytest
from markdown_it import MarkdownIt

from harness.cli import main
from harness.escaping import code, console, csv_cell, fence, lit, terminal, write_csv
from harness.progress import Progress
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
    for attr, extra in (
        ("grads", ["--case", "card_affine_square", "--case", "deep_chain"]),
        ("Stage", []),
    ):
        out[attr] = folder / f"out-{attr}"
        code_ = main(
            [
                "validate",
                f"{folder / 'hostile.py'}:{attr}",
                *extra,
                "--reference",
                "reference",
                "--out",
                str(out[attr]),
                "--quiet",
            ]
        )
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
            assert not any(
                tag in ("script", "img", "svg", "a", "em", "h1")
                for tag, _ in found.tags
                if not (tag == "script" and rendered is html)
            )
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
    return sorted(
        {c for c in text if (ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F) and c not in ALLOWED_CONTROLS}
    )


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
    table = pd.DataFrame(
        {"text": list(CELLS), "number": [-1.5] * len(CELLS), "=name\r": ["-"] * len(CELLS)}
    )
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
        for shown in (
            "heading\\x1b",
            "para\\x07",
            "span\\x1b]8;;",
            "item\\x7f",
            "head\\x9b",
            "block\\x1b[2J\\x0d=2+3",
            "next line\tand a tab",
        ):
            assert shown in text


def test_terminal_shows_every_control_character_but_line_break_and_tab():
    for point in [*range(0x20), 0x7F, *range(0x80, 0xA0)]:
        c = chr(point)
        expected = f"a{c}b" if c in "\n\t" else f"a\\x{point:02x}b"
        assert terminal(f"a{c}b") == expected
    assert terminal(terminal("\x1b[2J")) == "\\x1b[2J"  # once shown, nothing more to show


def test_an_error_message_on_stderr_is_shown_not_sent(tmp_path, capsys):
    before = sys.stdout, sys.stderr
    path = tmp_path / "fails.py"
    path.write_text(f"raise RuntimeError({'cannot import' + CLEAR + LINK + BEL!r})\n")
    assert main(["run", "--case", f"{path}:X"]) == 2
    out, err = capsys.readouterr()
    assert raw_controls(out) == [] and raw_controls(err) == []
    assert err.startswith("gradparity: error:") and "cannot import\\x1b[2J\\x1b]8;;" in err
    assert (sys.stdout, sys.stderr) == before  # the streams are given back


def test_the_progress_bar_keeps_its_carriage_returns_and_shows_what_a_case_is_called(
    monkeypatch,
):
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    screen = Terminal()
    monkeypatch.setattr(sys, "stderr", screen)
    with console(), Progress(2, "report") as bar:
        bar(f"hostile{CLEAR}{LINK}", "torch")
    drawn = screen.getvalue()
    assert "\r" in drawn  # tqdm redraws its line in place
    assert "hostile\\x1b[2J\\x1b]8;;" in drawn and CLEAR not in drawn and "\x1b]8" not in drawn


# Every case name, tensor name, tap name, docstring, printed line and error message below
# carries the payloads; `grads` is a plug-in that prints them and raises with them.
CONTROLS = f'''
import numpy as np

from harness.cases import Case

CLEAR, BEL, LINK, SUM, CMD = {CLEAR!r}, {BEL!r}, {LINK!r}, {SUM!r}, {CMD!r}


class Hostile(Case):
    """L = Σ u², u = 3x + 1. {CLEAR!r} {BEL!r} {LINK!r} in its docstring"""

    name, family = "hostile" + CLEAR + BEL, "mine" + LINK
    options = {{"n": 3}}

    def setup(self, rng):
        return {{"x" + SUM: rng.standard_normal(self.n)}}, {{}}

    def loss(self, xp, p, inputs):
        print("the loss prints" + CLEAR + LINK + BEL + CMD)
        u = xp.tap("u" + CMD + CLEAR, 3 * p["x" + SUM] + 1)
        return xp.sum(u**2)


class Failing(Case):
    """A loss that raises with the payloads in its message."""

    name, family = "failing" + LINK, "mine"

    def setup(self, rng):
        return {{"w" + CMD: np.ones(2)}}, {{}}

    def loss(self, xp, p, inputs):
        raise ValueError("boom" + CLEAR + LINK + BEL + SUM + CMD)


def grads(params, inputs, case=None):
    print("the plug-in prints" + CLEAR + LINK + BEL + CMD)
    if "x" + SUM in params:  # the hostile case: twice its gradient, and a stray tensor
        u = 3 * params["x" + SUM] + 1
        return {{"x" + SUM: 12 * u, "extra" + CMD + CLEAR: np.ones(2)}}
    raise ValueError("plug-in boom" + CLEAR + LINK + BEL + SUM + CMD)
'''


NUMPY_ONLY = ["--backend", "numeric", "--baseline", "reference"]  # no framework to import


@pytest.fixture(scope="module")
def hostile_runs(tmp_path_factory):
    """`run`, `describe`, `report --out` and `validate --out` on the hostile file, each in a
    process of its own, as a user runs them: what they print and what they write."""
    import subprocess
    import sys

    folder = tmp_path_factory.mktemp("controls")
    path = folder / "controls.py"
    path.write_text(CONTROLS, encoding="utf-8")
    cases = ["--case", f"{path}:Hostile", "--case", f"{path}:Failing"]
    commands = {
        "run": ["run", *cases, *NUMPY_ONLY, "--csv", str(folder / "run.csv")],
        "describe": ["describe", f"{path}:Hostile"],
        "report": ["report", *cases, *NUMPY_ONLY, "--out", str(folder / "report"), "--quiet"],
        "validate": ["validate", f"{path}:grads", "--case", f"{path}:Hostile", "--case",
                     "card_affine_square", "--reference", "reference", "--out",
                     str(folder / "validate"), "--quiet"],
    }  # fmt: skip
    done = {}
    for name, argv in commands.items():
        done[name] = subprocess.run(
            [sys.executable, "-m", "harness.cli", *argv],
            cwd=folder,
            capture_output=True,
            timeout=300,
        )
    return folder, done


# What each command prints of the hostile file (report prints its verdict line alone).
NAME = "hostile\\x1b[2J\\x07"
SHOWN = {
    "run": [NAME, "tap:u\\r=cmd", "boom\\x1b[2J\\x1b]8;;http://127.0.0.1/\\x1b\\here",
            "\\x07\\x0d=2+3\\x0d=cmd|' /C calc'!A0"],
    "describe": [NAME, "family: mine\\x1b]8;;http://127.0.0.1/", "u\\x0d=cmd|' /C calc'!A0"],
    "report": [],
    "validate": [NAME, "plug-in boom\\x1b[2J\\x1b]8;;http://127.0.0.1/\\x1b\\here"],
}  # fmt: skip


@pytest.mark.parametrize("command", list(SHOWN))
def test_a_user_case_sends_no_control_character_to_the_terminal(hostile_runs, command):
    _, done = hostile_runs
    proc = done[command]
    out, err = proc.stdout.decode(), proc.stderr.decode()
    assert proc.returncode in (0, 1), err
    assert "Traceback" not in err
    assert raw_controls(out) == [] and raw_controls(err) == []
    for shown in SHOWN[command]:  # as visible escapes
        assert shown in out


def written(folder):
    return [p for p in folder.rglob("*") if p.suffix in (".md", ".html", ".csv")]


def test_the_files_of_a_hostile_run_hold_no_control_character(hostile_runs):
    folder, _ = hostile_runs
    files = written(folder)
    assert {
        "run.csv",
        "report.md",
        "report.html",
        "agreement.csv",
        "magnitudes.csv",
        "faults.csv",
        "diagnostics.md",
    } <= {p.name for p in files}
    for path in files:  # as bytes: read_text would turn a bare CR into a line break
        assert raw_controls(path.read_bytes().decode("utf-8")) == [], path
    report = (folder / "report" / "report.md").read_text(encoding="utf-8")
    assert "\\x1b" in report and "\\x07" in report  # shown


def test_every_csv_of_a_hostile_run_parses_back_whole_and_starts_no_formula(hostile_runs):
    folder, _ = hostile_runs
    csvs = [p for p in written(folder) if p.suffix == ".csv"]
    for path in csvs:
        assert_csv_safe(path)
    agreement = (folder / "report" / "agreement.csv").read_text(encoding="utf-8")
    assert "=2+3" in agreement and "=cmd|' /C calc'!A0" in agreement  # there, as text
    faults = (folder / "validate" / "faults.csv").read_text(encoding="utf-8")
    assert "=cmd|' /C calc'!A0" in faults


def test_a_dollar_in_a_case_name_is_drawn_as_text_not_parsed_as_math(tmp_path, capsys):
    """matplotlib reads $…$ in a label as TeX; a case's name is shown as it is."""
    path = tmp_path / "dollar.py"
    path.write_text('''
from harness.cases import Case


class Dollar(Case):
    """L = Σ u², u = 3x + 1."""

    name, family = "cost $\\\\frac{1}{$ in", "mine"
    options = {"n": 3}

    def setup(self, rng):
        return {"x": rng.standard_normal(self.n)}, {}

    def loss(self, xp, p, inputs):
        return xp.sum(xp.tap("u$^", 3 * p["x"] + 1) ** 2)
''')
    out = tmp_path / "report"
    code_ = main(
        [
            "report",
            "--case",
            f"{path}:Dollar",
            "--backend",
            "reference",
            "--backend",
            "torch",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert code_ == 0, capsys.readouterr().err
    assert "cost $\\\\frac{1}{$ in" in (out / "report.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("value", ["=1+1", "-x", "ok", "a\n@b", "+", "'=kept?", 3.5])
def test_csv_text_gives_back_what_csv_cell_guarded(value):
    from harness.escaping import csv_text

    expected = value if value != "'=kept?" else "=kept?"  # the one ambiguity csv_text states
    assert csv_text(csv_cell(value)) == expected


# --- characters that reorder or break a line without being control characters: U+2028 and
# U+2029 end a line in many viewers, the bidi controls reverse what follows them
INVISIBLE = ["\u2028", "\u2029", *map(chr, range(0x202A, 0x202F)), *map(chr, range(0x2066, 0x206A))]
INVISIBLE += ["\u200e", "\u200f", "\u061c"]


def test_terminal_shows_every_line_separator_and_bidi_control():
    for c in INVISIBLE:
        assert terminal(f"a{c}b") == f"a\\u{ord(c):04x}b"
    assert terminal(terminal("\u202e")) == "\\u202e"


REORDERS = """
import numpy as np

EVIL = "".join(map(chr, [0x2028, 0x2029, *range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0x061C]))


def grads(p, x, case):
    print("printed" + EVIL + "AGREES")
    if case.name == "card_affine_square":
        u = 3 * p["x"] + 1
        return {"x": 6 * u, "W" + EVIL: np.zeros(3)}
    raise ValueError("raised" + EVIL + "AGREES")
"""


def test_a_plugins_line_separators_and_bidi_controls_are_shown_everywhere(tmp_path, capsys):
    (tmp_path / "reorders.py").write_text(REORDERS)
    code_ = main(
        [
            "validate",
            f"{tmp_path / 'reorders.py'}:grads",
            "--case",
            "card_affine_square",
            "--case",
            "deep_chain",
            "--reference",
            "reference",
            "--out",
            str(tmp_path / "out"),
            "--quiet",
        ]
    )
    assert code_ == 1
    out, err = capsys.readouterr()
    files = {
        p.name: p.read_text(encoding="utf-8")
        for p in (tmp_path / "out").iterdir()
        if p.suffix in (".md", ".html", ".csv")
    }
    assert {"diagnostics.md", "report.md", "report.html", "faults.csv"} <= set(files)
    for where, text in {"stdout": out, "stderr": err, **files}.items():
        assert not set(INVISIBLE) & set(text), where
    assert "printed\\u2028\\u2029\\u202a" in out and "raised\\u2028" in out
