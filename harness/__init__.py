"""gradparity's harness: cases, backends, comparison and the ``gradparity`` command.

The public API::

    from harness import compare_backends
    comparison = compare_backends(["deep_chain"], ["reference", "torch", "jax", "numeric"])
    comparison.agreement   # tidy DataFrame: case × tensor × backend
    comparison.all_agree   # bool

    from harness import validate          # your own backprop against the references
    v = validate("examples/model_mlp.py:grads", form="model", cases=["mlp"])
    v.ok, print(v.text())
"""

from __future__ import annotations

from typing import Any

__all__ = ["Comparison", "compare_backends", "validate"]
__version__ = "0.1.0"

# Imported on first use, so that `import harness.cases` (a plug-in's worker process)
# does not pay for pandas.
_LAZY = {
    "Comparison": "harness.compare",
    "compare_backends": "harness.runner",
    "validate": "harness.validation.validator",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'harness' has no attribute {name!r}")
