"""ODE/SDE integrators, the log-likelihood along a flow, and the probability-flow drift."""

from pinnflow.dynamics.integrators import (
    euler_maruyama,
    ode,
    ode_trajectory,
    ode_with_logp,
    probability_flow,
    rk38_step,
)

__all__ = ["euler_maruyama", "ode", "ode_trajectory", "ode_with_logp", "probability_flow", "rk38_step"]
