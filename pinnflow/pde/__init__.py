"""The PDEs of dynamical measure transport at one point: residuals (log-FP, log-CE, HJB, score, score-FP), D = σσᵀ."""

from pinnflow.pde import diffusion, residuals
from pinnflow.pde.diffusion import Sigma, diffusion_at
from pinnflow.pde.residuals import hjb, log_ce, log_fp, score, score_fp

__all__ = ["diffusion", "residuals", "Sigma", "diffusion_at", "hjb", "log_ce", "log_fp", "score", "score_fp"]
