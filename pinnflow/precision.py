"""Floating-point precision: float32 by default, float64 by a switch."""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["set_precision", "default_dtype", "PRECISIONS"]

PRECISIONS = ("float32", "float64")


def set_precision(precision: str) -> None:
    """Switch JAX's default floating dtype globally: "float32" (default) or "float64" (jax_enable_x64)."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    jax.config.update("jax_enable_x64", precision == "float64")


def default_dtype() -> jnp.dtype:
    """The floating dtype that new arrays get under the current precision."""
    return jnp.result_type(float)
