"""Comparison: Results in, tidy tables out. Nothing here runs a backend; it reads Results
(and, for the theory beside the magnitudes, the cases' options). One module a job:

- ``verdicts``: the Verdict type (name, mark, legend, whether it fails the run or agrees);
- ``policy``: the tolerance against the noise floor, unresolved elements, a verdict from
  the elements;
- ``metrics``: one tensor against another, element-wise or along directions (pure numpy);
- ``pairs``: the baseline, the case's noise, one pair of backends, the odd one out;
- ``tables``: the agreement (and the facts beside its rows), identities, runs and
  magnitudes tables;
- ``comparison``: the Comparison of one run and its exit code;
- ``text``: numbers in words for the findings (where two values part, the worst element).
"""

from harness.compare.comparison import Comparison
from harness.compare.metrics import compare_arrays, compare_directional, l2_norm
from harness.compare.pairs import case_noise, derivation_of, odd_one_out
from harness.compare.policy import RESOLVE, TIGHTEN, WITHIN_NOISE
from harness.compare.tables import (
    AGREEMENT_COLUMNS,
    IDENTITY_COLUMNS,
    MAGNITUDE_COLUMNS,
    ROW_FACTS,
    RUN_COLUMNS,
    agreement,
    agreement_with_facts,
    identities,
    magnitudes,
    runs,
)
from harness.compare.text import counted, listing, parted, parting_digits, worst_at
from harness.compare.verdicts import (
    AGREEING,
    COMPARED,
    FLAGGED,
    VERDICTS,
    Verdict,
    baseline_odd,
    compared,
    flagged,
    legend,
)

__all__ = [
    "AGREEING",
    "AGREEMENT_COLUMNS",
    "COMPARED",
    "Comparison",
    "FLAGGED",
    "IDENTITY_COLUMNS",
    "MAGNITUDE_COLUMNS",
    "RESOLVE",
    "ROW_FACTS",
    "RUN_COLUMNS",
    "TIGHTEN",
    "VERDICTS",
    "Verdict",
    "WITHIN_NOISE",
    "agreement",
    "agreement_with_facts",
    "baseline_odd",
    "case_noise",
    "compare_arrays",
    "compare_directional",
    "compared",
    "flagged",
    "identities",
    "derivation_of",
    "l2_norm",
    "legend",
    "counted",
    "listing",
    "magnitudes",
    "odd_one_out",
    "parted",
    "parting_digits",
    "runs",
    "worst_at",
]
