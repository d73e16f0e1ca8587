"""JAX's persistent compilation cache, for gradparity's own processes.

The jax backend compiles every case it runs (``jax.jit(...).lower(...).compile()``): the
default catalog makes 80 XLA compilations, about 10 s of a 40 s ``gradparity run`` on 2
cores, and every later run compiles the same programs again. JAX can keep what it compiled
on disk, keyed by the program, the JAX version and the device, and load it instead
(`the JAX docs, "Persistent compilation cache"
<https://docs.jax.dev/en/latest/persistent_compilation_cache.html>`_): measured on this
project's 2-core machine, ``gradparity run --backend jax --backend torch --noise 0`` on the
catalog took 21.5 s cold and 11.7 s with the cache filled. A loaded program is the one
that was compiled, so the numbers are those of a fresh compilation, bit for bit.

The command (``harness.cli``) turns it on for itself and the workers it starts, through
JAX's own environment variables, before anything imports JAX; a variable the user has set
is left as it is. A program that imports ``harness`` (``harness.validate``, the pytest
plug-in) keeps its own JAX configuration: nothing here runs there. The cache is bounded
(``MAX_BYTES``; JAX evicts the least recently used entries, under a file lock, so processes
running at once share it safely). ``gradparity bench`` turns it off: it times compilation.

``GRADPARITY_JAX_CACHE``: the folder (default ``$XDG_CACHE_HOME/gradparity/jax``, else
``~/.cache/gradparity/jax``), or ``off``.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from pathlib import Path

VARIABLE = "GRADPARITY_JAX_CACHE"
MAX_BYTES = 256 * 2**20  # the catalog's programs take under 1 MiB; a user's models more


def folder(environ: MutableMapping[str, str] = os.environ) -> Path | None:
    """Where the cache lives, or None where ``GRADPARITY_JAX_CACHE=off``."""
    chosen = environ.get(VARIABLE, "")
    if chosen.lower() == "off":
        return None
    if chosen:
        return Path(chosen).expanduser()
    base = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "gradparity" / "jax"


def enable(environ: MutableMapping[str, str] = os.environ) -> None:
    """Turn the cache on in ``environ`` (this process's, inherited by the workers it
    starts), each variable only where the user has not set it; a no-op once JAX has
    been imported, which reads them at its import."""
    where = folder(environ)
    if where is None:
        disable(environ)
        return
    environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(where))
    environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")  # ours take ~0.1 s
    environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "-1")
    environ.setdefault("JAX_COMPILATION_CACHE_MAX_SIZE", str(MAX_BYTES))


def disable(environ: MutableMapping[str, str] = os.environ) -> None:
    """Turn the cache off in ``environ``: every compilation is a fresh one."""
    environ["JAX_ENABLE_COMPILATION_CACHE"] = "false"


__all__ = ["MAX_BYTES", "VARIABLE", "disable", "enable", "folder"]
