"""The test functions ψ_λ: R^d → R whose gradients carry the scheme's displacement (paper 004 §4.2.2, eq. 64).

Pure functions of a parameter pytree (`PSI`, built from a `PsiConfig`):

- `relu_mlp`: the paper's ReLU network (§6: 6 hidden layers of width 20); ∇ψ is piecewise constant.
- `quadratic_relu`: the sum of both (beyond the paper): affine displacement fields exactly, plus corrections.
- `quadratic`: ψ(y) = ½yᵀSy + cᵀy with S = (M + Mᵀ)/2. Linear in its parameters (`linear = True`), so the inner
  least-squares problem has an exact solution (`inner_solver: lstsq`); for a Gaussian ρ_θ and an affine
  displacement it contains the exact L²(ρ_θ) projection onto gradient fields (paper 004 Remark 7).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

import jax
import jax.numpy as jnp

from pinnflow.core.config import Section, check_name, check_positive_ints
from pinnflow.core.registry import Registry

__all__ = ["Psi", "PsiConfig", "PSI", "ReluMLP", "Quadratic", "QuadraticPlusReluMLP", "make_psi"]

Params = Any


class Psi(Protocol):
    """`init(key)` → parameters, `apply(params, y (d,))` → ψ(y) (a scalar); `linear`: ψ is linear in params."""

    dim: int
    linear: bool

    def init(self, key: jax.Array) -> Params: ...

    def apply(self, params: Params, y: jax.Array) -> jax.Array: ...


@dataclass(frozen=True)
class ReluMLP:
    """`depth` hidden ReLU layers of `width` units, He-normal weights, zero biases, a linear scalar output."""

    dim: int
    width: int = 20
    depth: int = 6
    linear: bool = False

    def init(self, key: jax.Array) -> Params:
        sizes = [self.dim] + [self.width] * self.depth + [1]
        keys = jax.random.split(key, len(sizes) - 1)
        return [{"W": math.sqrt(2.0 / m) * jax.random.normal(k, (m, n)), "b": jnp.zeros((n,))}
                for k, m, n in zip(keys, sizes[:-1], sizes[1:], strict=True)]

    def apply(self, params: Params, y: jax.Array) -> jax.Array:
        h = y
        for layer in params[:-1]:
            h = jax.nn.relu(h @ layer["W"] + layer["b"])
        return (h @ params[-1]["W"] + params[-1]["b"])[0]


@dataclass(frozen=True)
class Quadratic:
    """ψ(y) = ½yᵀ((M + Mᵀ)/2)y + cᵀy; zero at init."""

    dim: int
    linear: bool = True

    def init(self, key: jax.Array) -> Params:
        del key
        return {"M": jnp.zeros((self.dim, self.dim)), "c": jnp.zeros((self.dim,))}

    def apply(self, params: Params, y: jax.Array) -> jax.Array:
        S = 0.5 * (params["M"] + params["M"].T)
        return 0.5 * y @ (S @ y) + params["c"] @ y


@dataclass(frozen=True)
class QuadraticPlusReluMLP:
    """ψ = quadratic + ReLU network (beyond the paper): ∇ψ holds every affine field exactly (the displacement
    of a Gaussian) plus the ReLU network's piecewise-constant corrections."""

    dim: int
    width: int = 20
    depth: int = 6
    linear: bool = False

    def init(self, key: jax.Array) -> Params:
        return {"quadratic": Quadratic(self.dim).init(key), "mlp": ReluMLP(self.dim, self.width, self.depth).init(key)}

    def apply(self, params: Params, y: jax.Array) -> jax.Array:
        return (Quadratic(self.dim).apply(params["quadratic"], y)
                + ReluMLP(self.dim, self.width, self.depth).apply(params["mlp"], y))


PSI: Registry[Psi] = Registry("psi network")


@dataclass
class PsiConfig(Section):
    """ψ_λ (paper 004 §6: ReLU, 6 layers of width 20). `kind`: a name in `PSI`."""

    kind: str = "relu_mlp"
    width: int = 20
    depth: int = 6

    def validate(self, where: str = "psi.") -> None:
        check_name(PSI, self.kind, f"{where}kind")
        check_positive_ints(self, where, ("width", "depth"))


@PSI.register(name="relu_mlp")
def _relu_mlp(d: int, cfg: PsiConfig) -> Psi:
    return ReluMLP(d, cfg.width, cfg.depth)


@PSI.register(name="quadratic")
def _quadratic(d: int, cfg: PsiConfig) -> Psi:
    del cfg
    return Quadratic(d)


@PSI.register(name="quadratic_relu")
def _quadratic_relu(d: int, cfg: PsiConfig) -> Psi:
    return QuadraticPlusReluMLP(d, cfg.width, cfg.depth)


def make_psi(d: int, cfg: PsiConfig) -> Psi:
    """The ψ network `cfg.kind` on R^d."""
    return PSI.factory(cfg.kind)(d, cfg)
