"""The report: a Comparison it is given, as Markdown, HTML, CSV and PNG.

``files`` writes the folder (the tables, summary.json, report.md, report.html);
``document`` lays out the content as blocks; ``render`` turns blocks into Markdown and
HTML; ``plots`` draws the figures. Nothing here runs a backend or imports a framework.
"""

from harness.report.files import Report, summary, write_report

__all__ = ["Report", "summary", "write_report"]
