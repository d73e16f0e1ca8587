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

    def run(self, case, params, inputs, dtype):
        if case.name == "fan_out_fan_in":
            raise FloatingPointError("boom")
        return super().run(case, params, inputs, dtype)


def test_backend_instances_and_a_failing_backend_do_not_stop_the_run():
    comparison = compare_backends(["card_affine_square", "fan_out_fan_in"], [Broken(), "torch"])
    runs = comparison.runs.set_index(["case", "backend"])
    assert runs.loc[("fan_out_fan_in", "broken"), "status"] == "failed"
    assert "FloatingPointError: boom" in runs.loc[("fan_out_fan_in", "broken"), "error"]
    assert runs.loc[("card_affine_square", "broken"), "status"] == "ok"
    failed = comparison.agreement.query("case == 'fan_out_fan_in'")
    assert not failed["ok"].any() and failed["error"].str.contains("broken failed").all()
    assert not comparison.all_agree
