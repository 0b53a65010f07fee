"""Floating-point precision: float32 by default; float64 for a scope (`precision`) or by an explicit switch."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator

import jax
import jax.numpy as jnp

__all__ = ["precision", "in_run_precision", "set_precision", "default_dtype", "PRECISIONS"]

PRECISIONS = ("float32", "float64")


def _check(name: str) -> None:
    if name not in PRECISIONS:
        raise ValueError(f"unknown precision {name!r}; choose one of {', '.join(PRECISIONS)}")


@contextlib.contextmanager
def precision(name: str) -> Iterator[None]:
    """Run the enclosed code in `name` ("float32" or "float64"); the caller's precision is restored on exit.

    Thread-local (JAX's `enable_x64` context); jitted functions are cached per precision."""
    _check(name)
    with jax.enable_x64(name == "float64"):
        yield


def in_run_precision(fn):
    """Decorate a function whose first argument is a run (with `run.config.precision`): it executes in the
    run's precision and leaves the caller's as it was."""

    @functools.wraps(fn)
    def wrapper(run, *args, **kwargs):
        with precision(run.config.precision):
            return fn(run, *args, **kwargs)

    return wrapper


def set_precision(name: str) -> None:
    """Switch JAX's default floating dtype for the whole process (the user's explicit choice; the library
    itself never calls this, it uses the `precision` scope)."""
    _check(name)
    jax.config.update("jax_enable_x64", name == "float64")


def default_dtype() -> jnp.dtype:
    """The floating dtype that new arrays get under the current precision."""
    return jnp.result_type(float)
