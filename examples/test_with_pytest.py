"""Your backprop in your own test suite, through gradparity's pytest plugin.

pytest examples/test_with_pytest.py
pytest examples/test_with_pytest.py --gradparity-impl examples/model_mlp.py:grads --gradparity-as model
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from model_mlp import grads


def test_my_mlp_backprop(gradparity_check):
    gradparity_check(grads, case="mlp", references=["reference", "torch"])


def test_the_implementation_named_on_the_command_line(gradparity_impl, gradparity_check):
    gradparity_check(gradparity_impl, case="mlp", references=["reference"])
