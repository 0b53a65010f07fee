"""The loss registry of paper 003, Table 1: each loss = a parametrisation of the unknowns + the PDE
residual(s) it squares, with a weight per term.

A loss's `residuals(fields, x, t, op, key)` returns a dict of named scalar residuals at one point;
`pinnflow.train` vectorises it over a collocation batch, so logging shows each term and Gauss–Newton can
stack the weighted residual vectors. Add your own loss with the decorator:

    @pf.losses.register(parametrisation="general", sigma=0.0)
    def my_ce(f, x, t, op, key):
        return {"log_ce": pf.residuals.log_ce(f.V, f.drift, x, t, op, key)}
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from pinnflow.core.registry import Registry
from pinnflow.core.rng import split_or_none
from pinnflow.pde import residuals as R
from pinnflow.pinn.parametrisations import PARAMETRISATIONS, Fields

__all__ = ["Loss", "REGISTRY", "register", "names", "get"]

ResidualFn = Callable[..., dict]  # (fields, x, t, op, key) -> {term: scalar}


@dataclass(frozen=True)
class Loss:
    """A registered loss: which parametrisation it learns, its residual terms, their weights.

    `sigma` and `T` are the defaults for the diffusion and horizon (a config may override them);
    `weights(alpha) -> {term: weight}` (alpha is the HJB weight of eqs. 22–23)."""

    name: str
    parametrisation: str
    residuals: ResidualFn
    sigma: float = 0.0
    T: float = 1.0
    weights: Callable[[float], dict[str, float]] = field(default=lambda alpha: {})
    doc: str = ""

    @property
    def stochastic(self) -> bool:
        """True if the learned dynamics is an SDE by default (σ > 0)."""
        return self.sigma > 0

    def term_weights(self, alpha: float, terms) -> dict[str, float]:
        w = self.weights(alpha)
        return {k: float(w.get(k, 1.0)) for k in terms}


REGISTRY: Registry[Loss] = Registry("loss")
names = REGISTRY.names
get = REGISTRY.get


def register(fn: ResidualFn | None = None, *, parametrisation: str = "general", sigma: float = 0.0,
             T: float = 1.0, weights: Callable[[float], dict[str, float]] | None = None,
             name: str | None = None, doc: str | None = None):
    """Decorator registering `fn(fields, x, t, op, key) -> {term: residual}` as a loss named `fn.__name__`
    (or `name`); `doc` defaults to the function's docstring."""
    PARAMETRISATIONS.factory(parametrisation)  # fail early on an unknown parametrisation

    def add(f: ResidualFn) -> ResidualFn:
        loss = Loss(name or f.__name__, parametrisation, f, float(sigma), float(T),
                    weights or (lambda alpha: {}), (doc or f.__doc__ or "").strip())
        REGISTRY.register(lambda: loss, name=loss.name)
        return f

    return add if fn is None else add(fn)


SQRT2 = 2.0**0.5


@register(parametrisation="general", sigma=SQRT2)
def log_fp(f: Fields, x, t, op, key):
    """General SDE bridge, eq. (12): learn μ and V, log-FP residual (7)."""
    return {"log_fp": R.log_fp(f.V, f.drift, f.sigma, x, t, op, key)}


@register(parametrisation="general", sigma=0.0)
def log_ce(f: Fields, x, t, op, key):
    """General ODE bridge, eq. (13): learn μ and V, log-CE residual (8)."""
    return {"log_ce": R.log_ce(f.V, f.drift, x, t, op, key)}


# The annealed losses square the same residuals with V fixed to the geometric path (eq. 72) up to z(t).
register(log_fp, parametrisation="anneal", sigma=SQRT2, name="log_fp_anneal",
         doc="Annealed SDE, eq. (14): geometric path V fixed up to z(t), learn μ.")
register(log_ce, parametrisation="anneal", sigma=0.0, name="log_ce_anneal",
         doc="Annealed ODE, eq. (14): geometric path V fixed up to z(t), learn μ.")


@register(parametrisation="score", sigma=2.0, T=3.0)
def score(f: Fields, x, t, op, key):
    """Time reversal / diffusion model, eq. (18): learn V, μ = σσᵀ∇V − f, residual (15).
    Defaults: VP drift f = −(σ²/2)x with σ = 2, T = 3, so p_Y(·, T) ≈ N(0, I)."""
    return {"score": R.score(f.V, f.f, f.sigma, x, t, op, key)}


@register(parametrisation="potential", sigma=SQRT2, weights=lambda alpha: {"hjb": alpha})
def sb(f: Fields, x, t, op, key):
    """Schrödinger bridge, eq. (22): μ = ∇Φ, log-FP residual + α · HJB residual (20)."""
    k1, k2 = split_or_none(key, 2)
    return {"log_fp": R.log_fp(f.V, f.drift, f.sigma, x, t, op, k1),
            "hjb": R.hjb(f.Phi, f.sigma, x, t, op, k2)}


@register(parametrisation="potential", sigma=0.0, weights=lambda alpha: {"hjb": alpha})
def ot(f: Fields, x, t, op, key):
    """Optimal transport, eq. (23): μ = ∇Φ, log-CE residual + α · HJB residual (21)."""
    k1, k2 = split_or_none(key, 2)
    return {"log_ce": R.log_ce(f.V, f.drift, x, t, op, k1), "hjb": R.hjb(f.Phi, 0, x, t, op, k2)}
