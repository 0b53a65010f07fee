"""Optimisers on any loss or residual vector: Adam setup, Gauss–Newton (matrix-free CG or sample space, line
searches), L-BFGS; conjugate gradients and Cholesky solves (the one module that may use jaxopt)."""

from pinnflow.optim.adam import OptimConfig, learning_rate_schedule, make_optimizer
from pinnflow.optim.gauss_newton import GaussNewtonConfig, GNState, choose_solver, make_step
from pinnflow.optim.lbfgs import LBFGSState, make_lbfgs

__all__ = ["OptimConfig", "learning_rate_schedule", "make_optimizer", "GaussNewtonConfig", "GNState",
           "choose_solver", "make_step", "LBFGSState", "make_lbfgs"]
