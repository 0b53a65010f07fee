"""Differential operators over one point and their trace backends (chosen by value, or by name in `BACKENDS`).

- `base`: ∇, ∂_t, Jacobian, the `Backend` protocol, fused `derivatives`, `GradientField`, `unbiased_square`;
- `exact`: `Exact` (forward mode over the basis); `hutchinson`: `Hutchinson(k)` (stochastic, needs a key);
- `forward`: `ForwardLaplacian` (one-pass propagation, interpreter in `forward_laplacian`); `auto`: `Auto`.
"""

from pinnflow.core.registry import Registry
from pinnflow.operators.auto import Auto
from pinnflow.operators.base import (
    Backend,
    Derivatives,
    GradientField,
    derivatives,
    field_divergence,
    grad,
    jacobian,
    time_derivative,
    unbiased_square,
)
from pinnflow.operators.exact import EXACT, Exact
from pinnflow.operators.forward import FORWARD_LAPLACIAN, ForwardLaplacian
from pinnflow.operators.hutchinson import Hutchinson

__all__ = [
    "grad", "time_derivative", "jacobian", "Backend", "Exact", "Hutchinson", "ForwardLaplacian", "Auto",
    "Derivatives", "derivatives", "GradientField", "field_divergence", "EXACT", "FORWARD_LAPLACIAN", "BACKENDS",
    "unbiased_square", "backend",
]

BACKENDS: Registry[Backend] = Registry("operator backend")
"""Operator backends by name (`config.operator`): `BACKENDS.get(name, **params)`."""
BACKENDS.register(Auto, name="auto")
BACKENDS.register(Exact, name="exact")
BACKENDS.register(ForwardLaplacian, name="forward_laplacian")
BACKENDS.register(Hutchinson, name="hutchinson")


def backend(name: str, hutchinson_probes: int = 1) -> Backend:
    """The backend registered as `name` (`hutchinson` gets `hutchinson_probes` probes)."""
    return BACKENDS.get(name, **({"num_probes": hutchinson_probes} if name == "hutchinson" else {}))
