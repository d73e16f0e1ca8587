"""The runner: spreading cases over processes, Backend instances, failures that don't stop a run."""

from __future__ import annotations

import pandas as pd

from harness import compare_backends
from harness.backends.reference_tape import ReferenceBackend


def test_jobs_spread_cases_over_processes_with_identical_tables():
    cases = ["card_affine_square", "fan_out_fan_in", "softmax_xent"]
    serial = compare_backends(cases, ["reference", "torch", "numeric"])
    spread = compare_backends(cases, ["reference", "torch", "numeric"], jobs=2)
    pd.testing.assert_frame_equal(serial.agreement, spread.agreement)
    pd.testing.assert_frame_equal(serial.magnitudes, spread.magnitudes)


class Broken(ReferenceBackend):
    name = "broken"

    def gradient(self, case, params, inputs, dtype):
        if case.name == "fan_out_fan_in":
            raise FloatingPointError("boom")
        return super().gradient(case, params, inputs, dtype)


def test_backend_instances_and_a_failing_backend_do_not_stop_the_run():
    comparison = compare_backends(["card_affine_square", "fan_out_fan_in"], [Broken(), "torch"])
    runs = comparison.runs.set_index(["case", "backend"])
    assert runs.loc[("fan_out_fan_in", "broken"), "status"] == "failed"
    assert "FloatingPointError: boom" in runs.loc[("fan_out_fan_in", "broken"), "error"]
    assert runs.loc[("card_affine_square", "broken"), "status"] == "ok"
    failed = comparison.agreement.query("case == 'fan_out_fan_in'")
    assert not failed["ok"].any() and failed["error"].str.contains("broken failed").all()
    assert not comparison.all_agree


def test_a_missing_framework_is_a_clear_failed_cell(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "jax", None)  # import jax now raises ImportError
    comparison = compare_backends(["card_affine_square"], ["reference", "jax", "torch"])
    runs = comparison.runs.set_index("backend")
    assert runs.loc["jax", "status"] == "failed"
    assert "BackendUnavailable" in runs.loc["jax", "error"]
    assert "pip install jax" in runs.loc["jax", "error"]
    assert runs.loc["reference", "status"] == "ok"


def test_listing_cases_imports_neither_torch_nor_jax():
    import subprocess
    import sys

    code = (
        "import sys; from harness.cli import main; main(['list']); "
        "assert 'torch' not in sys.modules and 'jax' not in sys.modules, 'imported'"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "deep_chain" in done.stdout
