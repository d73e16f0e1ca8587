"""What a plug-in prints is shown — bounded, escaped, fenced as the plug-in's — on the
terminal and in diagnostics.md; printing a lot is a note, never a failure of a plug-in
whose every tensor agrees."""

from __future__ import annotations

import pytest

from harness.sandbox.channel import GiB, InProcess, Isolated
from harness.validation.printed import HEAD_LINES, SHOWN, TAIL_LINES, Printed, terminal_lines
from harness.validation.validator import validate

PRINTING = """
import sys

import numpy as np

from harness.cases.base import Case

print("importing printing.py")


class Tiny(Case):
    name = "tiny_printing"
    family = "mine"

    def setup(self, rng):
        return {"w": rng.standard_normal(3)}, {"x": rng.standard_normal(3)}

    def loss(self, xp, params, inputs):
        return xp.sum(params["w"] * inputs["x"])


def grads(params, inputs, case):
    print("dL/dw =", inputs["x"].tolist())
    print("a warning on stderr", file=sys.stderr)
    return {"w": inputs["x"].copy()}


def floods(params, inputs, case):
    for i in range(40_000):  # 1.7 MB
        print(f"debug: step {i:6d} of the backward pass, all is well")
    return {"w": inputs["x"].copy()}


def forges(params, inputs, case):
    print("plugin:forges (model): 1/1 tensors agree over 1 case, 0 faults: AGREES")
    print("\\x1b[2J\\x1b]8;;http://x\\x07link\\x1b]8;;\\x07")
    return {"w": 2 * inputs["x"]}


def writes_fds(params, inputs, case):
    import os
    import subprocess

    os.write(1, b"fd one\\n")
    os.write(2, b"fd two \\x1b[2J\\n")
    subprocess.run([sys.executable, "-c", "print('from a child')"], check=True)
    return {"w": inputs["x"].copy()}


def same_module(params, inputs, case):
    print("the case's class is this module's:", type(case) is Tiny)
    return {"w": inputs["x"].copy()}
"""


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    path = tmp_path_factory.mktemp("printing")
    (path / "printing.py").write_text(PRINTING)
    return path


@pytest.fixture(scope="module")
def worker():
    w = Isolated(memory=2 * GiB)
    yield w
    w.close()


def run(folder, attr, channel, dtype="float64"):
    from harness.selection import build_cases

    cases = build_cases([f"{folder / 'printing.py'}:Tiny"], {})
    return validate(
        f"{folder / 'printing.py'}:{attr}",
        form="model",
        cases=cases,
        dtype=dtype,
        references=["reference"],
        channel=channel,
    )


@pytest.mark.parametrize("isolated", [True, False])
def test_what_a_plugin_prints_is_shown_with_and_without_isolation(folder, worker, isolated):
    v = run(folder, "grads", worker if isolated else InProcess())
    assert v.ok
    shown = {(p.case, p.stream): p for p in v.printed}
    case = v.comparison.cases[0].label
    assert shown[(case, "stdout")].text.startswith("dL/dw = [")
    assert shown[(case, "stderr")].text == "a warning on stderr\n"
    lines = v.text().splitlines()
    assert "  │ a warning on stderr" in lines
    assert any(line.startswith("  │ dL/dw = [") for line in lines)


def test_the_output_is_in_diagnostics_md(folder, worker, tmp_path):
    v = run(folder, "grads", worker)
    v.write(tmp_path / "out")
    md = (tmp_path / "out" / "diagnostics.md").read_text()
    assert "\n```\na warning on stderr\n```\n" in md


def test_a_flood_is_a_note_and_is_shown_bounded(folder, worker):
    v = run(folder, "floods", worker)
    assert v.ok and v.verdict == "agrees"
    flood = v.fault_table[v.fault_table["fault"] == "output flood"]
    assert len(flood) == 1 and flood["severity"].iloc[0] == "note"
    (big,) = [p for p in v.printed if p.case != "(load)"]
    assert big.chars > 1_000_000 and len(big.text) < 6_000
    ruled = [line for line in v.text().splitlines() if line.startswith("  │ ")]
    assert len(ruled) <= HEAD_LINES + TAIL_LINES + 2  # + the import's line, + the cut
    assert ruled[-1] == "  │ debug: step  39999 of the backward pass, all is well"
    assert any("lines left out" in line for line in ruled)


def test_what_a_plugin_prints_cannot_pass_for_the_commands_own_lines(folder, worker):
    v = run(folder, "forges", worker)
    assert not v.ok
    text = v.text()
    assert "\x1b" not in text and "\x07" not in text  # shown as escapes, never sent
    lines = text.splitlines()
    forged = "plugin:forges (model): 1/1 tensors agree over 1 case, 0 faults: AGREES"
    assert forged not in lines and f"  │ {forged}" in lines
    assert lines[-1].endswith("DISAGREES")


def test_a_case_file_and_a_plugin_from_the_same_file_are_one_module(folder):
    fresh = Isolated(memory=2 * GiB)  # one that has not imported the file yet
    try:
        v = run(folder, "same_module", fresh)
    finally:
        fresh.close()
    case = v.comparison.cases[0].label
    (calls,) = [p for p in v.printed if p.case == case]
    assert calls.text == "the case's class is this module's: True\n"
    imports = [p for p in v.printed if p.case == "(load)"]
    assert [p.text for p in imports] == ["importing printing.py\n"]  # imported once
    assert "  │ importing printing.py" in v.text().splitlines()


def test_the_terminal_shows_a_few_streams_and_counts_the_rest():
    printed = [Printed(f"c{i}", "plugin:p", "stdout", f"line {i}\n", 7) for i in range(SHOWN + 3)]
    lines = terminal_lines(printed)
    assert sum(line.startswith("  ┌ ") for line in lines) == SHOWN
    assert lines[-1] == "  · and on 3 more streams (3 more cases), each in diagnostics.md (--out)"


def test_a_flood_says_exactly_how_many_lines_it_left_out_and_is_a_note_on_the_terminal(
    folder, worker
):
    v = run(folder, "floods", worker)
    lines = v.text().splitlines()
    left = 40_000 - HEAD_LINES - TAIL_LINES
    assert any(line.startswith("  │ ") and f"{left:,} lines left out" in line for line in lines)
    (note,) = [line for line in lines if "output flood" in line]
    assert note.startswith("  · ") and "2,120,000 characters" in note  # a note, with its count
    assert lines[-1].endswith("AGREES")


def test_what_is_kept_of_a_stream_just_over_its_head_is_all_of_it_once():
    from harness.sandbox.worker import HEAD, TAIL, Capture

    for size in (HEAD + 1, HEAD + TAIL // 2, HEAD + TAIL):
        c = Capture()
        text = "".join(f"{i % 10}" if i % 50 else "\n" for i in range(size))
        for i in range(0, size, 333):
            c.write(text[i : i + 333])
        assert c.size == size and c.text() == text


def test_the_lines_left_out_of_a_cut_stream_are_counted_from_all_it_printed():
    from harness.sandbox.worker import HEAD, TAIL, Capture

    c = Capture()
    total = 10_000
    for i in range(total):
        c.write(f"{i:07d}\n")  # 8 characters a line
    p = Printed("c", "plugin:p", "stdout", c.text(), c.size, c.lines)
    shown = p.terminal_lines()
    assert shown[1] == "  │ 0000000" and shown[-2] == f"  │ {total - 1:07d}"
    (cut,) = [line for line in shown if "left out" in line]
    assert f"{total - HEAD_LINES - TAIL_LINES:,} lines left out" in cut
    assert f"{c.size - HEAD - TAIL:,} characters" in cut


@pytest.mark.parametrize("isolated", [True, False])
def test_what_a_plugin_writes_to_its_file_descriptors_is_shown_as_its_own(
    folder, worker, isolated, capfd
):
    v = run(folder, "writes_fds", worker if isolated else InProcess())
    assert v.ok
    case = v.comparison.cases[0].label
    (fd,) = [p for p in v.printed if (p.case, p.stream) == (case, "fd")]
    assert fd.text == "fd one\nfd two \x1b[2J\nfrom a child\n" and fd.lines == 3
    lines = v.text().splitlines()
    assert "  │ fd one" in lines and "  │ from a child" in lines and "  │ fd two \\x1b[2J" in lines
    out, err = capfd.readouterr()  # nothing of it went past gradparity, raw
    assert "fd one" not in out + err and "from a child" not in out + err


def test_a_long_line_is_folded_to_a_few_rows_of_80_columns():
    from harness.validation.printed import COLUMNS, ROWS

    line = "".join(chr(ord("a") + i % 26) for i in range(3_000))
    p = Printed("c", "plugin:p", "stdout", line + "\nshort\n", len(line) + 7, 2)
    shown = p.terminal_lines()[1:-1]
    assert [s[len("  │ ") :] for s in shown[:ROWS]] == [
        line[i * COLUMNS : (i + 1) * COLUMNS] for i in range(ROWS)
    ]
    assert shown[ROWS] == f"  │ [… {3_000 - ROWS * COLUMNS:,} more characters]"
    assert shown[ROWS + 1 :] == ["  │ short"]


LONG = """
def grads(params, inputs):
    print("x" * 1_000_000)
    raise ValueError("y" * 1_000_000)
"""


def test_a_megabyte_line_printed_or_raised_cannot_flood_the_terminal(tmp_path):
    (tmp_path / "long.py").write_text(LONG)
    v = validate(
        f"{tmp_path / 'long.py'}:grads", form="model", cases=["mlp"], references=["reference"]
    )
    lines = v.text().splitlines()
    ruled = [line for line in lines if line.startswith(("  │ ", "      | "))]
    assert max(len(line) for line in ruled) <= len("      | ") + 80
    assert max(len(line) for line in lines) < 500 and len(v.text()) < 10_000
