"""gradparity's harness: cases, backends, comparison and the ``gradparity`` command.

The public API::

    from harness import compare_backends
    comparison = compare_backends(["deep_chain"], ["reference", "torch", "jax", "numeric"])
    comparison.agreement   # tidy DataFrame: case × tensor × backend
    comparison.all_agree   # bool
"""

from harness.runner import Comparison, compare_backends

__all__ = ["Comparison", "compare_backends"]
__version__ = "0.1.0"
