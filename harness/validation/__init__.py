"""Validation: your own backprop, checked against the references (``gradparity validate``).

Six forms, each a small protocol and a class in ``harness.validation.forms`` (one module
each, one registry, ``FORMS``; README: "Six forms"):

- **model** (``forms.model``): a function ``grads(params, inputs[, case])`` for one named
  case, returning ``{name: dL/dθ}`` for every parameter, or
  ``{"grads": {...}, "loss": L, "taps": {tap: dL/dtap}}`` (taps inside a scan stacked
  along a leading step axis). Names and shapes: ``gradparity describe CASE``.
- **engine** (``forms.tensor_engine``): an object with the ``ops`` functions on its own tensor
  type plus ``tensor``, ``grad`` and ``numpy``; the harness runs every case through it.
- **stage** (``forms.stage``; the stages themselves, as cases, in ``stage_cases``): ``stage = "linear"``
  (or tanh, sigmoid, relu, softmax_xent, elman_step, lstm_step, gru_step, custom),
  ``forward(*inputs) -> (out, cache)`` and ``backward(d_out, cache) -> grads``.

plus **functional** (``forms.functional``), **torch-function** and **jax-custom-vjp**
(``forms.torch_function``, ``forms.jax_custom_vjp``, adapted by ``framework_stages``). Each call
runs in a worker process with a time and memory limit (``harness.sandbox``; the calls
themselves, in ``plugin_calls``); what it returned is checked raw (``checks``); its Result is
compared like any backend's (``validator``, ``jobs`` for ``--jobs``), and ``diagnose``
says where it goes wrong. The bug zoo and the selftest are ``harness.zoo``; the peers
comparison is ``harness.bench.peers``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Validation", "validate"]


def __getattr__(name: str) -> Any:  # lazy: the worker imports this package, not pandas
    if name in __all__:
        from harness.validation import validator as module

        return getattr(module, name)
    raise AttributeError(name)
