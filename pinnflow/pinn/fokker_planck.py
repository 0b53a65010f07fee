"""The PINN route to a forward Fokker–Planck equation (issue 13 item 4): learn V ≈ log ρ_t by the log-FP residual
of paper 003 with the drift fixed to the problem's, then sample by the probability flow of paper 000.

Problem (`pinnflow.fokker_planck.FokkerPlanckProblem`, paper 000 eq. 1): ∂_tρ = −∇·(bρ) + ∇·(D∇ρ) on
[0, T], ρ(·, 0) = ρ0. Dividing by ρ, V = log ρ solves paper 003's log-Fokker–Planck equation (7) with μ = b
and σσᵀ = 2D (pinnflow's dX = b dt + σ dW convention; σ = `problem.sde_sigma(t)`):

    R[V](x, t) = ∂_tV + ∇·b + ∇V·b − ½‖σᵀ∇V‖² − ½Tr(σσᵀ∇²V)
               = ∂_tV + ∇·b + ∇V·b − ∇VᵀD∇V − Tr(D∇²V) = 0.

Unlike the sampling problem of paper 003 the drift is given, so V is the only unknown and the initial value
fixes it. The parametrisation builds the initial condition in, in the spirit of eq. (10):

    V_θ(x, t) = log ρ0(x) + [g(x, t) − g(x, 0)] + t · N_θ(x, t),     so V_θ(·, 0) = log ρ0 for every θ,

with N_θ a network of the standardised coordinates z = (x − m̄)/s̄ (m̄, s̄: the collocation cloud's
per-coordinate mean and spread, `network.normalize`) and t, by name in `FP_MODELS` (`network.model`):
`quadratic` (default) = c(t) + g(t)·z + ½zᵀS(t)z + MLP(z, t), with the coefficients from a Fourier-MLP of t, or
`network` = the registered network `network.kind` alone. g is an optional reference density by name in
`REFERENCES` (`reference`): `gaussian` (default), the log-density of a Gaussian fitted to the collocation
ensemble's moments (smooth in t, `GaussianReference`), or `none` (V = log ρ0 + t N_θ, eq. 10's form).

Why the reference. The log-FP residual is a weak norm for V: in a direction where V is flat the terms ∇V·b,
∇VᵀD∇V and Tr(D∇²V) vanish, and V = −t ∇·b solves R = 0 exactly (a non-normalisable solution of the linear
FPE), so near-flat V have a small residual everywhere. Trained from V = log ρ0 with Adam on the moving harmonic
trap (N = 5, T = 5), the plain form fell into exactly that valley: the two centre-of-mass directions, whose
mean moves with the trap, went flat (precision 0.2–0.5 instead of 4) while the residual on the ensemble stayed
at 0.1–0.3 r.m.s. after t = 2; entropy at T 2–3 instead of 10.0, score error 0.17–0.6. The same for a purely
quadratic N (a Gaussian ansatz, exactly representable), a bounded time factor, time-tabulated coefficients,
jittered collocation, other learning rates and 20 Gauss–Newton steps. With g carrying the bulk motion and
spreading, t N_θ only corrects it (including the sampling error of the fitted moments, which g − g(·, 0) alone
would keep forever) and the same training reaches score errors ~1e-3 (numbers in the issue report).

The loss is eq. (11)/(12) with μ fixed: L(θ) = E[R[V_θ](ξ, τ)²], the residual by
`pinnflow.pde.residuals.log_fp` on the configured operator backend (`auto`: the forward Laplacian for
Tr(D∇²V); `hutchinson` squares unbiasedly, `unbiased_square`). No normaliser z(t) is learned: the FPE
conserves mass, so V solving it from a normalised ρ0 stays normalised (an additive c(t) with R[V + c] = R[V]
forces c' = 0, and c(0) = 0).

Collocation (ξ, τ). A box grows exponentially in volume with d and puts almost no points where ρ_t lives, so
the points lie on trajectories: τ ~ U(0, T) and ξ = X_τ of an Euler–Maruyama ensemble of the problem's own SDE
dX = b dt + √(2D) dW, X_0 ~ ρ0 (`pinnflow.baselines.sde_ensemble.simulate_ensemble`), simulated once before
training on a uniform grid of `collocation.grid` + 1 times and linearly interpolated between grid points
(`pinnflow.pinn.collocation.mix_batch`). Given τ, ξ follows ρ_τ (up to the O(dt) Euler–Maruyama bias and the
interpolation), which is the measure on which the evaluation needs V and ∇V. The ensemble is the default
because its law does not depend on θ: an early, poor flow cannot steer the loss away from where ρ_t lives.
Optional: a share `collocation.flow_fraction` of every batch on trajectories of the current probability flow,
re-simulated every `collocation.flow_every` steps (as paper 003 App. D.1 does for the learned ODE), and
Gaussian `collocation.jitter` (times the ensemble's per-coordinate spread at τ) to widen the cloud into the
tails. The ensemble is re-simulated from the seed on resume, so it needs no checkpoint.

Sampling and evaluation. The probability flow dX/dt = v(X, t) = b − D∇V_θ (paper 000 eqs. 5–6) pushes
`evaluation.particles` samples of ρ0 forward by RK4 (3/8 rule) with log ρ along each path by
d/dt log ρ_t(X_t) = −∇·v (paper 003 eq. 64; `pinnflow.dynamics.integrators.ode_with_logp`). One history row
per saved time (t = 0 first), with the definitions of `pinnflow.metrics.solutions`:

- `entropy`: the differential entropy −mean_i log ρ_t(X_i) with log ρ_t transported along the flow (paper 000
  eq. 16, first equality); `entropy_V`: −mean_i V_θ(X_i, t), the learned log-density at the same particles;
  `entropy_exact`: the problem's S_t (eq. 21) where known;
- `score_error`: the relative score error (paper 000 eq. 22) of ∇V_θ against `problem.score` at the particles;
- `mean_error`, `cov_error`: `moment_errors` of the particles against the exact mean and covariance;
- `log_rho_error`: mean_i |log ρ_t(X_i) − log ρ*_t(X_i)| of the transported log-density, `V_error` the same
  for V_θ itself; `residual`: the root mean square of R[V_θ] at the particles;
- `train_seconds`: wall seconds of the training steps (compilation excluded; the same in every row).

`solve(problem, config, run_dir=None, resume=False, progress=None)` mirrors `pinnflow.sbtm.solve`: training on
the shared run loop (`pinnflow.core.loop.run_loop`: chunks under `lax.scan`, progress bar, checkpoints and exact
resume through `RunDir`), everything in `precision(config.precision)`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pandas as pd
from flax import nnx

from pinnflow.baselines.sde_ensemble import simulate_ensemble
from pinnflow.core.config import (
    ConfigBase,
    ConfigError,
    Section,
    check_name,
    check_positive_ints,
    check_types,
    is_number,
    is_positive,
    is_positive_int,
    need,
)
from pinnflow.core.loop import run_loop
from pinnflow.core.parallel import DataParallel
from pinnflow.core.precision import PRECISIONS, default_dtype, precision
from pinnflow.core.registry import Registry
from pinnflow.core.rng import Stream, stream_key
from pinnflow.core.rundir import Progress, RunDir
from pinnflow.dynamics.integrators import ode_with_logp
from pinnflow.fokker_planck import FokkerPlanckProblem
from pinnflow.metrics.solutions import moment_errors, relative_score_error
from pinnflow.nn.networks import FourierMLP
from pinnflow.nn.registry import NetworkConfig, network
from pinnflow.operators import BACKENDS, Auto, Backend, backend, unbiased_square
from pinnflow.optim.adam import OptimConfig, learning_rate_schedule, make_optimizer
from pinnflow.pde.residuals import log_fp
from pinnflow.pinn.collocation import RUNAWAY_FACTOR, mix_batch, trajectory_cache
from pinnflow.pinn.train import trajectory_schedule

__all__ = ["ConfigError", "FPNetworkConfig", "FPOptimConfig", "FPCollocationConfig", "FPEvaluationConfig",
           "PINNFPConfig", "RESUMABLE", "FPTrainState", "FPSolver", "PINNFPResult", "initial_value_V",
           "GaussianReference", "REFERENCES", "FP_MODELS", "QuadraticPlusNetwork", "cubic_bspline_basis",
           "fp_residual", "build", "collocation_batch", "evaluation_start", "transport", "observe", "evaluate", "solve"]

ScalarField = Callable[[jax.Array, jax.Array], jax.Array]  # (x (d,), t) -> ()
VectorField = Callable[[jax.Array, jax.Array], jax.Array]  # (x (d,), t) -> (d,)

RESUMABLE = ("optim.steps", "optim.checkpoint_every", "evaluation.particles", "evaluation.saves",
             "evaluation.steps", "evaluation.chunk", "evaluation.residual")
"""Config keys a resumed solve may change: the step budget (with `optim.schedule_steps` fixed the extended run
equals one uninterrupted run) and everything about the evaluation, which reads the trained V only."""


# ---- configuration --------------------------------------------------------------------------------------


@dataclass
class FPNetworkConfig(NetworkConfig):
    """The network N_θ(z, t) of V_θ = log ρ0 + [g(·, t) − g(·, 0)] + t N_θ: `model` a name in `FP_MODELS`, `kind`
    the scalar network of `pinnflow.nn.NETWORKS` inside it. `normalize`: z = (x − m̄)/s̄, m̄ and s̄ the
    per-coordinate mean and standard deviation of the collocation ensemble (all times), else z = x;
    `potential_kind` and `z_width` are not used here."""

    model: str = "quadratic"
    width: int = 64
    depth: int = 3
    normalize: bool = True
    time_period: float = 2.0  # period of the Fourier time features, in units of T (1: t = 0 and T look alike)

    def validate(self, where: str = "network.") -> None:
        check_name(FP_MODELS, self.model, f"{where}model")
        need(is_positive(self.time_period), f"{where}time_period", f"must be > 0, got {self.time_period!r}")
        super().validate(where)


@dataclass
class FPOptimConfig(OptimConfig):
    """Adam as `pinnflow.optim.adam` (exponential decay from `lr` to `lr_final`), with a CPU-minutes budget."""

    steps: int = 4000
    batch_size: int = 512
    lr: float = 3e-3
    lr_final: float = 3e-5
    chunk: int = 500
    checkpoint_every: int = 2000


@dataclass
class FPCollocationConfig(Section):
    """Where the residual is evaluated (module docstring): τ ~ U(0, T), ξ on `trajectories` Euler–Maruyama paths
    of the problem's SDE (steps ≤ `sde_dt`) recorded at `grid` + 1 uniform times; a share `flow_fraction` of each
    batch on `flow_count` RK4 paths (`flow_steps` steps) of the current probability flow, re-simulated every
    `flow_every` steps; Gaussian `jitter` × the ensemble's per-coordinate standard deviation at τ."""

    trajectories: int = 2000
    grid: int = 100
    sde_dt: float = 5e-3
    jitter: float = 0.0
    flow_fraction: float = 0.0
    flow_count: int = 1000
    flow_steps: int = 100
    flow_every: int = 1000

    def validate(self, where: str = "collocation.") -> None:
        check_positive_ints(self, where, ("grid", "flow_count", "flow_steps", "flow_every"))
        need(is_positive_int(self.trajectories) and self.trajectories >= 2, f"{where}trajectories",
             f"must be an integer >= 2, got {self.trajectories!r}")
        need(is_positive(self.sde_dt), f"{where}sde_dt", f"must be > 0, got {self.sde_dt!r}")
        need(is_number(self.jitter) and self.jitter >= 0, f"{where}jitter", f"must be >= 0, got {self.jitter!r}")
        f = self.flow_fraction
        need(is_number(f) and 0 <= f < 1, f"{where}flow_fraction", f"must be in [0, 1), got {f!r}")


@dataclass
class FPEvaluationConfig(Section):
    """The probability-flow evaluation: `particles` samples of ρ0, `steps` RK4 steps on [0, T] (a multiple of
    `saves`), one history row at t = 0 and after every `steps/saves` steps; `chunk` particles per pass
    (`ode_with_logp`; null: all at once); `residual`: include the `residual` column."""

    particles: int = 2000
    saves: int = 10
    steps: int = 100
    chunk: int | None = 1000
    residual: bool = True  # also report the r.m.s. residual at the particles (one more compiled residual)

    def validate(self, where: str = "evaluation.") -> None:
        check_positive_ints(self, where, ("saves", "steps"))
        need(is_positive_int(self.particles) and self.particles >= 2, f"{where}particles",
             f"must be an integer >= 2 (the covariance needs 2), got {self.particles!r}")
        need(self.steps % self.saves == 0, f"{where}steps",
             f"must be a multiple of {where}saves ({self.saves}), got {self.steps}")
        need(self.chunk is None or is_positive_int(self.chunk), f"{where}chunk",
             f"must be a positive integer or null, got {self.chunk!r}")


@dataclass
class PINNFPConfig(ConfigBase):
    """Everything a PINN Fokker–Planck solve needs. `T`: the horizon (null: the problem's; at most the problem's,
    since the collocation ensemble is the problem's SDE on [0, problem.T]); `operator`: the trace backend, a name
    in `pinnflow.operators.BACKENDS` (`hutchinson_probes` for `hutchinson`)."""

    T: float | None = None
    reference: str = "gaussian"  # a name in REFERENCES: "gaussian" (fitted to the ensemble) or "none"
    reference_intervals: int = 10  # its cubic splines in t have this many intervals on [0, T]
    operator: str = "auto"
    hutchinson_probes: int = 1
    seed: int = 0
    precision: str = "float32"
    data_parallel: bool = True  # shard collocation batches across jax.devices()
    network: FPNetworkConfig = field(default_factory=FPNetworkConfig)
    optim: FPOptimConfig = field(default_factory=FPOptimConfig)
    collocation: FPCollocationConfig = field(default_factory=FPCollocationConfig)
    evaluation: FPEvaluationConfig = field(default_factory=FPEvaluationConfig)

    def validate(self) -> None:
        """Raise `ConfigError` naming the first invalid field: types, own keys, each section, then the keys
        that constrain each other."""
        check_types(self)
        need(self.T is None or is_positive(self.T), "T", f"must be > 0 or null, got {self.T!r}")
        check_name(REFERENCES, self.reference, "reference")
        need(is_positive_int(self.reference_intervals), "reference_intervals",
             f"must be a positive integer, got {self.reference_intervals!r}")
        check_name(BACKENDS, self.operator, "operator")
        need(is_positive_int(self.hutchinson_probes), "hutchinson_probes",
             f"must be a positive integer, got {self.hutchinson_probes!r}")
        need(self.precision in PRECISIONS, "precision", f"must be one of {PRECISIONS}, got {self.precision!r}")
        super().validate()
        c, o = self.collocation, self.optim
        need(self.reference_intervals + 3 <= c.grid + 1, "reference_intervals",
             f"the {self.reference_intervals + 3} spline coefficients need at least as many ensemble times: "
             f"must be <= collocation.grid - 2 = {c.grid - 2}, got {self.reference_intervals}")
        need(c.flow_fraction == 0 or c.flow_every % o.chunk == 0, "collocation.flow_every",
             f"must be a multiple of optim.chunk ({o.chunk}), got {c.flow_every}")


# ---- the parametrisation and the residual --------------------------------------------------------------


def initial_value_V(log_rho0: Callable[[jax.Array], jax.Array], N: ScalarField,
                    reference: ScalarField | None = None) -> ScalarField:
    """V(x, t) = log ρ0(x) + [g(x, t) − g(x, 0)] + t · N(x, t): V(·, 0) = log ρ0 whatever N and the reference g
    are (the initial condition built in, in the spirit of paper 003 eq. 10); no reference: g = 0."""

    def V(x: jax.Array, t) -> jax.Array:
        if reference is None:
            return log_rho0(x) + t * N(x, t)
        # (g_t − g_0) is exactly 0 at t = 0, so V(·, 0) = log ρ0 to the last bit
        return log_rho0(x) + (reference(x, t) - reference(x, jnp.zeros_like(jnp.asarray(t)))) + t * N(x, t)

    return V


def cubic_bspline_basis(t: jax.Array, T: float, intervals: int) -> jax.Array:
    """The uniform cubic B-splines on [0, T] with `intervals` intervals of width h = T/intervals, centred at
    t_j = j h for j = −1, …, intervals + 1: B((t − t_j)/h) with the cardinal cubic B-spline
    B(u) = (4 − 6u² + 3|u|³)/6 for |u| < 1, (2 − |u|)³/6 for 1 ≤ |u| < 2, 0 beyond (C², local support).
    Shape (intervals + 3,); works on numpy and JAX arrays."""
    xp = jnp if isinstance(t, jax.Array) else np
    u = xp.abs(t / (T / intervals) - xp.arange(-1, intervals + 2, dtype=xp.result_type(t, float)))
    inner = (4.0 - 6.0 * u**2 + 3.0 * u**3) / 6.0
    outer = xp.clip(2.0 - u, 0.0, None) ** 3 / 6.0
    return xp.where(u < 1.0, inner, outer)


@dataclass(frozen=True, eq=False)
class GaussianReference:
    """g(x, t) = −½(x − m(t))ᵀP(t)(x − m(t)) + ℓ(t), the log-density of a Gaussian fitted to the collocation
    ensemble: m, P and ℓ are cubic splines in t (uniform B-splines of `intervals` intervals on [0, T]),
    least-squares fits to the ensemble's mean m̂_k, precision P̂_k = Ĉ_k⁻¹ and ℓ̂_k = ½ log det P̂_k −
    (d/2) log 2π at the grid times: smooth (∂_t g enters the residual and the sample moments are rough in t),
    and local, so that the fit's noise is not amplified at t = 0 and T as a global polynomial's would be. In V it
    carries the bulk motion and spreading of ρ_t (all of it, up to the ensemble's sampling error, for a linear
    drift and Gaussian ρ0), so that t N_θ learns a correction; the module docstring says why that matters."""

    m: np.ndarray  # (intervals + 3, d) spline coefficients
    P: np.ndarray  # (intervals + 3, d, d)
    ell: np.ndarray  # (intervals + 3,)
    T: float

    @classmethod
    def fit(cls, times: np.ndarray, mean: np.ndarray, cov: np.ndarray, T: float, intervals: int
            ) -> GaussianReference:
        times, mean, cov = (np.asarray(a, dtype=np.float64) for a in (times, mean, cov))
        A = np.stack([cubic_bspline_basis(t, T, intervals) for t in times])
        prec = np.linalg.inv(cov)
        prec = 0.5 * (prec + np.swapaxes(prec, 1, 2))
        k, d = mean.shape
        ell = 0.5 * np.linalg.slogdet(prec)[1] - 0.5 * d * np.log(2.0 * np.pi)
        coef = np.linalg.lstsq(A, np.concatenate([mean, prec.reshape(k, -1), ell[:, None]], axis=1), rcond=None)[0]
        return cls(coef[:, :d], coef[:, d:d + d * d].reshape(-1, d, d), coef[:, -1], float(T))

    def __call__(self, x: jax.Array, t) -> jax.Array:
        dt = x.dtype
        c = cubic_bspline_basis(jnp.asarray(t, dt), self.T, self.m.shape[0] - 3)
        m = c @ jnp.asarray(self.m, dt)
        P = jnp.tensordot(c, jnp.asarray(self.P, dt), axes=1)
        y = x - m
        return -0.5 * y @ (P @ y) + c @ jnp.asarray(self.ell, dt)


def _no_reference(times, mean, cov, T: float, intervals: int) -> None:
    del times, mean, cov, T, intervals


REFERENCES: Registry[ScalarField | None] = Registry("reference density")
"""The reference g of V = log ρ0 + [g(·, t) − g(·, 0)] + t N_θ by name (`reference`): factories
(grid times, ensemble mean (k, d), ensemble covariance (k, d, d), T, spline intervals) -> g or None."""
REFERENCES.register(_no_reference, name="none")
REFERENCES.register(GaussianReference.fit, name="gaussian")


def fp_residual(problem: FokkerPlanckProblem, op: Backend) -> Callable[..., jax.Array]:
    """(V, x (d,), t, key) -> R[V](x, t): paper 003's log-FP residual (7) with μ = b and σ = `problem.sde_sigma`
    (σσᵀ = 2D), so that V = log ρ_t of the problem's solution gives 0."""

    def R(V: ScalarField, x: jax.Array, t, key: jax.Array | None = None) -> jax.Array:
        return log_fp(V, problem.drift, problem.sde_sigma, x, t, op, key)

    return R


class QuadraticPlusNetwork(nnx.Module):
    """N(z, t) = c(t) + g(t)·z + ½ zᵀS(t)z + net(z, t): a quadratic in z with coefficients from a Fourier-MLP of t
    alone (S symmetric, from its d(d+1)/2 upper entries; the output layer starts at 0, so the quadratic part
    starts at 0) plus a registered network. The quadratic carries what is Gaussian about log ρ_t − log ρ0 (all
    of it for a linear drift and Gaussian ρ0), the network the rest."""

    def __init__(self, d: int, cfg: NetworkConfig, T: float, rngs: nnx.Rngs):
        self.d = d
        self.net = network(cfg.kind, d, 1, cfg, T, rngs, scalar=True)
        self.coef = FourierMLP(0, 1 + d + d * (d + 1) // 2, width=cfg.width, depth=2, activation=cfg.activation,
                               num_freq=cfg.num_freq, t_max=T, zero_init_output=True, rngs=rngs)
        self.rows, self.cols = (tuple(int(i) for i in a) for a in np.triu_indices(d))

    def __call__(self, z: jax.Array, t) -> jax.Array:
        d = self.d
        c = self.coef(None, jnp.asarray(t, z.dtype))
        upper = jnp.zeros((d, d), z.dtype).at[self.rows, self.cols].set(c[1 + d:])
        S = upper + upper.T  # the diagonal doubled: ½ zᵀSz = Σ_i u_ii z_i² + Σ_{i<j} u_ij z_i z_j
        return c[0] + c[1:1 + d] @ z + 0.5 * z @ (S @ z) + self.net(z, t)


FP_MODELS: Registry[nnx.Module] = Registry("PINN Fokker-Planck model")
"""The network N(z, t) of V = log ρ0 + [g(·, t) − g(·, 0)] + t N by name (`network.model`): factories
(d, network config, T (the period of the time features), rngs)."""
FP_MODELS.register(lambda d, cfg, T, rngs: network(cfg.kind, d, 1, cfg, T, rngs, scalar=True), name="network")
FP_MODELS.register(QuadraticPlusNetwork, name="quadratic")


class Standardised(nnx.Module):
    """net((x − shift)/scale, t): the network sees coordinates of order one on the collocation cloud."""

    def __init__(self, net: nnx.Module, shift: np.ndarray, scale: np.ndarray):
        self.net = net
        self.shift, self.scale = tuple(float(v) for v in shift), tuple(float(v) for v in scale)

    def __call__(self, x: jax.Array, t) -> jax.Array:
        return self.net((x - jnp.asarray(self.shift, x.dtype)) / jnp.asarray(self.scale, x.dtype), t)


class FPTrainState(NamedTuple):
    """The Adam loop's state: parameters of N_θ, optimiser state, PRNG key, and the parameters of the last
    probability-flow collocation refresh (so that a resumed run rebuilds the same flow paths)."""

    params: nnx.State
    opt_state: optax.OptState
    key: jax.Array
    traj_params: nnx.State


class _Initial:
    """ρ0 as the `prior` that `trajectory_cache` draws its starting points from."""

    def __init__(self, problem: FokkerPlanckProblem):
        self.problem = problem

    def sample(self, key: jax.Array, n: int) -> jax.Array:
        return jnp.asarray(self.problem.sample0(key, n), default_dtype())


@dataclass
class FPSolver:
    """The pieces of one solve, built by `build` in the current precision: the horizon, the collocation ensemble
    (`path (grid + 1, n, d)` on the uniform time grid `grid`, its per-time spread `spread (grid + 1, d)`), the
    structure and initial parameters of N_θ, the operator backend and the residual."""

    problem: FokkerPlanckProblem
    config: PINNFPConfig
    T: float
    path: jax.Array
    grid: jax.Array
    spread: jax.Array
    graphdef: nnx.GraphDef
    init_params: nnx.State
    op: Backend
    residual: Callable[..., jax.Array]
    ensemble_seconds: float
    reference: ScalarField | None = None
    programs: dict = field(default_factory=dict, repr=False)  # compiled programs of `evaluate` and the result

    def V(self, params: nnx.State) -> ScalarField:
        """V_θ(x, t) = log ρ0(x) + [g(x, t) − g(x, 0)] + t N_θ(x, t) for one point."""
        return initial_value_V(self.problem.log_rho0, nnx.merge(self.graphdef, params), self.reference)

    def score(self, params: nnx.State) -> VectorField:
        """∇V_θ(x, t)."""
        return jax.grad(self.V(params))

    def velocity(self, params: nnx.State) -> VectorField:
        """The probability flow v = b − D∇V_θ (paper 000 eq. 5)."""
        return self.problem.velocity(self.score(params))

    def loss(self, params: nnx.State, xs: jax.Array, ts: jax.Array, key: jax.Array) -> jax.Array:
        """E[R[V_θ](ξ, τ)²] over the batch (unbiased for a stochastic backend)."""
        V = self.V(params)

        def point(x, t, k):
            return unbiased_square(lambda kk: self.residual(V, x, t, kk), k if self.op.stochastic else None)

        return jnp.mean(jax.vmap(point)(xs, ts, jax.random.split(key, xs.shape[0])))


def _streams(seed: int) -> tuple[jax.Array, jax.Array]:
    """(SDE ensemble key, probability-flow refresh key), both from the run's trajectory stream."""
    k_sde, k_flow = jax.random.split(stream_key(seed, Stream.TRAJECTORIES))
    return k_sde, k_flow


def _check_problem(problem: FokkerPlanckProblem, config: PINNFPConfig) -> float:
    """The horizon T; `TypeError` for a non-problem, `ConfigError` naming `T` when it exceeds the problem's."""
    if not isinstance(problem, FokkerPlanckProblem):
        raise TypeError(f"solve: problem must be a FokkerPlanckProblem, got {type(problem).__name__}")
    T = problem.T if config.T is None else float(config.T)
    need(T <= problem.T * (1 + 1e-12), "T",
         f"must be at most the problem's horizon {problem.T} (the collocation ensemble simulates the problem's "
         f"SDE on [0, {problem.T}]), got {T}")
    return T


def _check_finite_start(problem: FokkerPlanckProblem, X0: jax.Array, what: str) -> None:
    """log ρ0 must be finite at every starting point (the problem checks one sample only)."""
    lp = np.asarray(jax.jit(jax.vmap(problem.log_rho0))(X0))
    if not np.all(np.isfinite(lp)):
        i = int(np.argmin(np.isfinite(lp)))
        raise ValueError(f"Fokker-Planck problem {problem.name!r}: log_rho0 is not finite ({lp[i]}) at the "
                         f"{what} sample {np.asarray(X0[i]).tolist()} of sample0; ρ0 must be positive where it "
                         "has mass")


def evaluation_start(problem: FokkerPlanckProblem, config: PINNFPConfig, key: jax.Array | None = None
                     ) -> tuple[jax.Array, jax.Array]:
    """(X0, key for the transport): `evaluation.particles` samples of ρ0 drawn with `key` (default: the run's
    `Stream.EVALUATE`), checked for a finite log ρ0."""
    key = stream_key(config.seed, Stream.EVALUATE) if key is None else key
    k_sample, k_div = jax.random.split(key)
    X0 = jnp.asarray(problem.sample0(k_sample, config.evaluation.particles), default_dtype())
    _check_finite_start(problem, X0, "evaluation")
    return X0, k_div


def build(problem: FokkerPlanckProblem, config: PINNFPConfig) -> FPSolver:
    """Simulate the collocation ensemble, check ρ0 on it, build N_θ (seeded by `config.seed`) and the residual
    (call inside `precision(config.precision)`). Raises before anything of the training is compiled."""
    T = _check_problem(problem, config)
    evaluation_start(problem, config)  # a non-finite ρ0 fails here, before anything compiles
    c = config.collocation
    grid = np.linspace(0.0, T, c.grid + 1)
    ens = simulate_ensemble(problem, c.trajectories, grid, _streams(config.seed)[0], dt=c.sde_dt,
                            data_parallel=False)
    path = jnp.asarray(ens.particles, default_dtype())
    _check_finite_start(problem, path[0], "collocation")
    spread = jnp.sqrt(jax.vmap(jnp.diag)(jnp.asarray(ens.cov, default_dtype())))
    flat = np.asarray(path).reshape(-1, problem.dim)
    shift, scale = flat.mean(0), np.maximum(flat.std(0), 1e-6 * max(float(flat.std(0).max()), 1e-30))
    net_cfg = config.network

    def init() -> nnx.Module:
        net = FP_MODELS.get(net_cfg.model, d=problem.dim, cfg=net_cfg, T=net_cfg.time_period * T,
                            rngs=nnx.Rngs(config.seed))
        return Standardised(net, shift, scale) if net_cfg.normalize else net

    graphdef, params = nnx.split(nnx.jit(init)())  # one compiled initialiser (eager ones compile op by op)
    op = backend(config.operator, config.hutchinson_probes)
    reference = REFERENCES.get(config.reference, times=grid, mean=np.asarray(ens.mean), cov=np.asarray(ens.cov),
                               T=T, intervals=config.reference_intervals)
    return FPSolver(problem, config, T, path, jnp.asarray(grid, default_dtype()), spread, graphdef, params, op,
                    fp_residual(problem, op), ens.seconds, reference)


# ---- training -----------------------------------------------------------------------------------------


def collocation_batch(solver: FPSolver, key: jax.Array, n: int, n_flow: int = 0,
                      flow_cache: tuple[jax.Array, jax.Array] | None = None,
                      ensemble: tuple[jax.Array, jax.Array, jax.Array] | None = None) -> tuple[jax.Array, jax.Array]:
    """(ξ (n, d), τ (n,)): points of the SDE ensemble at τ ~ U(0, T), the last `n_flow` replaced by points on the
    probability-flow paths `flow_cache = (path, grid)`, then jittered (module docstring). `ensemble`: (path, grid,
    spread), default the solver's (pass them as arguments of a compiled step: closed over they become constants
    of the program). Jittable."""
    path, grid, spread = (solver.path, solver.grid, solver.spread) if ensemble is None else ensemble
    k_sde, k_flow, k_jit = jax.random.split(key, 3)
    dtype = path.dtype
    zeros_x, zeros_t = jnp.zeros((n, solver.problem.dim), dtype), jnp.zeros((n,), dtype)
    xs, ts = mix_batch(k_sde, zeros_x, zeros_t, path, grid, n)
    if n_flow:
        xs, ts = mix_batch(k_flow, xs, ts, *flow_cache, n_flow)
    jitter = solver.config.collocation.jitter
    if jitter > 0:
        std = jax.vmap(lambda s: jnp.interp(ts, grid, s), in_axes=1, out_axes=1)(spread)
        xs = xs + jitter * std * jax.random.normal(k_jit, xs.shape, dtype)
    return xs, ts


def _train(solver: FPSolver, rundir: RunDir | None, resume: bool, progress: bool | None):
    config, problem = solver.config, solver.problem
    o, c = config.optim, config.collocation
    dp = DataParallel.create(config.data_parallel)
    dp.check_batch(o.batch_size, "optim.batch_size")
    tx = make_optimizer(o)
    lr_at = learning_rate_schedule(o)
    n_flow = int(round(c.flow_fraction * o.batch_size))

    def step(state: FPTrainState, aux):
        ensemble, flow_cache = aux
        key, k_batch, k_res = jax.random.split(state.key, 3)
        xs, ts = collocation_batch(solver, k_batch, o.batch_size, n_flow, flow_cache, ensemble)
        xs, ts = dp.shard_batch(xs), dp.shard_batch(ts)
        loss, grads = jax.value_and_grad(solver.loss)(state.params, xs, ts, k_res)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        new = state._replace(params=optax.apply_updates(state.params, updates), opt_state=opt_state, key=key)
        return new, {"loss": loss}

    limit = RUNAWAY_FACTOR * jnp.max(jnp.abs(solver.path), axis=(0, 1))

    @jax.jit
    def refresh(params, key):
        return trajectory_cache(solver.velocity(params), _Initial(problem), solver.T, c.flow_count, c.flow_steps,
                                key, limit=limit)

    dtype = default_dtype()
    placeholder = (jnp.zeros((2, 1, problem.dim), dtype), jnp.array([0.0, solver.T], dtype))
    flow_schedule = trajectory_schedule(refresh, _streams(config.seed)[1], c.flow_every, placeholder, n_flow > 0)
    ensemble = (solver.path, solver.grid, solver.spread)

    def prepare(state: FPTrainState, step: int):
        state, flow_cache = flow_schedule(state, step)
        return state, (ensemble, flow_cache)
    params = solver.init_params
    state = FPTrainState(params, tx.init(params), stream_key(config.seed, Stream.TRAIN), params)
    return run_loop(
        step, state, steps=o.steps, chunk=o.chunk, name=f"pinn log_fp on {problem.name}", rundir=rundir,
        resume=resume, checkpoint_every=o.checkpoint_every, parallel=dp, prepare=prepare,
        extra_row=lambda s: {"lr": float(lr_at(s))}, progress=progress, export=lambda s: {"params": s.params},
        diverged_hint="Lower optim.lr or enable optim.clip_norm.")


# ---- evaluation ---------------------------------------------------------------------------------------


def observe(solver: FPSolver, params: nnx.State, X: jax.Array, log_rho: jax.Array, t: jax.Array) -> dict:
    """One history row at time t from the particles X (n, d) and log ρ_t transported along them (n,) (column
    definitions in the module docstring; exact columns only where the problem knows them). Jittable."""
    p = solver.problem
    V = solver.V(params)
    Vx = jax.vmap(V, in_axes=(0, None))(X, t)
    row = {"t": t, "entropy": -jnp.mean(log_rho), "entropy_V": -jnp.mean(Vx)}
    if p.entropy is not None:
        row["entropy_exact"] = p.entropy(t)
    if p.score is not None:
        s = jax.vmap(solver.score(params), in_axes=(0, None))(X, t)
        row["score_error"] = relative_score_error(s, jax.vmap(p.score, in_axes=(0, None))(X, t))
    if p.mean is not None and p.cov is not None:
        row["mean_error"], row["cov_error"] = moment_errors(X, p.mean(t), p.cov(t))
    if p.log_rho is not None:
        exact = jax.vmap(p.log_rho, in_axes=(0, None))(X, t)
        row["log_rho_error"] = jnp.mean(jnp.abs(log_rho - exact))
        row["V_error"] = jnp.mean(jnp.abs(Vx - exact))
    if solver.config.evaluation.residual:
        # exact: the training backend, or `auto` when that one is stochastic
        residual = solver.residual if not solver.op.stochastic else fp_residual(p, Auto())
        row["residual"] = jnp.sqrt(jnp.mean(jax.vmap(lambda x: residual(V, x, t, None))(X) ** 2))
    return row


def transport(solver: FPSolver, params: nnx.State, X0: jax.Array, key: jax.Array) -> tuple[jax.Array, jax.Array]:
    """X0 (n, d) pushed along dX/dt = b − D∇V_θ with log ρ by −∇·v (RK4, `evaluation.steps` steps on [0, T]):
    the particles (saves + 1, n, d) and log ρ_t along them (saves + 1, n) at the saved times, t = 0 first.
    Jittable (a `lax.scan` over the save intervals)."""
    e, p = solver.config.evaluation, solver.problem
    times = jnp.linspace(0.0, solver.T, e.saves + 1, dtype=X0.dtype)
    v = solver.velocity(params)
    lp0 = jax.vmap(p.log_rho0)(X0)

    def interval(carry, inputs):
        t0, t1, k = inputs
        out = ode_with_logp(v, *carry, t0, t1, e.steps // e.saves, solver.op, k, e.chunk)
        return out, out

    _, (Xs, lps) = jax.lax.scan(interval, (X0, lp0), (times[:-1], times[1:], jax.random.split(key, e.saves)))
    return jnp.concatenate([X0[None], Xs]), jnp.concatenate([lp0[None], lps])


def evaluate(solver: FPSolver, params: nnx.State, key: jax.Array | None = None) -> pd.DataFrame:
    """Push `evaluation.particles` samples of ρ0 along the probability flow of V_θ with log ρ (`transport`) and
    return one row per saved time, t = 0 first (`observe`). Two programs, compiled once per solver: the
    transport, and the observables vmapped over the saved times (the problem's exact functions are traced once)."""
    e, p = solver.config.evaluation, solver.problem
    X0, k_div = evaluation_start(p, solver.config, key)
    if "transport" not in solver.programs:
        solver.programs["transport"] = jax.jit(lambda pr, X0, k: transport(solver, pr, X0, k))
        solver.programs["observe"] = jax.jit(jax.vmap(lambda pr, X, lp, t: observe(solver, pr, X, lp, t),
                                                      in_axes=(None, 0, 0, 0)))
    Xs, lps = solver.programs["transport"](params, X0, k_div)
    rows = solver.programs["observe"](params, Xs, lps, jnp.linspace(0.0, solver.T, e.saves + 1, dtype=X0.dtype))
    return pd.DataFrame({k: np.asarray(v, dtype=np.float64) for k, v in rows.items()})


# ---- solve --------------------------------------------------------------------------------------------


@dataclass
class PINNFPResult:
    """A finished (or extended) solve: the trained parameters of N_θ, the evaluation `history` (one row per saved
    time, module docstring), the training `train_history` (one row per chunk: loss, lr, seconds) and timings:
    `seconds` of the training steps (compilation excluded), their median `seconds_per_step`, `compile_seconds`,
    `ensemble_seconds` (the collocation ensemble, compilation included), `eval_seconds` and `wall_seconds`."""

    config: PINNFPConfig
    problem: FokkerPlanckProblem
    params: nnx.State
    history: pd.DataFrame
    train_history: pd.DataFrame
    seconds: float
    seconds_per_step: float
    compile_seconds: float
    ensemble_seconds: float
    eval_seconds: float
    wall_seconds: float
    step: int
    run_dir: Path | None = None
    solver: FPSolver | None = field(default=None, repr=False)

    def _batched(self, name: str, X: jax.Array, t: float) -> jax.Array:
        with precision(self.config.precision):
            X = jnp.asarray(X, default_dtype())
            if name not in self.solver.programs:
                field_of = getattr(self.solver, name)
                self.solver.programs[name] = jax.jit(
                    lambda params, X, t: jax.vmap(field_of(params), in_axes=(0, None))(X, t))
            return self.solver.programs[name](self.params, X, jnp.asarray(t, X.dtype))

    def log_rho(self, X: jax.Array, t: float) -> jax.Array:
        """V_θ(X, t) ≈ log ρ_t(X) at points X (n, d), in the run's precision (compiled once per result)."""
        return self._batched("V", X, t)

    def score(self, X: jax.Array, t: float) -> jax.Array:
        """∇V_θ(X, t) ≈ ∇log ρ_t(X) at points X (n, d), in the run's precision (compiled once per result)."""
        return self._batched("score", X, t)


def solve(problem: FokkerPlanckProblem, config: PINNFPConfig, run_dir: str | Path | None = None,
          resume: bool = False, progress: bool | None = None) -> PINNFPResult:
    """Solve the Fokker–Planck equation of `problem` on [0, T] by the PINN route (module docstring): simulate the
    collocation ensemble, train V_θ on the log-FP residual, evaluate along the probability flow. With `run_dir`,
    checkpoints every `optim.checkpoint_every` steps; `resume=True` continues from its checkpoint (only the keys
    in `RESUMABLE` may change). Config and problem errors raise before the training compiles."""
    t_wall = time.perf_counter()
    config.validate()
    _check_problem(problem, config)
    rundir = None if run_dir is None else RunDir.open(run_dir, config, resume, "PINN Fokker-Planck solve",
                                                      may_change=RESUMABLE)
    with precision(config.precision):
        solver = build(problem, config)
        result = _train(solver, rundir, resume, progress)
        prog: Progress = result.progress
        params = result.state.params
        t0 = time.perf_counter()
        history = evaluate(solver, params)
        eval_seconds = time.perf_counter() - t0
    history["train_seconds"] = prog.seconds
    return PINNFPResult(config, problem, params, history, pd.DataFrame(prog.history), prog.seconds,
                        prog.seconds_per_it, prog.compile_seconds, solver.ensemble_seconds, eval_seconds,
                        time.perf_counter() - t_wall, prog.step, None if rundir is None else rundir.path, solver)
