"""JAX's persistent compilation cache: on in the command and its workers, where the user
has not said otherwise; off in the bench, which times compilation; never the user's
process's business when harness is imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from harness import compile_cache
from harness.bench.threads import thread_environment

ROOT = Path(__file__).resolve().parents[1]


def jax_config_after(args: list[str], environ: dict[str, str]) -> dict:
    """JAX's cache settings as a process sees them after ``harness.cli.main(args)``."""
    script = (
        "import json, sys\n"
        "from harness.cli import main\n"
        "main(sys.argv[1:])\n"
        "import jax\n"
        "print(json.dumps({k: getattr(jax.config, k) for k in ('jax_compilation_cache_dir',"
        " 'jax_enable_compilation_cache', 'jax_persistent_cache_min_compile_time_secs')}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        env=environ,
        cwd=ROOT,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def bare_environment(tmp_path: Path) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("JAX_", "GRADPARITY_"))}
    return {**keep, "XDG_CACHE_HOME": str(tmp_path / "cache")}


def test_the_command_turns_the_cache_on_under_the_users_cache_folder(tmp_path):
    seen = jax_config_after(["list"], bare_environment(tmp_path))
    assert seen["jax_compilation_cache_dir"] == str(tmp_path / "cache" / "gradparity" / "jax")
    assert seen["jax_enable_compilation_cache"] is True
    assert seen["jax_persistent_cache_min_compile_time_secs"] == 0


def test_a_setting_of_the_users_wins_and_off_turns_it_off(tmp_path):
    mine = {**bare_environment(tmp_path), "JAX_COMPILATION_CACHE_DIR": str(tmp_path / "mine")}
    assert jax_config_after(["list"], mine)["jax_compilation_cache_dir"] == str(tmp_path / "mine")
    off = {**bare_environment(tmp_path), compile_cache.VARIABLE: "off"}
    assert jax_config_after(["list"], off)["jax_enable_compilation_cache"] is False


def test_importing_harness_leaves_jax_as_the_user_configured_it(tmp_path):
    script = (
        "import json\nimport harness, harness.validation, harness.pytest_plugin\n"
        "import jax\nprint(json.dumps(jax.config.jax_compilation_cache_dir))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=bare_environment(tmp_path),
        cwd=ROOT,
        check=True,
    )
    assert json.loads(done.stdout.strip().splitlines()[-1]) is None


def test_the_bench_compiles_afresh():
    assert thread_environment(1)["JAX_ENABLE_COMPILATION_CACHE"] == "false"
    environ: dict[str, str] = {**thread_environment(2)}
    compile_cache.enable(environ)
    assert environ["JAX_ENABLE_COMPILATION_CACHE"] == "false"  # enable adds, never overrides


def test_a_run_from_the_cache_gives_the_tables_of_a_fresh_compilation(tmp_path):
    """Twice the same run, the second loading every program the first compiled: the
    agreement table is byte for byte the same. (A run with the cache off compiles afresh,
    as the first does: ``test_a_setting_of_the_users_wins_and_off_turns_it_off``.)"""
    environ = bare_environment(tmp_path)
    tables = []
    for name in ("first", "cached"):
        csv = tmp_path / f"{name}.csv"
        subprocess.run(
            [sys.executable, "-m", "harness.cli", "run", "--case", "mlp",
             "--backend", "jax", "--backend", "reference", "--noise", "0", "--csv", str(csv)],
            env=environ, cwd=tmp_path, check=True, capture_output=True,
        )  # fmt: skip
        tables.append(csv.read_bytes())
    assert any((tmp_path / "cache" / "gradparity" / "jax").iterdir())
    assert tables[0] == tables[1]
