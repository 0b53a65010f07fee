"""pinnflow: sampling and Fokker–Planck equations by dynamical measure transport with neural PDE solvers.

Layout (data flows one way): `core` (registry, config machinery, precision, checkpoints, parallelism, the
run loop) → `operators` → `pde` → `nn` → `dynamics` → `metrics` → `optim` → solvers (`pinn`, `baselines`)
→ `viz` → `cli`. `pinnflow.target.Target` is the problem description every solver takes.
"""

from pinnflow import dynamics, metrics, nn, operators, pde
from pinnflow.core.config import ConfigError
from pinnflow.core.loop import TrainingDiverged
from pinnflow.core.precision import default_dtype, precision, set_precision
from pinnflow.core.registry import Registry
from pinnflow.operators import EXACT, Exact, Hutchinson, unbiased_square
from pinnflow.pde import residuals
from pinnflow.pinn import collocation, losses, parametrisations
from pinnflow.pinn.config import CollocationConfig, Config, NetworkConfig, OptimConfig, SamplerConfig
from pinnflow.pinn.evaluate import evaluate
from pinnflow.pinn.finetune import gauss_newton, lbfgs
from pinnflow.pinn.sampling import Samples, sample
from pinnflow.pinn.train import Run, load_run, train
from pinnflow.target import Target

integrators = dynamics.integrators  # the pre-0.2 module names, kept as attributes
networks = nn.networks
models = parametrisations

__version__ = "0.1.0"

__all__ = [
    "Target", "Registry", "Config", "ConfigError", "NetworkConfig", "OptimConfig", "CollocationConfig",
    "SamplerConfig", "Run", "train", "gauss_newton", "lbfgs", "load_run", "TrainingDiverged", "sample", "Samples",
    "evaluate", "operators", "residuals", "losses", "parametrisations", "nn", "networks", "metrics", "collocation",
    "dynamics", "integrators", "pde", "models", "Exact", "Hutchinson", "EXACT", "unbiased_square", "precision",
    "set_precision", "default_dtype",
]
