"""``gradparity bench --cold``: the pairs, their order, the medians and what it writes
(no timing is asserted: the commands timed here are stand-ins). The section's content is
tested in test_bench_markdown.py."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest

from harness.bench import cold
from harness.bench.cold import VALIDATE_SHOWN
from harness.bench.markdown import render_folder
from harness.cli import main

REPORTS = Path(__file__).resolve().parents[1] / "reports"


@pytest.fixture
def quick_commands(monkeypatch):
    """Both sides replaced by an instant interpreter, so only the bookkeeping runs."""
    fast = [sys.executable, "-c", "pass"]
    monkeypatch.setattr(
        cold, "commands", lambda: {"validate": fast, "validate_all": fast, "gradcheck": fast}
    )


def test_the_pairs_alternate_which_side_runs_first(quick_commands):
    rows = cold.measure(4)
    assert list(rows["pair"]) == [1, 2, 3, 4]
    assert list(rows["first"]) == ["validate", "gradcheck", "validate", "gradcheck"]
    assert (rows["ratio"] == rows["validate_s"] / rows["gradcheck_s"]).all()
    assert (rows["ratio_all"] == rows["validate_all_s"] / rows["gradcheck_s"]).all()


def test_every_reference_is_the_same_command_with_reference_all():
    run = cold.commands()
    assert run["validate_all"] == [*run["validate"], "--reference", "all"]


def test_the_figure_is_the_median_of_the_paired_ratios_not_the_ratio_of_medians():
    rows = pd.DataFrame(
        {"validate_s": [1.0, 4.0, 9.0], "gradcheck_s": [1.0, 1.0, 9.0], "ratio": [1.0, 4.0, 1.0]}
    )
    assert cold.summary(rows) == {"validate_s": 4.0, "gradcheck_s": 1.0, "ratio": 1.0}


def test_a_failing_side_is_an_error_not_a_timing():
    with pytest.raises(RuntimeError, match="exited 3"):
        cold.timed([sys.executable, "-c", "raise SystemExit(3)"])


def test_cold_writes_its_csv_and_section_and_keeps_the_rest(quick_commands, tmp_path):
    """bench.csv and its conditions stay as they were, and so do sections 1–4 of the
    page, written again from them; section 5 is the new pairs'."""
    for name in ("bench.csv", "bench_conditions.csv"):
        shutil.copyfile(REPORTS / name, tmp_path / name)
    kept = {name: (tmp_path / name).read_bytes() for name in ("bench.csv",)}
    before = render_folder(tmp_path, VALIDATE_SHOWN)  # no section 5 yet
    assert main(["bench", "--cold", "2", "--out", str(tmp_path), "--quiet"]) == 0
    written = (tmp_path / "bench.md").read_text(encoding="utf-8")
    head, references = before.split("## References")
    assert written.startswith(head + "## 5\\. A verdict, cold")
    assert written.endswith("## References" + references)
    assert (tmp_path / "bench.csv").read_bytes() == kept["bench.csv"]
    rows = pd.read_csv(tmp_path / "cold_bench.csv")
    assert list(rows.columns) == [
        "pair", "first", "validate_s", "gradcheck_s", "ratio", "validate_all_s", "ratio_all"
    ]  # fmt: skip
    assert len(rows) == 2
    found = pd.read_csv(tmp_path / "bench_conditions.csv", dtype=str, keep_default_na=False)
    earlier = pd.read_csv(REPORTS / "bench_conditions.csv", dtype=str, keep_default_na=False)
    bench_rows = found[found["run"] == "bench"].reset_index(drop=True)
    pd.testing.assert_frame_equal(
        bench_rows, earlier[earlier["run"] == "bench"].reset_index(drop=True)
    )
    cold_rows = found[found["run"] == "cold"]
    assert dict(zip(cold_rows["setting"], cold_rows["value"], strict=True))["command"] == (
        "gradparity bench --cold 2"
    )
    assert "gradparity bench --cold 2" in written.split("## 5")[1]


def test_cold_in_an_empty_folder_writes_section_5_alone(quick_commands, tmp_path):
    assert main(["bench", "--cold", "1", "--out", str(tmp_path), "--quiet"]) == 0
    written = (tmp_path / "bench.md").read_text(encoding="utf-8")
    assert written.startswith("## 5\\. A verdict, cold") and "## References" not in written
    assert not (tmp_path / "bench.csv").exists()


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
