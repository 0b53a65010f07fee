"""The contract every baseline follows: a budget in, samples with log-weights out."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import jax
import numpy as np

from pinnflow.core.registry import Registry
from pinnflow.target import Target

__all__ = ["BaselineBudget", "BaselineResult", "BASELINES", "run_baseline"]


@dataclass(frozen=True)
class BaselineBudget:
    """How much work a baseline may do. Trained baselines use `steps`, `batch`, `lr`, `time_steps`;
    SMC uses `particles` and `mcmc_steps`. `n_eval` samples are returned for the metrics."""

    steps: int = 2000
    batch: int = 512
    lr: float = 1e-3
    time_steps: int = 100
    width: int = 64
    depth: int = 3
    particles: int = 2000
    mcmc_steps: int = 10
    n_eval: int = 2000
    extra: dict = field(default_factory=dict)


@dataclass
class BaselineResult:
    """Samples `(n, d)` and their log importance weights `log ρ(x) − log q(x)` (`(n,)`, None if the
    method has none), a log Z estimate if the method makes one, and timing."""

    samples: np.ndarray
    log_weights: np.ndarray | None
    log_Z_estimate: float | None
    train_seconds: float
    seconds_per_step: float | None
    steps: int
    info: dict = field(default_factory=dict)


Baseline = Callable[..., BaselineResult]

BASELINES: Registry[Baseline] = Registry("baseline")
"""Baselines by name; `BASELINES.factory(name)` is the `run(target, budget, key, progress)` function."""


def run_baseline(name: str, target: Target, budget: BaselineBudget | None = None, key: jax.Array | None = None,
                 progress: bool = True) -> BaselineResult:
    """Run the baseline registered as `name` (unknown names raise KeyError listing the choices)."""
    fn = BASELINES.factory(name)
    return fn(target, budget or BaselineBudget(), jax.random.PRNGKey(0) if key is None else key, progress)
