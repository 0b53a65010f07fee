"""Score-based diffusion models regularised by the Fokker–Planck residual (paper 002, Deveney et al., *Closing
the ODE–SDE gap in score-based diffusion models through the Fokker–Planck equation*).

- `sdes`: forward SDEs (`ou`, `vp`, `ve`) with their Gaussian kernels and priors (`SDES`);
- `losses`: DSM at one draw and the registries of parametrisations, weightings, time sampling, regularisers;
- `config`: `DiffusionConfig`; `train`: `train`, `load_run`, `DiffusionRun` (on the shared run loop);
- `samplers`: reverse SDE (Euler–Maruyama) and probability-flow ODE (Euler) from the prior (`SAMPLERS`);
- `exact`: closed forms for Gaussian-mixture data; `evaluate`: W2² tables, R̃, DSM, curl, noise floors.
"""

from pinnflow.diffusion.config import DiffusionConfig
from pinnflow.diffusion.sdes import SDES, ForwardSDE
from pinnflow.diffusion.train import DiffusionRun, load_run, train

__all__ = ["DiffusionConfig", "SDES", "ForwardSDE", "DiffusionRun", "train", "load_run"]
