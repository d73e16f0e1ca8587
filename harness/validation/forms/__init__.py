"""The plug-in forms, one table: ``FORMS`` maps each ``--as`` name to its Form
(``harness.validation.forms.base``), in the order they are tried on an object.

A new form is one module here (a ``Form`` subclass) and one entry below; the CLI's
``--as``, the pytest option, the validator's checks and message, the worker's calls, the
peers and the zoo read this table. Imported by the plug-in's worker: numpy only.
"""

from __future__ import annotations

from typing import Any

from harness.validation.forms.base import Form
from harness.validation.forms.functional import Functional
from harness.validation.forms.jax_custom_vjp import JaxCustomVJP
from harness.validation.forms.model import Model
from harness.validation.forms.stage import Stage
from harness.validation.forms.tensor_engine import Engine
from harness.validation.forms.torch_function import TorchFunction

# Tried in this order: a framework's function before anything callable, a functional engine
# before an engine (it has grad too), a stage and an engine before any callable (a model).
FORMS: dict[str, Form] = {
    form.name: form
    for form in (TorchFunction(), JaxCustomVJP(), Functional(), Stage(), Engine(), Model())
}


def form_names() -> tuple[str, ...]:
    """The names ``--as`` takes."""
    return tuple(FORMS)


def detect_form(obj: Any) -> str:
    """The name of the first form that recognises ``obj``, or "unknown"."""
    return next((form.name for form in FORMS.values() if form.detects(obj)), "unknown")


def attributes() -> tuple[str, ...]:
    """Every attribute some form needs (the worker reports which a plug-in has)."""
    return tuple(dict.fromkeys(a for form in FORMS.values() for a in form.needs))


def described() -> str:
    """What a plug-in may be, for the message when it is none of them."""
    names = [form.described for form in reversed(FORMS.values())]
    return f"{', '.join(names[:-1])} nor {names[-1]}"


__all__ = ["FORMS", "Form", "attributes", "described", "detect_form", "form_names"]
