"""Markdown output: a table's aggregate as a GitHub markdown report (ours ± std beside the paper's)."""

from __future__ import annotations

import os
import platform
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from experiments.framework.budget import Budget
    from experiments.framework.cells import Table

__all__ = ["fmt_number", "markdown", "markdown_report"]


def fmt_number(v: float) -> str:
    """3 significant digits (scientific outside [1e-3, 1e4)); "–" for None or NaN."""
    if v is None or v != v:
        return "–"
    if v == 0:
        return "0"
    a = abs(v)
    return f"{v:.3g}" if 1e-3 <= a < 1e4 else f"{v:.2e}"


def markdown(df: pd.DataFrame) -> str:
    """A GitHub markdown table of strings/numbers (numbers to 3 significant digits)."""
    fmt = lambda v: fmt_number(v) if isinstance(v, float) else str(v)  # noqa: E731
    lines = ["| " + " | ".join(map(str, df.columns)) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(fmt(v).replace("|", "\\|") for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def markdown_report(table: Table, budget: Budget, df: pd.DataFrame, records: list[dict]) -> str:
    """The `<table>_<budget>.md` report of an aggregate `df` (from `aggregate`) and the records behind it."""
    head = (f"# {table.title} — budget `{budget.name}`\n\n"
            f"Ours: mean ± std over seeds (the `seeds` column); paper 003's value in the adjacent column. "
            "`delta_log_z` is the error of the lower bound E[log w] (the paper's ΔlogZ); "
            "`delta_log_z_estimate` that of a sampler's own estimate (SMC has no importance weights); "
            "`finite_fraction`: share of samples with a finite log-weight (the others are dropped before the "
            "metrics); Sinkhorn as named below; s/it (median seconds per training step after compilation) and "
            f"wall seconds (train + evaluate) measured here ({platform.machine()}, {os.cpu_count()} CPUs, shared). "
            f"Written by `python -m experiments.reproduce {table.name} --budget {budget.name}`.\n\n")
    if df.empty:
        return head + "No finished cells.\n"
    out = pd.DataFrame({"problem": df["problem"], "method": df["method"], "paper": df["paper_method"],
                        "seeds": df["seeds"].astype(str)})
    for metric in table.metrics + table.extras:
        out[metric] = [fmt_number(m) if s != s else f"{fmt_number(m)} ± {fmt_number(s)}"
                       for m, s in zip(df[metric], df[f"{metric} std"], strict=True)]
        if metric in table.metrics:
            out[f"{metric} (paper)"] = df[f"{metric} (paper)"].map(fmt_number)
    out["wall s"] = df["wall_seconds"].map(fmt_number)
    out["status"] = [("ok" if not f else f"{f} failed: {e[:80]}") for f, e in zip(df["failed"], df["error"],
                                                                               strict=True)]
    sink = next((r["metrics"] for r in records if r.get("status") == "ok" and "sinkhorn_n" in r["metrics"]), None)
    note = ""
    if sink:
        note = (f"\n\nSinkhorn: cost {sink.get('sinkhorn_cost')}, ε = {sink.get('sinkhorn_epsilon')}, "
                f"n = {sink.get('sinkhorn_n')}, debiased = {sink.get('sinkhorn_debiased')}.")
    return head + markdown(out) + note + "\n"
