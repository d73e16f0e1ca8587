"""The tape's modules import one way (the `lint-imports` layers contract checks the
statements); this checks the running code: each module, imported first in a fresh
interpreter, loads the whole package, and its arrays then know their namespace."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import reference

MODULES = sorted(
    p.stem for p in Path(reference.__file__).parent.glob("*.py") if p.stem != "__init__"
)

PROBE = """
import importlib, sys
first, rest = sys.argv[1], sys.argv[2:]
importlib.import_module("reference." + first)
for name in rest:
    importlib.import_module("reference." + name)
import reference.xp
from reference.engine import Tensor
from reference.forward import Dual
assert Tensor(1.0).__array_namespace__() is reference.xp
assert Dual(1.0, 1.0).__array_namespace__() is reference.xp
assert not any(m.split(".")[0] in ("harness", "torch", "jax") for m in sys.modules)
"""


def test_the_modules_are_the_ones_the_contract_lists():
    assert MODULES == ["array_object", "engine", "forward", "manual", "primitives", "xp"]


@pytest.mark.parametrize("first", MODULES)
def test_each_module_imports_first_in_a_fresh_interpreter(first):
    rest = [m for m in reversed(MODULES) if m != first]
    done = subprocess.run(
        [sys.executable, "-c", PROBE, first, *rest], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
