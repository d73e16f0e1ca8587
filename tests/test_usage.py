"""Bad input is a sentence and exit 2, checked before the work starts, never a traceback;
one case that cannot be built is one failed row, and everything else still runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from harness.cases import CATALOG, Case, CaseError, at_least
from harness.cli import main

HERE = Path(__file__).resolve().parents[1]


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# --- case options


@pytest.mark.parametrize(
    ("case", "setting", "expected"),
    [
        ("elman", "T=-1", "case 'elman': option T=-1 is out of range: T takes a whole number ≥ 1"),
        ("elman", "T=0", "case 'elman': option T=0 is out of range: T takes a whole number ≥ 1"),
        ("lstm", "H=-3", "case 'lstm': option H=-3 is out of range: H takes a whole number ≥ 1"),
        (
            "mlp",
            "depth=0",
            "case 'mlp': option depth=0 is out of range: depth takes a whole number ≥ 1",
        ),
        (
            "elman",
            "T=abc",
            "case 'elman': option T='abc' is not a whole number; T takes a whole number ≥ 1",
        ),
    ],
)
@pytest.mark.parametrize("command", ["run", "report", "describe"])
def test_a_bad_option_value_exits_2_naming_case_option_value_and_range(
    refuse_work, capsys, monkeypatch, tmp_path, command, case, setting, expected
):
    args = [case] if command == "describe" else ["--case", case]
    if command == "report":
        args += ["--out", str(tmp_path / "r")]
    code, out, err = run_cli(capsys, command, *args, "--set", setting)
    assert code == 2
    assert expected in err and "Traceback" not in err
    assert out == ""


def test_an_unknown_option_lists_the_options_that_exist(refuse_work, capsys, monkeypatch):
    code, _, err = run_cli(capsys, "run", "--case", "elman", "--set", "Tee=4")
    assert code == 2
    assert "'Tee'" in err
    assert all(key in err for key in CATALOG["elman"].options)


def test_describe_says_what_each_option_takes(capsys):
    code, out, _ = run_cli(capsys, "describe", "mlp")
    assert code == 0
    assert "depth=4: a whole number ≥ 1" in out
    assert "act='tanh': one of 'tanh', 'sigmoid', 'relu'" in out


# --- output paths, checked before any work


def test_report_out_naming_a_file_exits_2_before_any_work(
    refuse_work, capsys, monkeypatch, tmp_path
):
    existing = tmp_path / "afile"
    existing.write_text("keep me")
    code, out, err = run_cli(
        capsys, "report", "--case", "card_affine_square", "--out", str(existing)
    )
    assert code == 2 and "is a file" in err and "--out" in err
    assert existing.read_text() == "keep me"


def test_report_out_under_a_file_cannot_be_made_and_exits_2(
    refuse_work, capsys, monkeypatch, tmp_path
):
    (tmp_path / "afile").write_text("")
    code, _, err = run_cli(
        capsys, "report", "--case", "card_affine_square", "--out", str(tmp_path / "afile" / "sub")
    )
    assert code == 2 and "cannot be made" in err and "Traceback" not in err


def test_run_csv_to_an_unwritable_place_exits_2_before_running(
    refuse_work, capsys, monkeypatch, tmp_path
):
    for target, why in (
        (tmp_path / "nodir" / "a.csv", "does not exist"),
        (tmp_path, "is a folder"),
    ):
        code, out, err = run_cli(
            capsys, "run", "--case", "card_affine_square", "--csv", str(target)
        )
        assert code == 2 and why in err and "--csv" in err
        assert out == ""


def test_validate_out_naming_a_file_exits_2(capsys, tmp_path):
    existing = tmp_path / "afile"
    existing.write_text("")
    code, _, err = run_cli(
        capsys,
        "validate",
        str(HERE / "examples" / "model_mlp.py") + ":grads",
        "--case",
        "mlp",
        "--out",
        str(existing),
    )
    assert code == 2 and "is a file" in err


def test_bench_out_naming_a_file_exits_2_before_measuring(capsys, monkeypatch, tmp_path):
    from harness.cli import bench

    monkeypatch.setattr(bench.subprocess, "call", lambda *a, **k: pytest.fail("bench started"))
    existing = tmp_path / "afile"
    existing.write_text("")
    code, _, err = run_cli(capsys, "bench", "--quick", "--out", str(existing))
    assert code == 2 and "is a file" in err


def written_by(folder, plan: str, command: str) -> None:
    """A bench folder's record of the plan and command that wrote it (bench_conditions.csv)."""
    from harness.bench.markdown import CONDITIONS_CSV, conditions_table
    from harness.escaping import write_csv

    write_csv(conditions_table({"plan": plan, "command": command}, {}), folder / CONDITIONS_CSV)


def test_bench_quick_never_overwrites_the_full_plan_figures(capsys, monkeypatch, tmp_path):
    """The README cites reports/bench.md, the full plan's: --quick writes elsewhere by
    default, and refuses a folder that holds the full plan's figures."""
    from harness.cli import bench

    seen = {}
    monkeypatch.delenv(bench.PINNED, raising=False)
    monkeypatch.setattr(bench.subprocess, "call", lambda argv, env: seen.update(argv=argv) or 0)
    monkeypatch.chdir(tmp_path)
    full = tmp_path / "reports"
    full.mkdir()
    (full / "bench.md").write_text("# Benchmarks\n")
    written_by(full, "full", "gradparity bench")
    code, _, err = run_cli(capsys, "bench", "--quick", "--out", str(full))
    assert code == 2 and "full plan" in err and "argv" not in seen
    assert run_cli(capsys, "bench", "--quick")[0] == 0
    # the default, made absolute before the run that writes it starts
    assert seen["argv"][seen["argv"].index("--out") + 1] == str(tmp_path / bench.QUICK_OUT)
    assert (full / "bench.md").read_text().startswith("# Benchmarks")
    quick = tmp_path / "q"
    quick.mkdir()
    (quick / "bench.md").write_text("# Benchmarks\n\nWritten by `gradparity bench`.\n")
    written_by(quick, "quick", "gradparity bench --quick")  # the data says; no prose is read
    assert run_cli(capsys, "bench", "--quick", "--out", str(quick))[0] == 0


@pytest.mark.parametrize(
    "plan, command, refused",
    [
        ("full", "gradparity bench --out /data/--quick-results", True),
        ("quick", "gradparity bench", False),
        ("cases", "gradparity bench", False),
    ],
)
def test_the_full_plan_is_known_by_the_plan_recorded_not_by_the_command_s_words(
    tmp_path, plan, command, refused
):
    from harness.cli.bench import full_plan_figures

    written_by(tmp_path, plan, command)
    assert full_plan_figures(tmp_path) is refused


# --- output into a closed pipe


@pytest.mark.parametrize(
    "argv",
    [
        ["describe", "deep_chain"],
        ["run", "--case", "card_affine_square", "--backend", "reference"],
        ["selftest", "--only", "linear stage", "--dtype", "float64", "--reference", "reference"],
    ],
)
def test_output_into_a_closed_pipe_ends_quietly(argv):
    """`gradparity describe deep_chain | head -1`: the reader is gone before the output."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", *argv],
        cwd=HERE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "0"},
    )
    proc.stdout.close()  # as `head` does once it has its lines
    err = proc.stderr.read().decode()
    code = proc.wait(timeout=300)
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
    assert code == 141


# --- one case that cannot be built


@pytest.fixture
def broken_case(monkeypatch):
    """A catalog case whose set-up fails the way a missing data file makes it fail."""

    class Broken(Case):
        """L = Σ x² — if its data were there."""

        name, family = "broken_data", "staged"
        options = {"n": 3}
        allowed = {"n": at_least(1)}

        def setup(self, rng):
            raise CaseError(f"case {self.name!r}: its input file is missing")

        def loss(self, ops, p, x):  # pragma: no cover - never reached
            return ops.sum(p["x"] ** 2)

    monkeypatch.setitem(CATALOG, Broken.name, Broken)
    return Broken


def test_list_has_no_empty_column_and_names_the_cases_left_out_of_the_default_run(
    capsys, monkeypatch
):
    code, out, _ = run_cli(capsys, "list")
    header = out.splitlines()[0].split()
    assert code == 0 and header == ["case", "family", "parameters", "options"]
    assert "default run" not in out  # no case is slow in the catalog as it stands

    class Slow(CATALOG["card_affine_square"]):
        name, slow = "slow_square", True

    monkeypatch.setitem(CATALOG, Slow.name, Slow)
    code, out, _ = run_cli(capsys, "list")
    assert "left out of the default run (pick it with --case): slow_square" in out


def test_list_shows_a_case_that_cannot_be_built_with_its_error(capsys, broken_case):
    code, out, _ = run_cli(capsys, "list")
    assert code == 0
    assert (
        "broken_data: the case could not be built: case 'broken_data': its input file is missing"
        in out
    )
    assert all(name in out for name in CATALOG)


def test_run_reports_a_broken_case_as_one_failed_row_and_compares_the_rest(
    capsys, broken_case, tmp_path
):
    csv = tmp_path / "a.csv"
    code, out, err = run_cli(
        capsys,
        "run",
        "--case",
        "broken_data",
        "--case",
        "card_affine_square",
        "--backend",
        "reference",
        "--csv",
        str(csv),
    )
    assert code == 1 and err == ""
    assert "its input file is missing" in out
    table = pd.read_csv(csv, keep_default_na=False)
    broken = table[table["case"] == "broken_data"]
    assert len(broken) == 1 and "could not be built" in broken["error"].iloc[0]
    assert table[table["case"] == "card_affine_square"]["ok"].all()


def test_report_writes_everything_with_a_broken_case_among_them(capsys, broken_case, tmp_path):
    code, out, _ = run_cli(
        capsys,
        "report",
        "--case",
        "broken_data",
        "--case",
        "card_affine_square",
        "--backend",
        "reference",
        "--out",
        str(tmp_path),
        "--quiet",
    )
    assert code == 1
    for name in ("report.md", "report.html", "agreement.csv", "runs.csv", "summary.json"):
        assert (tmp_path / name).exists(), name
    assert "its input file is missing" in (tmp_path / "report.md").read_text()
    runs = pd.read_csv(tmp_path / "runs.csv", keep_default_na=False)
    assert list(runs.loc[runs["case"] == "broken_data", "status"]) == ["failed"]


def test_validate_reports_a_broken_case_and_validates_the_others(capsys, broken_case):
    code, out, _ = run_cli(
        capsys,
        "validate",
        str(HERE / "examples" / "model_mlp.py") + ":grads",
        "--case",
        "broken_data",
        "--case",
        "mlp",
        "--reference",
        "reference",
    )
    assert code == 1
    assert "its input file is missing" in out
    assert "mlp" in out and "agree" in out


def test_adbench_without_its_data_is_a_failed_row_not_a_dead_run(capsys, monkeypatch, tmp_path):
    import harness.cases.adbench as adbench

    monkeypatch.setattr(adbench, "data_file", lambda name: tmp_path / "gone" / name)
    code, out, _ = run_cli(
        capsys,
        "run",
        "--case",
        "adbench_lstm",
        "--case",
        "card_affine_square",
        "--backend",
        "reference",
    )
    assert code == 1
    assert "ADBench's input is not at" in out and "card_affine_square" in out


def test_an_impossible_combination_of_options_is_a_failed_row(capsys):
    code, out, _ = run_cli(
        capsys, "run", "--case", "adbench_lstm", "--set", "c=2000", "--backend", "reference"
    )
    assert code == 1
    assert "at most c=1024" in out and "Traceback" not in out
