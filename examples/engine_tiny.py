"""An engine plug-in: a tiny reverse-mode engine that runs every case of the catalog.

    gradparity validate examples/engine_tiny.py:TinyEngine --as engine
    gradparity validate examples/engine_tiny.py:TinyEngine --as engine --case lstm --dtype float32
    gradparity validate examples/engine_tiny.py:NoTanh --as engine      # a partial engine

The engine is ``harness/zoo/tiny_engine.py`` (about 200 lines, micrograd-style: each
operation builds its output and, beside it, the closure that sends the gradient back),
shipped in the package because the bug zoo breaks it one rule at a time. Read it as the
template for your own. What the harness asks of an engine (``harness/validation/forms/tensor_engine.py``):

    tensor(array, requires_grad) -> T     grad(loss, wrt) -> [array, ...]     numpy(t) -> array

and the array functions the cases use, by the array API standard's names (tanh exp log sum
mean reshape permute_dims concat stack), with the extras sigmoid relu logsumexp
softmax_cross_entropy, on T, which supports + - * / ** @, unary -,
indexing and len(). ``tap`` and ``scan`` are the harness's: the engine never sees them.
"""

from harness.zoo.tiny_engine import Tensor, TinyEngine

__all__ = ["NoTanh", "Tensor", "TinyEngine"]


class NoTanh(TinyEngine):
    """A partial engine, as micrograd is: no ``tanh``. The cases that need it are
    unsupported (named on one line, counted apart) and the rest still agree."""

    def __getattribute__(self, name):
        if name == "tanh":
            raise AttributeError(name)
        return super().__getattribute__(name)
