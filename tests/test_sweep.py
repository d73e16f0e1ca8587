"""Sweeps (``harness.sweep``): grids of options and seeds in run, report and validate, on
this process, local processes or a Dask LocalCluster — the same tables however spread."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from harness.cli import main
from harness.selection import UsageError
from harness.sweep import Job, comparable, grid, parse_grid, parse_seeds, sweep, tables

FAST = ["--backend", "numeric", "--baseline", "reference", "--noise", "0"]  # numpy alone

POINTS_CASE = '''
import os


from harness.cases import Case


class Point(Case):
    """L = Σ tanh(x)², or a failure on purpose: what="raise" raises, "die" kills its process."""

    name, family = "point", "mine"
    options = {"n": 3, "what": "ok"}

    def setup(self, rng):
        if self.what == "raise":
            raise RuntimeError("this point fails on purpose")
        if self.what == "die":
            os._exit(3)
        return {"x": rng.standard_normal(self.n)}, {}

    def loss(self, xp, p, inputs):
        return xp.sum(xp.tanh(p["x"]) ** 2)
'''


@pytest.fixture
def point_case(tmp_path):
    path = tmp_path / "points.py"
    path.write_text(POINTS_CASE)
    return f"{path}:Point"


# --- the grid -----------------------------------------------------------------------------


def test_a_grid_is_the_cartesian_product_in_the_order_given_seeds_fastest():
    fixed, swept = parse_grid(["T=30", "sigma=0.5,0.9", "H=4-8:2"])
    assert fixed == {"T": "30"} and swept == {"sigma": ["0.5", "0.9"], "H": ["4", "6", "8"]}
    points = grid(swept, parse_seeds("0-1"))
    assert len(points) == 2 * 3 * 2
    assert [p.label for p in points[:3]] == [
        "sigma=0.5 H=4 seed=0",
        "sigma=0.5 H=4 seed=1",
        "sigma=0.5 H=6 seed=0",
    ]
    assert [p.index for p in points] == list(range(12))


@pytest.mark.parametrize(
    "text, seeds",
    [("0-9", list(range(10))), ("0,3,7", [0, 3, 7]), ("0-2,10", [0, 1, 2, 10]), ("5", [5])],
)
def test_seeds_take_ranges_and_lists(text, seeds):
    assert parse_seeds(text) == seeds


@pytest.mark.parametrize("pairs, message", [
    (["T=10", "T=20"], "--set T is given twice"),
    (["sigma=0.5,,0.9"], "an empty value"),
    (["T=30-10"], "the range '30-10' is empty"),
    (["T=10,10"], "a value given twice"),
    (["sigma"], "KEY=VALUE or KEY=V1,V2"),
])  # fmt: skip
def test_a_bad_grid_says_what_is_wrong(pairs, message):
    with pytest.raises(UsageError, match=message):
        parse_grid(pairs)


def test_negative_numbers_and_exponents_are_values_not_ranges():
    assert parse_grid(["x_scale=-1,1e-3"])[1] == {"x_scale": ["-1", "1e-3"]}


@pytest.mark.parametrize("argv, message", [
    (["--seeds", "0-x"], "--seeds takes whole numbers"),
    (["--seeds", "0-2", "--seed", "3"], "give --seed or --seeds, not both"),
    (["--scheduler", "tcp://127.0.0.1:1"], "it needs --executor dask"),
    (["--set", "T=0,3"], "T"),  # the case's own range, before any point runs
])  # fmt: skip
def test_bad_sweep_options_are_exit_2_before_any_work(argv, message, capsys):
    assert main(["run", "--case", "elman", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


# --- points, failures, tables -------------------------------------------------------------


def test_each_point_is_labelled_in_every_table_and_the_exit_counts_the_failed(tmp_path, capsys):
    csv = tmp_path / "agreement.csv"
    code = main(
        ["run", "--case", "elman", "--set", "T=3,5", "--seeds", "0-1", *FAST, "--csv", str(csv)]
    )
    out = capsys.readouterr().out
    assert code == 0 and "sweep: 4 points (T × seed); 4 agree, 0 fail" in out
    table = pd.read_csv(csv)
    assert list(table.columns[:3]) == ["point", "T", "seed"]
    assert sorted(set(zip(table["T"], table["seed"], strict=True))) == [
        (3, 0),
        (3, 1),
        (5, 0),
        (5, 1),
    ]
    # the point T=5 seed=1 holds what `gradparity run --set T=5 --seed 1` holds
    one = tmp_path / "one.csv"
    main(["run", "--case", "elman", "--set", "T=5", "--seed", "1", *FAST, "--csv", str(one)])
    alone = pd.read_csv(one)
    mine = table[(table["T"] == 5) & (table["seed"] == 1)].drop(columns=["point", "T", "seed"])
    pd.testing.assert_frame_equal(mine.reset_index(drop=True), alone)


def test_a_failing_point_is_one_failed_row_and_the_sweep_goes_on(point_case, capsys):
    code = main(["run", "--case", point_case, "--set", "what=ok,raise", "--seeds", "0-1", *FAST])
    out = capsys.readouterr().out
    assert code == 1
    assert "2 agree, 2 fail" in out
    failed = [line for line in out.splitlines() if line.startswith("  FAILED")]
    assert [line.split(":")[0] for line in failed] == [
        "  FAILED what=raise seed=0",
        "  FAILED what=raise seed=1",
    ]
    assert all("RuntimeError: this point fails on purpose" in line for line in failed)


def _job(pattern, **fixed):
    return Job((pattern,), tuple(fixed.items()), ("reference", "torch"), noise=0)


def test_a_case_that_kills_its_process_is_one_failed_row_naming_it(point_case):
    """A case of the user's runs in a worker of its own: its os._exit ends that worker,
    and the point is a failed row that says so, never the sweep's process."""
    fixed, swept = parse_grid(["what=ok,die,also"])
    points = grid(swept, [0])
    outcomes = sweep(_job(point_case), points, "local", jobs=2)
    assert [o.status for o in outcomes] == ["ok", "failed", "ok"]
    assert "crash" in outcomes[1].findings[0] and "status 3" in outcomes[1].findings[0]
    assert tables(outcomes, ["what"])["points"]["status"].tolist() == ["ok", "failed", "ok"]


KILLER = """
import os
import signal


def grads(p, x, case):
    if case.n == 4:  # run in the point's own process (no isolation asked for): it dies
        os.kill(os.getpid(), signal.SIGKILL)  # (its os._exit is an exit fault there)
    return {"x": 2 * (3 * p["x"] + 1) * 3}
"""


def _killer_job(tmp_path):
    (tmp_path / "killer.py").write_text(KILLER)
    plugin = {
        "target": f"{tmp_path / 'killer.py'}:grads",
        "form": "model",
        "references": ["reference"],
        "baseline": None,
        "timeout": 30.0,
        "memory": 0,
        "isolate": False,
    }
    return Job(("card_affine_square",), (), (), noise=0, validate=plugin)


def test_a_point_whose_process_dies_is_one_failed_row_on_local_processes(tmp_path):
    points = grid(parse_grid(["n=3,4,5"])[1], [0])
    outcomes = sweep(_killer_job(tmp_path), points, "local", jobs=2)
    assert [o.status for o in outcomes] == ["ok", "error", "ok"]
    assert "its worker died" in outcomes[1].error
    assert tables(outcomes, ["n"])["points"]["status"].tolist() == ["ok", "error", "ok"]


@pytest.mark.slow
def test_the_same_grid_gives_the_same_tables_on_every_executor(point_case):
    fixed, swept = parse_grid(["T=3,6", "sigma=0.5,1.2"])
    points = grid(swept, [0, 1])
    job = Job(("elman",), (), ("reference", "torch", "numeric"))  # the noise floor measured too
    inline = tables(sweep(job, points, "local", 1), list(swept))
    pool = tables(sweep(job, points, "local", 2), list(swept))
    dask = tables(sweep(job, points, "dask", 2), list(swept))  # a LocalCluster on 127.0.0.1
    assert comparable(inline) == comparable(pool) == comparable(dask)
    assert len(inline["points"]) == 8 and (inline["points"]["status"] == "ok").all()


@pytest.mark.slow
def test_a_dead_dask_worker_is_one_failed_row_too(tmp_path):
    # one worker holds all three: the points lost with it are rerun alone, and only the
    # one that kills its worker again is the failed row
    points = grid(parse_grid(["n=3,4,5"])[1], [0])
    outcomes = sweep(_killer_job(tmp_path), points, "dask", jobs=1)
    assert [o.status for o in outcomes] == ["ok", "error", "ok"]
    assert "its worker died" in outcomes[1].error


def test_an_unreachable_scheduler_is_exit_2(capsys, monkeypatch):
    import harness.sweep

    # Dask retries a refused connection until the deadline: 1 s, not the default 10 s.
    monkeypatch.setattr(harness.sweep, "SCHEDULER_TIMEOUT", 1.0)
    code = main(
        [
            "run",
            "--case",
            "elman",
            "--set",
            "T=3,4",
            "--executor",
            "dask",
            "--scheduler",
            "tcp://127.0.0.1:9",
            *FAST,
        ]
    )
    assert code == 2 and "no Dask scheduler answers there" in capsys.readouterr().err


# --- validate -----------------------------------------------------------------------------


def test_validate_sweeps_a_plug_in_and_names_each_point_it_fails(tmp_path, capsys):
    good = main(
        [
            "validate",
            "harness.zoo.models:mlp",
            "--case",
            "mlp",
            "--set",
            "width=3,4",
            "--noise",
            "0",
            "--out",
            str(tmp_path),
        ]
    )
    assert good == 0
    table = pd.read_csv(tmp_path / "agreement.csv")
    assert set(table["width"]) == {3, 4} and "tensor" in table.columns
    capsys.readouterr()
    bad = main(
        [
            "validate",
            "harness.zoo.models:bias_mean",
            "--case",
            "mlp",
            "--set",
            "width=3,4",
            "--noise",
            "0",
        ]
    )
    out = capsys.readouterr().out
    assert bad == 1 and "0 agree, 2 fail" in out
    assert "FAILED width=3 seed=0" in out and "FAILED width=4 seed=0" in out


# --- the landscape ------------------------------------------------------------------------


def test_the_elman_phase_diagram_and_decay_rates_come_from_the_measured_norms(tmp_path):
    out = tmp_path / "r"
    code = main(
        [
            "report",
            "--case",
            "elman",
            "--set",
            "sigma=0.5,1.0,1.5",
            "--set",
            "T=4,8",
            "--seeds",
            "0-1",
            *FAST,
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert code == 0
    md = (out / "report.md").read_text()
    assert "sweep_phase.png" in md and "sweep_digits.png" in md and "σ_max·γ" in md
    assert "(γ = 1, σ_max = 1): dashed" in md  # 1.0 lies in the grid: the boundary is drawn
    assert (out / "sweep_phase.png").stat().st_size > 0
    assert "data:image/png;base64," in (out / "report.html").read_text()
    mags = pd.read_csv(out / "magnitudes.csv")
    summ = pd.read_csv(out / "summaries.csv")
    # the phase diagram's value of one point, recomputed from the per-step norms
    one = mags[
        (mags["backend"] == "reference")
        & (mags["sigma"] == 1.5)
        & (mags["T"] == 8)
        & (mags["seed"] == 1)
        & (mags["tap"] == "h")
    ].sort_values("step")
    row = summ[
        (summ["backend"] == "reference")
        & (summ["sigma"] == 1.5)
        & (summ["T"] == 8)
        & (summ["seed"] == 1)
    ].iloc[0]
    norms = one["norm"].to_numpy()
    assert row["first_over_last"] == pytest.approx(norms[0] / norms[-1], rel=1e-12)
    from harness.report.sweep_document import decay_table, elman_rows

    summ = summ.assign(sigma=summ["sigma"].astype(str), T=summ["T"].astype(str))
    elman = dict.fromkeys(summ["case"], "elman")
    decay = decay_table(elman_rows(summ, "reference", elman)).set_index("sigma")
    assert decay.loc["0.5", "sigma_gamma"] == pytest.approx(0.5)  # tanh: γ = 1
    # a tanh unroll never grows faster than the bound: the rate stays below σ_max·γ
    assert (decay["rate_max"] <= decay["sigma_gamma"] * (1 + 1e-9)).all()
    assert decay.loc["0.5", "rate_median"] < decay.loc["1.5", "rate_median"]


def test_the_mlp_variance_ratio_is_drawn_against_depth_beside_the_mean_field(tmp_path):
    out = tmp_path / "r"
    code = main(
        [
            "report",
            "--case",
            "mlp",
            "--set",
            "depth=3,4,5",
            "--set",
            "init=standard,glorot",
            "--set",
            "width=64",
            *FAST,
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert code == 0
    assert "sweep_mlp_variance.png" in (out / "report.md").read_text()
    summ = pd.read_csv(out / "summaries.csv")
    rows = summ[summ["backend"] == "reference"]
    assert set(zip(rows["depth"], rows["init"], strict=True)) == {
        (d, i) for d in (3, 4, 5) for i in ("standard", "glorot")
    }
    assert rows["theory_rate"].notna().all()
    # the predicted ratios: Glorot's init keeps the variance nearer 1 than the standard one
    by = rows.groupby("init")["theory_rate"].median()
    assert abs(math.log(by["glorot"])) < abs(math.log(by["standard"]))


def test_a_phase_diagram_draws_an_underflowed_gradient_as_its_own_colour(tmp_path):
    from harness.report.sweep_document import phase_plot

    rows = pd.DataFrame({"sigma": ["0.5", "0.9", "0.5", "0.9"], "T": ["10", "10", "1000", "1000"],
                         "first_over_last": [1e-3, 0.1, 0.0, 1e-40], "rate": [0.5] * 4,
                         "theory_rate": [0.5, 0.9, 0.5, 0.9]})  # fmt: skip
    plot = phase_plot(rows, tmp_path / "p.png")
    assert "1 of 4 runs had ‖dL/dh_0‖ exactly 0" in plot.caption  # drawn black, not dropped
    assert "σ_max = 1): outside this grid" in plot.caption  # no line drawn where it is not
    assert plot.path.stat().st_size > 0


CRASHING_PLUGIN = """
import os


def grads(params, inputs, case):
    os._exit(7)  # the plug-in's process dies, not the worker that runs the point
"""


@pytest.mark.slow
def test_a_plug_ins_isolation_holds_on_a_dask_worker(tmp_path, capsys):
    plugin = tmp_path / "crash.py"
    plugin.write_text(CRASHING_PLUGIN)
    code = main(
        [
            "validate",
            f"{plugin}:grads",
            "--case",
            "mlp",
            "--set",
            "width=3,4",
            "--noise",
            "0",
            "--executor",
            "dask",
            "--jobs",
            "1",
            "--out",
            str(tmp_path / "o"),
        ]
    )
    out = capsys.readouterr().out
    assert code == 1 and "0 agree, 2 fail" in out
    points = pd.read_csv(tmp_path / "o" / "points.csv")
    assert points["status"].tolist() == ["failed", "failed"]  # a fault found, not a dead worker
    assert points["why"].str.contains("exit", case=False).all(), points["why"].tolist()


def test_the_sweep_bench_takes_no_other_plan(capsys):
    assert main(["bench", "--sweep", "--peers"]) == 2
    assert "--sweep runs its own grid" in capsys.readouterr().err
    assert main(["bench", "--quick", "--jobs", "4"]) == 2
    assert "--jobs belongs to --sweep" in capsys.readouterr().err


@pytest.mark.slow
def test_the_sweep_bench_times_each_executor_and_checks_their_tables_agree():
    from harness.sweep import bench_executors, bench_markdown

    fixed, swept = parse_grid(["T=3,5"])
    points = grid(swept, [0, 1])
    rows = bench_executors(
        Job(("elman",), (), ("reference", "torch"), noise=0), points, list(swept), jobs=2
    )
    assert rows[["executor", "jobs"]].values.tolist() == [["local", 1], ["local", 2], ["dask", 2]]
    assert rows["same_tables"].all() and (rows["failed"] == 0).all()
    assert (rows["wall_s"] > 0).all() and (rows["points_s"] > 0).all()
    md = bench_markdown(rows, {"machine": "test"}, "gradparity bench --sweep", "a test grid")
    assert md.count("| local |") == 2 and "| dask | 2 |" in md


ESCAPING_PLUGIN = """
def grads(params, inputs, case):
    raise ValueError("\\x1b[2J\\x1b[31mgone")  # a terminal control sequence in its message
"""


def test_what_a_plug_in_says_is_shown_not_sent_to_the_terminal_in_a_sweep(tmp_path, capsys):
    plugin = tmp_path / "esc.py"
    plugin.write_text(ESCAPING_PLUGIN)
    code = main(
        ["validate", f"{plugin}:grads", "--case", "mlp", "--set", "width=3,4", "--noise", "0"]
    )
    out = capsys.readouterr().out
    assert code == 1 and "\x1b" not in out
    assert "\\x1b[31mgone" in out  # shown, escaped, on each failed point's line


def test_every_mode_stays_per_point_identities_too(tmp_path):
    from harness.sweep import Job

    points = grid(parse_grid(["T=3,4"])[1], [0])
    job = Job(("elman",), (), ("reference", "torch"), noise=0, modes=("rev", "fwd", "hvp"))
    t = tables(sweep(job, points), ["T"])
    assert set(t["agreement"]["mode"]) == {"rev", "fwd", "hvp"}
    ids = t["identities"]
    assert set(zip(ids["T"], ids["identity"], strict=True)) == {
        (T, i) for T in ("3", "4") for i in ("transpose", "symmetry")
    }
    assert ids["ok"].all()


def test_the_landscapes_take_the_rows_of_the_families_that_declare_their_theory():
    """The sweep report picks its Elman and MLP rows by what each case's family declares
    (``harness.cases.family``), never by a case's name or a theory's wording."""
    from harness.report.sweep_document import elman_rows, mlp_rows

    summ = pd.DataFrame(
        {
            "case": ["wide_net", "mlp_lookalike", "rnn_a", "gate_b"],
            "backend": ["torch"] * 4,
            "depth": [2, 2, None, None],
            "sigma": [None, None, 0.5, 0.5],
            "T": [None, None, 10, 10],
            "theory_rate": [0.9, 0.9, 0.5, 0.5],
            "theory": ["mean field", "mean field", "a bound", "σ_max·γ = 0.5"],
        }
    )
    families = {"wide_net": "mlp", "mlp_lookalike": "user", "rnn_a": "elman", "gate_b": "lstm"}
    assert list(mlp_rows(summ, "torch", families)["case"]) == ["wide_net"]
    assert list(elman_rows(summ, "torch", families)["case"]) == ["rnn_a"]
    assert elman_rows(summ, "manual", families).empty
