"""``gradparity report``: every file written, deterministic CSVs, failures reported, exact
zeros drawn safely, and report.html rendered by a real headless browser."""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.cli import main
from harness.compare import AGREEMENT_COLUMNS, MAGNITUDE_COLUMNS, RUN_COLUMNS
from harness.progress import Progress
from harness.report import plots

CASES = ["card_affine_square", "deep_chain"]
SELECTION = [arg for case in CASES for arg in ("--case", case)]
DETERMINISTIC_CSVS = ["agreement.csv", "magnitudes.csv", "drift.csv"]
EXPECTED_COLUMNS = {
    "agreement.csv": AGREEMENT_COLUMNS,
    "magnitudes.csv": MAGNITUDE_COLUMNS,
    "runs.csv": RUN_COLUMNS,
    "drift.csv": [
        "case",
        "option",
        "length",
        "backend",
        "max_rel_err",
        "rel_l2_err",
        "underflowed",
        "error",
    ],
}


def write(out: Path, *extra: str) -> int:
    return main(["report", "--out", str(out), "--quiet", *SELECTION, *extra])


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report")
    assert write(out) == 0
    return out


def test_every_file_is_written_with_its_columns_and_every_case(report):
    for name, columns in EXPECTED_COLUMNS.items():
        table = pd.read_csv(report / name)
        assert list(table.columns) == columns, name
        if name != "drift.csv":
            assert set(table["case"]) == set(CASES), name
    summary = json.loads((report / "summary.json").read_text())
    assert summary["all_agree"] is True and summary["exit_code"] == 0
    assert summary["cases"] == CASES and summary["seed"] == 0 and summary["dtype"] == "float64"
    runs = pd.read_csv(report / "runs.csv")
    compared = runs.loc[(runs["status"] == "ok") & (runs["backend"] != "torch"), "backend"]
    assert set(summary["worst_rel_l2_err"]) == {f"{b} vs torch" for b in compared}
    assert {"python", "numpy", "torch", "jax"} <= set(summary["versions"])
    assert {"platform", "processor", "cpu_count"} <= set(summary["machine"])
    markdown = (report / "report.md").read_text()
    html = (report / "report.html").read_text()
    for case in CASES:
        assert f"## {case} (staged)" in markdown and f">{case} (staged)</h2>" in html
    n = len(pd.read_csv(report / "agreement.csv"))
    assert f"All {n} compared tensors agree" in markdown
    linked = re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", markdown)
    assert {"agreement_heatmap.png", "drift_float32.png", "layers_deep_chain.png"} <= set(linked)
    assert all((report / name).is_file() for name in linked)
    assert 'src="data:image/png;base64,' in html and '.png"' not in html


def test_same_seed_gives_byte_identical_csvs(report, tmp_path):
    assert write(tmp_path) == 0
    for name in DETERMINISTIC_CSVS:
        assert (tmp_path / name).read_bytes() == (report / name).read_bytes(), name


def test_a_failing_backend_is_a_failed_cell_and_exit_1(tmp_path, monkeypatch, capsys):
    from harness.backends.numeric import NumericBackend

    def broken(self, case, params, inputs, dtype):
        raise RuntimeError("injected failure for the report test")

    monkeypatch.setattr(NumericBackend, "gradient", broken)
    assert main(["report", "--out", str(tmp_path), "--quiet", "--case", CASES[0]]) == 1
    assert "1 failed run over 1 case (" in capsys.readouterr().out
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["exit_code"] == 1 and summary["counts"]["runs_failed"] == 1
    assert [f["backend"] for f in summary["failed"]] == ["numeric"]
    for name in ("report.md", "report.html"):
        text = (tmp_path / name).read_text()
        assert "injected failure for the report test" in text, name
        assert "✗ failed" in text and "Failed backends" in text, name
    assert (tmp_path / "agreement_heatmap.png").is_file()
    runs = pd.read_csv(tmp_path / "runs.csv")
    assert runs.set_index("backend").loc["numeric", "status"] == "failed"


def magnitudes(norms: dict[str, list[float]]) -> pd.DataFrame:
    rows = [("c", backend, "h", t, n) for backend, ns in norms.items() for t, n in enumerate(ns)]
    return pd.DataFrame(rows, columns=MAGNITUDE_COLUMNS)


@pytest.mark.parametrize(
    "norms, zeros",
    [
        ({"torch": [0.0, 1e-30, 1.0], "jax": [0.0, 1e-30, 1.0]}, 2),  # underflow at t = 0
        ({"torch": [0.0, 0.0], "jax": [0.0, 0.0]}, 4),  # nothing a log axis can show
    ],
)
def test_exact_zero_norms_are_left_out_and_counted(tmp_path, norms, zeros):
    path = tmp_path / "steps.png"
    plot = plots.norms_by_index(magnitudes(norms), "c", ["h"], path, "torch")
    total = sum(len(v) for v in norms.values())
    assert f"{zeros} of {total} norms were exactly 0" in plot.caption
    assert path.stat().st_size > 1000


def test_heatmap_scores_exact_zero_as_the_cap_and_marks_failures():
    agreement = pd.DataFrame(
        {
            "case": ["a", "a", "b"],
            "backend": ["jax", "jax", "jax"],
            "rel_l2_err": [0.0, 0.0, 1e-3],
            "ok": [True, True, False],
            "verdict": ["agree", "agree", "disagree"],
            "error": ["", "", ""],
        }
    )
    runs = pd.DataFrame(
        {
            "case": ["a", "a", "b", "b"],
            "backend": ["torch", "jax", "torch", "jax"],
            "status": ["ok", "ok", "failed", "ok"],
        }
    )
    score, label = plots.agreement_scores(agreement, runs)
    assert score.loc["a", "jax"] == plots.SCORE_CAP and label.loc["a", "jax"] == "exact"
    assert score.loc["b", "jax"] == pytest.approx(3.0) and label.loc["b", "jax"] == "✗ 3.0"
    assert label.loc["a", "torch"] == "baseline" and label.loc["b", "torch"] == "failed"


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_draws_only_on_a_terminal_and_not_when_quiet():
    terminal, pipe, quiet = FakeTerminal(), io.StringIO(), FakeTerminal()
    for stream, be_quiet in ((terminal, False), (pipe, False), (quiet, True)):
        with Progress(2, "report", be_quiet, stream) as bar:
            bar("deep_chain", "torch")
            bar("deep_chain", "jax")
    assert "2/2" in terminal.getvalue() and "deep_chain · jax" in terminal.getvalue()
    assert pipe.getvalue() == "" and quiet.getvalue() == ""


# --- report.html in a real browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / "profile"
    command = [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=90)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_report_html_renders_in_headless_chromium(report, tmp_path):
    page = (report / "report.html").resolve().as_uri()
    dom = chromium(tmp_path, "--virtual-time-budget=10000", "--dump-dom", page).stdout
    sources = re.findall(r"<img [^>]*src=\"([^\"]{0,40})", dom)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    loaded = re.search(r'data-images-loaded="(\d+)"', dom)
    total = re.search(r'data-images-total="(\d+)"', dom)
    assert loaded and total, "the page's load script did not run"
    assert int(loaded[1]) == int(total[1]) == len(sources)

    shot = tmp_path / "shot.png"
    chromium(tmp_path, f"--screenshot={shot}", "--window-size=1200,2000", page)
    from matplotlib.image import imread

    pixels = imread(shot)
    assert pixels.shape[:2] == (2000, 1200)
    assert float(np.var(pixels[..., :3])) > 1e-3, "the screenshot is blank"


def test_jobs_spread_the_report_over_processes_with_identical_csvs(tmp_path):
    from harness.cli import main

    args = ["report", "--quiet", "--case", "card_affine_square", "--case", "fan_out_fan_in"]
    assert main([*args, "--out", str(tmp_path / "serial")]) == 0
    assert main([*args, "--out", str(tmp_path / "spread"), "--jobs", "2"]) == 0
    for name in ("agreement.csv", "magnitudes.csv"):
        assert (tmp_path / "serial" / name).read_bytes() == (
            tmp_path / "spread" / name
        ).read_bytes()


def test_a_case_whose_rows_have_no_reason_and_no_odd_one_out_renders_without_a_pandas_warning(
    tmp_path,
):
    """A case section whose reason and odd_one_out columns hold nothing (all NaN, float)
    renders under pandas 3.1's deprecations as errors (a str fill of a float column)."""
    import warnings

    from harness.backends.reference_tape import ReferenceBackend
    from harness.cases import CATALOG
    from harness.compare import Comparison
    from harness.report.document import case_section
    from harness.result import Result

    case = CATALOG["card_affine_square"]()
    params, inputs = case.build(0)
    ran = ReferenceBackend().gradient(case, params, inputs, "float64")
    failed = Result(case.label, "other", "float64", error="exception: boom")
    comparison = Comparison([ran, failed], "reference", [case])
    assert comparison.agreement["reason"].isna().all()
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        blocks = case_section(comparison, case, comparison.summaries, tmp_path)
    assert blocks


# --- a failed cell says what its row's facts say, whatever its words ---------------------------


def cells(results, tmp_path) -> dict[tuple[str, str], str]:
    """(tensor, backend) -> the report's cell, for Results of ``card_affine_square``."""
    from harness.cases import CATALOG
    from harness.compare import Comparison
    from harness.report.document import case_section
    from harness.report.render import Table

    case = CATALOG["card_affine_square"]()
    comparison = Comparison([r(case) for r in results], "reference", [case])
    tables = [
        b for b in case_section(comparison, case, pd.DataFrame(), tmp_path) if isinstance(b, Table)
    ]
    out = {}
    for table in tables:
        backends = [h.split(" vs ")[0] for h in table.header[2:]]
        for row in table.rows:
            out.update({(row[0], b): cell for b, cell in zip(backends, row[2:]) if cell})
    return out


def styled(results, tmp_path) -> dict[tuple[str, str], str]:
    """(tensor, backend) -> the style of the report's cell, as ``cells``; the baseline is
    the first Result's backend, renamed so that a second run of it is compared."""
    from harness.cases import CATALOG
    from harness.compare import Comparison
    from harness.report.document import case_section
    from harness.report.render import Table

    case = CATALOG["card_affine_square"]()
    made = [r(case) for r in results]
    made[0] = replace(made[0], backend="baseline")
    comparison = Comparison(made, "baseline", [case])
    blocks = case_section(comparison, case, pd.DataFrame(), tmp_path)
    out = {}
    for table in (b for b in blocks if isinstance(b, Table)):
        backends = [h.split(" vs ")[0] for h in table.header[2:]]
        for row, styles in zip(table.rows, table.styles, strict=True):
            out.update({(row[0], b): s for b, s in zip(backends, styles[2:], strict=True)})
    return out


def ran(case):
    from harness.backends.reference_tape import ReferenceBackend

    params, inputs = case.build(0)
    return ReferenceBackend().gradient(case, params, inputs, "float64")


def test_a_case_that_could_not_be_built_shows_why_even_where_its_words_say_failed(tmp_path):
    """The build's reason is the cell, whatever its words: here a reason that quotes
    ' failed: ' (the old cell read the words and showed a bare 'failed')."""
    from harness.result import BUILD, Result

    why = "the case could not be built: loading its data failed: no such file"
    got = cells([lambda case: Result(case.label, BUILD, "float64", error=why)], tmp_path)
    assert list(got.values()) == [f"✗ {why}"]


def test_a_tensor_fault_shows_the_fault_and_a_failed_run_shows_failed(tmp_path):
    """In a run that failed (a JVP without its loss), the tensor whose own fault left it
    uncompared shows that fault, even one quoting the plug-in's ' failed: '; the tensors
    the failed run left show 'failed', its error being in the notes."""
    from harness.result import Result

    fault = "not an array: loss is a str ('conversion failed: x')"

    def plugin(case):
        return Result(
            case.label,
            "plugin",
            "float64",
            error="missing tensor: no loss tangent",
            uncompared={("loss", "loss"): fault},
        )

    got = cells([ran, plugin], tmp_path)
    plugin_cells = {t: c for (t, b), c in got.items() if b == "plugin"}
    assert plugin_cells.pop("loss `loss`") == f"✗ {fault}"
    assert plugin_cells and set(plugin_cells.values()) == {"✗ failed"}


def test_html_cells_are_styled_by_their_verdict_not_by_their_first_character():
    """The style is data the table's builder gives (``Verdict.style``): a cell whose text
    begins with a mark is not coloured for it, and one the builder marks is."""
    from harness.report.render import Table, to_html

    page = to_html(
        [Table(("a", "b", "c"), (("✓ says ok", "✗ says bad", "✓"),), (("bad", "ok"),))], "t"
    )
    assert '<td class="bad">✓ says ok</td>' in page and '<td class="ok">✗ says bad</td>' in page
    assert "<td>✓</td>" in page  # no style given for the third cell
    assert 'class="' not in to_html([Table(("a",), (("✗ unstyled",),))], "t").split("<table>")[1]


def test_the_report_styles_each_cell_by_its_verdict(tmp_path):
    """Agreeing cells "ok", a disagreeing or failed one "bad", the rest unstyled."""
    from harness.compare.verdicts import Verdict
    from harness.result import Result

    def wrong(case):
        right = ran(case)
        return Result(
            case.label,
            "wrong",
            "float64",
            loss=right.loss,
            grads={k: v * 2 for k, v in right.grads.items()},
            taps=right.taps,
        )

    def missing(case):
        return Result(case.label, "gone", "float64", error="it crashed")

    def unsupported(case):
        return Result(case.label, "partial", "float64", unsupported="no 'tanh'")

    got = styled([ran, lambda c: ran(c), wrong, missing, unsupported], tmp_path)
    by_backend = {}
    for (_, backend), style in got.items():
        by_backend.setdefault(backend, set()).add(style)
    assert by_backend["reference"] == {Verdict.AGREE.style} == {"ok"}
    assert "bad" in by_backend["wrong"] and by_backend["gone"] == {"bad"}
    assert by_backend["partial"] == {""}


def test_a_row_compared_along_directions_is_a_fact_the_report_reads(tmp_path):
    """``row_facts['directional']``: the rows an oracle saw along a few directions; the
    report's detection section says so from that fact (it read 'direction' in the worst
    element's words)."""
    from harness.cases import CATALOG
    from harness.compare import Comparison
    from harness.report.document import detection_section
    from harness.result import Directional, Result

    case = CATALOG["card_affine_square"]()
    exact = ran(case)
    rng = np.random.default_rng(0)
    directional = {}
    for name, g in exact.grads.items():
        v = rng.standard_normal((3, *np.shape(g)))
        values = np.array([np.sum(g * d) for d in v])
        directional[("param", name)] = Directional(v, values, np.full(3, 1e-12))
    oracle = Result(
        case.label,
        "numeric",
        "float64",
        loss=exact.loss,
        directional=directional,
        obtained_by="directional",
    )
    both = Comparison([exact, oracle], "reference", [case])
    rows = both.agreement.join(both.row_facts)
    assert (rows["directional"] == rows["kind"].eq("param")).all()
    blocks = detection_section(both)
    said = " ".join(
        [getattr(b, "text", "") for b in blocks]
        + [i for b in blocks for i in getattr(b, "items", ())]
    )
    assert "along a few random directions only" in said
    alone = Comparison([exact, ran(case)], "reference", [case])
    assert not alone.row_facts["directional"].any()
