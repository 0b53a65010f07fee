"""Atomic checkpoints of a run directory: learned parameters, solver state, step, history, wall time.

One pickle of plain numpy leaves per file, written to a temporary file, fsynced and renamed, so a kill
at any moment leaves either the old or the new checkpoint. Pytree structures are rebuilt from a freshly
initialised model (`like`), so the file carries no code.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

__all__ = ["save", "load", "atomic_write"]


def atomic_write(path: Path, data: bytes) -> None:
    """Write bytes to `path` so that readers see the old or the new content, never a partial file."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _leaves(tree) -> list[np.ndarray]:
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(tree)]


def save(path: Path, params, state, step: int, history: list[dict], seconds: float,
         history_csv: Path | None = None) -> None:
    """Checkpoint `params` (model parameters) and `state` (optimiser/solver state) at `step`."""
    blob = pickle.dumps({"step": step, "params": _leaves(params), "state": _leaves(state),
                         "history": history, "train_seconds": seconds})
    atomic_write(Path(path), blob)
    if history_csv is not None:
        pd.DataFrame(history).to_csv(history_csv, index=False)


def _restore(like, leaves, what: str, path: Path):
    treedef = jax.tree_util.tree_structure(like)
    if len(leaves) != treedef.num_leaves:
        raise ValueError(f"checkpoint {path}: its {what} ({len(leaves)} arrays) do not match this config's model "
                         f"({treedef.num_leaves} arrays)")
    return jax.tree_util.tree_unflatten(treedef, [jnp.asarray(x) for x in leaves])


def load(path: Path, params_like, state_like=None):
    """(params, state or None, raw dict) from a checkpoint, restructured like the given pytrees."""
    path = Path(path)
    data = pickle.loads(path.read_bytes())
    params = _restore(params_like, data["params"], "parameters", path)
    state = None if state_like is None else _restore(state_like, data["state"], "solver state", path)
    return params, state, data
