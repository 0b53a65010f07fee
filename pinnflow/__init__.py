"""pinnflow: sampling and Fokker–Planck equations by dynamical measure transport with neural PDE solvers."""

from pinnflow import operators, residuals
from pinnflow.operators import EXACT, Exact, Hutchinson, unbiased_square
from pinnflow.precision import default_dtype, set_precision
from pinnflow.registry import Registry
from pinnflow.target import Target

__version__ = "0.1.0"

__all__ = [
    "Target",
    "Registry",
    "operators",
    "residuals",
    "Exact",
    "Hutchinson",
    "EXACT",
    "unbiased_square",
    "set_precision",
    "default_dtype",
]
