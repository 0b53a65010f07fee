"""Paper 004 (Liu, Li et al., *Neural parametric Fokker–Planck equation*): a normalizing flow ρ_θ = T_θ#N(0, I)
moved along the Wasserstein gradient flow of the free energy H(θ) = E[V(T_θX) + β log ρ_θ(T_θX)] by the
semi-implicit (JKO-like) scheme of Algorithm 1, for ∂_tρ = ∇·(ρ∇V) + βΔρ.

- `psi`: the test functions ψ_λ (ReLU network, quadratic); `pushforward`: ρ_θ and H(θ);
- `scheme`: the time steppers (`semi_implicit`, `flat`) as run-loop steps; `config`: `WGFConfig`;
- `solve`: checks, the run loop, evaluation and snapshots.
"""

from pinnflow.wgf.config import EvalConfig, SchemeConfig, WGFConfig
from pinnflow.wgf.pushforward import PushForward
from pinnflow.wgf.scheme import SCHEMES, Scheme, WGFState
from pinnflow.wgf.solve import WGFResult, build, check_inputs, solve

__all__ = ["WGFConfig", "SchemeConfig", "EvalConfig", "PushForward", "SCHEMES", "Scheme", "WGFState", "WGFResult",
           "build", "check_inputs", "solve"]
