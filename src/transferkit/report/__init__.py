"""Run reports: one self-contained HTML file with intervals, calibration, curves and explanations."""

from .build import ReportResult, write_report

__all__ = ["ReportResult", "write_report"]
