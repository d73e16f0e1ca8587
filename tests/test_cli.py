"""The ``gradparity`` command: list, describe, run, its exit codes, its CSV, its entry point."""

from __future__ import annotations

import csv
import inspect
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from harness.backends import REGISTRY
from harness.backends.numeric import NumpyNamespace
from harness.cases import CATALOG
from harness.cli import main
from reference.primitives import RULES

CSV_COLUMNS = [
    "case",
    "tensor",
    "backend",
    "baseline",
    "max_abs_err",
    "max_rel_err",
    "rel_l2_err",
    "cosine",
    "worst_index",
    "ok",
]


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_list_shows_every_case(capsys):
    code, out, _ = run_cli(capsys, "list")
    assert code == 0
    for name, cls in CATALOG.items():
        assert name in out and cls.family in out


def test_describe_prints_the_math_options_parameter_shapes_and_taps(capsys):
    case = CATALOG["deep_chain"]()
    code, out, _ = run_cli(capsys, "describe", "deep_chain")
    assert code == 0
    for line in inspect.getdoc(CATALOG["deep_chain"]).splitlines():
        assert line.strip() in out, f"docstring line missing: {line!r}"
    assert f"K={case.K}" in out
    params, _ = case.build(0)
    assert set(params) == {"x", "a", "c"}
    for name, value in params.items():
        assert f"{name}{list(value.shape)}" in out
    probe = NumpyNamespace()
    case.loss(probe, params, {})
    taps_line = next(line for line in out.splitlines() if line.startswith("taps:"))
    assert len(probe.tap_steps) == case.K + 1
    for tap in probe.tap_steps:
        assert f"{tap}[{case.n}]" in taps_line


def test_run_of_an_agreeing_case_exits_0(capsys):
    code, out, _ = run_cli(capsys, "run", "--case", "card_affine_square")
    assert code == 0
    assert "all agree" in out and "DISAGREEMENT" not in out
    assert all(backend in out for backend in ("reference", "jax", "numeric"))


def test_an_unknown_case_exits_2_listing_the_cases(capsys):
    code, _, err = run_cli(capsys, "run", "--case", "nosuchcase")
    assert code == 2
    assert "nosuchcase" in err
    assert all(name in err for name in CATALOG)


def test_an_unknown_backend_exits_2_listing_the_backends(capsys):
    with pytest.raises(SystemExit) as exit_info:  # refused as the options are parsed
        main(["run", "--case", "card_affine_square", "--backend", "nosuch"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "nosuch" in err
    assert all(name in err for name in REGISTRY)


@pytest.mark.parametrize(
    "setting, message", [("nosuchkey=3", "nosuchkey"), ("n=many", "n='many'"), ("n", "KEY=VALUE")]
)
def test_a_bad_set_exits_2_and_says_why(capsys, setting, message):
    code, _, err = run_cli(capsys, "run", "--case", "card_affine_square", "--set", setting)
    assert code == 2
    assert message in err


def test_a_bad_dtype_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--case", "card_affine_square", "--dtype", "float16"])
    assert exit_info.value.code == 2


def test_run_writes_one_csv_row_per_tensor_and_backend(capsys, tmp_path):
    path = tmp_path / "agreement.csv"
    code, out, _ = run_cli(
        capsys,
        "run",
        "--case",
        "card_sigmoid_unit",
        "--backend",
        "reference",
        "--backend",
        "torch",
        "--backend",
        "numeric",
        "--csv",
        str(path),
    )
    assert code == 0
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        assert set(CSV_COLUMNS) <= set(reader.fieldnames)
        rows = list(reader)
    tensors = {"loss", "w", "b", "a", "z"}  # the loss, two parameters, two taps
    pairs = [(row["tensor"], row["backend"]) for row in rows]
    assert sorted(pairs) == sorted((t, b) for t in tensors for b in ("reference", "numeric"))
    assert {row["case"] for row in rows} == {"card_sigmoid_unit"}
    assert {row["baseline"] for row in rows} == {"torch"}
    assert {row["ok"] for row in rows} == {"True"}
    assert all(float(row["max_rel_err"]) < 1e-6 for row in rows)


def test_run_with_a_broken_rule_exits_1_and_names_the_tensor_and_the_odd_one_out(
    capsys, monkeypatch
):
    """σ' taken from the pre-activation a: dL/da, dL/dw and dL/db go wrong, dL/dz does not."""
    monkeypatch.setitem(
        RULES,
        "sigmoid",
        replace(RULES["sigmoid"], vjp=lambda g, ans, x: (g * x * (1 - x),), saves="x"),
    )
    code, out, _ = run_cli(
        capsys,
        "run",
        "--case",
        "card_sigmoid_unit",
        "--backend",
        "reference",
        "--backend",
        "torch",
        "--backend",
        "numeric",
    )
    assert code == 1
    assert "DISAGREEMENT" in out
    odd_lines = [line for line in out.splitlines() if "odd one out" in line]
    for tensor in ("a", "w", "b"):
        assert any(f"'{tensor}'" in line and "reference" in line for line in odd_lines), tensor
    assert not any("'z'" in line for line in odd_lines)


def test_the_installed_console_script_runs(tmp_path):
    beside_python = Path(sys.executable).parent / "gradparity"
    script = str(beside_python) if beside_python.exists() else shutil.which("gradparity")
    assert script, "the gradparity console script is not installed (pip install -e .)"
    done = subprocess.run(
        [script, "list"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert all(name in done.stdout for name in CATALOG)


@pytest.mark.parametrize("command", ["run", "report"])
@pytest.mark.parametrize("jobs", ["0", "-2"])
def test_jobs_below_one_is_bad_usage(capsys, tmp_path, command, jobs):
    """As for validate: --jobs counts processes, 1 or more; anything else exits 2 at once."""
    out_dir = ["--out", str(tmp_path)] if command == "report" else []
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--case", "card_affine_square", *out_dir, "--jobs", jobs])
    assert exit_info.value.code == 2
    out, err = capsys.readouterr()
    assert "--jobs takes a whole number of processes from 1 to 256 (each" in err
    assert f"not {jobs!r}" in err
    assert out == "" and not any(tmp_path.iterdir())
