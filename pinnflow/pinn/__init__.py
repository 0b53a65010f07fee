"""Paper 003, the PINN sampler: parametrisations of V, μ, Φ (eq. 10), the loss registry (Table 1), collocation
(eq. 63, trajectories of App. D.1), Adam training, Gauss–Newton / L-BFGS fine-tuning, sampling and evaluation.

Data flow: `Config` → `build` (loss, parametrisation, networks, domain) → `train` (shared run loop) → `Run`
→ `sample` (learned ODE/SDE) → `evaluate` (`pinnflow.metrics`); `gauss_newton(run)` fine-tunes a `Run`.
The functions `train` and `evaluate` live in the modules of the same name (`pinnflow.pinn.train.train`, also
`pf.train`), which this package does not shadow.
"""

from pinnflow.pinn import collocation, losses, parametrisations
from pinnflow.pinn.config import CollocationConfig, Config, GaussNewtonConfig, NetworkConfig, OptimConfig, SamplerConfig
from pinnflow.pinn.finetune import FINETUNE_DIR, gauss_newton, lbfgs
from pinnflow.pinn.sampling import Samples, sample
from pinnflow.pinn.train import Run, build, load_run

__all__ = ["collocation", "losses", "parametrisations", "Config", "NetworkConfig", "OptimConfig",
           "CollocationConfig", "SamplerConfig", "GaussNewtonConfig", "gauss_newton", "lbfgs",
           "FINETUNE_DIR", "Samples", "sample", "Run", "build", "load_run"]
