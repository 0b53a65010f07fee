"""Baselines that pinnflow's PDE losses are compared with (paper 003, Table 2).

Every baseline is registered in `BASELINES` under a name (`pis_kl`, `pis_lv`, `dis_kl`, `dis_lv`, `smc`)
as a function

    run(target: Target, budget: BaselineBudget, key: jax.Array, progress: bool = True) -> BaselineResult

that trains (if it has anything to train) and returns samples with importance log-weights, so the same
metrics as for the PDE samplers apply (`pinnflow.metrics.evaluate_samples`).

For Fokker–Planck problems, `simulate_ensemble` is the SDE reference (Euler–Maruyama ensemble: moments,
one-particle marginals, kernel density estimates over time).
"""

from __future__ import annotations

from pinnflow.baselines.result import BASELINES, BaselineBudget, BaselineResult, run_baseline
from pinnflow.baselines.sde_ensemble import Ensemble, one_particle_kde, simulate_ensemble

__all__ = ["BASELINES", "BaselineBudget", "BaselineResult", "run_baseline", "Ensemble", "one_particle_kde",
           "simulate_ensemble"]

# Importing a baseline module registers it.
from pinnflow.baselines import pis_dis as _pis_dis  # noqa: E402,F401
from pinnflow.baselines import smc as _smc  # noqa: E402,F401
