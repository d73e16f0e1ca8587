"""The diagnostics' findings: the Finding type and its topics (``harness.compare.text``,
where the console's findings share them), and which topics the diagnostics read from the
comparison's tables."""

from __future__ import annotations

from harness.compare.text import BAD, CAUTION, NOTE, Finding, Topic

# what the diagnostics read from the comparison's tables, as opposed to how the plug-in behaved
FROM_TABLES = frozenset(
    {
        Topic.DISAGREES,
        Topic.ODD_ONE_OUT,
        Topic.LOCALISED,
        Topic.PATTERN,
        Topic.FORWARD,
        Topic.BASELINE_ODD,
    }
)


__all__ = ["BAD", "CAUTION", "FROM_TABLES", "Finding", "Topic", "NOTE"]
