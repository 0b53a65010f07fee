"""Score-based transport modeling (paper 000, Boffi & Vanden-Eijnden): solve a Fokker–Planck equation by pushing
particles along the probability flow v = b − D s (eq. 5) while the score s ≈ ∇log ρ_t is learned on the fly
from the particles themselves (Algorithm 1), with log ρ_t along the trajectories and the entropy by two routes
(eqs. 16, 17).

- `config`: `SBTMConfig` and its sections; `models`: score models (`SCORE_MODELS`: mlp, potential,
  pair_potential); `losses`: implicit / denoising score matching (`LOSSES`); `flow`: v, ∇·v, s·v at the
  particles; `integrators`: Euler / Heun steps (`INTEGRATORS`); `observables`: entropy conventions, relative
  score error (22), moment errors; `solver`: the state, the step on the shared run loop, `solve`.
"""

from pinnflow.metrics.solutions import moment_errors, relative_score_error
from pinnflow.sbtm.config import RESUMABLE, SBTMConfig
from pinnflow.sbtm.integrators import INTEGRATORS
from pinnflow.sbtm.losses import LOSSES
from pinnflow.sbtm.models import SCORE_MODELS
from pinnflow.sbtm.observables import probability_current
from pinnflow.sbtm.solver import SBTMResult, SBTMState, build, initial_state, solve

__all__ = ["SBTMConfig", "RESUMABLE", "SCORE_MODELS", "LOSSES", "INTEGRATORS", "SBTMState", "SBTMResult",
           "solve", "build", "initial_state", "relative_score_error", "moment_errors", "probability_current"]
