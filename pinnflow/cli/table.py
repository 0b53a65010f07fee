"""Printing a metrics table with each metric's definition beside its value."""

from __future__ import annotations

__all__ = ["print_metrics"]


def print_metrics(metrics: dict) -> None:
    """One line per metric: name, value, definition (`pinnflow.metrics.METRIC_DEFINITIONS`)."""
    from pinnflow.metrics import METRIC_DEFINITIONS  # here, not at import: `pinnflow --help` needs no JAX

    width = max(len(k) for k in metrics)
    for k, v in metrics.items():
        val = f"{v:.6g}" if isinstance(v, float) else str(v)
        print(f"  {k:<{width}}  {val:<14} {METRIC_DEFINITIONS.get(k, '')}")
