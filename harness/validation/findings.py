"""The diagnostics' findings: the Finding type and its kinds (``harness.compare.text``,
where the console's findings share them), and which kinds the diagnostics read from the
comparison's tables."""

from __future__ import annotations

from harness.compare.text import BAD, CAUTION, NOTE, Finding, Kind

# what the diagnostics read from the comparison's tables, as opposed to how the plug-in behaved
FROM_TABLES = frozenset(
    {
        Kind.DISAGREES,
        Kind.ODD_ONE_OUT,
        Kind.LOCALISED,
        Kind.PATTERN,
        Kind.FORWARD,
        Kind.BASELINE_ODD,
    }
)


__all__ = ["BAD", "CAUTION", "FROM_TABLES", "Finding", "Kind", "NOTE"]
