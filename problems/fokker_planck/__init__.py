"""Fokker–Planck problems by name (paper 000): `problems.fokker_planck.get(name, **params)`, `names()`,
`register(factory)` (also a decorator; the factory returns a `pinnflow.fokker_planck.FokkerPlanckProblem`).

- `ou`: general Ornstein–Uhlenbeck process, Gaussian ρ0; exact mean, covariance, density, score, entropy.
- `harmonic_trap`: N particles in 2-D, moving harmonic trap, repulsive harmonic interaction (paper 000
  §3.1.1, App. D.1); exact Gaussian solution.
- `soft_spheres`: N = 5 soft spheres in a moving anharmonic trap (§3.1.2, App. D.2); no closed form.
- `active_swimmer`: (x, v) with noise on v only (§3.2, App. D.3); exact v-marginal and mean.
- potential problems ∂_tρ = ∇·(ρ∇V) + βΔρ (paper 004 §6): `quadratic` (exact), `quadratic_aniso`,
  `quadratic_10d`, `styblinski_tang`, `rosenbrock`.
"""

from pinnflow.core.registry import Registry
from pinnflow.fokker_planck import FokkerPlanckProblem

FPE: Registry[FokkerPlanckProblem] = Registry("Fokker-Planck problem")
register = FPE.register
names = FPE.names
get = FPE.get

# Importing the families registers them.
from problems.fokker_planck import active_swimmer, harmonic_trap, ou, potential, soft_spheres  # noqa: E402,F401

__all__ = ["FPE", "register", "names", "get"]
