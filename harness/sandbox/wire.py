"""The wire between this process and a worker: data only, never code.

A worker runs code we do not trust, so what it sends back is read as data and nothing
else: no pickle (unpickling runs whatever the bytes name), no object but these:

    None, bool, int, float (NaN and ±Inf included), str, list, tuple, dict, numpy arrays
    and numpy scalars of a numeric or boolean dtype.

A message is one frame: ``MAGIC``, the length of the JSON header, the length of the array
data, the header, the data. The header holds the tree; an array in it is a reference to
a slice of the data with its dtype and shape; a tuple, a dict with keys that are not all
strings, and a numpy scalar are tagged (an object whose one key starts with ``\\0``).
Decoding checks everything it reads — the magic, the lengths against ``limit``, that the
JSON is a tree of the types above, each array's dtype (numeric or boolean only), shape
and bounds — and raises ``Malformed`` otherwise; the caller treats that as a fault of the
worker, never as a reply.

``conforms(value, schema)`` checks a decoded reply against the shape the caller expects,
so that what it reads next cannot be a surprise.
"""

from __future__ import annotations

import json
import math
import struct
from typing import Any

import numpy as np

MAGIC = b"GPW1"
_HEAD = struct.Struct("<4sQQ")
ARRAY, TUPLE, DICT, SCALAR = "\0a", "\0t", "\0d", "\0s"
KINDS = "biuf"  # numeric and boolean dtypes: nothing that holds a Python object
LIMIT = 1 << 40  # bytes in one message, unless the reader says otherwise
MAX_DEPTH = 64


class Malformed(ValueError):
    """What came over the wire is not a message: the worker broke the protocol."""


# --- encoding ------------------------------------------------------------------------------


def encode(message: Any) -> bytes:
    """``message`` as one frame; TypeError for anything that is not data (see the module)."""
    buffers: list[bytes] = []
    size = [0]

    def array(a: np.ndarray) -> dict:
        if a.dtype.kind not in KINDS or a.dtype.hasobject:
            raise TypeError(f"an array of dtype {a.dtype} cannot go over the wire")
        data = np.ascontiguousarray(a).tobytes()
        buffers.append(data)
        ref = {"dtype": a.dtype.str, "shape": list(a.shape), "offset": size[0]}
        size[0] += len(data)
        return ref

    def tree(x: Any, depth: int = 0) -> Any:
        if depth > MAX_DEPTH:
            raise TypeError(f"a message nested more than {MAX_DEPTH} levels deep")
        if x is None or isinstance(x, (bool, str)):
            return x
        if isinstance(x, np.generic):
            return {SCALAR: array(np.asarray(x))}
        if isinstance(x, (int, float)):
            return x if type(x) in (int, float) else (int(x) if isinstance(x, int) else float(x))
        if isinstance(x, np.ndarray):
            return {ARRAY: array(x)}
        if isinstance(x, tuple):
            return {TUPLE: [tree(v, depth + 1) for v in x]}
        if isinstance(x, list):
            return [tree(v, depth + 1) for v in x]
        if isinstance(x, dict):
            if all(isinstance(k, str) and not k.startswith("\0") for k in x):
                return {k: tree(v, depth + 1) for k, v in x.items()}
            return {DICT: [[tree(k, depth + 1), tree(v, depth + 1)] for k, v in x.items()]}
        raise TypeError(f"a {type(x).__module__}.{type(x).__qualname__} cannot go over the wire")

    header = json.dumps(tree(message), allow_nan=True, separators=(",", ":")).encode()
    return _HEAD.pack(MAGIC, len(header), size[0]) + header + b"".join(buffers)


def write_message(stream: Any, message: Any) -> None:
    stream.write(encode(message))
    stream.flush()


# --- decoding ------------------------------------------------------------------------------


def _read_exactly(stream: Any, n: int) -> bytes | None:
    """``n`` bytes, or None at the end of the stream (a torn frame is Malformed)."""
    chunks: list[bytes] = []
    got = 0
    while got < n:
        chunk = stream.read(min(n - got, 1 << 24))
        if not chunk:
            if got == 0 and n > 0 and not chunks:
                return None
            raise Malformed(f"the stream ended {n - got} bytes into a message")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def read_message(stream: Any, limit: int = LIMIT) -> Any:
    """The next message on ``stream``; None where the stream has ended cleanly."""
    head = _read_exactly(stream, _HEAD.size)
    if head is None:
        return None
    magic, header_size, data_size = _HEAD.unpack(head)
    if magic != MAGIC:
        raise Malformed(f"a message must start with {MAGIC!r}, not {magic!r}")
    if header_size + data_size > limit:
        raise Malformed(f"a message of {header_size + data_size:,} bytes (the limit is {limit:,})")
    body = _read_exactly(stream, header_size + data_size)
    if body is None:
        raise Malformed("the stream ended after a message's first bytes")
    return decode(body[:header_size], memoryview(body)[header_size:])


def _text(x: str) -> str:
    """A string as UTF-8 can hold it: a lone surrogate (JSON may carry one, "\\ud800")
    becomes its escape, so no text of the worker's fails to print or write later."""
    try:
        x.encode("utf-8")
    except UnicodeEncodeError:
        return x.encode("utf-8", "backslashreplace").decode("utf-8")
    return x


def decode(header: bytes, data: memoryview | bytes) -> Any:
    """The tree of one frame's header, its arrays read from ``data`` (copies)."""
    try:
        parsed = json.loads(header.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise Malformed(f"the header is not JSON: {type(e).__name__}") from None
    data = memoryview(data)

    def array(ref: Any) -> np.ndarray:
        if not (isinstance(ref, dict) and set(ref) == {"dtype", "shape", "offset"}):
            raise Malformed("an array reference is not {dtype, shape, offset}")
        try:
            dtype = np.dtype(ref["dtype"]) if isinstance(ref["dtype"], str) else None
        except TypeError:
            dtype = None
        if dtype is None or dtype.kind not in KINDS or dtype.hasobject:
            raise Malformed(f"an array of dtype {ref['dtype']!r}")
        shape, offset = ref["shape"], ref["offset"]
        if not (isinstance(shape, list) and all(type(n) is int and n >= 0 for n in shape)):
            raise Malformed(f"an array of shape {shape!r}")
        if type(offset) is not int or offset < 0:
            raise Malformed(f"an array at offset {offset!r}")
        nbytes = math.prod(shape) * dtype.itemsize
        if offset + nbytes > len(data):
            raise Malformed("an array reaches past the end of the message")
        flat = np.frombuffer(data[offset : offset + nbytes], dtype=dtype)
        return flat.reshape(shape).copy()

    def tree(x: Any, depth: int = 0) -> Any:
        if depth > MAX_DEPTH:
            raise Malformed(f"a message nested more than {MAX_DEPTH} levels deep")
        if isinstance(x, str):
            return _text(x)
        if x is None or isinstance(x, (bool, int, float)):
            return x
        if isinstance(x, list):
            return [tree(v, depth + 1) for v in x]
        if not isinstance(x, dict):
            raise Malformed(f"a {type(x).__name__} in the header")
        if len(x) == 1 and next(iter(x)).startswith("\0"):
            ((tag, value),) = x.items()
            if tag == ARRAY:
                return array(value)
            if tag == SCALAR:
                a = array(value)
                if a.shape != ():
                    raise Malformed("a scalar with a shape")
                return a[()]
            if tag == TUPLE and isinstance(value, list):
                return tuple(tree(v, depth + 1) for v in value)
            if tag == DICT and isinstance(value, list):
                out = {}
                for pair in value:
                    if not (isinstance(pair, list) and len(pair) == 2):
                        raise Malformed("a dict entry is not a [key, value] pair")
                    key = tree(pair[0], depth + 1)
                    try:
                        out[key] = tree(pair[1], depth + 1)
                    except TypeError:
                        raise Malformed("a dict key that cannot be a key") from None
                return out
            raise Malformed(f"an unknown tag {tag!r}")
        return {_text(k): tree(v, depth + 1) for k, v in x.items()}

    try:
        return tree(parsed)
    except RecursionError:
        raise Malformed("a message nested too deeply") from None


# --- what a reply must look like -------------------------------------------------------------


def conforms(value: Any, schema: Any, where: str = "the reply") -> str | None:
    """None where ``value`` has the shape ``schema`` describes, else where it does not.

    A schema is a type (``str``, ``float`` — an int is a float too —, ``np.ndarray``), a
    tuple of schemas (any one of them), a dict ``{key: schema}`` (those keys at least; a
    key ending in ``?`` may be missing), ``[schema]`` (a list of them),
    ``Mapping(key_schema, value_schema)`` (every entry of a dict), ``Tuple(a, b)`` (a tuple
    of exactly those) or ``Any``."""
    if isinstance(schema, tuple):
        misses = [conforms(value, s, where) for s in schema]
        return None if any(m is None for m in misses) else misses[0]
    if isinstance(schema, Tuple):
        if not (isinstance(value, tuple) and len(value) == len(schema.items)):
            return f"{where} is not a tuple of {len(schema.items)}"
        for i, (v, s) in enumerate(zip(value, schema.items, strict=True)):
            miss = conforms(v, s, f"{where}[{i}]")
            if miss:
                return miss
        return None
    if isinstance(schema, Mapping):
        if not isinstance(value, dict):
            return f"{where} is a {type(value).__name__}, not a dict"
        for k, v in value.items():
            miss = conforms(k, schema.key, f"a key of {where}") or conforms(
                v, schema.value, f"{where}[{k!r}]"
            )
            if miss:
                return miss
        return None
    if isinstance(schema, dict):
        if not isinstance(value, dict):
            return f"{where} is a {type(value).__name__}, not a dict"
        for key, sub in schema.items():
            optional = key.endswith("?")
            name = key[:-1] if optional else key
            if name not in value:
                if optional:
                    continue
                return f"{where} has no {name!r}"
            miss = conforms(value[name], sub, f"{where}[{name!r}]")
            if miss:
                return miss
        return None
    if isinstance(schema, list):
        if not isinstance(value, list):
            return f"{where} is a {type(value).__name__}, not a list"
        for i, v in enumerate(value):
            miss = conforms(v, schema[0], f"{where}[{i}]")
            if miss:
                return miss
        return None
    if schema is None:
        return None if value is None else f"{where} is not None"
    if schema is float:
        ok = isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(
            value, bool
        )
        return None if ok else f"{where} is a {type(value).__name__}, not a number"
    if schema is int:
        ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
        return None if ok else f"{where} is a {type(value).__name__}, not a whole number"
    if schema is Any:
        return None
    return None if isinstance(value, schema) else f"{where} is a {type(value).__name__}"


class Mapping:
    """A schema: a dict whose every key conforms to ``key`` and value to ``value``."""

    def __init__(self, key: Any, value: Any) -> None:
        self.key, self.value = key, value


class Tuple:
    """A schema: a tuple of exactly these items."""

    def __init__(self, *items: Any) -> None:
        self.items = items


__all__ = [
    "Malformed",
    "Mapping",
    "Tuple",
    "conforms",
    "decode",
    "encode",
    "read_message",
    "write_message",
]
