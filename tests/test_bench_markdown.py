"""bench.md from the bench folder's CSVs alone (``harness.bench.markdown``): the page parses
as Markdown with its headings and tables, the committed page is what its CSVs give, and
section 5 follows ``cold_bench.csv``."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
from markdown_it import MarkdownIt

from harness.bench.cold import VALIDATE_SHOWN
from harness.bench.markdown import conditions_table, render_folder
from harness.escaping import write_csv

REPORTS = Path(__file__).resolve().parents[1] / "reports"
SECTION_5 = "5. A verdict, cold, against a gradcheck script"


def parse(text: str) -> list:
    return MarkdownIt("commonmark").enable("table").parse(text)


def headings(text: str) -> list[tuple[str, str]]:
    tokens = parse(text)
    return [
        (t.tag, "".join(c.content for c in tokens[i + 1].children or []))
        for i, t in enumerate(tokens)
        if t.type == "heading_open"
    ]


def tables(text: str) -> list[list[list[str]]]:
    """Every table as its rows of cell texts (the header row first), as a reader sees them."""
    out: list[list[list[str]]] = []
    row: list[str] = []
    tokens = parse(text)
    for i, t in enumerate(tokens):
        if t.type == "table_open":
            out.append([])
        elif t.type == "tr_open":
            row = []
        elif t.type in ("th_open", "td_open"):
            inline = tokens[i + 1]
            row.append("".join(c.content for c in inline.children or []))
        elif t.type == "tr_close":
            out[-1].append(row)
    return out


def test_the_committed_page_is_what_its_csvs_give():
    """reports/bench.md is written from bench.csv, cold_bench.csv and
    bench_conditions.csv alone: nothing in it comes from an earlier page."""
    assert render_folder(REPORTS, VALIDATE_SHOWN) == (REPORTS / "bench.md").read_text(
        encoding="utf-8"
    )


def test_the_page_parses_with_its_headings_and_tables():
    text = render_folder(REPORTS, VALIDATE_SHOWN)
    assert headings(text) == [
        (
            "h1",
            "Benchmarks: cheap gradients, the tape against torch, scaling in T, the cost of "
            "checking",
        ),
        ("h2", "Goals"),
        ("h2", "How it is measured"),
        ("h2", "1. The cheap-gradient ratio R = time(loss + gradient) / time(loss)"),
        ("h2", "2. The tape against torch eager"),
        ("h2", "3. Scaling in T"),
        ("h2", "4. The cost of checking"),
        ("h2", SECTION_5),
        ("h2", "References"),
    ]
    found = tables(text)
    # settings, goals, R, R on CPU time, tape/torch, per op, scaling, exponents,
    # checking, the cold pairs and their conditions
    assert len(found) == 11
    for table in found:
        assert len({len(row) for row in table}) == 1  # no cell split by a stray |
    goals = found[1]
    assert goals[0] == ["goal", "measured (wall; CPU in brackets)", "verdict"]
    assert [row[2] for row in goals[1:]] == ["met"] * 5
    ratio = found[2]
    assert ratio[0][:4] == ["case", "size", "parameters", "products alone"]
    bench = pd.read_csv(REPORTS / "bench.csv")
    labels = list(dict.fromkeys(bench.loc[bench["experiment"] == "ratio", "label"]))
    assert [row[0] for row in ratio[1:]] == labels  # mlp[width=…] read back as written


def _cold_folder(folder: Path, ratios: list[float], every: list[float] | None = None):
    rows = pd.DataFrame(
        {
            "pair": range(1, len(ratios) + 1),
            "first": [("validate", "gradcheck")[i % 2] for i in range(len(ratios))],
            "validate_s": [3.0 * r for r in ratios],
            "gradcheck_s": [3.0] * len(ratios),
            "ratio": ratios,
        }
    )
    if every is not None:  # the --reference all side, as harness.bench.cold writes it
        rows["validate_all_s"] = [3.0 * r for r in every]
        rows["ratio_all"] = every
    write_csv(rows, folder / "cold_bench.csv")
    write_csv(conditions_table({}, {"load": "0.5 | 1"}), folder / "bench_conditions.csv")
    return rows


@pytest.mark.parametrize(
    "ratios, median, verdict",
    [([1.2, 0.8, 0.9], "0.90×", "met"), ([1.5, 2.5, 1.25, 1.0], "1.38×", "missed")],
)
def test_section_5_follows_cold_bench_csv(tmp_path, ratios, median, verdict):
    _cold_folder(tmp_path, ratios)
    text = render_folder(tmp_path, VALIDATE_SHOWN)
    assert headings(text) == [("h2", SECTION_5)]  # no bench.csv: section 5 alone
    pairs, conditions = tables(text)
    assert pairs[0] == ["pair", "first", "validate", "gradcheck script", "ratio"]
    assert [row[0] for row in pairs[1:]] == [str(i) for i in range(1, len(ratios) + 1)]
    assert [row[4] for row in pairs[1:]] == [f"{r:.2f}×" for r in ratios]
    assert [row[3] for row in pairs[1:]] == ["3 s"] * len(ratios)
    assert f"median paired ratio **{median}** (goal ≤ 1.0×: **{verdict}**)" in text
    assert f"{len(ratios)} pairs" in text
    assert conditions == [["", "value"], ["load", "0.5 | 1"]]


def test_every_reference_is_shown_beside_without_a_goal(tmp_path):
    _cold_folder(tmp_path, [0.5, 0.4, 0.6], every=[1.5, 1.6, 1.4])
    text = render_folder(tmp_path, VALIDATE_SHOWN)
    pairs, _ = tables(text)
    assert pairs[0][-2:] == ["with every reference", "its ratio"]
    assert [row[-1] for row in pairs[1:]] == ["1.50×", "1.60×", "1.40×"]
    assert "(goal ≤ 1.0×: **met**); with every reference 4.5 s, 1.50×." in text


def test_section_5_changes_with_the_csv_and_sections_1_to_4_stay(tmp_path):
    for name in ("bench.csv", "bench_conditions.csv", "cold_bench.csv"):
        shutil.copyfile(REPORTS / name, tmp_path / name)
    rows = pd.read_csv(tmp_path / "cold_bench.csv")
    rows["validate_s"] = rows["gradcheck_s"] * 2.0
    rows["ratio"] = 2.0
    write_csv(rows, tmp_path / "cold_bench.csv")
    before = render_folder(tmp_path, VALIDATE_SHOWN)
    rows = pd.read_csv(tmp_path / "cold_bench.csv")
    rows["validate_s"] = rows["gradcheck_s"] * 0.5
    rows["ratio"] = 0.5
    write_csv(rows, tmp_path / "cold_bench.csv")
    after = render_folder(tmp_path, VALIDATE_SHOWN)
    assert "median paired ratio **0.50×** (goal ≤ 1.0×: **met**)" in after
    assert "**missed**" in before.split("## 5")[1] and "**missed**" not in after.split("## 5")[1]
    assert after.split("## 5")[0] == before.split("## 5")[0]


def test_a_condition_is_shown_as_measured_not_as_the_csv_guards_it(tmp_path):
    """The CSV puts a ``'`` before a cell a spreadsheet would read as a formula (XLA_FLAGS'
    ``--xla…``); the page shows the value itself."""
    _cold_folder(tmp_path, [1.0])
    flags = "--xla_cpu_multi_thread_eigen=false"
    write_csv(conditions_table({}, {"XLA_FLAGS": flags}), tmp_path / "bench_conditions.csv")
    assert "'--xla" in (tmp_path / "bench_conditions.csv").read_text()  # guarded in the file
    _, shown = tables(render_folder(tmp_path, VALIDATE_SHOWN))
    assert shown[1] == ["XLA_FLAGS", flags]
