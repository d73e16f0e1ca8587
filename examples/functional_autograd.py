"""A functional engine: HIPS autograd (``pip install autograd``), which differentiates a
function — ``value_and_grad(f)`` — rather than a tape after the fact, checked on every
case of the catalog.

    gradparity validate examples/functional_autograd.py:Autograd --as functional
    gradparity validate examples/functional_autograd.py:Autograd --case lstm --dtype float32

What the harness asks of a functional engine (``harness/validation/forms/functional.py``): ``xp``,
the array namespace its traced functions run on, and ``value_and_grad(f)`` (or
``grad(f)``) of a function of one dict of arrays. autograd.numpy registers its derivatives
under numpy's classic names (``concatenate``, ``transpose``); ``numpy_like`` gives the
cases the array API standard's (``concat``, ``permute_dims``) on top of them. The extras
(sigmoid, relu, logsumexp, softmax cross-entropy) are built from those functions.
"""

import autograd
import autograd.numpy

from harness.namespace import numpy_like


class Autograd:
    xp = numpy_like(autograd.numpy)
    value_and_grad = staticmethod(autograd.value_and_grad)
