"""The wire between gradparity and a worker carries data and nothing else: what goes in
comes out equal, and anything that is not a message is refused as Malformed."""

from __future__ import annotations

import io
import math
import pickle
import struct

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from harness.sandbox.wire import Malformed, Mapping, Tuple, conforms, encode, read_message

DTYPES = ["float64", "float32", "float16", "int64", "int8", "uint16", "bool"]

leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**62), 2**62),
    st.floats(allow_nan=False),
    st.text(max_size=20),
    st.sampled_from(DTYPES).flatmap(
        lambda d: hnp.arrays(d, hnp.array_shapes(min_dims=0, max_dims=3, max_side=4))
    ),
)
trees = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=4).map(tuple),
        st.dictionaries(st.text(max_size=8), inner, max_size=4),
        st.dictionaries(st.tuples(st.text(max_size=4), st.text(max_size=4)), inner, max_size=3),
    ),
    max_leaves=12,
)


def same(a, b) -> bool:
    if isinstance(a, np.ndarray):
        return (
            isinstance(b, np.ndarray)
            and a.dtype == b.dtype
            and a.shape == b.shape
            and np.array_equal(a, b, equal_nan=a.dtype.kind == "f")
        )
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(same, a, b))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def roundtrip(message):
    return read_message(io.BytesIO(encode(message)))


@given(trees)
def test_what_goes_in_comes_out_equal(message):
    assert same(message, roundtrip(message))


def test_nan_inf_and_numpy_scalars_survive():
    out = roundtrip({"x": math.nan, "y": -math.inf, "s": np.float32(2.5), "i": np.int64(3)})
    assert math.isnan(out["x"]) and out["y"] == -math.inf
    assert out["s"] == np.float32(2.5) and out["s"].dtype == np.float32
    assert out["i"] == 3 and out["i"].dtype == np.int64


@pytest.mark.parametrize("value", [object(), np.array([object()]), {1.5j: 1}, lambda: 0])
def test_what_is_not_data_cannot_be_sent(value):
    with pytest.raises(TypeError):
        encode({"v": value})


def frame(header: bytes, data: bytes = b"", magic: bytes = b"GPW1") -> io.BytesIO:
    return io.BytesIO(struct.pack("<4sQQ", magic, len(header), len(data)) + header + data)


@pytest.mark.parametrize("stream, why", [
    (io.BytesIO(struct.pack("<Q", 10) + pickle.dumps({"a": 1})), "must start with"),
    (frame(b'{"a": 1'), "not JSON"),
    (frame(b'{"\\u0000a": {"dtype": "|O", "shape": [1], "offset": 0}}', b"x" * 8), "dtype"),
    (frame(b'{"\\u0000a": {"dtype": "<f8", "shape": [4], "offset": 0}}', b"x" * 8), "past the end"),
    (frame(b'{"\\u0000a": {"dtype": "<f8", "shape": [-1], "offset": 0}}'), "shape"),
    (frame(b'{"\\u0000z": 1}'), "unknown tag"),
    (frame(b"[" * 100 + b"]" * 100), "deep"),
    (io.BytesIO(encode({"a": 1})[:-3]), "ended"),
])  # fmt: skip
def test_anything_else_is_malformed(stream, why):
    with pytest.raises(Malformed, match=why):
        read_message(stream)


def test_a_length_past_the_limit_is_refused_before_it_is_read():
    stream = io.BytesIO(struct.pack("<4sQQ", b"GPW1", 2**50, 0))
    with pytest.raises(Malformed, match="the limit"):
        read_message(stream, limit=2**30)


def test_the_end_of_the_stream_is_none():
    assert read_message(io.BytesIO(b"")) is None


def test_conforms_says_where_a_reply_departs_from_its_shape():
    schema = {
        "calls": [{"seconds": float, "out?": Mapping(str, np.ndarray)}],
        "pair": Tuple(str, (int, None)),
    }
    good = {"calls": [{"seconds": 1}], "pair": ("a", None)}
    assert conforms(good, schema) is None
    assert conforms({"calls": [{"seconds": "1"}], "pair": ("a", 1)}, schema) == (
        "the reply['calls'][0]['seconds'] is a str, not a number"
    )
    assert "has no 'pair'" in conforms({"calls": []}, schema)
    assert conforms({"calls": [{"seconds": 1, "out": {"x": [1]}}], "pair": ("a", 1)}, schema)
    assert conforms({"calls": [], "pair": ("a",)}, schema)
    assert conforms({"calls": [], "pair": ("a", True)}, schema)  # a bool is no number here
