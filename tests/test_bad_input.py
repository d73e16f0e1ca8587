"""Every number, size, grid, name and address the commands take is checked before any
work: out of its stated range it is one sentence naming the option and what it takes, exit
2, never a traceback; nothing is expanded, drawn, looked up or contacted first.

Sizes: every catalog case says from its options alone what its check needs in memory
(``Case.footprint``), the estimate is within its stated factor of the measured peak, and
options whose estimate exceeds this machine's memory (or --memory) are refused with it."""

from __future__ import annotations

import socket
import threading
import tracemalloc

import pytest

from harness import sweep
from harness.backends import REGISTRY
from harness.bench.memory import check_peak
from harness.cases import CATALOG, Case
from harness.cases.base import FOOTPRINT_FACTOR
from harness.cli import main
from harness.noise import MAX_RUNS
from harness.selection import (
    MAX_JOBS,
    MAX_POINTS,
    POINTS_CEILING,
    SEED_LIMIT,
    UsageError,
    amount,
    build_cases,
    machine_memory,
)

PLUGIN = ["examples/model_mlp.py:grads", "--case", "mlp"]


def refused(capsys, argv: list[str]) -> str:
    """The one line a refused command prints; it must exit 2 with no traceback."""
    try:
        code = main(argv)
    except SystemExit as e:  # argparse's own refusal
        code = e.code
    out, err = capsys.readouterr()
    assert code == 2, f"exit {code}: {out}{err}"
    assert "Traceback" not in err and out == ""
    return err


# --- numbers ------------------------------------------------------------------------------

JOBS = [
    ["run", "--case", "elman"],
    ["report", "--case", "elman"],
    ["validate", *PLUGIN],
    ["bench", "--sweep"],
    ["run", "--case", "elman", "--set", "T=3,4", "--executor", "dask"],
]


@pytest.mark.parametrize("command", JOBS, ids=lambda c: " ".join(c[:1] + c[-1:]))
@pytest.mark.parametrize("jobs", ["10000000000", str(MAX_JOBS + 1), "0", "two"])
def test_jobs_beyond_the_stated_limit_are_refused(
    refuse_work, capsys, monkeypatch, tmp_path, command, jobs
):
    err = refused(
        capsys,
        [*command, "--out", str(tmp_path), "--jobs", jobs]
        if command[0] in ("report", "bench")
        else [*command, "--jobs", jobs],
    )
    assert f"--jobs takes a whole number of processes from 1 to {MAX_JOBS}" in err
    assert repr(jobs) in err


@pytest.mark.parametrize(
    "command",
    [["run", "--case", "elman"], ["report", "--case", "elman"], ["validate", *PLUGIN]],
    ids=lambda c: c[0],
)
@pytest.mark.parametrize("seed", ["-1", str(SEED_LIMIT), "1e3"])
def test_a_seed_outside_0_to_2_to_the_32_is_refused(
    refuse_work, capsys, monkeypatch, command, seed
):
    err = refused(capsys, [*command, "--seed", seed])
    assert "--seed takes a whole number from 0 to 4,294,967,295" in err and repr(seed) in err


def test_the_largest_seed_is_accepted_and_the_seeds_of_a_sweep_share_the_range():
    from harness.cli import parser

    assert parser().parse_args(["run", "--seed", str(SEED_LIMIT - 1)]).seed == SEED_LIMIT - 1
    assert sweep.parse_seeds(f"0,{SEED_LIMIT - 1}") == [0, SEED_LIMIT - 1]
    with pytest.raises(UsageError, match="from 0 to 4,294,967,295, not 4294967296"):
        sweep.parse_seeds(f"0,{SEED_LIMIT}")


@pytest.mark.parametrize(
    "command", [["run", "--case", "elman"], ["validate", *PLUGIN]], ids=lambda c: c[0]
)
@pytest.mark.parametrize("runs", ["1000000000", str(MAX_RUNS + 1), "-1"])
def test_noise_runs_beyond_the_stated_limit_are_refused(
    refuse_work, capsys, monkeypatch, command, runs
):
    err = refused(capsys, [*command, "--noise", runs])
    assert f"--noise takes a whole number of perturbed runs from 0 to {MAX_RUNS:,}" in err


@pytest.mark.parametrize("threads", ["1000000000", "0"])
def test_bench_threads_beyond_this_machines_cpus_are_refused(
    refuse_work, capsys, monkeypatch, tmp_path, threads
):
    from harness.bench.threads import cpus

    err = refused(capsys, ["bench", "--quick", "--out", str(tmp_path), "--threads", threads])
    assert f"--threads takes a whole number from 1 to {cpus()}" in err


@pytest.mark.parametrize("limit", ["inf", "1e300", "nan", "-1"])
def test_bench_peer_limit_takes_seconds_up_to_a_week(
    refuse_work, capsys, monkeypatch, tmp_path, limit
):
    err = refused(capsys, ["bench", "--peers", "--out", str(tmp_path), "--peer-limit", limit])
    assert "--peer-limit takes seconds from 0 to 604800 (a week; 0 skips it)" in err


def test_the_limits_are_stated_in_help(capsys):
    for command in (["run"], ["validate"], ["bench"]):
        with pytest.raises(SystemExit):
            main([*command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert f"at most {MAX_JOBS}" in text
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "0 to 4,294,967,295" in text and f"at most {MAX_RUNS:,}" in text
    assert f"default {MAX_POINTS:,}" in text and "tcp://HOST:PORT" in text
    for command in (["run"], ["validate"], ["selftest"], ["bench"]):
        with pytest.raises(SystemExit):
            main([*command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert "above 0 and at most 604800" in text, command  # --timeout
        if command != ["selftest"]:
            assert "at least 256M" in text, command  # --memory
    with pytest.raises(SystemExit):
        main(["bench", "--help"])
    assert "from 0 to 604800" in " ".join(capsys.readouterr().out.split())  # --peer-limit


# --- choices -------------------------------------------------------------------------------

BAD_CHOICES = [
    (["run", "--dtype", "flaot32"], "--dtype", "float64"),
    (["run", "--backend", "troch"], "--backend", "torch"),
    (["run", "--mode", "bwd"], "--mode", "rev"),
    (["run", "--jobs", "0"], "--jobs", "1"),
    (["run", "--executor", "daks"], "--executor", "dask"),
    (["validate", "examples/model_mlp.py:grads", "--as", "modle"], "--as", "model"),
    (["report", "--unknown-option"], "--unknown-option", "unrecognized"),
    (["describe"], "case", "required"),
    (["bench", "--threads"], "--threads", "expected one argument"),
    (["selftest", "--dtype", "float16"], "--dtype", "both"),
    (["lits"], "command", "list"),
]


@pytest.mark.parametrize(
    ("argv", "option", "named"), BAD_CHOICES, ids=[" ".join(argv) for argv, _, _ in BAD_CHOICES]
)
def test_a_bad_option_value_is_one_line_without_the_usage_block(
    refuse_work, capsys, argv, option, named
):
    err = refused(capsys, argv)
    command = "gradparity" if argv[0] == "lits" else f"gradparity {argv[0]}"
    assert err.count("\n") == 1 and err.startswith(f"{command}: error: "), err
    assert option in err and named in err


def test_a_set_value_with_a_line_break_is_refused_as_a_case_s_name_is(refuse_work, capsys):
    """A value goes into the case's label, which begins lines of the output (its other
    control characters are escaped where it is shown, as a name's are)."""
    err = refused(capsys, ["run", "--case", "elman", "--set", "act=tanh\nb"])
    assert "--set act" in err and "line break" in err and err.count("\n") == 1


# --- sizes ---------------------------------------------------------------------------------

GiB = 2**30

# Sizes whose checks peak at 25-100 MiB: the data dwarf what a fresh process's libraries
# add on the first call of a new shape, and each measurement takes seconds.
# The default suite measures the sizes whose check takes a few seconds; the unrolls, whose
# checks at a measurable size take 10-35 s each (a whole check in a fresh process), are
# measured with the slow tests (``pytest -m slow``, as ``.ci/run`` runs them).
SIZES = [
    ("mlp", {"width": 64, "N": 2048}),
    ("card_affine_square", {"n": 200_000}),
    ("bias_broadcast", {"N": 20_000, "D": 16, "H": 16}),
]
MORE_SIZES = [
    ("elman", {"T": 1000, "H": 64, "B": 16}),
    ("lstm", {"T": 20, "H": 256, "B": 4}),
    ("gru", {"T": 100, "H": 64, "B": 16}),
    ("adbench_lstm", {"source": "random", "l": 1, "c": 1000, "b": 50}),
    # wide: at H=256 (24 MiB estimated) the check measured 37-48 MiB on a quiet machine and
    # 52 beside .ci/run's other slow tests, the libraries' own buffers for new shapes (some
    # 20 MiB) outweighing what is estimated; at H=512: 67 MiB estimated, 72-79 measured
    ("elman", {"T": 50, "H": 512, "B": 8}),
    ("elman", {"T": 5000}),  # many small steps: the graph's per-value cost
    ("lstm", {"T": 100, "H": 64, "B": 16}),
    ("gru", {"T": 20, "H": 256, "B": 4}),
    ("mlp", {"width": 256, "depth": 4, "N": 64}),
    ("softmax_xent", {"N": 20_000, "D": 16, "C": 16}),
    ("every_primitive", {"N": 20_000}),
    ("deep_chain", {"K": 24, "n": 20_000}),
    ("fan_out_fan_in", {"n": 200_000}),
]


def _within_the_factor(name: str, cfg: dict) -> None:
    """The estimate against the smallest of up to three measurements. The high-water mark
    of the same check moves with the machine's load (the libraries' own threads overlap
    their buffers differently): gru[T=20,H=256,B=4] measured 48-52 MiB on a quiet machine
    and 53-77 MiB beside two busy processes, as under ``pytest -n auto``. Load only adds,
    so a measurement that leaves the factor is taken again before the estimate is blamed;
    the smallest is the check's own need."""
    case = CATALOG[name](**cfg)
    estimate, measured = case.footprint(), check_peak(case)
    for _ in range(2):
        if estimate / measured >= 1 / FOOTPRINT_FACTOR:
            break
        measured = min(measured, check_peak(case))
    assert measured > 16 * 2**20, "too small to measure: the libraries' own buffers dominate"
    ratio = estimate / measured
    assert 1 / FOOTPRINT_FACTOR <= ratio <= FOOTPRINT_FACTOR, (
        f"{case.label}: estimate {amount(estimate)}, measured {amount(measured)}"
    )


@pytest.mark.parametrize(("name", "cfg"), SIZES, ids=[f"{n}{c}" for n, c in SIZES])
def test_the_estimate_is_within_its_factor_of_the_measured_peak(name, cfg):
    _within_the_factor(name, cfg)


@pytest.mark.slow
@pytest.mark.parametrize(("name", "cfg"), MORE_SIZES, ids=[f"{n}{c}" for n, c in MORE_SIZES])
def test_the_estimate_is_within_its_factor_at_more_sizes(name, cfg):
    _within_the_factor(name, cfg)


def test_every_catalog_case_says_what_it_needs_and_a_case_of_yours_need_not():
    for name, cls in CATALOG.items():
        assert isinstance(cls().footprint(), int) and cls().footprint() > 0, name

    class Mine(Case):
        name, family = "mine", "user"

    assert Mine().footprint() is None
    assert build_cases(["elman"], {"T": "1000000000"}, memory=None)  # unchecked: built


def test_a_case_of_the_users_is_never_refused_by_size(tmp_path):
    from harness.sandbox.case import Limits

    path = tmp_path / "big.py"
    path.write_text(
        "from harness.cases import Case\n\n\nclass Big(Case):\n"
        '    name, family = "big", "user"\n    options = {"n": 10**12}\n'
    )
    (case,) = build_cases([f"{path}:Big"], {}, Limits(), memory=(GiB, "1 GiB"))
    assert case.footprint() is None


@pytest.mark.parametrize(("command", "setting", "label", "needs"), [
    (["describe", "elman"], "T=1000000000", "elman[T=1000000000]", "7.1 TiB"),
    (["describe", "elman"], "H=1000000", "elman[H=1000000]", "138 TiB"),
    (["describe", "mlp"], "width=100000", "mlp[width=100000]", "2.8 TiB"),
    (["run", "--case", "elman"], "T=1000000000", "elman[T=1000000000]", "7.1 TiB"),
    (["run", "--case", "elman"], "T=10,1000000000", "elman[T=1000000000]", "7.1 TiB"),  # a sweep
    (["validate", "examples/model_mlp.py:grads", "--case", "mlp"], "width=100000",
     "mlp[width=100000]", "2.8 TiB"),
    (["bench", "--case", "mlp"], "width=100000", "mlp[width=100000]", "2.8 TiB"),
])  # fmt: skip
def test_a_case_too_big_for_this_machine_is_refused_with_its_estimate(
    refuse_work, capsys, monkeypatch, tmp_path, command, setting, label, needs
):
    out = ["--out", str(tmp_path)] if command[0] == "bench" else []
    err = refused(capsys, [*command, *out, "--set", setting])
    assert f"case '{label}' needs about {needs} of memory" in err
    assert f"more than this machine's memory ({amount(machine_memory())})" in err
    assert "--no-memory-check" in err


def test_memory_given_is_the_budget_and_no_memory_check_lifts_it(refuse_work, capsys, monkeypatch):
    case = CATALOG["elman"](T=100_000)  # about 0.75 GiB
    assert GiB / 2 < case.footprint() < machine_memory()
    err = refused(capsys, ["run", "--case", "elman", "--set", "T=100000", "--memory", "512M"])
    assert f"needs about {amount(case.footprint())}" in err
    assert "more than --memory (512 MiB)" in err
    with pytest.raises(AssertionError, match="the work started"):  # past the check
        main(
            ["run", "--case", "elman", "--set", "T=100000", "--memory", "512M", "--no-memory-check"]
        )


def test_the_check_is_a_usage_error_from_build_cases():
    with pytest.raises(UsageError, match=r"case 'gru\[H=100000\]' needs about"):
        build_cases(["gru"], {"H": "100000"}, memory=(GiB, "1 GiB"))


# --- grids --------------------------------------------------------------------------------


def test_a_huge_range_is_counted_not_expanded():
    tracemalloc.start()
    try:
        with pytest.raises(UsageError) as refusal:
            sweep.parse_grid(["T=1-10000000"])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2**20  # ten million values as strings would take hundreds of MiB
    assert str(refusal.value) == (
        f"--set T=1-10000000 makes 10,000,000 values; a sweep takes at most {MAX_POINTS:,} "
        "points (--max-points N raises the limit)"
    )


def test_a_huge_seed_range_is_counted_not_expanded():
    tracemalloc.start()
    try:
        with pytest.raises(UsageError, match="--seeds 0-10000000 makes 10,000,001 values"):
            sweep.parse_seeds("0-10000000")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2**20


def test_the_product_of_the_swept_options_is_counted_before_the_grid_is_built():
    fixed, swept = sweep.parse_grid(["T=1-100", "H=1-100"])
    with pytest.raises(UsageError) as refusal:
        sweep.grid(swept, list(range(10)))
    assert str(refusal.value) == (
        f"the grid T × H × seed has 100 × 100 × 10 = 100,000 points; a sweep takes at most "
        f"{MAX_POINTS:,} (--max-points N raises the limit)"
    )
    assert len(sweep.grid(swept, list(range(10)), limit=100_000)) == 100_000


def test_max_points_reaches_the_check_and_is_itself_bounded(refuse_work, capsys, monkeypatch):
    err = refused(capsys, ["run", "--case", "elman", "--set", "T=1-3", "--max-points", "2"])
    assert "makes 3 values; a sweep takes at most 2 points" in err
    err = refused(capsys, ["run", "--case", "elman", "--seeds", "0-3", "--max-points", "2"])
    assert "--seeds 0-3 makes 4 values" in err
    err = refused(capsys, ["run", "--case", "elman", "--max-points", str(POINTS_CEILING + 1)])
    assert f"--max-points takes a whole number from 1 to {POINTS_CEILING:,}" in err


@pytest.mark.parametrize(
    "grid",
    [["--set", "T=1-100000"], ["--seeds", "0-100000"], ["--set", "T=1-200", "--set", "H=1-200"]],
)
def test_a_grid_beyond_the_limit_is_exit_2_before_work(refuse_work, capsys, monkeypatch, grid):
    err = refused(capsys, ["run", "--case", "elman", *grid])
    assert f"at most {MAX_POINTS:,}" in err and "--max-points" in err


# --- names --------------------------------------------------------------------------------

CASE_COMMANDS = [["run"], ["report"], ["validate", "examples/model_mlp.py:grads"], ["bench"]]


@pytest.mark.parametrize("command", CASE_COMMANDS, ids=lambda c: c[0])
@pytest.mark.parametrize("pattern", ["", "  "])
def test_an_empty_case_pattern_is_refused_not_read_as_every_case(
    refuse_work, capsys, monkeypatch, tmp_path, command, pattern
):
    out = ["--out", str(tmp_path)] if command[0] in ("report", "bench") else []
    err = refused(capsys, [*command, *out, "--case", pattern])
    assert f"an empty case pattern ({pattern!r})" in err and "elman" in err  # the cases listed


def test_describe_refuses_an_empty_case_too(capsys):
    assert "no case ''" in refused(capsys, ["describe", ""])


BACKEND_OPTIONS = [
    (command, option)
    for command in (
        ["run", "--case", "elman"],
        ["report", "--case", "elman"],
        ["run", "--case", "elman", "--set", "T=3,4"],
        ["validate", *PLUGIN],
    )
    for option in ("--baseline", "--reference" if command[0] == "validate" else "--backend")
]


@pytest.mark.parametrize(
    "command, option",
    BACKEND_OPTIONS,
    ids=lambda v: " ".join(v[:1] + v[-1:]) if isinstance(v, list) else v,
)
def test_an_unknown_backend_names_the_known_ones_before_work(
    refuse_work, capsys, monkeypatch, tmp_path, command, option
):
    out = ["--out", str(tmp_path)] if command[0] == "report" else []
    err = refused(capsys, [*command, *out, option, "nosuch"])
    assert option in err and "'nosuch'" in err
    assert all(name in err for name in REGISTRY)


def test_validate_refuses_a_baseline_that_is_not_among_its_references(
    refuse_work, capsys, monkeypatch
):
    err = refused(capsys, ["validate", *PLUGIN, "--reference", "torch", "--baseline", "jax"])
    assert "--baseline 'jax' is not one of the references (torch)" in err


def test_selftest_refuses_an_unknown_reference(capsys):
    err = refused(capsys, ["selftest", "--reference", "nosuch"])
    assert "'nosuch'" in err and all(name in err for name in REGISTRY)


# --- the Dask scheduler's address ---------------------------------------------------------


def no_lookup(monkeypatch) -> None:
    def no(*args, **kwargs):
        raise AssertionError("the address was looked up before its syntax was checked")

    monkeypatch.setattr(socket, "getaddrinfo", no)
    monkeypatch.setattr(socket, "create_connection", no)


@pytest.mark.parametrize("address, why", [
    ("tcp://<host>:8786", "'<host>' is not a host name"),
    ("", "an empty address"),
    ("tcp://127.0.0.1", "no port"),
    ("127.0.0.1:8786", "no scheme"),
    ("tls://127.0.0.1:8786", "scheme 'tls'"),
    ("http://127.0.0.1:8786", "scheme 'http'"),
    ("tcp://127.0.0.1:0", "port 0"),
    ("tcp://127.0.0.1:65536", "port 65536"),
    ("tcp://127.0.0.1:87a6", "port '87a6'"),
    ("tcp://:8786", "no host"),
    ("tcp://-scheduler:8786", "'-scheduler' is not a host name"),
    ("tcp://[::zz]:8786", "'[::zz]' is not a host name"),
    ("garbage", "no scheme"),
])  # fmt: skip
def test_a_scheduler_address_is_checked_as_syntax_before_any_lookup(
    refuse_work, capsys, monkeypatch, address, why
):
    no_lookup(monkeypatch)
    err = refused(
        capsys,
        ["run", "--case", "elman", "--set", "T=3,4", "--executor", "dask", "--scheduler", address],
    )
    assert f"--scheduler {address!r}" in err and why in err
    assert "tcp://HOST:PORT" in err and "1 to 65535" in err


@pytest.mark.parametrize(
    "address",
    [
        "tcp://127.0.0.1:8786",
        "tcp://scheduler.example.org:8786",
        "tcp://my-cluster:1",
        "tcp://[::1]:65535",
    ],
)
def test_a_well_formed_scheduler_address_passes_the_syntax_check(monkeypatch, address):
    no_lookup(monkeypatch)
    assert sweep.scheduler_address(address) == address


@pytest.fixture
def mute_server():
    """A TCP server on 127.0.0.1 that accepts connections and says what it is told to (or
    nothing): no Dask scheduler."""
    servers = []

    def start(says: bytes = b"") -> str:
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen(8)
        held = []

        def serve():
            while True:
                try:
                    conn, _ = srv.accept()
                except OSError:
                    return
                held.append(conn)
                if says:
                    try:
                        conn.sendall(says)
                    except OSError:
                        pass

        threading.Thread(target=serve, daemon=True).start()
        servers.append((srv, held))
        return f"tcp://127.0.0.1:{srv.getsockname()[1]}"

    yield start
    for srv, held in servers:
        srv.close()
        for conn in held:
            conn.close()


@pytest.mark.parametrize(
    "says", [b"", b"HTTP/1.1 200 OK\r\n\r\n" + b"\xff" * 4096], ids=["silent", "garbage"]
)
def test_a_server_that_is_no_scheduler_is_exit_2_within_the_stated_timeout(
    refuse_work, capsys, monkeypatch, mute_server, says
):
    monkeypatch.setattr(sweep, "SCHEDULER_TIMEOUT", 1.0)
    address = mute_server(says)
    argv = [
        "run",
        "--case",
        "elman",
        "--set",
        "T=3,4",
        "--executor",
        "dask",
        "--scheduler",
        address,
    ]
    done: list = []
    thread = threading.Thread(target=lambda: done.append(refused(capsys, argv)), daemon=True)
    thread.start()
    thread.join(60)  # not a timing bound: a hang shows as no answer at all
    assert not thread.is_alive(), "the connection attempt hung"
    assert done, "the command did not exit 2 (see the captured output)"
    assert f"--scheduler {address!r}" in done[0] and "no Dask scheduler answers there" in done[0]


def test_a_live_scheduler_passes_the_check():
    from dask.distributed import LocalCluster

    with LocalCluster(n_workers=0, host="127.0.0.1", dashboard_address=None) as cluster:
        sweep.check_scheduler(cluster.scheduler_address)  # raises where it is refused


def test_the_readme_names_no_address_a_reader_could_contact():
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    assert "tcp://<host>:8786" in text
    assert not re.search(r"tcp://\d+\.\d+\.\d+\.\d+:", text.replace("tcp://127.0.0.1:", ""))


def test_an_out_folder_that_is_a_broken_link_is_refused_naming_its_target(
    refuse_work, capsys, tmp_path
):
    link = tmp_path / "r"
    link.symlink_to(tmp_path / "gone")
    err = refused(capsys, ["report", "--case", "elman", "--out", str(link)])
    assert "--out" in err and "link" in err and "gone" in err and "File exists" not in err
