"""The case catalog: importing this package registers every case."""

from harness.cases import adbench, networks, recurrent, staged  # noqa: F401  (registers)
from harness.cases.base import (
    CATALOG,
    Allowed,
    Case,
    CaseError,
    at_least,
    between,
    one_of,
    positive,
    register,
    select,
)
from harness.cases.user import case

__all__ = [
    "CATALOG",
    "Allowed",
    "Case",
    "CaseError",
    "at_least",
    "case",
    "between",
    "one_of",
    "positive",
    "register",
    "select",
]
