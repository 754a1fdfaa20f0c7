"""A study at a glance: an HTML report with plots, and what the live view shows.

:func:`write_report` writes one self-contained HTML page for the tasks under a
directory (a study group, a study or a loose tree): a summary, plots of the
runs, the results of a sweep, each workflow's DAG and a table of the tasks that
failed. :func:`gather` collects what both the page and ``autojob status
--watch`` show, from the status index. The plots need matplotlib (``pip
install 'autojob[report]'``).
"""

from autojob.report.data import ReportData, gather
from autojob.report.page import Written, write_report
from autojob.report.sweep import PlotSpec, parse_plot

__all__ = ["PlotSpec", "ReportData", "Written", "gather", "parse_plot", "write_report"]
