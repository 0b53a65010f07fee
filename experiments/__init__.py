"""Reproduction and benchmark scripts (run as `python -m experiments.<name>`); `reproduce` runs paper 003's
tables (`experiments.tables`, one module per table) on a small framework (`experiments.framework`: budgets,
cells, store, aggregate, report)."""
