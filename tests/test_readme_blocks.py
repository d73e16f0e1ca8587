"""Every shell block of README.md runs, as written, and does what the README says.

A fenced block without a language (or ``sh``, ``bash``, ``console``) is a shell block. The
HTML comment on the line just above it says how it is checked:

    <!-- readme-test: slow, exit 2, writes reports/quick/ -->
    <!-- readme-test: skip: WHY -->

- each line of the block is one command, run by bash in a copy of the checkout (its
  tracked and new files) with this venv's ``gradparity`` first on the PATH, and exits 0, or
  the block's ``exit N``;
- a block whose lines start with ``$ `` is a transcript: each command runs, and every line
  shown below it is a line of its real output, in order (lines in between may be left
  out; ``…`` in a shown line stands for any text);
- a command writes nothing into the checkout but what ``writes PATH/`` names (``/tmp/…``
  is redirected to a temporary folder of the test's own, so parallel runs never meet);
- ``slow`` marks a block that takes more than about 20 s (run by ``pytest -m slow``);
- ``gpu``: on a machine without CUDA the block exits 2 at once; with one, it is left to
  the GPU machine;
- ``skip: WHY`` leaves the block out, with the reason; the quick start's two blocks
  (``<!-- main-command -->``, ``<!-- test-command -->``) are run by ``.ci/run``.

A shell block with no comment above it, or an unknown word in one, fails the test, so a
new command in the README is either run here or excluded in words.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SHELL_LANGUAGES = {"", "sh", "bash", "console"}
RUN_BY_CI = {"<!-- main-command -->", "<!-- test-command -->"}
MARKER = re.compile(r"<!-- readme-test: (.*?) -->")


@dataclass
class Block:
    line: int  # 1-based line of the opening fence
    text: str
    marker: str  # the comment line above the fence, "" when there is none
    skip: str = ""
    slow: bool = False
    gpu: bool = False
    exit: int = 0
    writes: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        return f"README.md:{self.line}"


def parse_marker(block: Block) -> Block:
    """The block with its marker's directives; ValueError for a word it does not know."""
    if block.marker in RUN_BY_CI:
        block.skip = "run by .ci/run"
        return block
    found = MARKER.fullmatch(block.marker)
    if not found:
        raise ValueError(f"{block.id}: no <!-- readme-test: … --> comment above the block")
    spec = found[1].strip()
    if spec.startswith("skip:"):
        block.skip = spec.removeprefix("skip:").strip()
        if not block.skip:
            raise ValueError(f"{block.id}: skip without a reason")
        return block
    for word in filter(None, (w.strip() for w in spec.split(","))):
        if word == "slow":
            block.slow = True
        elif word == "gpu":
            block.gpu = True
        elif re.fullmatch(r"exit \d+", word):
            block.exit = int(word.split()[1])
        elif word.startswith("writes "):
            block.writes.append(word.removeprefix("writes ").strip())
        else:
            raise ValueError(f"{block.id}: unknown directive {word!r}")
    return block


def shell_blocks(text: str) -> list[Block]:
    """Every fenced block in a shell language, with the comment line above it."""
    lines = text.splitlines()
    blocks, i = [], 0
    while i < len(lines):
        opening = re.fullmatch(r"```(\S*)\s*", lines[i])
        if not opening:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        if opening[1] in SHELL_LANGUAGES:
            above = lines[i - 1].strip() if i else ""
            blocks.append(Block(i + 1, "\n".join(lines[i + 1 : end]), above))
        i = end + 1
    return blocks


BLOCKS = shell_blocks(README.read_text())


def test_every_shell_block_is_run_or_excluded_in_words():
    assert len(BLOCKS) >= 10
    problems = []
    for block in BLOCKS:
        try:
            parse_marker(block)
        except ValueError as e:
            problems.append(str(e))
    assert not problems, "\n".join(problems)
    assert {b.marker for b in BLOCKS} >= RUN_BY_CI


def test_a_block_without_a_marker_or_with_an_unknown_word_is_refused():
    (bare,) = shell_blocks("text\n```\ngradparity list\n```\n")
    with pytest.raises(ValueError, match="no <!-- readme-test"):
        parse_marker(bare)
    (odd,) = shell_blocks("<!-- readme-test: quick -->\n```\ngradparity list\n```\n")
    with pytest.raises(ValueError, match="unknown directive 'quick'"):
        parse_marker(odd)
    (python,) = shell_blocks("```python\nimport harness\n```\n") or [None]
    assert python is None  # a Python block is not a shell block


def copy_of_checkout(dest: Path) -> Path:
    """The checkout's tracked and new (not ignored) files under dest/checkout."""
    root = dest / "checkout"
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, root / name)
    return root


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in root.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and ".pytest_cache" not in p.parts
    }


def commands(block: Block) -> list[tuple[str, list[str]]]:
    """(command, the output lines the README shows for it) per command of the block."""
    if not block.text.startswith("$ "):
        return [(line, []) for line in block.text.splitlines() if line.strip()]
    found: list[tuple[str, list[str]]] = []
    for line in block.text.splitlines():
        if line.startswith("$ "):
            found.append((line[2:], []))
        elif line.strip():
            found[-1][1].append(line)
    return found


def shown_in_order(shown: list[str], output: list[str]) -> list[str]:
    """The shown lines not found, in order, among the output's lines (… matches any text)."""
    at = 0
    for want in shown:
        pattern = re.compile(".*".join(re.escape(part) for part in want.rstrip().split("…")))
        while at < len(output) and not pattern.fullmatch(output[at].rstrip()):
            at += 1
        if at == len(output):
            return shown[shown.index(want) :]
        at += 1
    return []


def run_command(command: str, cwd: Path, env: dict, limit: float = 1800) -> tuple[int, str]:
    """Its exit status and output (stdout, then stderr); past ``limit`` seconds it is killed
    with everything it started in its session, and the test fails."""
    with subprocess.Popen(
        ["bash", "-c", command],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as process:
        try:
            out, err = process.communicate(timeout=limit)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            pytest.fail(f"{command}: still running after {limit:.0f} s")
    return process.returncode, out + err


def params():
    out = []
    for block in BLOCKS:
        try:
            parse_marker(block)
        except ValueError:
            continue  # the test above names it
        marks = [pytest.mark.slow] if block.slow else []
        out.append(pytest.param(block, id=block.id, marks=marks))
    return out


@pytest.mark.parametrize("block", params())
def test_the_readme_block_runs_as_written(block: Block, tmp_path: Path):
    if block.skip:
        pytest.skip(block.skip)
    if block.gpu:
        import torch

        if torch.cuda.is_available():
            pytest.skip("a GPU block: run on the GPU machine")
    checkout = copy_of_checkout(tmp_path)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "TMPDIR": str(scratch),
        "COLUMNS": "200",
    }
    before = snapshot(checkout)
    for command, shown in commands(block):
        as_run = command.replace("/tmp/", f"{scratch}/")
        returncode, output = run_command(as_run, checkout, env)
        expected = 2 if block.gpu else block.exit
        assert returncode == expected, f"{command}\nexit {returncode}\n{output[-4000:]}"
        missing = shown_in_order(shown, output.splitlines())
        assert not missing, (
            f"{command}: not in its output:\n" + "\n".join(missing) + "\n---\n" + output[-4000:]
        )
    after = snapshot(checkout)
    changed = sorted(
        {p for p in after if before.get(p) != after[p]} | (before.keys() - after.keys())
    )
    allowed = tuple(block.writes)
    strays = [p for p in changed if not (allowed and p.startswith(allowed))]
    assert not strays, f"written into the checkout: {strays}"


# --- what the README says in prose, held as facts ------------------------------------------


def test_mode_fwd_compares_forward_mode_in_place_of_the_gradient():
    from harness import compare_backends

    fwd = compare_backends(["card_affine_square"], ["reference", "torch"], noise=0, modes=["fwd"])
    both = compare_backends(
        ["card_affine_square"], ["reference", "torch"], noise=0, modes=["rev", "fwd"]
    )
    assert set(fwd.agreement["mode"]) == {"fwd"}
    assert set(both.agreement["mode"]) == {"rev", "fwd"}


def test_a_function_outside_the_tape_is_unsupported_not_failed():
    from harness import compare_backends
    from harness.cases import case

    @case(setup=lambda rng, n=4: ({"x": rng.standard_normal(n)}, {}))
    def running_sum(xp, params, inputs):
        """L = Σ (cumulative sum of x)²."""
        return xp.sum(xp.cumulative_sum(params["x"]) ** 2)

    c = compare_backends([running_sum], ["reference", "torch", "jax"], noise=0)
    tape = c.agreement[c.agreement["backend"] == "reference"]
    assert set(tape["verdict"]) == {"unsupported"}
    assert set(c.agreement.loc[c.agreement["backend"] == "jax", "verdict"]) == {"agree"}
    assert "failed" not in set(c.runs["status"])


def test_the_columns_of_faults_csv_are_the_ones_documented():
    from harness.validation.faults import FAULT_COLUMNS

    paragraph = re.search(r"`faults.csv` has one row per fault(.*?)\n\n", README.read_text(), re.S)
    assert paragraph, "the README documents faults.csv's columns"
    named = iter(re.findall(r"`([^`]+)`", paragraph[1].split("; a sweep adds")[0]))
    assert all(column in named for column in FAULT_COLUMNS)  # each one, in the CSV's order


def test_gpu_bench_says_no_gpu_at_once_where_there_is_none(tmp_path: Path):
    import time

    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    started = time.monotonic()
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "gpu_bench.sh"), str(tmp_path / "gpu")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHON": sys.executable},
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "no GPU" in done.stderr
    assert time.monotonic() - started < 60  # never the full plan's 300 s limit
    assert not (tmp_path / "gpu").exists()


def test_the_report_file_table_names_every_csv_a_report_writes():
    from harness.report.files import CSV_FILES

    table = re.search(r"\| file \| what \|\n(.*?)\n\n", README.read_text(), re.S)
    assert table, "the README's table of report files"
    assert set(CSV_FILES) <= set(re.findall(r"`([a-z_]+\.csv)`", table[1]))


@pytest.mark.parametrize(
    "pattern, names",
    [
        ("elman", {"elman"}),
        ("elman*", {"elman", "elman_vanishing", "elman_exploding", "elman_sigmoid"}),
        ("lstm", {"lstm"}),
        ("*lstm", {"lstm", "adbench_lstm"}),
    ],
)
def test_the_case_patterns_the_readme_shows_pick_what_it_says(pattern, names):
    from harness.cases.base import select

    assert {c.name for c in select([pattern])} == names
