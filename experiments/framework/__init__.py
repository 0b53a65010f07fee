"""A small framework to reproduce a paper's tables cell by cell, with restarts.

- `budget`: `Budget`, the YAML of layered overrides (config, baseline, per-table params) resolved per cell;
- `cells`: `Cell` (problem × method × seed), `Context` (what a cell may use), `Table`, the `TABLES` registry;
- `store`: one JSON record per finished cell, written atomically with the hash of the cell's inputs;
- `aggregate`: mean ± std over seeds of the stored cells beside the paper's reference values;
- `report`: the aggregate as a markdown report.

The tables themselves are in `experiments.tables`; `experiments.reproduce` runs them from the command line.
"""

from experiments.framework.aggregate import aggregate, load_reference
from experiments.framework.budget import Budget
from experiments.framework.cells import TABLES, Cell, Context, Table

__all__ = ["Budget", "Cell", "Context", "Table", "TABLES", "aggregate", "load_reference"]
