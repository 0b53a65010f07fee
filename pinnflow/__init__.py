"""pinnflow: sampling and Fokker–Planck equations by dynamical measure transport with neural PDE solvers.

Layout (data flows one way): `core` (registry, config machinery, precision, checkpoints, parallelism, the
run loop) → `operators` → `pde` → `nn` → `dynamics` → `metrics` → `optim` → solvers (`pinn`, `baselines`)
→ `viz` → `cli`. `pinnflow.target.Target` is the problem description every solver takes.

The names below are loaded on first access (PEP 562), so `import pinnflow` (and the `pinnflow` command's
`--help`) does not pay for JAX, Flax, optax, ott-jax or pandas until a name that needs them is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

# public name -> (module, attribute in it; None: the module itself)
_LAZY: dict[str, tuple[str, str | None]] = {
    "dynamics": ("pinnflow.dynamics", None),
    "metrics": ("pinnflow.metrics", None),
    "nn": ("pinnflow.nn", None),
    "operators": ("pinnflow.operators", None),
    "pde": ("pinnflow.pde", None),
    "ConfigError": ("pinnflow.core.config", "ConfigError"),
    "TrainingDiverged": ("pinnflow.core.loop", "TrainingDiverged"),
    "default_dtype": ("pinnflow.core.precision", "default_dtype"),
    "precision": ("pinnflow.core.precision", "precision"),
    "set_precision": ("pinnflow.core.precision", "set_precision"),
    "Registry": ("pinnflow.core.registry", "Registry"),
    "EXACT": ("pinnflow.operators", "EXACT"),
    "Exact": ("pinnflow.operators", "Exact"),
    "Hutchinson": ("pinnflow.operators", "Hutchinson"),
    "unbiased_square": ("pinnflow.operators", "unbiased_square"),
    "residuals": ("pinnflow.pde.residuals", None),
    "collocation": ("pinnflow.pinn.collocation", None),
    "losses": ("pinnflow.pinn.losses", None),
    "parametrisations": ("pinnflow.pinn.parametrisations", None),
    "CollocationConfig": ("pinnflow.pinn.config", "CollocationConfig"),
    "Config": ("pinnflow.pinn.config", "Config"),
    "NetworkConfig": ("pinnflow.pinn.config", "NetworkConfig"),
    "OptimConfig": ("pinnflow.pinn.config", "OptimConfig"),
    "SamplerConfig": ("pinnflow.pinn.config", "SamplerConfig"),
    "evaluate": ("pinnflow.pinn.evaluate", "evaluate"),
    "gauss_newton": ("pinnflow.pinn.finetune", "gauss_newton"),
    "lbfgs": ("pinnflow.pinn.finetune", "lbfgs"),
    "Samples": ("pinnflow.pinn.sampling", "Samples"),
    "sample": ("pinnflow.pinn.sampling", "sample"),
    "Run": ("pinnflow.pinn.train", "Run"),
    "load_run": ("pinnflow.pinn.train", "load_run"),
    "train": ("pinnflow.pinn.train", "train"),
    "Target": ("pinnflow.target", "Target"),
    # the pre-0.2 module names, kept as attributes
    "integrators": ("pinnflow.dynamics.integrators", None),
    "networks": ("pinnflow.nn.networks", None),
    "models": ("pinnflow.pinn.parametrisations", None),
}

__all__ = [
    "Target", "Registry", "Config", "ConfigError", "NetworkConfig", "OptimConfig", "CollocationConfig",
    "SamplerConfig", "Run", "train", "gauss_newton", "lbfgs", "load_run", "TrainingDiverged", "sample", "Samples",
    "evaluate", "operators", "residuals", "losses", "parametrisations", "nn", "networks", "metrics", "collocation",
    "dynamics", "integrators", "pde", "models", "Exact", "Hutchinson", "EXACT", "unbiased_square", "precision",
    "set_precision", "default_dtype",
]


def __getattr__(name: str):
    """Import a public name on first access and keep it as a module attribute (later accesses are plain)."""
    try:
        module, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'pinnflow' has no attribute {name!r}") from None
    value = importlib.import_module(module)
    if attr is not None:
        value = getattr(value, attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


if TYPE_CHECKING:  # what the lazy names are, for type checkers and editors
    from pinnflow import dynamics, metrics, nn, operators, pde
    from pinnflow.core.config import ConfigError
    from pinnflow.core.loop import TrainingDiverged
    from pinnflow.core.precision import default_dtype, precision, set_precision
    from pinnflow.core.registry import Registry
    from pinnflow.dynamics import integrators
    from pinnflow.nn import networks
    from pinnflow.operators import EXACT, Exact, Hutchinson, unbiased_square
    from pinnflow.pde import residuals
    from pinnflow.pinn import collocation, losses, parametrisations
    from pinnflow.pinn import parametrisations as models
    from pinnflow.pinn.config import CollocationConfig, Config, NetworkConfig, OptimConfig, SamplerConfig
    from pinnflow.pinn.evaluate import evaluate
    from pinnflow.pinn.finetune import gauss_newton, lbfgs
    from pinnflow.pinn.sampling import Samples, sample
    from pinnflow.pinn.train import Run, load_run, train
    from pinnflow.target import Target
