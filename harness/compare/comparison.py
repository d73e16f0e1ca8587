"""A Comparison: everything one run produced, the raw Results and the tidy tables made
from them (``harness.compare.tables``), and what the run's verdict is (its exit code)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from harness import theory
from harness.compare.tables import agreement_with_facts, identities, magnitudes, runs
from harness.compare.verdicts import VERDICTS, compared, flagged
from harness.result import Result


@dataclass
class Comparison:
    """Everything one run produced: the raw Results and the tidy tables made from them."""

    results: list[Result]
    baseline: str
    cases: list[Any] = field(default_factory=list)  # the Case instances, for the theory
    agreement: pd.DataFrame = field(init=False)
    row_facts: pd.DataFrame = field(init=False)  # beside agreement, row for row (``ROW_FACTS``)
    runs: pd.DataFrame = field(init=False)
    magnitudes: pd.DataFrame = field(init=False)
    summaries: pd.DataFrame = field(init=False)
    identities: pd.DataFrame = field(init=False)

    def __post_init__(self) -> None:
        self.agreement, self.row_facts = agreement_with_facts(self.results, self.baseline)
        self.identities = identities(self.results)
        self.runs = runs(self.results)
        self.magnitudes = magnitudes(self.results)
        self.summaries = theory.summaries(self.magnitudes, self.cases)

    @property
    def compared(self) -> int:
        """How many tensors were compared at all (``COMPARED``): 0 when every backend but
        the baseline was skipped or unsupported, or none ran beside it."""
        return int(compared(self.agreement).sum())

    @property
    def all_agree(self) -> bool:
        """True when something was compared, every comparison agreed, every identity held
        and no backend failed."""
        return (
            self.compared > 0
            and bool(self.agreement["ok"].all())
            and bool(self.identities["ok"].all())
            and not (self.runs["status"] == "failed").any()
        )

    @property
    def verdicts(self) -> dict[str, int]:
        """How many tensors ended in each verdict (``VERDICTS``)."""
        counts = self.agreement["verdict"].value_counts()
        return {v: int(counts.get(v, 0)) for v in VERDICTS}

    @property
    def exit_code(self) -> int:
        """1 when a tensor disagrees, an identity is broken, a backend failed or nothing
        was compared (a success not earned), else 0 — an oracle that could not resolve a
        tensor (inconclusive) alone does not fail the run."""
        failed = bool(flagged(self.agreement).any()) or bool(flagged(self.identities).any())
        failed = failed or bool((self.runs["status"] == "failed").any())
        return 1 if failed or self.compared == 0 else 0
