"""The case catalog: importing this package registers every case."""

from harness.cases import adbench, networks, recurrent, staged  # noqa: F401  (registers)
from harness.cases.base import CATALOG, Case, CaseError, register, select

__all__ = ["CATALOG", "Case", "CaseError", "register", "select"]
