"""``gradparity bench --cold``: the pairs, their order, the medians and where section 5 of
bench.md goes (no timing is asserted: the commands timed here are stand-ins)."""

from __future__ import annotations

import sys

import pandas as pd
import pytest

from harness.bench import cold
from harness.bench.render import COLD_HEADING, cold_of, cold_section, splice_cold
from harness.cli import main

EARLIER = "# Benchmarks\n\nintro\n\n## 4. The cost of checking\n\nfour\n\n## References\n\n- a\n"


@pytest.fixture
def quick_commands(monkeypatch):
    """Both sides replaced by an instant interpreter, so only the bookkeeping runs."""
    fast = [sys.executable, "-c", "pass"]
    monkeypatch.setattr(cold, "commands", lambda: {"validate": fast, "gradcheck": fast})


def _section(ratio: float = 1.5) -> str:
    rows = pd.DataFrame(
        {
            "pair": [1],
            "first": ["validate"],
            "validate_s": [3.0],
            "gradcheck_s": [3.0 / ratio],
            "ratio": [ratio],
        }
    )
    medians = {"validate_s": 3.0, "gradcheck_s": 3.0 / ratio, "ratio": ratio}
    return cold_section(rows, medians, {"load": "1.0"}, "gradparity validate x.py:f --case mlp")


def test_the_pairs_alternate_which_side_runs_first(quick_commands):
    rows = cold.measure(4)
    assert list(rows["pair"]) == [1, 2, 3, 4]
    assert list(rows["first"]) == ["validate", "gradcheck", "validate", "gradcheck"]
    assert (rows["ratio"] == rows["validate_s"] / rows["gradcheck_s"]).all()


def test_the_figure_is_the_median_of_the_paired_ratios_not_the_ratio_of_medians():
    rows = pd.DataFrame(
        {"validate_s": [1.0, 4.0, 9.0], "gradcheck_s": [1.0, 1.0, 9.0], "ratio": [1.0, 4.0, 1.0]}
    )
    assert cold.summary(rows) == {"validate_s": 4.0, "gradcheck_s": 1.0, "ratio": 1.0}


def test_a_failing_side_is_an_error_not_a_timing():
    with pytest.raises(RuntimeError, match="exited 3"):
        cold.timed([sys.executable, "-c", "raise SystemExit(3)"])


@pytest.mark.parametrize("ratio, verdict", [(0.9, "**met**"), (1.5, "**missed**")])
def test_the_section_states_the_goal_against_the_median_ratio(ratio, verdict):
    text = _section(ratio)
    assert text.startswith(COLD_HEADING)
    assert f"**{ratio:.2f}×** (goal ≤ 1.0×: {verdict})" in text


def test_the_section_goes_before_the_references_and_nothing_else_moves():
    spliced = splice_cold(EARLIER, _section())
    before, references = EARLIER.split("\n## References\n")
    assert spliced.startswith(before) and spliced.endswith("\n## References\n" + references)
    assert cold_of(spliced) == _section()


def test_a_new_section_replaces_the_earlier_one_in_place():
    once = splice_cold(EARLIER, _section(1.5))
    twice = splice_cold(once, _section(0.9))
    assert twice == splice_cold(EARLIER, _section(0.9))
    assert twice.count(COLD_HEADING) == 1


def test_without_an_earlier_bench_md_the_section_stands_alone():
    assert splice_cold(None, _section()) == _section()
    assert cold_of(EARLIER) is None


def test_cold_writes_its_csv_and_section_and_keeps_the_rest(quick_commands, tmp_path):
    (tmp_path / "bench.md").write_text(EARLIER, encoding="utf-8")
    (tmp_path / "bench.csv").write_bytes(b"case,backend\nmlp,torch\n")
    assert main(["bench", "--cold", "2", "--out", str(tmp_path), "--quiet"]) == 0
    written = (tmp_path / "bench.md").read_text(encoding="utf-8")
    assert written.replace(cold_of(written), "").replace("\n\n\n", "\n\n") == EARLIER
    assert (tmp_path / "bench.csv").read_bytes() == b"case,backend\nmlp,torch\n"
    rows = pd.read_csv(tmp_path / "cold_bench.csv")
    assert list(rows.columns) == ["pair", "first", "validate_s", "gradcheck_s", "ratio"]
    assert len(rows) == 2


@pytest.mark.parametrize(
    "extra", [["--quick"], ["--peers"], ["--device", "cuda"], ["--case", "mlp"]]
)
def test_cold_takes_no_option_of_the_other_plans(extra, capsys, tmp_path):
    assert main(["bench", "--cold", "--out", str(tmp_path), *extra]) == 2
    assert "--cold times two commands" in capsys.readouterr().err


def test_the_gradcheck_script_imports_no_gradparity():
    """The script a user would write: numpy and torch, nothing of this package."""
    source = cold.SCRIPT.read_text(encoding="utf-8")
    imports = [line for line in source.splitlines() if line.startswith(("import ", "from "))]
    assert imports == ["import numpy as np", "import torch"]
