"""Every folder gradparity writes is written whole or not at all: a write error or an
interrupt leaves the files that were there as they were, a new report leaves none of an
earlier report's files beside it (and never touches a user's own), two runs never write
one folder at once, and a relative --out names the folder where the command started,
whatever the code it runs does to the working directory."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import random
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.cli import main

ROOT = Path(__file__).resolve().parents[1]
CHEAP = [
    "--backend",
    "reference",
    "--backend",
    "numeric",
    "--baseline",
    "reference",
    "--noise",
    "0",
    "--quiet",
]
CLI = [sys.executable, "-m", "harness.cli"]

SQ = '''
from harness.cases import Case, at_least


class Sq(Case):
    """L = Σ (k x)²."""

    name, family = "sq", "mine"
    options = {"k": 1}
    allowed = {"k": at_least(1)}

    def setup(self, rng):
        return {"x": rng.standard_normal(3)}, {}

    def loss(self, xp, p, inputs):
        BODY
'''


def report(out: Path | str, case: str, *extra: str) -> int:
    return main(["report", "--case", case, "--out", str(out), *CHEAP, *extra])


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder``, hidden ones included: relative path -> bytes."""
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def restore(folder: Path, files: dict[str, bytes]) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)


def leftovers(folder: Path) -> list[str]:
    """What a run in progress would have left: staging folders, temporary files."""
    return [p.name for p in folder.iterdir() if p.name.startswith(".gradparity-")]


def assert_whole(folder: Path, cases: list[str] | None = None) -> None:
    """One report, whole: every file its manifest lists is there, every file report.md
    links is there, summary.json names ``cases``, and no run's leftovers lie about."""
    from harness import output

    listed = output.manifest(folder)
    assert listed, f"{folder} has no manifest"
    missing = [name for name in listed if not (folder / name).is_file()]
    assert not missing, f"the manifest lists files that are not there: {missing}"
    md = (folder / "report.md").read_text(encoding="utf-8")
    links = re.findall(r"\]\(([^)\s#]+)\)", md)
    dangling = [x for x in links if "://" not in x and not (folder / x).is_file()]
    assert not dangling, f"report.md links files that are not there: {dangling}"
    if cases is not None:
        assert json.loads((folder / "summary.json").read_text())["cases"] == cases
    assert not leftovers(folder)


def refuse_work(monkeypatch) -> None:
    import harness.drift  # it binds compare_backends when imported: before the stub
    import harness.runner

    def no(*args, **kwargs):
        raise AssertionError("the work started before the output path was checked")

    monkeypatch.setattr(harness.runner, "compare_backends", no)


# --- a write error leaves what was there


def test_a_write_error_mid_report_leaves_the_previous_report_byte_identical(
    tmp_path, monkeypatch, capsys
):
    """A full disk while report.html is written (the CSVs, summary.json, report.md and the
    plots are written by then): exit 1, one sentence naming the folder and the OS error,
    and the earlier report exactly as it was."""
    import harness.report.files as files

    out = tmp_path / "r"
    assert report(out, "card_affine_square") == 0
    before = snapshot(out)

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(files, "to_html", full_disk)
    capsys.readouterr()
    code = report(out, "elman")
    err = capsys.readouterr().err
    assert code == 1
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert str(out) in err and os.strerror(errno.ENOSPC) in err
    assert snapshot(out) == before


def test_a_file_size_limit_mid_report_leaves_the_previous_report(tmp_path):
    """``ulimit -f``: the elman report's plot and report.html are larger than the limit,
    so writing stops with EFBIG part way; the card's report (written without a limit)
    stays whole and byte-identical."""
    out = tmp_path / "r"
    assert report(out, "card_affine_square") == 0
    before = snapshot(out)
    limit = 20_000  # bytes: above every CSV of the elman report, below its plot and HTML

    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    done = subprocess.run(
        [*CLI, "report", "--case", "elman", "--out", str(out), *CHEAP],
        preexec_fn=limited,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert str(out) in done.stderr and os.strerror(errno.EFBIG) in done.stderr
    assert snapshot(out) == before


def test_a_failing_move_during_the_commit_puts_every_file_back(tmp_path, monkeypatch):
    """The commit moves the files in one by one; when a move fails part way, the files
    already moved go back and the old ones return: the folder is as it was."""
    from harness import output

    out = tmp_path / "r"
    out.mkdir()
    with output.staged(out, "report") as stage:
        for name in ("a.csv", "b.csv", "c.csv", "report.md"):
            (stage / name).write_text(f"old {name}")
    before = snapshot(out)
    real, calls = os.replace, []

    def failing(src, dst):
        calls.append(dst)
        if len(calls) == 4:
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        return real(src, dst)

    monkeypatch.setattr(os, "replace", failing)
    with pytest.raises(output.OutputError, match=re.escape(str(out))):
        with output.staged(out, "report") as stage:
            for name in ("a.csv", "b.csv", "d.csv", "report.md"):
                (stage / name).write_text(f"new {name}")
    monkeypatch.setattr(os, "replace", real)
    assert len(calls) >= 4
    assert snapshot(out) == before


# --- an interrupt leaves the old set or the new one, whole


def test_an_interrupt_while_staging_leaves_the_old_files_and_no_staging_folder(tmp_path):
    from harness import output

    out = tmp_path / "r"
    out.mkdir()
    with output.staged(out, "report") as stage:
        (stage / "report.md").write_text("old")
    before = snapshot(out)
    with pytest.raises(KeyboardInterrupt):
        with output.staged(out, "report") as stage:
            (stage / "report.md").write_text("new")
            raise KeyboardInterrupt
    assert snapshot(out) == before and not leftovers(out)


class Terminated(Exception):
    """What the SIGTERM handler of these tests raises (the default would end pytest)."""


def _terminate(signum, frame):
    raise Terminated


@pytest.mark.parametrize(
    "sig, raised", [(signal.SIGINT, KeyboardInterrupt), (signal.SIGTERM, Terminated)]
)
def test_a_signal_during_the_commit_is_held_until_the_new_set_is_in(
    sig, raised, tmp_path, monkeypatch
):
    """SIGINT or SIGTERM arrives while the files are moved in: the commit finishes, then
    the signal's handler runs; the folder holds the whole new set."""
    from harness import output

    out = tmp_path / "r"
    out.mkdir()
    with output.staged(out, "report") as stage:
        for name in ("a.csv", "b.csv", "report.md"):
            (stage / name).write_text("old")
    real, calls = os.replace, []

    def interrupted(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            os.kill(os.getpid(), sig)
            time.sleep(0.05)  # Python runs the handler at the next instruction it can
        return real(src, dst)

    previous = signal.signal(signal.SIGTERM, _terminate)
    monkeypatch.setattr(os, "replace", interrupted)
    try:
        with pytest.raises(raised):
            with output.staged(out, "report") as stage:
                for name in ("a.csv", "c.csv", "report.md"):
                    (stage / name).write_text("new")
    finally:
        monkeypatch.setattr(os, "replace", real)
        signal.signal(signal.SIGTERM, previous)
    assert len(calls) > 2
    files = {k: v for k, v in snapshot(out).items() if not k.startswith(".")}
    assert files == {"a.csv": b"new", "c.csv": b"new", "report.md": b"new"}
    assert sorted(output.manifest(out)) == ["a.csv", "c.csv", "report.md"]
    assert not leftovers(out)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_users_folder_where_a_file_goes_stops_the_commit_and_keeps_everything(tmp_path):
    """A folder of the user's named like a file the report writes is never moved aside
    (and deleted with the staging folder): the commit stops, nothing changes."""
    from harness import output

    out = tmp_path / "r"
    (out / "report.md").mkdir(parents=True)
    (out / "report.md" / "mine.txt").write_text("mine")
    (out / "drift.csv").write_text("an older version's")
    before = snapshot(out)
    with pytest.raises(output.OutputError, match="'report.md' there is a folder"):
        with output.staged(out, "report", {"report.md", "drift.csv"}) as stage:
            (stage / "report.md").write_text("new")
    assert snapshot(out) == before and not leftovers(out)


@pytest.mark.slow  # eight reports, one after the other: about 40 s on 2 cores
def test_sigint_at_random_moments_leaves_the_old_report_or_the_new_one_whole(tmp_path):
    """``gradparity report`` interrupted at moments spread over its whole run (starting,
    computing, plotting, writing — most of them late, where the files are written): each
    time the folder holds the earlier report byte for byte, or the new one whole — never
    a mixture, never a staging folder."""
    out = tmp_path / "r"
    assert report(out, "card_affine_square") == 0
    old = snapshot(out)
    argv = [*CLI, "report", "--case", "elman", "--out", str(out), *CHEAP]
    started = time.monotonic()
    subprocess.run(
        [*argv[: -len(CHEAP) - 2], "--out", str(tmp_path / "timing"), *CHEAP],
        check=True,
        capture_output=True,
        timeout=300,
        cwd=ROOT,
    )
    took = time.monotonic() - started
    rng = random.Random(22)
    tries, outcomes = 8, []
    for i in range(tries):
        restore(out, old)
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)
        time.sleep(took * (0.3 + 0.8 * (i + rng.random()) / tries))
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=300)
        now = snapshot(out)
        if now == old:
            outcomes.append("old")
        else:
            assert_whole(out, ["elman"])
            outcomes.append("new")
    print(outcomes)


# --- no stale files, and never a user's


def test_a_report_leaves_none_of_an_earlier_reports_files_and_keeps_the_users(tmp_path):
    out = tmp_path / "r"
    assert (
        main(
            [
                "report",
                "--case",
                "elman",
                "--backend",
                "reference",
                "--backend",
                "torch",
                "--noise",
                "0",
                "--quiet",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert (out / "drift.csv").is_file() and (out / "steps_elman.png").is_file()
    (out / "notes.txt").write_text("mine")
    (out / "mine").mkdir()
    (out / "mine" / "table.csv").write_text("also mine")
    assert report(out, "card_affine_square") == 0
    assert not (out / "drift.csv").exists() and not (out / "steps_elman.png").exists()
    assert (out / "notes.txt").read_text() == "mine"
    assert (out / "mine" / "table.csv").read_text() == "also mine"
    assert_whole(out, ["card_affine_square"])


def test_a_folder_from_an_older_version_loses_only_the_names_gradparity_writes(tmp_path):
    """No manifest: of the files there, only those gradparity is known to write and did
    not write again go; bench.md (another command's) and the user's stay."""
    out = tmp_path / "r"
    out.mkdir()
    for name in (
        "drift.csv",
        "steps_old.png",
        "report.md",
        "summary.json",
        "notes.txt",
        "bench.md",
        "steps.txt",
    ):
        (out / name).write_text("earlier")
    assert report(out, "card_affine_square") == 0
    assert not (out / "drift.csv").exists() and not (out / "steps_old.png").exists()
    for name in ("notes.txt", "bench.md", "steps.txt"):
        assert (out / name).read_text() == "earlier"
    assert_whole(out, ["card_affine_square"])


def test_writers_of_other_files_in_one_folder_keep_each_others(tmp_path):
    """reports/ holds the report, bench.md and peers.md: each command replaces its own."""
    from harness import output

    out = tmp_path / "r"
    out.mkdir()
    with output.staged(out, "report") as stage:
        (stage / "report.md").write_text("report 1")
        (stage / "drift.csv").write_text("report 1")
    with output.staged(out, "bench") as stage:
        (stage / "bench.md").write_text("bench 1")
    with output.staged(out, "report") as stage:
        (stage / "report.md").write_text("report 2")
    assert (out / "bench.md").read_text() == "bench 1"
    assert (out / "report.md").read_text() == "report 2" and not (out / "drift.csv").exists()
    with output.staged(out, "bench") as stage:
        (stage / "bench.md").write_text("bench 2")
    assert (out / "report.md").read_text() == "report 2"
    assert output.manifest(out) == {"report.md": "report", "bench.md": "bench"}


KILLER = """
import os
import signal


def grads(p, x, case):
    if case.n > 3:  # run in the point's own process (no isolation asked for): it dies
        os.kill(os.getpid(), signal.SIGKILL)  # (its os._exit is an exit fault there)
    return {"x": 2 * (3 * p["x"] + 1) * 3}
"""


def test_a_sweep_whose_points_all_die_leaves_no_table_of_the_previous_sweep(tmp_path):
    """Every point's process dies: the new sweep has no agreement table, and the previous
    sweep's agreement.csv must not stand beside the new points.csv."""
    killer = tmp_path / "killer.py"
    killer.write_text(KILLER)
    out = tmp_path / "sweep"
    sweep = [
        "validate",
        f"{killer}:grads",
        "--as",
        "model",
        "--case",
        "card_affine_square",
        "--reference",
        "reference",
        "--noise",
        "0",
        "--no-isolation",
        "--out",
        str(out),
    ]
    assert main([*sweep, "--set", "n=2,3"]) == 0
    assert (out / "agreement.csv").is_file()
    done = subprocess.run(
        [*CLI, *sweep, "--set", "n=4,5", "--jobs", "2"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert done.returncode == 1 and "worker died" in done.stdout
    assert (out / "points.csv").is_file() and not (out / "agreement.csv").exists()
    assert not leftovers(out)


def test_a_csv_of_a_sweep_whose_points_all_died_holds_the_header_alone(tmp_path, monkeypatch):
    """``run --csv`` after a sweep in which no point came back: the header alone replaces
    the earlier file, never leaving an earlier run's rows under the new run's name."""
    from harness import sweep

    csv = tmp_path / "agreement.csv"
    args = ["run", "--case", "card_affine_square", *CHEAP[:-1], "--set", "n=2,3", "--csv", str(csv)]
    assert main(args) == 0
    first = csv.read_text().splitlines()
    assert len(first) > 1  # the header and rows
    monkeypatch.setattr(
        sweep,
        "sweep",
        lambda job, points, *a, **k: [
            sweep.Outcome(p, "error", 1, error="its worker died") for p in points
        ],
    )
    assert main(args) == 1
    assert csv.read_text().splitlines() == first[:1]  # no row of the earlier run


VALIDATE = [
    "validate",
    str(ROOT / "examples" / "model_mlp.py") + ":grads",
    "--case",
    "mlp",
    "--reference",
    "reference",
    "--no-isolation",
    "--quiet",
]


def test_validate_out_over_a_report_replaces_all_of_it(tmp_path, capsys):
    """validate --out writes a report too: over an earlier report, none of that report's
    files it did not write again stay (a drift table, the plot of another case)."""
    from harness import output

    out = tmp_path / "r"
    with output.staged(out, "report") as stage:
        for name in ("report.md", "drift.csv", "steps_elman.png", "summary.json"):
            (stage / name).write_text("the earlier report")
    (out / "notes.txt").write_text("mine")
    assert main([*VALIDATE, "--out", str(out)]) == 0, capsys.readouterr()
    assert not (out / "drift.csv").exists() and not (out / "steps_elman.png").exists()
    assert (out / "diagnostics.md").is_file() and (out / "notes.txt").read_text() == "mine"
    assert_whole(out, ["mlp"])


def test_a_validation_report_that_cannot_be_rendered_leaves_no_part_of_it(
    tmp_path, monkeypatch, capsys
):
    """Where the report cannot be rendered, report-error.txt says why and the tables stand
    alone: no summary.json, plot or magnitudes.csv of the failed attempt beside them."""
    import harness.report.document as document

    def fails(comparison, cases, facts, drift, out):
        (out / "steps_mlp.png").write_bytes(b"half a plot")
        raise ValueError("cannot lay this out")

    monkeypatch.setattr(document, "document", fails)
    out = tmp_path / "v"
    assert main([*VALIDATE, "--out", str(out)]) == 0, capsys.readouterr()
    names = {p.name for p in out.iterdir() if not p.name.startswith(".")}
    assert names == {
        "agreement.csv",
        "runs.csv",
        "faults.csv",
        "diagnostics.md",
        "report-error.txt",
    }
    assert "cannot lay this out" in (out / "report-error.txt").read_text()
    from harness import output

    assert sorted(output.manifest(out)) == sorted(names)


# --- two runs into one folder


def test_a_folder_another_run_is_writing_is_refused_with_exit_2_naming_its_pid(
    tmp_path, monkeypatch, capsys
):
    out = tmp_path / "r"
    out.mkdir()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from harness import output; "
            "output.claim(sys.argv[1]); print('held', flush=True); sys.stdin.read()",
            str(out),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with monkeypatch.context() as m:
            refuse_work(m)
            code = report(out, "card_affine_square")
        err = capsys.readouterr().err
        assert code == 2 and len(err.strip().splitlines()) == 1
        assert str(out) in err and f"pid {holder.pid}" in err and "--out" in err
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)
    assert report(out, "card_affine_square") == 0  # the lock went with its holder
    assert not (out / ".gradparity.lock").exists()


def test_four_reports_into_one_folder_at_once(tmp_path):
    """Each run either writes the folder or is refused (exit 2, the message); at the end
    the folder holds one report, whole."""
    out = tmp_path / "r"
    procs = [
        subprocess.Popen(
            [*CLI, "report", "--case", case, "--out", str(out), *CHEAP],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        for case in ("card_affine_square", "elman") * 2
    ]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    for code, err in results:
        assert code in (0, 2), err
        if code == 2:
            assert "another gradparity run" in err and len(err.strip().splitlines()) == 1
    assert any(code == 0 for code, _ in results)
    assert_whole(out)
    for p in procs:
        p.stdout.close()
        p.stderr.close()


def test_a_lock_left_by_a_killed_run_does_not_block_the_next(tmp_path):
    """flock dies with its process: a run killed with SIGKILL leaves the folder free (and
    its staging folder, if any, is cleared by the next run)."""
    out = tmp_path / "r"
    out.mkdir()
    (out / ".gradparity.lock").write_text("99999999\n")  # a stale file, nobody holds it
    (out / ".gradparity-stage-dead").mkdir()
    (out / ".gradparity-stage-dead" / "report.md").write_text("half")
    assert report(out, "card_affine_square") == 0
    assert_whole(out, ["card_affine_square"])


# --- paths resolved before any user code runs


PLUGIN = """
import os
import runpy

_mlp = runpy.run_path({model!r})


def grads(params, inputs):
    os.chdir({elsewhere!r})
    return _mlp["grads"](params, inputs)
"""


def test_a_plugin_that_changes_directory_does_not_move_a_relative_out(
    tmp_path, monkeypatch, capsys
):
    start, elsewhere = tmp_path / "start", tmp_path / "elsewhere"
    start.mkdir()
    elsewhere.mkdir()
    plugin = tmp_path / "wander.py"
    plugin.write_text(
        PLUGIN.format(model=str(ROOT / "examples" / "model_mlp.py"), elsewhere=str(elsewhere))
    )
    monkeypatch.chdir(start)
    code = main(
        [
            "validate",
            f"{plugin}:grads",
            "--case",
            "mlp",
            "--reference",
            "reference",
            "--no-isolation",
            "--out",
            "rel",
            "--quiet",
        ]
    )
    assert os.getcwd() == str(elsewhere)  # it did wander
    assert code == 0, capsys.readouterr()
    assert (start / "rel" / "diagnostics.md").is_file()
    assert (start / "rel" / "report.md").is_file()
    assert not (elsewhere / "rel").exists()


def test_a_case_that_changes_directory_on_import_does_not_move_out_or_csv(tmp_path, monkeypatch):
    start, elsewhere = tmp_path / "start", tmp_path / "elsewhere"
    start.mkdir()
    elsewhere.mkdir()
    case = tmp_path / "wander_case.py"
    case.write_text(
        f"import os\nos.chdir({str(elsewhere)!r})\n"
        + SQ.replace("BODY", 'return xp.sum((self.k * p["x"]) ** 2)')
    )
    monkeypatch.chdir(start)
    assert report("rel", f"{case}:Sq") == 0
    assert (start / "rel" / "report.md").is_file() and not (elsewhere / "rel").exists()
    monkeypatch.chdir(start)
    sys.modules.pop("wander_case", None)
    assert main(["run", "--case", f"{case}:Sq", *CHEAP[:-1], "--csv", "a.csv"]) == 0
    assert (start / "a.csv").is_file() and not (elsewhere / "a.csv").exists()


# --- bad output paths: exit 2 before any work, one sentence


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["report", "--out", ""], "--out"),
        (["run", "--csv", ""], "--csv"),
        (["report", "--out", "x" * 300], "--out"),
        (["report", "--out", "ok/" + "y" * 300 + "/z"], "--out"),
        (["run", "--csv", "z" * 300 + ".csv"], "--csv"),
        (["run", "--csv", "/dev/full"], "--csv"),
        (["validate", "examples/model_mlp.py:grads", "--case", "mlp", "--out", ""], "--out"),
    ],
)
def test_a_bad_output_path_is_exit_2_before_any_work(argv, says, tmp_path, monkeypatch, capsys):
    refuse_work(monkeypatch)
    import harness.validation.validator as validator

    monkeypatch.setattr(validator, "validate", lambda *a, **k: pytest.fail("validate ran"))
    monkeypatch.chdir(tmp_path)
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    code = main([*argv, "--case", "card_affine_square"] if argv[0] != "validate" else argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert says in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not any(p.name.startswith("x" * 10) for p in tmp_path.iterdir())


def test_run_csv_write_error_leaves_the_previous_file(tmp_path, monkeypatch, capsys):
    """--csv is written beside itself and moved in: a failing write leaves the old file
    (and no temporary one)."""
    import pandas as pd

    csv = tmp_path / "a.csv"
    csv.write_text("earlier\n")
    real = pd.DataFrame.to_csv

    def half(self, path=None, *args, **kwargs):
        if path is None:
            return real(self, path, *args, **kwargs)
        Path(path).write_text("case,back")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(pd.DataFrame, "to_csv", half)
    code = main(["run", "--case", "card_affine_square", *CHEAP[:-1], "--csv", str(csv)])
    err = capsys.readouterr().err
    assert code == 1 and str(csv) in err and os.strerror(errno.ENOSPC) in err
    assert csv.read_text() == "earlier\n"
    assert [p.name for p in tmp_path.iterdir()] == ["a.csv"]


def test_manifest_names_are_kept_inside_the_folder(tmp_path):
    """A manifest edited to name a path outside the folder removes nothing there."""
    from harness import output

    out = tmp_path / "r"
    out.mkdir()
    (tmp_path / "precious.txt").write_text("keep")
    (out / ".gradparity.json").write_text(
        json.dumps(
            {
                "version": 2,
                "files": {
                    "../precious.txt": {"kind": "report", "sha256": "0" * 64},
                    "/etc/hostname": {"kind": "report", "sha256": "0" * 64},
                },
            }
        )
    )
    with output.staged(out, "report") as stage:
        (stage / "report.md").write_text("new")
    assert (tmp_path / "precious.txt").read_text() == "keep"
    assert output.manifest(out) == {"report.md": "report"}


def test_a_manifest_someone_else_wrote_removes_no_users_file(tmp_path):
    """The manifest is a record, not an order: a file it names goes only while it holds
    what gradparity wrote there. A planted entry (this version's form or an older one's)
    and a report file the user has edited since both stay."""
    out = tmp_path / "r"
    assert report(out, "elman") == 0
    (out / "drift.csv").write_text("edited by hand")
    (out / "notes.txt").write_text("notes")
    entries = json.loads((out / ".gradparity.json").read_text())
    entries["files"]["notes.txt"] = {"kind": "report", "sha256": "0" * 64}
    (out / ".gradparity.json").write_text(json.dumps(entries))
    assert report(out, "card_affine_square") == 0
    assert (out / "notes.txt").read_text() == "notes"
    assert (out / "drift.csv").read_text() == "edited by hand"
    assert not (out / "steps_elman.png").exists()  # unedited: still removed as stale
    (out / ".gradparity.json").write_text(
        json.dumps({"version": 1, "files": {"notes.txt": "report"}})
    )
    assert report(out, "card_affine_square") == 0
    assert (out / "notes.txt").read_text() == "notes"


@pytest.mark.parametrize("plant", ["link", "fifo"])
def test_a_lock_that_is_not_a_regular_file_is_refused_and_left_alone(tmp_path, plant, capsys):
    """A link under the lock's name would have the lock truncate and overwrite whatever it
    points to (as root: any file); a pipe would be opened as if it were the lock."""
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    out = tmp_path / "r"
    out.mkdir()
    if plant == "link":
        (out / ".gradparity.lock").symlink_to(victim)
    else:
        os.mkfifo(out / ".gradparity.lock")
    assert report(out, "card_affine_square") == 2
    err = capsys.readouterr().err
    assert (
        ".gradparity.lock there is a link or not a regular file" in err and "Traceback" not in err
    )
    assert victim.read_text() == "precious"
    assert [p.name for p in out.iterdir()] == [".gradparity.lock"]


@pytest.mark.parametrize("plant", ["fifo", "link"])
def test_a_manifest_that_is_not_a_regular_file_is_ignored_not_waited_on(tmp_path, plant):
    """A pipe under the manifest's name (a plug-in can make one) would block the commit's
    read forever; a link would be read through. Either is replaced by a real manifest."""
    out = tmp_path / "r"
    out.mkdir()
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_text(json.dumps({"version": 2, "files": {}}))
    if plant == "fifo":
        os.mkfifo(out / ".gradparity.json")
    else:
        (out / ".gradparity.json").symlink_to(elsewhere)
    done = subprocess.run(
        [*CLI, "report", "--case", "card_affine_square", "--out", str(out), *CHEAP],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert (out / ".gradparity.json").is_file() and not (out / ".gradparity.json").is_symlink()
    assert json.loads(elsewhere.read_text()) == {"version": 2, "files": {}}
    assert_whole(out, ["card_affine_square"])


def test_the_lock_is_an_flock_that_a_second_descriptor_cannot_take(tmp_path):
    """The lock is held by the process, not merely written: a second open of the file
    cannot flock it while a claim stands, and can once it is released."""
    from harness import output

    out = tmp_path / "r"
    out.mkdir()
    output.claim(out)
    try:
        fd = os.open(out / ".gradparity.lock", os.O_RDWR)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            assert os.read(fd, 100).decode().strip() == str(os.getpid())
        finally:
            os.close(fd)
    finally:
        output.release(out)
    assert not (out / ".gradparity.lock").exists()


@pytest.mark.parametrize("before", ["absent", "empty", "holding a file"])
def test_a_folder_the_command_made_and_left_empty_is_gone_when_it_ends(tmp_path, before):
    """``--out`` is made before the work starts (so a bad path fails at once); a command
    that ends without writing there (interrupted, refused) leaves no empty folder of its
    own making, and never removes one that was there, or anything in it."""
    from harness import output
    from harness.selection import output_folder

    out = tmp_path / "new" / "out"
    if before != "absent":
        out.mkdir(parents=True)
    if before == "holding a file":
        (out / "mine.txt").write_text("kept")
    assert output_folder(out) == out and out.is_dir()
    output.release_all()
    assert out.exists() is (before != "absent")
    assert (tmp_path / "new").is_dir() is (before != "absent")  # a parent it made goes too
    assert tmp_path.is_dir()  # never one that was there
    if before == "holding a file":
        assert (out / "mine.txt").read_text() == "kept"


def test_a_folder_the_command_made_and_wrote_stays(tmp_path):
    from harness import output
    from harness.selection import output_folder

    out = output_folder(tmp_path / "written")
    (out / "report.md").write_text("# report")
    output.release_all()
    assert (out / "report.md").is_file()
