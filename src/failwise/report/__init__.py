"""A self-contained HTML report comparing models by how they handle failure.

Build plain-data inputs (:class:`ModelSection` per model, :class:`Assumption`
per outcome-model assumption) and call :func:`render_report` or
:func:`write_report`. The page needs no network: inline CSS and inline SVG only.
"""

from __future__ import annotations

from failwise.report._catalogue import ACTIONS, METRIC_NAMES, metric_info
from failwise.report._charts import reliability_diagram
from failwise.report._html import format_metric, render_report, write_report
from failwise.report._model import Assumption, MetricValue, ReliabilityBins
from failwise.report._monitor import render_monitor_report, write_monitor_report
from failwise.report._section import ModelSection
from failwise.report._timeline import TimelineSeries, stacked_timeline_chart, timeline_chart

__all__ = [
    "ACTIONS",
    "METRIC_NAMES",
    "Assumption",
    "MetricValue",
    "ModelSection",
    "ReliabilityBins",
    "TimelineSeries",
    "format_metric",
    "metric_info",
    "reliability_diagram",
    "render_monitor_report",
    "render_report",
    "stacked_timeline_chart",
    "timeline_chart",
    "write_monitor_report",
    "write_report",
]
