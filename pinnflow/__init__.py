"""pinnflow: sampling and Fokker–Planck equations by dynamical measure transport with neural PDE solvers."""

from pinnflow import collocation, integrators, losses, metrics, models, networks, operators, residuals
from pinnflow.config import (
    CollocationConfig,
    Config,
    ConfigError,
    NetworkConfig,
    OptimConfig,
    SamplerConfig,
)
from pinnflow.evaluation import evaluate
from pinnflow.gauss_newton import gauss_newton
from pinnflow.operators import EXACT, Exact, Hutchinson, unbiased_square
from pinnflow.precision import default_dtype, set_precision
from pinnflow.registry import Registry
from pinnflow.sampling import Samples, sample
from pinnflow.target import Target
from pinnflow.train import Run, TrainingDiverged, load_run, train

__version__ = "0.1.0"

__all__ = [
    "Target", "Registry", "Config", "ConfigError", "NetworkConfig", "OptimConfig", "CollocationConfig",
    "SamplerConfig", "Run", "train", "gauss_newton", "load_run", "TrainingDiverged", "sample", "Samples", "evaluate",
    "operators", "residuals", "losses", "models", "networks", "metrics", "collocation", "integrators",
    "Exact", "Hutchinson", "EXACT", "unbiased_square", "set_precision", "default_dtype",
]
