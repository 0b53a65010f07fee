"""`Auto`: the fastest exact backend per operation."""

from __future__ import annotations

from dataclasses import dataclass

import jax

from pinnflow.operators.base import Derivatives, derivatives
from pinnflow.operators.exact import EXACT
from pinnflow.operators.forward import FORWARD_LAPLACIAN

__all__ = ["Auto"]


@dataclass(frozen=True)
class Auto:
    """The fastest exact backend per operation, as measured by `experiments/bench_operators.py` and
    `experiments/bench_step.py` on CPU: second-order traces (Laplacians, Tr(D∇²F)) by `ForwardLaplacian`
    when d ≥ `min_dim`; divergences and first derivatives by `Exact` (linearised JVPs and one reverse pass,
    which beat a (d + 1)-direction forward propagation)."""

    min_dim: int = 2  # the forward Laplacian was faster at every measured d >= 2 (1.15x at d = 2, bench_operators.csv)
    stochastic: bool = False

    def pick(self, x: jax.Array):
        """The backend for second-order traces at a point of this dimension."""
        return FORWARD_LAPLACIAN if x.shape[-1] >= self.min_dim else EXACT

    def divergence(self, f, x, key=None):
        return EXACT.divergence(f, x, key)

    def laplacian(self, f, x, key=None):
        return self.pick(x).laplacian(f, x, key)

    def weighted_trace(self, f, A, x, key=None):
        return self.pick(x).weighted_trace(f, A, x, key)

    def derivatives(self, F, x, t, D=None, key=None) -> Derivatives:
        return derivatives(EXACT if D is None else self.pick(x), F, x, t, D, key)
