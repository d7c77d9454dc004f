"""A goal's results as one self-contained HTML file: ``pursuit report -o report.html``.

``write_report`` writes it; ``render_report`` gives the page as text. The figures
(``pursuit.report.figures``) and the series they draw (``pursuit.report.series``) are
pure functions shared with the dashboard.
"""

from pursuit.report._page import render_report, write_report

__all__ = ["render_report", "write_report"]
