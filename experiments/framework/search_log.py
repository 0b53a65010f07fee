"""Search logs: CSV files that grow by one row per tried setting (experiments/results/*_search.csv)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

__all__ = ["append_row"]


def append_row(path: str | Path, row: dict, fields: list[str] | None = None) -> None:
    """Append `row` to the CSV at `path` and print it as JSON. An existing file keeps its own header (keys it
    lacks are dropped, columns the row lacks stay empty); a new one gets `fields` (default: the row's keys)."""
    path = Path(path)
    new = not path.exists()
    if new:
        fields = list(fields or row)
    else:
        with path.open(newline="") as f:
            fields = next(csv.reader(f))
    with path.open("a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        if new:
            w.writeheader()
        w.writerow(row)
    print(json.dumps(row), flush=True)
