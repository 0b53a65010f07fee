"""Atomic, code-free checkpoints: named pytrees of arrays plus a JSON metadata dict in one ``.npz`` file.

Each tree is flattened to its leaves (``jax.tree_util.tree_leaves`` order) and stored as arrays ``"<name>/<i:05d>"``;
a JSON header under ``"__pinnflow__"`` records the format, version, ``meta`` and every leaf's shape and dtype. Files
are read with ``np.load(allow_pickle=False)`` and structures are rebuilt from freshly initialised pytrees (``likes``),
so a checkpoint carries no code and a crafted file cannot run any. Writes go to a temporary file that is fsynced and
renamed, so a kill at any moment leaves either the old or the new checkpoint. Typed PRNG keys are stored as their
key data and re-wrapped on load; shapes and dtypes are checked against ``likes`` before anything is returned.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["CheckpointError", "atomic_write", "save", "load", "read"]

FORMAT, VERSION, HEADER = "pinnflow-checkpoint", 1, "__pinnflow__"


class CheckpointError(ValueError):
    """A file that is not a readable pinnflow checkpoint, or does not match the model it is loaded into."""


def atomic_write(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old or the new content, never a partial file."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if hasattr(os, "O_DIRECTORY"):  # make the rename itself durable (POSIX)
        fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _is_key(x: Any) -> bool:
    return hasattr(x, "dtype") and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def _shape(x: Any) -> tuple[int, ...]:
    return tuple(x.shape) if hasattr(x, "shape") else np.shape(x)


def _dtype(x: Any) -> str:
    return str(x.dtype) if hasattr(x, "dtype") else str(np.asarray(x).dtype)


def _json_default(x: Any) -> Any:
    if isinstance(x, (np.generic, np.ndarray, jax.Array)) and np.ndim(x) == 0:
        return np.asarray(x).item()
    raise TypeError(f"checkpoint meta: {type(x).__name__} is not JSON serialisable")


def save(path: str | Path, trees: dict[str, Any], meta: dict) -> None:
    """Checkpoint the pytrees ``trees`` (name -> pytree of arrays) and the JSON-serialisable ``meta`` at ``path``."""
    arrays: dict[str, np.ndarray] = {}
    header: dict[str, Any] = {"format": FORMAT, "version": VERSION, "meta": meta, "trees": {}}
    for name, tree in trees.items():
        spec: dict[str, list] = {"shapes": [], "dtypes": [], "impls": []}
        for i, x in enumerate(jax.tree_util.tree_leaves(tree)):
            key = _is_key(x)
            spec["shapes"].append(list(_shape(x)))
            spec["dtypes"].append(_dtype(x))
            spec["impls"].append(str(jax.random.key_impl(x)) if key else None)
            arrays[f"{name}/{i:05d}"] = np.asarray(jax.random.key_data(x) if key else x)
        header["trees"][name] = spec
    arrays[HEADER] = np.array(json.dumps(header, default=_json_default))
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write(path, buf.getvalue())


def _restore(path: Path, name: str, like: Any, spec: dict, z: Any) -> Any:
    likes, treedef = jax.tree_util.tree_flatten(like)
    shapes, dtypes, impls = spec["shapes"], spec["dtypes"], spec["impls"]
    if not len(shapes) == len(dtypes) == len(impls):
        raise CheckpointError(f"{path}: malformed header for tree {name!r}")
    if len(shapes) != len(likes):
        raise CheckpointError(f"{path}: tree {name!r} has {len(shapes)} leaves, expected {len(likes)} "
                              "(written by another model/config?)")
    out = []
    for i, (x, shape, dtype, impl) in enumerate(zip(likes, shapes, dtypes, impls, strict=True)):
        where = f"{path}: tree {name!r} leaf {i}"
        if tuple(shape) != _shape(x):
            raise CheckpointError(f"{where} has shape {tuple(shape)}, expected {_shape(x)} "
                                  "(written by another model/config?)")
        if dtype != _dtype(x):
            raise CheckpointError(f"{where} has dtype {dtype}, expected {_dtype(x)}")
        arr = z[f"{name}/{i:05d}"]
        stored = jax.eval_shape(jax.random.key_data, x) if impl is not None else x
        want = np.dtype(stored.dtype) if hasattr(stored, "dtype") else np.asarray(stored).dtype
        if arr.dtype != want and arr.dtype.kind == "V" and arr.dtype.itemsize == want.itemsize:
            arr = arr.view(want)  # e.g. bfloat16, which .npy stores as raw bytes
        if arr.dtype != want or arr.shape != _shape(stored):
            raise CheckpointError(f"{where}: stored array {arr.dtype}{list(arr.shape)} does not match its header")
        out.append(jax.random.wrap_key_data(arr, impl=impl) if impl is not None else jnp.asarray(arr))
    return jax.tree_util.tree_unflatten(treedef, out)


def _open(path: Path, use) -> Any:
    """Open the checkpoint at `path`, check its header and return `use(npz, header)`; raises CheckpointError."""
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such checkpoint")
    try:
        z = np.load(path, allow_pickle=False)
        if not isinstance(z, np.lib.npyio.NpzFile):  # a plain .npy file
            raise CheckpointError(f"{path}: not a pinnflow checkpoint (a single .npy array, not an .npz archive)")
        with z:
            if HEADER not in z.files:
                raise CheckpointError(f"{path}: not a pinnflow checkpoint (no {HEADER!r} header)")
            header = json.loads(z[HEADER].item())
            if not isinstance(header, dict) or header.get("format") != FORMAT:
                raise CheckpointError(f"{path}: not a pinnflow checkpoint (header format is not {FORMAT!r})")
            if header.get("version") != VERSION:
                raise CheckpointError(f"{path}: unknown checkpoint version {header.get('version')!r} "
                                      f"(this pinnflow reads version {VERSION})")
            return use(z, header)
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"{path}: not a pinnflow checkpoint ({type(e).__name__}: {e})") from None


def load(path: str | Path, likes: dict[str, Any]) -> tuple[dict[str, Any], dict]:
    """``({name: pytree shaped like likes[name]}, meta)`` from the checkpoint at ``path``; raises CheckpointError."""
    path = Path(path)

    def restore(z, header):
        missing = [name for name in likes if name not in header["trees"]]
        if missing:
            raise CheckpointError(f"{path}: no tree(s) {missing} in checkpoint (it has {list(header['trees'])})")
        trees = {name: _restore(path, name, like, header["trees"][name], z) for name, like in likes.items()}
        return trees, header["meta"]

    return _open(path, restore)


def read(path: str | Path) -> tuple[dict[str, list[np.ndarray]], dict]:
    """``({name: its leaves as numpy arrays}, meta)`` without a model to restructure them (for inspection);
    typed PRNG keys come back as their key data."""
    path = Path(path)

    def leaves(z, header):
        return {name: [z[f"{name}/{i:05d}"] for i in range(len(spec["shapes"]))]
                for name, spec in header["trees"].items()}, header["meta"]

    return _open(path, leaves)
