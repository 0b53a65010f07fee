"""The store of finished cells: one JSON record per cell under `<results>/cells/<table>_<budget>/<cell>.json`,
written atomically, with the hash of the cell's inputs (its spec) so that a later invocation reuses every
record whose inputs are unchanged.

A record holds `id, table, budget, problem, method, seed, status ("ok" or "failed"), error, metrics,
wall_seconds, spec_hash, spec, started, finished, host, devices` (and `traceback` for a failed cell).
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jax
import numpy as np

from pinnflow.core.checkpoint import atomic_write

if TYPE_CHECKING:
    from experiments.framework.budget import Budget
    from experiments.framework.cells import Cell

__all__ = ["RESULTS", "tag", "cells_dir", "cell_path", "cell_spec", "spec_hash", "jsonable", "write_json",
           "read_record", "usable", "status"]

RESULTS = Path(__file__).parents[1] / "results"


def tag(table: str, budget: str) -> str:
    """`<table>_<budget>`: the name of a table's cells folder, run folder and aggregate files."""
    return f"{table}_{budget}"


def cells_dir(results: str | Path, table: str, budget: str) -> Path:
    """Where the records of `table` under `budget` live."""
    return Path(results) / "cells" / tag(table, budget)


def cell_path(directory: str | Path, cell: Cell) -> Path:
    return Path(directory) / f"{cell.id}.json"


def cell_spec(cell: Cell, budget: Budget, extra: list[str]) -> dict:
    """A cell's inputs; a finished cell is reused only if these are unchanged."""
    return {"cell": [cell.table, cell.problem, cell.method, cell.seed],
            "config": budget.section("config", cell.table, cell.problem, cell.method),
            "baseline": budget.section("baseline", cell.table, cell.problem, cell.method),
            "params": budget.section("params", cell.table, cell.problem, cell.method), "set": list(extra)}


def spec_hash(spec: dict) -> str:
    """16 hex digits of the SHA-1 of the spec's canonical JSON (sorted keys)."""
    return hashlib.sha1(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:16]


def jsonable(v: Any) -> Any:
    """`v` with numpy/JAX scalars and arrays as Python numbers and lists, non-finite floats as None, and
    anything else unknown as its string."""
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [jsonable(x) for x in v]
    if isinstance(v, np.generic | np.ndarray) and np.ndim(v) == 0:
        v = v.item()
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, int | str | bool) or v is None:
        return v
    if isinstance(v, np.ndarray | jax.Array):
        return jsonable(np.asarray(v).tolist())
    return str(v)


def write_json(path: str | Path, data: dict) -> None:
    """Write `data` (made `jsonable`) as JSON, atomically (`pinnflow.core.checkpoint.atomic_write`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps(jsonable(data), indent=1, ensure_ascii=False).encode())


def read_record(path: str | Path) -> dict | None:
    """The record at `path`, or None if it is absent or not valid JSON."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError):
        return None


def usable(path: str | Path, digest: str, retry_failed: bool) -> dict | None:
    """The record at `path` if it was computed from inputs with this `spec_hash` (and, with `retry_failed`,
    only if it finished ok); else None."""
    rec = read_record(path)
    if rec is None or rec.get("spec_hash") != digest or (retry_failed and rec.get("status") != "ok"):
        return None
    return rec


def status(path: str | Path) -> str | None:
    """The status of the record at `path` ("ok", "failed"), or None if there is none."""
    rec = read_record(path)
    return None if rec is None else rec.get("status")
