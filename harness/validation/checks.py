"""Judging a plug-in's raw answer, before any comparison: the faults, and the Result.

Everything is checked on what the plug-in returned, as it returned it: the type, the set
of tensors, each tensor's shape, dtype and finiteness. Nothing is summed over a
broadcast axis or reshaped to make it fit (torch's autograd engine would do both;
plug-in gradients never go through it). A tensor in another dtype is one fault for the
call (``harness.validation.dtypes``), and its values are still compared, cast to the
run's dtype. Then the two calls of a case are compared with
each other (non-determinism, state kept across calls) and, for a stage, the backward
with finite differences of the plug-in's own forward.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from harness.compare import Verdict, compare_arrays, compare_directional
from harness.result import Directional, Result
from harness.tolerances import TOLERANCES, tolerance_for
from harness.validation.dtypes import as_run_dtype, dtype_fault
from harness.validation.faults import UNCOMPARED, Fault
from harness.validation.printed import Printed, printed_by

MAX_OUTPUT = 1_000_000  # characters one call may print before a note says it flooded


def fatal(reply_fault: dict[str, Any], may_lack: bool = False) -> tuple[str, str, str]:
    """(fault_name, message, traceback) of a fault the worker (or its death) reported.

    ``may_lack``: the form runs a case's own math through the plug-in's functions (an
    engine, a functional namespace), so a function it lacks makes the case "unsupported",
    counted apart. Any other form's exception is a fault, whatever its class is called: a
    plug-in must not hide a case it gets wrong by raising an exception named MissingOp."""
    fault_name = reply_fault.get("fault_name", "exception")
    message = reply_fault.get("message", "")
    # a function the engine lacks, or has under numpy's name: one line, no traceback
    for exception_type, says in (("MissingOp", "unsupported"), ("MisnamedOp", "misnamed function")):
        if may_lack and reply_fault.get("type") == exception_type:
            prefix = f"{exception_type}: "
            return says, message[len(prefix) :] if message.startswith(prefix) else message, ""
    if reply_fault.get("type") == "MissingMethod":
        fault_name = "missing attribute"
    return fault_name, message, reply_fault.get("traceback", "")


def fault_facts(reply_fault: dict[str, Any]) -> dict[str, str]:
    """What a missing or misnamed function's fault says, as data (``missing``, ``asked``,
    ``has``); nothing for any other fault, whatever the plug-in's exception carried."""
    if reply_fault.get("type") not in ("MissingOp", "MisnamedOp"):
        return {}
    return dict(reply_fault.get("facts") or {})


def _hint(shape: tuple, expected: tuple) -> str:
    if np.prod(shape) == np.prod(expected) and [n for n in shape if n != 1] == [
        n for n in expected if n != 1
    ]:
        what = "a scalar" if expected == () else f"shape {expected}"
        return (
            f" — a rank mismatch: the same {int(np.prod(shape))} element(s) with axes of "
            f"length 1 {'added' if len(shape) > len(expected) else 'dropped'} ({what} was "
            "expected: np.reshape, or .item() for a scalar)"
        )
    if len(shape) == len(expected) + 1 and shape[1:] == expected:
        return f" — one more leading axis of {shape[0]}: not summed over the batch or steps?"
    if len(shape) == 2 and shape == expected[::-1] and shape != expected:
        return " — transposed?"
    if np.prod(shape) == np.prod(expected):
        return " — the right number of elements in another shape (reshaped, or transposed?)"
    return ""


def check_leaf(
    leaf: dict[str, Any], label: str, expected: tuple | None, dtype: str, fault
) -> np.ndarray | None:
    """One returned tensor: its type, shape and finiteness (its dtype is the caller's to
    judge, over all the tensors of a call). Returns the array as returned (never cast or
    reshaped), or None."""
    array = leaf.get("array")
    if leaf.get("note"):
        fault("converted", f"{label} was {leaf['note']}")
    if array is None:
        what = (
            "None"
            if leaf.get("type") == "None"
            else f"a {leaf.get('type')} ({leaf.get('repr', '')})"
        )
        fault("wrong type", f"{label} is {what}; expected a numpy array")
        return None
    if expected is not None and array.shape != tuple(expected):
        fault(
            "wrong shape",
            f"{label} has shape {array.shape} where {tuple(expected)} was expected"
            + _hint(array.shape, tuple(expected)),
        )
    if array.dtype.kind in "fc":
        bad = ~np.isfinite(array)
        if bad.any():
            first = tuple(int(i) for i in np.argwhere(bad)[0]) if array.ndim else ()
            non_finite = "NaN" if np.isnan(array[first]) else "Inf"
            more = f" (and {int(bad.sum()) - 1} more non-finite elements)" if bad.sum() > 1 else ""
            fault("not finite", f"{label} is {non_finite} at {first}{more}")
    return array


def same(b: np.ndarray, a: np.ndarray, tol) -> bool:
    """Is ``b`` the same answer as ``a``: equal within ``tol`` where both are finite, and
    where either is not, the same NaN or the same infinity (NaN ≠ NaN is no difference)."""
    finite = np.isfinite(a) & np.isfinite(b)
    alike = (a == b) | (np.isnan(a) & np.isnan(b))
    scale = max(float(np.max(np.abs(np.where(finite, a, 0.0)), initial=0.0)), 1e-300)
    with np.errstate(invalid="ignore", over="ignore"):
        close = np.abs(b - a) <= tol.rtol * np.abs(a) + tol.atol * scale
    return bool(np.all(np.where(finite, close, alike)))


class OwnForward(Result):
    """Finite differences of the plug-in's own forward (a stage's, a custom Function's):
    its backward's consistency with that forward, never a reference that could outvote
    one (``Result.independent``)."""

    independent = False


class Judgement:
    """The faults and the Result for one case, built from the worker's reply."""

    def __init__(
        self,
        case,
        backend: str,
        dtype: str,
        params: dict,
        expected_taps: dict,
        tap_steps: dict,
        max_output: int = MAX_OUTPUT,
        mode: str = "rev",
        sent: tuple[dict, dict] = ({}, {}),
        may_lack: bool = False,
    ):
        self.case, self.backend, self.dtype, self.mode = case, backend, dtype, mode
        self.may_lack = may_lack  # the form may lack a function a case needs (see ``fatal``)
        self.sent = sent  # the parameters and inputs as they were sent, untouched here
        self.params, self.expected_taps, self.tap_steps = params, expected_taps, tap_steps
        self.max_output = max_output
        self.faults: list[Fault] = []
        self.extra_results: list[Result] = []
        self.came_back: dict[str, str] = {}  # tensor -> its dtype, where not the run's
        self.uncompared: dict[tuple[str, str], str] = {}  # (kind, name) -> its fault
        self.no_number: dict[str, str] = {}  # tensor -> its dtype, where no real number's
        self.printed: list[Printed] = []  # what the first call printed, shown with the verdict

    def fault(
        self,
        fault_name: str,
        message: str,
        tensor: str = "",
        traceback: str = "",
        facts: dict | None = None,
    ) -> None:
        self.faults.append(
            Fault(
                self.case.label, self.backend, tensor, fault_name, message, traceback, facts or {}
            )
        )

    def tensor_fault(self, key: tuple[str, str], fault_name: str, message: str) -> None:
        """A fault of one returned tensor, ``key`` = (kind, name) as ``Result.tensors()``
        keys it; one of ``UNCOMPARED`` leaves that tensor's numbers uncompared."""
        self.fault(fault_name, message, key[1])
        if fault_name in UNCOMPARED:
            self.uncompared[key] = f"{fault_name}: {message}"

    def _in_run_dtype(self, name: str, array: np.ndarray) -> np.ndarray:
        """The array to compare: cast to the run's dtype, its own dtype noted where it
        is another."""
        if array.dtype != np.dtype(self.dtype):
            self.came_back[name] = str(array.dtype)
        return as_run_dtype(array, self.dtype)

    def result(self, reply: dict[str, Any]) -> Result:
        empty = Result(self.case.label, self.backend, self.dtype)
        if "fault" in reply:
            return self._fatal(
                empty, *fatal(reply["fault"], self.may_lack), fault_facts(reply["fault"])
            )
        first = reply["calls"][0]
        self.printed = printed_by(first, self.case.label, self.backend)
        self._output(first, reply.get("fd_stderr_bytes", 0))
        if first["error"] is not None:
            return self._fatal(
                empty, *fatal(first["error"], self.may_lack), fault_facts(first["error"])
            )
        out = first["output"]
        if out["top"] == "None":
            return self._fatal(
                empty, "returned None", "the call returned None (a missing `return`?)", ""
            )
        if out["top"] != "dict":
            return self._fatal(
                empty,
                "wrong type",
                f"the call returned a {out['top']} "
                f"({out.get('repr', '')}); expected a dict {{parameter name: array}} "
                "or {'grads': ..., 'loss': ..., 'taps': ...}",
                "",
            )
        if "bad_names" in out:
            return self._fatal(
                empty,
                "wrong type",
                f"a name in the answer is a {out['bad_names']}, not a str: the tensors are "
                "named by the case's parameter and tap names, as strings "
                "(`gradparity describe CASE` lists them)",
                "",
            )
        if out.get("grads") is None or "bad_taps" in out:
            what = "grads" if out.get("grads") is None else "taps"
            return self._fatal(empty, "wrong type", f"{what!r} is not a dict of arrays", "")
        grads = self._tensors(out["grads"], {k: v.shape for k, v in self.params.items()}, "param")
        taps = self._tensors(out.get("taps") or {}, self.expected_taps, "tap")
        loss = math.nan
        if isinstance(out.get("loss"), dict) and out["loss"].get("dtype"):
            self.no_number["loss"] = str(out["loss"]["dtype"])
        elif out.get("loss") is not None:
            array = check_leaf(
                out["loss"], "the loss", None, self.dtype, self._tensor_fault("loss", "loss")
            )
            if array is not None and array.size == 1:
                loss = float(self._in_run_dtype("loss", array).reshape(()))
            elif array is not None:
                self.tensor_fault(
                    ("loss", "loss"),
                    "wrong shape",
                    f"the loss has shape {array.shape}; expected a scalar",
                )
        if self.no_number:  # one fault for them all, as for a wrong dtype
            names = list(self.no_number)
            dtypes = ", ".join(dict.fromkeys(self.no_number.values()))
            self.fault(
                "wrong type",
                f"{len(names)} tensor{'s' * (len(names) != 1)} came back as arrays of dtype "
                f"{dtypes} ({', '.join(names[:8])}{' …' if len(names) > 8 else ''}): a gradient "
                f"is an array of real numbers, float64 or float32 (an int or bool array is "
                f"cast to the run's {self.dtype}), never complex, object or str",
                ", ".join(names),
                facts={"tensors": names, "dtypes": dtypes},
            )
        if self.came_back:
            message, facts = dtype_fault(self.came_back, self.dtype)
            self.fault("wrong dtype", message, ", ".join(facts["tensors"]), facts=facts)
        for name, count, first_at in self._mutated(first.get("after")):
            n = "" if count < 0 else f" ({count} element{'s' * (count != 1)}, first at {first_at})"
            self.fault(
                "mutated inputs",
                f"the call wrote into {name}{n}; every later call "
                "and every other backend got clean copies",
                name,
            )
        if len(reply["calls"]) > 1:
            self._repeat(out, reply["calls"][1])
        result = Result(
            self.case.label,
            self.backend,
            self.dtype,
            loss=loss,
            grads=grads,
            taps=taps,
            tap_steps={k: self.tap_steps.get(k) for k in taps},
            seconds=first["seconds"],
            withheld=self._withheld(out),
            uncompared=dict(self.uncompared),
        )
        if "fd" in reply:
            self._own_forward(result, reply["fd"])
        return result

    # --- pieces
    def _mutated(self, after: dict[str, Any] | None) -> list[tuple[str, int, str]]:
        """What the call wrote into its arrays, found here (never by the worker, whose numpy
        the plug-in may have replaced): [(name, elements changed, first index)]; -1
        elements where an array was replaced by another shape or type."""
        if after is None:
            return []
        sent_params, sent_inputs = self.sent
        pairs = [(f"params[{k!r}]", after["params"].get(k), v) for k, v in sent_params.items()]
        pairs += [(f"inputs[{k!r}]", after["inputs"].get(k), v) for k, v in sent_inputs.items()]
        if "d_out" in after:  # named as the backward calls them (``dnext[1]``)
            given = self.case.d_out(sent_inputs)
            pairs += list(zip(after["d_out_names"], after["d_out"], given, strict=False))
        found = []
        for name, got, before in pairs:
            before = np.asarray(before)
            if not isinstance(got, np.ndarray | np.generic) or np.shape(got) != before.shape:
                found.append((name, -1, "replaced"))
                continue
            got = np.asarray(got)
            if before.dtype.kind in "fc":
                changed = ~((got == before) | (np.isnan(got) & np.isnan(before)))
            else:
                changed = got != before
            if changed.any():
                first = tuple(int(i) for i in np.argwhere(changed)[0]) if changed.ndim else ()
                found.append((name, int(changed.sum()), str(first)))
        return found

    def _fatal(
        self,
        empty: Result,
        fault_name: str,
        message: str,
        traceback: str,
        facts: dict | None = None,
    ) -> Result:
        self.fault(fault_name, message, "", traceback, facts)
        if fault_name == "unsupported":  # counted apart, not a failure
            empty.unsupported = message
        else:
            empty.error = f"{fault_name}: {message}"
        return empty

    def _tensor_fault(self, kind: str, name: str):
        return lambda fault, message: self.tensor_fault((kind, name), fault, message)

    def _withheld(self, out: dict[str, Any]) -> dict[tuple[str, str], str]:
        """What the plug-in chose not to report, which has no row: a tap it did not return
        (the taps are optional), the loss where it gave none."""
        reported = out.get("taps") or {}
        withheld = {("tap", t): "not reported" for t in self.expected_taps if t not in reported}
        if out.get("loss") is None:
            withheld["loss", "loss"] = "not reported"
        return withheld

    def _tensors(self, tree: dict, expected: dict, kind: str) -> dict[str, np.ndarray]:
        out = {}
        for name, leaf in tree.items():
            if leaf.get("dtype") and name in expected:  # said once for the call, above
                self.no_number[name] = str(leaf["dtype"])
                continue
            if name not in expected:
                known = ", ".join(expected) or "none"
                self.fault(
                    "extra tensor",
                    f"a {kind} {name!r} the case does not have (its {kind}s: {known})",
                    name,
                )
                continue
            array = check_leaf(
                leaf, f"{kind} {name!r}", expected[name], self.dtype, self._tensor_fault(kind, name)
            )
            if array is not None and array.dtype.kind in "fiub":
                out[name] = self._in_run_dtype(name, array)
        if kind == "param":
            for name in expected:
                if name not in tree:
                    got = ", ".join(tree) or "nothing"
                    what = "H·v" if self.mode == "hvp" else "gradient"
                    self.tensor_fault(
                        ("param", name),
                        "missing tensor",
                        f"no {what} for parameter {name!r} (shape "
                        f"{tuple(expected[name])}); it returned: {got}",
                    )
        return out

    def _output(self, call: dict[str, Any], fd_bytes: int) -> None:
        below = max(int(call.get("fd_chars") or 0), fd_bytes)  # fd_bytes: the whole request's
        printed = call["stdout_chars"] + call["stderr_chars"] + below
        if printed > self.max_output:  # a note: printing is no fault of a backward's
            self.fault(
                "output flood",
                f"the call printed {printed:,} characters (more than "
                f"{self.max_output:,}); the ends of what it printed are shown",
            )

    def _repeat(self, first: dict[str, Any], second_call: dict[str, Any]) -> None:
        """The same call twice on clean copies: equal, doubled (state), or different."""
        if second_call["error"] is not None:
            _, message, tb = fatal(second_call["error"], self.may_lack)
            self.fault(
                "state across calls",
                f"the first call succeeded and the second, on the same inputs, failed: {message}",
                "",
                tb,
            )
            return
        second = second_call.get("output", {})
        tol = TOLERANCES[("autodiff", self.dtype)]
        differ, doubled = [], []
        for part in ("grads", "taps"):
            for name, leaf in (first.get(part) or {}).items():
                other = (second.get(part) or {}).get(name)
                a = leaf.get("array")
                b = None if other is None else other.get("array")
                if a is None or b is None or a.shape != b.shape or a.dtype.kind not in "fc":
                    continue
                a, b = a.astype(np.float64), b.astype(np.float64)
                if same(b, a, tol):
                    continue
                differ.append(name)
                if same(b, 2 * a, tol):
                    doubled.append(name)
        if not differ:
            return
        names = ", ".join(differ[:6]) + (" …" if len(differ) > 6 else "")
        if len(doubled) == len(differ):
            self.fault(
                "state across calls",
                f"the second call on the same inputs returned "
                f"twice the first on {names}: gradients accumulate from call to call "
                "(reset them at the start of each call)",
            )
        else:
            self.fault(
                "non-deterministic",
                f"two calls on the same inputs returned different "
                f"gradients for {names} (an unseeded random number? dropout left on? "
                "state kept between calls?)",
            )

    def _own_forward(self, result: Result, fd: dict[str, Any]) -> None:
        """The stage's backward against finite differences of its own forward."""
        name = f"{self.backend}(fd)"
        if fd.get("error") is not None:
            fault_name, message, tb = fatal(fd["error"], self.may_lack)
            self.fault(fault_name, f"finite differences of the forward failed: {message}", "", tb)
            return
        tol = tolerance_for("autodiff", "numeric", self.dtype)
        # finite differences give the parameters' gradients alone; the loss is the
        # plug-in's own, which its own row shows (or withholds)
        withheld = {("tap", t): "not computed" for t in self.expected_taps}
        if ("loss", "loss") in result.withheld or ("loss", "loss") in result.uncompared:
            withheld["loss", "loss"] = "the plug-in's own"
        if "directional" in fd["value"]:  # a large stage: along random directions
            probes = {("param", k): Directional(*v) for k, v in fd["value"]["directional"].items()}
            self.extra_results.append(
                OwnForward(
                    self.case.label,
                    name,
                    self.dtype,
                    loss=result.loss,
                    obtained_by="directional",
                    directional=probes,
                    seconds=fd["seconds"],
                    withheld=withheld,
                )
            )
            for (_, tensor), probe in probes.items():
                got = result.grads.get(tensor)
                if got is None or np.shape(got) != probe.directions.shape[1:]:
                    continue
                m = compare_directional(got, probe, tol, self.dtype)
                if m["verdict"] == Verdict.DISAGREE:
                    self.fault(
                        "disagrees with own forward",
                        f"the backward's d{tensor} is not the derivative of the stage's "
                        f"own forward along {m['n_bad']}/{m['n_elements']} random "
                        f"directions; worst, {m['worst_index']}: backward "
                        f"{m['worst_expected']:.6g}, finite differences of the forward "
                        f"{m['worst_got']:.6g}",
                        tensor,
                    )
            return
        grads, errors = fd["value"]["grads"], fd["value"]["errors"]
        self.extra_results.append(
            OwnForward(
                self.case.label,
                name,
                self.dtype,
                loss=result.loss,
                grads=grads,
                obtained_by="elementwise",
                uncertainty={("param", k): v for k, v in errors.items()},
                seconds=fd["seconds"],
                withheld=withheld,
            )
        )
        for tensor, expected in grads.items():
            got = result.grads.get(tensor)
            if got is None or np.shape(got) != expected.shape:
                continue
            m = compare_arrays(got, expected, tol, self.dtype, errors[tensor])
            if m["verdict"] == Verdict.DISAGREE:
                self.fault(
                    "disagrees with own forward",
                    f"the backward's d{tensor} is not the derivative of the stage's own "
                    f"forward: {m['n_bad']}/{m['n_elements']} elements differ; worst at "
                    f"{m['worst_index']}: backward {m['worst_got']:.6g}, finite differences "
                    f"of the forward {m['worst_expected']:.6g}",
                    tensor,
                )
