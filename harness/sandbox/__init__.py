"""The sandbox: untrusted code — a plug-in, a case of the user's — runs here, never in the
process that judges it.

- ``channel``: ``Isolated`` (a worker process with a time and memory limit, restarted after
  a fault, every process it started killed after each request) and ``InProcess`` (the
  same code in this process, for what no fresh process can import);
- ``worker``: the worker process (its keeper, its limits, its request loop) and ``call``,
  which runs one piece of untrusted code and reports what it did as data;
- ``wire``: the data-only format of requests and replies (no pickle from a worker);
- ``processes``: PID namespaces, subreapers, the process tree: what the worker started,
  found by what the kernel says.
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "DEFAULT_MEMORY": "channel",
    "DEFAULT_TIMEOUT": "channel",
    "GiB": "channel",
    "InProcess": "channel",
    "Isolated": "channel",
    "close_all": "channel",
    "fault": "channel",
    "call": "worker",
    "Worker": "worker",
    "Malformed": "wire",
    "conforms": "wire",
}


def __getattr__(name: str) -> Any:  # lazy: the keeper process imports this package, not numpy
    if name not in _EXPORTS:
        raise AttributeError(name)
    import importlib

    return getattr(importlib.import_module(f"harness.sandbox.{_EXPORTS[name]}"), name)


__all__ = sorted(_EXPORTS)
