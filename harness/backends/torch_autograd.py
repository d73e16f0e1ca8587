"""The ``torch`` backend: PyTorch autograd, imported lazily — ``torch.autograd.grad``
(reverse), ``torch.autograd.forward_ad`` dual tensors (forward), and double backward
(H·v = ∇⟨∇L, v⟩, the graph of the first gradient kept with ``create_graph``)."""

from __future__ import annotations

import time

import numpy as np

from harness.backends.base import CHAIN_START, Backend, BackendUnavailable, Prepared, Untapped
from harness.backends.reference_tape import collect_taps
from harness.namespace import Namespace
from harness.result import Result


def _torch():
    try:
        import torch
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise BackendUnavailable(
            f"the torch backend needs PyTorch ({e}); install it with "
            "`pip install torch` (see README for the CPU build)"
        ) from None
    return torch


def _dims(x, axis):
    return tuple(range(x.ndim)) if axis is None else axis


class TorchNamespace(Namespace):
    """``xp`` on torch tensors: ``array_api_compat.torch`` and torch's own functions for the
    extras. A tap is a clone whose gradient autograd.grad reports."""

    name = "torch"

    def __init__(self) -> None:
        super().__init__()
        self.torch = _torch()
        import array_api_compat.torch as standard

        self.standard = standard
        self.watched: dict[str, list] = {}

    def _watch(self, name, x, step):
        t = self.torch
        x = x if isinstance(x, t.Tensor) else t.as_tensor(x)
        watched = x.clone() if x.requires_grad else x.detach().clone().requires_grad_(True)
        self.watched.setdefault(name, []).append(watched)
        return watched

    def sigmoid(self, x):
        return self.torch.sigmoid(x)

    def unwatched(self) -> TorchNamespace:
        """This namespace with taps that only record the value they see (forward mode,
        H·v): no clone, no detach, so the value keeps its tangent and its graph."""

        def record(name, x, step):
            self.watched.setdefault(name, []).append(x)
            return x

        self._watch = record  # type: ignore[method-assign]  # this namespace's taps, from now on
        return self

    def relu(self, x):
        return self.torch.relu(x)

    def logsumexp(self, x, axis=None, keepdims=False):
        return self.torch.logsumexp(x, dim=_dims(x, axis), keepdim=keepdims)

    def softmax_cross_entropy(self, logits, labels):
        return self.torch.nn.functional.cross_entropy(logits, labels)


class UntappedNamespace(Untapped, TorchNamespace):
    """torch's ``xp`` with taps off: the loss and its gradient alone."""


class TorchBackend(Backend):
    name = "torch"
    gpu = True

    def gradient(self, case, params, inputs, dtype):
        ops = TorchNamespace()
        torch = ops.torch
        P = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
        X = {k: torch.tensor(v) for k, v in inputs.items()}
        start = time.perf_counter()
        loss = case.loss(ops, P, X)
        watched = [v for values in ops.watched.values() for v in values]
        grads = torch.autograd.grad(loss, [*P.values(), *watched], allow_unused=True)
        seconds = time.perf_counter() - start
        by_id = {id(v): g for v, g in zip([*P.values(), *watched], grads, strict=True)}

        def grad_of(v) -> np.ndarray:
            g = by_id[id(v)]
            return np.zeros(tuple(v.shape), dtype) if g is None else g.detach().numpy()

        return Result(
            case=case.label,
            backend=self.name,
            dtype=dtype,
            loss=float(loss.detach()),
            grads={k: grad_of(v) for k, v in P.items()},
            taps=collect_taps(ops, ops.watched, grad_of),
            tap_steps=dict(ops.tap_steps),
            seconds=seconds,
        )

    def prepare_chain(self, n_ops, device="cpu"):
        """Eager: the forward under ``torch.no_grad()``, the gradient by
        ``torch.autograd.grad``; on a GPU, synchronised before returning."""
        torch = _torch()
        x = torch.tensor(np.full(1, CHAIN_START), device=device)
        leaf = x.clone().requires_grad_(True)
        sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

        def forward():
            with torch.no_grad():
                y = x
                for _ in range(n_ops):
                    y = torch.tanh(y)
            sync()
            return y

        def gradient():
            y = leaf
            for _ in range(n_ops):
                y = torch.tanh(y)
            (g,) = torch.autograd.grad(y, leaf, torch.ones_like(y))
            sync()
            return g

        return Prepared(forward, gradient)

    def prepare(self, case, params, inputs, device="cpu"):
        """Eager: the objective under ``torch.no_grad()``, the gradient by
        ``torch.autograd.grad`` of the parameters; on a GPU, synchronised before returning."""
        torch = _torch()
        dev = torch.device(device)
        P = {k: torch.as_tensor(v, device=dev) for k, v in params.items()}
        leaves = {k: t.clone().requires_grad_(True) for k, t in P.items()}
        X = {k: torch.as_tensor(v, device=dev) for k, v in inputs.items()}
        sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)

        def objective():
            with torch.no_grad():
                loss = case.loss(UntappedNamespace(), P, X)
            sync()
            return loss

        def gradient():
            loss = case.loss(UntappedNamespace(), leaves, X)
            grads = torch.autograd.grad(loss, list(leaves.values()))
            sync()
            return grads

        return Prepared(objective, gradient)

    def jvp(self, case, params, inputs, dtype, tangent):
        ops = TorchNamespace().unwatched()
        torch = ops.torch
        fwAD = torch.autograd.forward_ad
        X = {k: torch.tensor(v) for k, v in inputs.items()}
        start = time.perf_counter()
        with fwAD.dual_level():
            P = {
                k: fwAD.make_dual(torch.tensor(v), torch.tensor(tangent[k]))
                for k, v in params.items()
            }
            loss = case.loss(ops, P, X)

            def tangent_of(x) -> np.ndarray:
                t = fwAD.unpack_dual(x).tangent if isinstance(x, torch.Tensor) else None
                shape = tuple(np.shape(x))
                return np.zeros(shape, dtype) if t is None else t.detach().numpy().copy()

            dloss = tangent_of(loss)
            taps = collect_taps(ops, ops.watched, tangent_of)
            value = float(fwAD.unpack_dual(loss).primal.detach())
        return Result(
            case=case.label,
            backend=self.name,
            dtype=dtype,
            mode="fwd",
            loss=value,
            tangent=float(dloss),
            taps=taps,
            tap_steps=dict(ops.tap_steps),
            seconds=time.perf_counter() - start,
        )

    def hvp(self, case, params, inputs, dtype, vector):
        ops = TorchNamespace().unwatched()
        torch = ops.torch
        P = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
        X = {k: torch.tensor(v) for k, v in inputs.items()}
        start = time.perf_counter()
        loss = case.loss(ops, P, X)
        grads = torch.autograd.grad(loss, list(P.values()), create_graph=True, allow_unused=True)
        pairs = [
            (g, torch.tensor(vector[k]))
            for k, g in zip(P, grads, strict=True)
            if g is not None and g.requires_grad
        ]
        hv = (
            torch.autograd.grad(
                sum((g * v).sum() for g, v in pairs), list(P.values()), allow_unused=True
            )
            if pairs
            else [None] * len(P)
        )
        seconds = time.perf_counter() - start
        return Result(
            case=case.label,
            backend=self.name,
            dtype=dtype,
            mode="hvp",
            loss=float(loss.detach()),
            seconds=seconds,
            grads={
                k: np.zeros(tuple(p.shape), dtype) if h is None else h.detach().numpy()
                for (k, p), h in zip(P.items(), hv, strict=True)
            },
        )
