"""``gradparity bench``: behaviour only (files, columns, definitions, the GPU path); no
timing is asserted."""

from __future__ import annotations

import json
import math
import sys

import numpy as np
import pandas as pd
import pytest
from markdown_it import MarkdownIt

from harness.bench.measure import COLUMNS, Plan, products_ratio, run_bench
from harness.bench.memory import measure_in_this_process, time_pair, traced_peak
from harness.bench.runners import BENCH_BACKENDS, prepare
from harness.cases import CATALOG
from harness.cli import bench, main

torch = pytest.importorskip("torch")
pytest.importorskip("jax")

TINY_MLP = {"depth": 2, "width": 4, "D": 3, "C": 2, "N": 4}
TINY = Plan(
    ratio_cases=[("small", "mlp", TINY_MLP), ("small", "lstm", {"T": 3, "H": 2, "D": 2, "B": 1})],
    scaling_options={"H": 2, "D": 2, "B": 1},
    scaling_T=[2, 4],
    scaling_long_T=[8],
    per_op_n=5,
    checking=(TINY_MLP, TINY_MLP),
    repeats=1,
    min_repeats=1,
    budget_s=0.0,
    subprocess_memory=False,
)
REQUIRED = [
    "case",
    "size",
    "backend",
    "objective_s",
    "gradient_s",
    "ratio",
    "peak_mem_bytes",
    "threads",
    "device",
    "compile_s",
]


@pytest.fixture(scope="module")
def tiny_bench(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    table = run_bench(out, TINY, threads=1)
    return out, table


def test_bench_writes_csv_and_md_with_the_columns(tiny_bench):
    out, table = tiny_bench
    written = pd.read_csv(out / "bench.csv")
    assert list(written.columns) == COLUMNS
    assert set(REQUIRED) <= set(written.columns)
    assert set(written["experiment"]) == {"ratio", "scaling", "per_op", "checking"}
    ratio = written[written["experiment"] == "ratio"]
    assert set(ratio["backend"]) == set(BENCH_BACKENDS)
    assert ratio["note"].isna().all(), ratio["note"].dropna().tolist()  # no backend failed
    assert (ratio["threads"] == 1).all() and (ratio["device"] == "cpu").all()
    text = (out / "bench.md").read_text(encoding="utf-8")
    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    headings = [
        "".join(c.content for c in tokens[i + 1].children or [])
        for i, t in enumerate(tokens)
        if t.type == "heading_open" and t.tag == "h2"
    ]
    assert headings[:6] == [
        "Goals",
        "How it is measured",
        "1. The cheap-gradient ratio R = time(loss + gradient) / time(loss)",
        "2. The tape against torch eager",
        "3. Scaling in T",
        "4. The cost of checking",
    ]
    assert "tracemalloc" in text


def test_ratio_is_gradient_time_over_objective_time(tiny_bench):
    _, table = tiny_bench
    timed = table[table["objective_s"].notna()]
    assert len(timed) > 0
    np.testing.assert_allclose(timed["ratio"], timed["gradient_s"] / timed["objective_s"])
    np.testing.assert_allclose(
        timed["ratio_cpu"], timed["gradient_cpu_s"] / timed["objective_cpu_s"]
    )


def test_jax_compile_time_is_kept_apart_and_numpy_backends_have_memory(tiny_bench):
    _, table = tiny_bench
    rows = table[table["experiment"].isin(["ratio", "scaling"])]
    jax_rows, others = rows[rows["backend"] == "jax"], rows[rows["backend"] != "jax"]
    assert (jax_rows["compile_s"] > 0).all() and others["compile_s"].isna().all()
    numpy_rows = rows[rows["backend"].isin(["reference", "manual"])]
    assert (numpy_rows["peak_mem_bytes"] > 0).all()
    assert set(numpy_rows["mem_method"]) == {"tracemalloc"}
    scaling = rows[
        (rows["experiment"] == "scaling") & rows["backend"].isin(["reference", "manual"])
    ]
    assert (scaling["stored_bytes"] > 0).all()
    assert set(rows.loc[rows["experiment"] == "scaling", "T"]) == {2, 4, 8}
    assert set(rows.loc[rows["T"] == 8, "backend"]) == {"reference", "manual"}


def test_checking_counts_the_directional_forward_passes(tiny_bench):
    _, table = tiny_bench
    rows = table[table["experiment"] == "checking"].set_index("backend")
    # 4 parameters and 2 taps; each at least 3 directions × 6 stencil points; + the probe
    assert rows.loc["numeric directional", "forward_passes"] >= 6 * 3 * 6 + 1 or (
        rows.loc["numeric", "note"].endswith("(elementwise)")
    )
    assert rows.loc["gradcheck 2 forwards × n", "extrapolated"]
    assert not rows.loc["gradcheck (measured, small model)", "extrapolated"]


@pytest.mark.parametrize("backend", BENCH_BACKENDS)
def test_every_backend_computes_the_same_loss_and_gradient(backend):
    """The timed callables compute what the backends compute (loss from the objective,
    gradient checked against the reference tape's)."""
    case = CATALOG["lstm"](T=4, H=3, D=2, B=2)
    params, inputs = case.build(0)
    prepared = prepare(backend, case, params, inputs)
    expected = prepare("reference", case, params, inputs).gradient()
    loss = float(np.asarray(prepared.objective()))
    grads = prepared.gradient()
    if backend == "manual":
        assert math.isclose(loss, grads[0], rel_tol=1e-12)
        grads = grads[1]
    elif backend == "torch":
        grads = {k: g.numpy() for k, g in zip(params, grads, strict=True)}
    elif backend == "jax":
        assert math.isclose(loss, float(grads[0]), rel_tol=1e-12)
        grads = {k: np.asarray(v) for k, v in grads[1].items()}
    for name in params:
        np.testing.assert_allclose(grads[name], expected[name], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("mlp", {}),
        ("mlp", {"depth": 3, "D": 5, "C": 7}),
        ("lstm", {}),
        ("lstm", {"objective": "sum", "T": 5, "D": 4}),
    ],
)
def test_products_ratio_matches_torchs_count_of_the_products(name, options):
    """The products-only R that bench.md sets beside the measured one is counted by hand;
    torch's FlopCounterMode counts the products its forward and autograd actually make
    (autograd computes no gradient a parameter does not need, as manual and the tape)."""
    from torch.utils.flop_counter import FlopCounterMode

    case = CATALOG[name](**options)
    params, inputs = case.build(0)
    prepared = prepare("torch", case, params, inputs)
    with FlopCounterMode(display=False) as forward:
        prepared.objective()
    with FlopCounterMode(display=False) as both:
        prepared.gradient()
    measured = both.get_total_flops() / forward.get_total_flops()
    assert math.isclose(products_ratio(case), measured, rel_tol=1e-12)
    assert math.isnan(products_ratio(CATALOG["adbench_lstm"](source="random")))


def test_time_pair_takes_the_minimum_of_at_least_min_repeats():
    calls = {"objective": 0, "gradient": 0}

    def count(name):
        return lambda: calls.__setitem__(name, calls[name] + 1)

    from harness.bench.runners import Prepared

    timing = time_pair(Prepared(count("objective"), count("gradient")), 4, 2, 0.0)
    assert timing.repeats == 2 and calls == {"objective": 3, "gradient": 3}  # + the warm-up
    assert 0 <= timing.objective_s and 0 <= timing.gradient_s


def test_traced_peak_sees_a_numpy_allocation():
    assert traced_peak(lambda: np.ones(100_000)) >= 800_000


def test_torch_memory_in_a_fresh_process_reports_bytes():
    spec = {
        "case": CATALOG["mlp"](**TINY_MLP).spec(),
        "backend": "torch",
        "device": "cpu",
        "dtype": "float64",
        "seed": 0,
    }
    answer = measure_in_this_process(spec)
    assert answer["bytes"] >= 0 and answer["method"].startswith("rss-subprocess")
    json.dumps(answer)


def test_bench_command_reruns_itself_with_threads_pinned(monkeypatch, tmp_path):
    seen = {}

    def call(argv, env):
        seen.update(argv=argv, env=env)
        return 0

    monkeypatch.delenv(bench.PINNED, raising=False)
    monkeypatch.setattr(bench.subprocess, "call", call)
    monkeypatch.setattr(bench, "cpus", lambda: 2)  # 2 threads are allowed on any machine here
    assert main(["bench", "--quick", "--out", str(tmp_path), "--threads", "2"]) == 0
    assert seen["argv"][:4] == [sys.executable, "-m", "harness.cli", "bench"]
    assert "--quick" in seen["argv"] and str(tmp_path) in seen["argv"]
    env = seen["env"]
    assert env["OMP_NUM_THREADS"] == env["OPENBLAS_NUM_THREADS"] == env[bench.PINNED] == "2"
    assert "intra_op_parallelism_threads=2" in env["XLA_FLAGS"]


def test_bench_rejects_a_thread_count_below_one(capsys):
    with pytest.raises(SystemExit) as refused:
        main(["bench", "--threads", "0"])
    assert refused.value.code == 2 and "--threads" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present: the CUDA path runs")
def test_device_cuda_without_a_gpu_is_a_clear_error(capsys, tmp_path):
    assert main(["bench", "--device", "cuda", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "--device cuda" in err and "no CUDA device" in err
    assert not (tmp_path / "bench.csv").exists()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device (torch.cuda)")
def test_device_cuda_runs_torch_and_jax_on_the_gpu(tmp_path):
    table = run_bench(tmp_path, TINY, device="cuda", threads=1)
    timed = table[table["experiment"].isin(["ratio", "scaling"])]
    assert set(timed["backend"]) <= {"torch", "jax"}
    assert (timed["device"] == "cuda").all()
    torch_rows = timed[timed["backend"] == "torch"]
    assert (torch_rows["mem_method"] == "cuda-max-allocated").all()
    assert (tmp_path / "bench.md").exists()


def test_a_missing_adbench_input_falls_back_to_random_for_a_name_and_for_a_case(
    monkeypatch, tmp_path
):
    """A broken install (ADBench's file gone) draws the same sizes at random, whether the
    bench was given the case's name or the Case itself (which once raised KeyError)."""
    import harness.cases.adbench as adbench
    from harness.bench.measure import _build

    monkeypatch.setattr(adbench, "data_file", lambda name: tmp_path / name)
    for given in ("adbench_lstm", CATALOG["adbench_lstm"]()):
        case, params, inputs, note = _build(given, {})
        assert case.cfg["source"] == "random" and "missing" in note
        assert params and inputs


@pytest.mark.parametrize(
    "note, case_failed, code",
    [
        ("failed: the case's worker: exited with status 7", True, 1),
        ("the worker's words, whatever they are", True, 1),
        ("failed: the case's worker (words a backend's note may quote)", False, 0),
    ],
)
def test_bench_fails_on_the_fact_that_a_case_failed_not_on_a_note_s_words(
    monkeypatch, tmp_path, capsys, note, case_failed, code
):
    import harness.bench.measure
    from harness.cli import main

    def measured(*args, **kwargs):
        return pd.DataFrame(
            [{"label": "mine", "backend": "reference", "note": note, "case_failed": case_failed}]
        )

    monkeypatch.setattr(harness.bench.measure, "run_bench", measured)
    monkeypatch.setenv(bench.PINNED, "1")  # as in the process it runs again in
    monkeypatch.setattr(bench, "pin_cpus", lambda threads: None)  # this process stays as it is
    case = tmp_path / "mine.py"
    case.write_text(
        "from harness.cases.base import Case\n"
        "class Mine(Case):\n"
        "    name = 'mine'\n"
        "    def setup(self, rng):\n"
        "        return {'x': rng.standard_normal(3)}, {}\n"
        "    def loss(self, xp, p, inputs):\n"
        "        return xp.sum(p['x'] ** 2)\n"
    )
    assert (
        main(["bench", "--case", f"{case}:Mine", "--out", str(tmp_path / "b"), "--quiet"]) == code
    )
    assert ("✗ mine" in capsys.readouterr().out) is bool(case_failed)
