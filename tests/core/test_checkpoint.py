"""Checkpoints: exact round trips, no code execution from crafted files, clear errors, atomic replacement."""

from __future__ import annotations

import math
import os
import pathlib
import pickle
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from pinnflow.core import checkpoint
from pinnflow.core.checkpoint import CheckpointError


class State(NamedTuple):
    params: Any
    opt_state: Any
    key: Any
    typed_key: Any


def _params(width: int = 8, seed: int = 0) -> dict:
    k1, k2 = jax.random.split(jax.random.PRNGKey(seed))
    return {"layers": {"0": {"kernel": jax.random.normal(k1, (2, width)), "bias": jnp.zeros(width)},
                       "1": {"kernel": jax.random.normal(k2, (width, 1)), "bias": jnp.full(1, 0.5)}}}


def _state(width: int = 8, seed: int = 0) -> State:
    params = _params(width, seed)
    return State(params, optax.adam(1e-3).init(params), jax.random.PRNGKey(3), jax.random.key(5))


def _bits(x: Any) -> tuple:
    if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
        return str(x.dtype), np.asarray(jax.random.key_data(x)).tobytes()
    return str(x.dtype), x.shape, np.asarray(x).tobytes()


class Evil:
    """Unpickling this calls `Path.touch(marker)`: a stand-in for arbitrary code execution."""

    def __init__(self, marker: pathlib.Path):
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


def test_round_trip_is_exact(tmp_path):
    state = _state()
    # take a real optimiser step so that the adam moments and count are not trivial
    grads = jax.tree_util.tree_map(jnp.ones_like, state.params)
    _, opt_state = optax.adam(1e-3).update(grads, state.opt_state, state.params)
    state = state._replace(opt_state=opt_state)
    meta = {"step": 7, "seconds": 1.25, "history": [{"step": 5, "loss": 0.5}, {"step": 7, "loss": float("nan")}]}
    path = tmp_path / "checkpoint.npz"
    checkpoint.save(path, {"state": state, "extra": {"unused": jnp.arange(3)}}, meta)

    trees, meta_back = checkpoint.load(path, {"state": _state(seed=1)})  # only the trees asked for come back
    assert set(trees) == {"state"}
    out = trees["state"]
    assert isinstance(out, State)
    assert jax.tree_util.tree_structure(out) == jax.tree_util.tree_structure(state)
    for a, b in zip(jax.tree_util.tree_leaves(out), jax.tree_util.tree_leaves(state), strict=True):
        assert _bits(a) == _bits(b)
    assert out.key.dtype == jnp.uint32 and jax.dtypes.issubdtype(out.typed_key.dtype, jax.dtypes.prng_key)
    assert jax.random.key_impl(out.typed_key) == jax.random.key_impl(state.typed_key)
    assert np.array_equal(jax.random.normal(out.typed_key, (3,)), jax.random.normal(state.typed_key, (3,)))
    assert {k: v for k, v in meta_back.items() if k != "history"} == {"step": 7, "seconds": 1.25}
    (h0, h1) = meta_back["history"]
    assert h0 == {"step": 5, "loss": 0.5} and h1["step"] == 7 and math.isnan(h1["loss"])
    assert not list(tmp_path.glob("*.tmp"))


def test_bfloat16_round_trip(tmp_path):
    x = {"w": jnp.linspace(-1, 1, 5, dtype=jnp.bfloat16)}
    checkpoint.save(tmp_path / "c.npz", {"p": x}, {})
    out = checkpoint.load(tmp_path / "c.npz", {"p": x})[0]["p"]["w"]
    assert out.dtype == jnp.bfloat16 and _bits(out) == _bits(x["w"])


def test_crafted_pickle_never_runs(tmp_path):
    control = tmp_path / "control"
    pickle.loads(pickle.dumps(Evil(control)))  # the payload is live: unpickling it does run code
    assert control.exists()

    marker = tmp_path / "pwned"
    path = tmp_path / "checkpoint.npz"
    path.write_bytes(pickle.dumps(Evil(marker)))
    with pytest.raises(CheckpointError, match="not a pinnflow checkpoint") as err:
        checkpoint.load(path, {"state": {"w": jnp.zeros(1)}})
    assert str(err.value).startswith(str(path))
    assert not marker.exists()

    # the same payload as an object array inside an otherwise valid checkpoint whose header matches the like
    like = {"state": {"w": jnp.zeros(1)}}
    checkpoint.save(path, like, {"step": 0})
    with np.load(path) as z:
        header = z["__pinnflow__"]
    with open(path, "wb") as fh:
        np.savez(fh, **{"__pinnflow__": header, "state/00000": np.array([Evil(marker)], dtype=object)})
    with pytest.raises(CheckpointError) as err:
        checkpoint.load(path, like)
    assert str(err.value).startswith(str(path))
    assert not marker.exists()


def test_truncated_checkpoint(tmp_path):
    path = tmp_path / "checkpoint.npz"
    checkpoint.save(path, {"state": _state()}, {"step": 1})
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="not a pinnflow checkpoint") as err:
        checkpoint.load(path, {"state": _state()})
    assert str(err.value).startswith(str(path))


def test_foreign_files(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, a=np.arange(4))
    with pytest.raises(CheckpointError, match="no '__pinnflow__' header") as err:
        checkpoint.load(path, {"state": _state()})
    assert str(err.value).startswith(str(path))

    np.save(tmp_path / "one.npy", np.arange(4))
    with pytest.raises(CheckpointError, match="not an .npz archive"):
        checkpoint.load(tmp_path / "one.npy", {"state": _state()})
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        checkpoint.load(tmp_path / "missing.npz", {"state": _state()})


def test_mismatched_model(tmp_path):
    path = tmp_path / "checkpoint.npz"
    checkpoint.save(path, {"state": _state(width=8)}, {})  # leaf 0 is layers/0/bias (dict keys are sorted)
    with pytest.raises(CheckpointError, match=r"tree 'state' leaf 0 has shape \(8,\), expected \(16,\)") as err:
        checkpoint.load(path, {"state": _state(width=16)})
    assert str(err.value).startswith(str(path)) and "another model/config" in str(err.value)

    bigger = _state()._replace(key={"a": jax.random.PRNGKey(0), "b": jax.random.PRNGKey(1)})
    with pytest.raises(CheckpointError, match=r"tree 'state' has \d+ leaves, expected \d+"):
        checkpoint.load(path, {"state": bigger})

    with pytest.raises(CheckpointError, match=r"no tree\(s\) \['params'\]"):
        checkpoint.load(path, {"params": _params()})

    checkpoint.save(path, {"p": _params()}, {})
    half = jax.tree_util.tree_map(lambda x: x.astype(jnp.float16), _params())
    with pytest.raises(CheckpointError, match=r"tree 'p' leaf 0 has dtype float32, expected float16"):
        checkpoint.load(path, {"p": half})


def test_failed_save_keeps_old_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.npz"
    old = _params(seed=0)
    checkpoint.save(path, {"p": old}, {"step": 1})

    def crash(src, dst):
        assert pathlib.Path(src).stat().st_size > 0  # the temporary file was written in full
        raise OSError("killed during rename")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="killed during rename"):
        checkpoint.save(path, {"p": _params(seed=1)}, {"step": 2})
    monkeypatch.undo()

    trees, meta = checkpoint.load(path, {"p": _params(seed=2)})
    assert meta == {"step": 1}
    for a, b in zip(jax.tree_util.tree_leaves(trees["p"]), jax.tree_util.tree_leaves(old), strict=True):
        assert _bits(a) == _bits(b)
    assert not list(tmp_path.glob("*.tmp"))
