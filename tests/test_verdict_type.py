"""The Verdict type is the one place a verdict is spelled: the legends on the terminal and
in the report are generated from it, its ``fails_run`` is the exit code, and the README's
table of verdicts says what it says."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from harness import console
from harness.compare import (
    AGREEMENT_COLUMNS,
    IDENTITY_COLUMNS,
    ROW_FACTS,
    RUN_COLUMNS,
    Comparison,
    Verdict,
)
from harness.compare import legend as verdict_legend

ROOT = Path(__file__).resolve().parents[1]


def comparison_of(*verdicts: Verdict) -> Comparison:
    """A Comparison whose agreement table has one row per verdict (nothing is run)."""
    c = Comparison.__new__(Comparison)
    rows = [
        {
            "case": "c",
            "mode": "rev",
            "kind": "param",
            "tensor": f"w{i}",
            "backend": "b",
            "baseline": "a",
            "verdict": v.value,
            "ok": v.agrees,
            "max_rel_err": 0.0,
            "odd_one_out": "",
            "error": "",
            "reason": "",
            "n_bad": 0,
            "n_unresolved": 0,
            "n_elements": 1,
            "bad_steps": "",
            "digits": 16.0,
            "worst_index": "(0,)",
            "worst_got": 1.0,
            "worst_expected": 1.0,
            "worst_rel_err": 0.0,
            "worst_scale": 1.0,
        }
        for i, v in enumerate(verdicts)
    ]
    c.agreement = pd.DataFrame(rows, columns=AGREEMENT_COLUMNS)
    c.row_facts = pd.DataFrame(False, index=c.agreement.index, columns=ROW_FACTS)
    c.identities = pd.DataFrame(columns=IDENTITY_COLUMNS)
    c.runs = pd.DataFrame(
        [{"case": "c", "mode": "rev", "backend": "b", "status": "ok"}], columns=RUN_COLUMNS
    )
    c.baseline, c.results = "a", []
    return c


def test_the_table_names_are_those_of_agreement_csv():
    assert [v.value for v in Verdict] == [
        "agree",
        "agree within noise",
        "disagree",
        "inconclusive",
        "unsupported",
        "failed",
    ]
    assert all(v == v.value and Verdict.of(v.value) is v for v in Verdict)


@pytest.mark.parametrize("verdict", list(Verdict), ids=str)
def test_fails_run_is_the_exit_code(verdict):
    """Beside one agreeing tensor (so something was compared), a tensor with this verdict
    fails the run exactly when the verdict says it does."""
    c = comparison_of(Verdict.AGREE, verdict)
    assert c.exit_code == int(verdict.fails_run)
    assert c.all_agree == (verdict.agrees and not verdict.fails_run)
    assert c.verdicts[verdict] == 1 + (verdict is Verdict.AGREE)


def test_the_console_legend_is_generated_from_the_type():
    """Every verdict's mark and meaning is in the legend, in the type's order, and the
    legend is nothing but the type's (so a new member would appear in it)."""
    text = console.format_agreement(comparison_of(*Verdict).agreement)
    heading = text.splitlines()[0]
    assert heading.endswith("; " + verdict_legend())
    positions = [heading.index(v.legend) for v in Verdict]
    assert positions == sorted(positions)
    assert verdict_legend() == ", ".join(f"{v.mark} {v.meaning}" for v in Verdict)


def test_every_cell_on_the_terminal_starts_with_its_verdicts_mark():
    table = comparison_of(*Verdict).agreement
    grid = console.format_agreement(table).splitlines()[3:]
    assert [line.split()[-2] for line in grid] == [v.mark for v in Verdict]  # mark, number


def test_the_report_legend_is_generated_from_the_type(tmp_path):
    from harness.cases import CATALOG
    from harness.report.document import case_section
    from harness.report.render import to_markdown

    case = CATALOG["mlp"](depth=2, width=3, D=2, C=2, N=2)
    c = comparison_of(*Verdict)
    c.agreement["case"] = case.label
    c.runs["case"] = case.label
    c.magnitudes = pd.DataFrame(columns=["case", "backend", "tap", "step", "norm"])
    text = to_markdown(case_section(c, case, pd.DataFrame(), tmp_path))
    for v in Verdict:
        assert v.meaning in text and v.mark in text


def test_the_readme_table_of_verdicts_is_the_type():
    """README's table: one row per verdict, in order, with its mark and its exit code."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| \*\*(.+?)\*\* \((.)\) \| .* \| (\d) \|$", readme, re.M)
    assert rows == [(v.value, v.mark, str(int(v.fails_run))) for v in Verdict]
