"""Adaptive tempered Sequential Monte Carlo (SMC) with MALA or HMC moves, built on blackjax.

The classical reference sampler: start `N` particles from a Gaussian prior π₀ = N(m, s²I) and move them
through the geometric path π_λ ∝ π₀^{1−λ} ρ^λ, 0 = λ₀ < λ₁ < … < λ_K = 1 (Del Moral, Doucet & Jasra,
*Sequential Monte Carlo samplers*, JRSS B 2006). Each stage k

1. resamples the particles by their current weights (systematic resampling),
2. moves every particle with `mcmc_steps` MALA (or HMC) steps that leave π_{λ_{k−1}} invariant,
3. picks the next temperature λ_k so that the incremental weights w = exp((λ_k − λ_{k−1}) ℓ(x)),
   ℓ = log ρ − log π₀, keep a normalised effective sample size `target_ess` (bisection),
4. reweights the particles by w and adds log mean(w) to the running log Z estimate.

With a normalised prior the sum Σ_k log mean(w_k) estimates log Z = log ∫ρ (for a fixed schedule its
exponential is unbiased for Z; choosing λ_k from the particles adds a small bias, the usual price). The
stage loop is a `jax.lax.while_loop` run in compiled chunks, so the host sees the particles only between
chunks (to update the progress bar) and at the end; it is compiled once per call (ahead of time, timed
separately as `info["compile_seconds"]`).

Choices (all documented in the returned `info`):

- prior: centred at the middle m of `target.domain` (0 for every registered problem) with
  s = max_i (hi_i − lo_i) / 4, half the widest half-width of the domain (≈ 3 std for `gaussian`,
  ≈ the exact std for `gmm`); override with `budget.extra["prior_scale"]`.
- step size: one value shared by all particles, chosen afresh at every stage by a cheap pilot: 256
  particles (drawn by weight) each try one MCMC step from π_{λ_{k−1}} with each of the step sizes
  h_{k−1}·2^j, j = −6, …, 2, and the candidate whose mean acceptance probability is closest to a* is used
  for the stage's `mcmc_steps` moves (a* = 0.574 for MALA, Roberts & Rosenthal 1998; 0.65 for HMC). The
  pilot costs about 2300 extra gradient steps per stage (≈ 10 % of 2000 particles × 10 steps) and follows
  a scale change of up to 64× in one stage, which a rule that only nudges h by the last stage's acceptance
  cannot do when ρ needs only 3–8 stages. Initial values are near-optimal for the prior: h = s² d^{-1/3}
  for MALA (blackjax's MALA proposes x + h ∇log π + √(2h) ξ) and ε = s d^{-1/4} for HMC (identity mass
  matrix, `hmc_steps` leapfrog steps).
- output (`budget.extra["output"]`): ``"resampled"`` (default) resamples once more at λ = 1 and moves the
  particles with `mcmc_steps` steps on ρ itself: the samples are equally weighted and `log_weights` is None.
  ``"weighted"`` returns the particles of the last stage with their importance weights
  log w = log ρ − log π_{λ_{K−1}} = log Ẑ_{K−1} + (1 − λ_{K−1}) ℓ(x), whose log-mean-exp is exactly the
  SMC estimate `log_Z_estimate` (so ESS and the ΔlogZ bounds of `pinnflow.metrics` apply to them).

`budget.extra` keys: ``target_ess`` (0.5), ``kernel`` ("mala" | "hmc"), ``hmc_steps`` (5), ``prior_scale``,
``step_size`` (initial h or ε), ``max_stages`` (500; reaching it without λ = 1 raises RuntimeError),
``output``. Returned samples: `min(budget.n_eval, budget.particles)` particles drawn without replacement.
"""

from __future__ import annotations

import math
import time
from functools import partial

import blackjax
import blackjax.smc.adaptive_tempered as adaptive_tempered
import blackjax.smc.resampling as resampling
import blackjax.smc.tempered as tempered
import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from pinnflow.baselines.result import BASELINES, BaselineBudget, BaselineResult
from pinnflow.distributions import normal_log_prob
from pinnflow.target import Target

__all__ = ["run_smc", "prior_for"]

TARGET_ACCEPTANCE = {"mala": 0.574, "hmc": 0.65}
PILOT_FACTORS = 2.0 ** np.arange(-6, 3)  # step sizes tried per stage, relative to the previous stage's
PILOT_PARTICLES = 256  # particles (drawn by weight) that try each candidate step size once
PROGRESS_CHUNK = 5  # stages per compiled call when a progress bar is shown
OUTPUTS = ("resampled", "weighted")


def prior_for(target: Target, scale: float | None = None) -> tuple[np.ndarray, float]:
    """(mean, s) of the isotropic Gaussian prior: the domain's centre and max_i (hi_i − lo_i)/4 (or `scale`)."""
    lo, hi = (np.asarray(a, dtype=np.float64) for a in target.domain)
    s = float(np.max(hi - lo) / 4.0) if scale is None else float(scale)
    if not (math.isfinite(s) and s > 0):
        raise ValueError(f"smc: prior scale must be finite and positive, got {s!r}")
    return 0.5 * (lo + hi), s


def _check(budget: BaselineBudget, extra: dict) -> None:
    if budget.particles < 2:
        raise ValueError(f"smc: need at least 2 particles, got {budget.particles}")
    if budget.mcmc_steps < 1:
        raise ValueError(f"smc: need mcmc_steps >= 1, got {budget.mcmc_steps}")
    if budget.n_eval < 1:
        raise ValueError(f"smc: need n_eval >= 1, got {budget.n_eval}")
    if not 0.0 < extra["target_ess"] < 1.0:
        raise ValueError(f"smc: target_ess must lie in (0, 1), got {extra['target_ess']}")
    if extra["kernel"] not in TARGET_ACCEPTANCE:
        raise ValueError(f"smc: kernel must be one of {sorted(TARGET_ACCEPTANCE)}, got {extra['kernel']!r}")
    if extra["output"] not in OUTPUTS:
        raise ValueError(f"smc: output must be one of {OUTPUTS}, got {extra['output']!r}")
    if extra["max_stages"] < 1 or extra["hmc_steps"] < 1:
        raise ValueError("smc: max_stages and hmc_steps must be >= 1")


@BASELINES.register(name="smc")
def run_smc(target: Target, budget: BaselineBudget, key: jax.Array, progress: bool = True) -> BaselineResult:
    """Adaptive tempered SMC from N(m, s²I) to `target` (see the module docstring for every choice)."""
    t_start = time.perf_counter()
    ex = budget.extra
    extra = {
        "target_ess": float(ex.get("target_ess", 0.5)),
        "kernel": str(ex.get("kernel", "mala")),
        "hmc_steps": int(ex.get("hmc_steps", 5)),
        "max_stages": int(ex.get("max_stages", 500)),
        "output": str(ex.get("output", "resampled")),
    }
    _check(budget, extra)
    n, d, n_mcmc, max_stages = int(budget.particles), target.dim, int(budget.mcmc_steps), extra["max_stages"]
    dtype = jnp.result_type(float)
    prior_mean, s = prior_for(target, ex.get("prior_scale"))
    mean = jnp.asarray(prior_mean, dtype=dtype)
    def log_prior(x):
        return normal_log_prob(x, mean, s**2)

    def log_lik(x):  # ℓ = log ρ − log π₀; π_λ ∝ π₀ exp(λ ℓ)
        return target.log_density(x) - log_prior(x)

    kernel_name = extra["kernel"]
    if kernel_name == "mala":
        step_fn, init_fn = blackjax.mala.build_kernel(), blackjax.mala.init
        h0 = s**2 * d ** (-1.0 / 3.0)
    else:
        step_fn = partial(blackjax.hmc.build_kernel(), num_integration_steps=extra["hmc_steps"])
        init_fn = blackjax.hmc.init
        h0 = s * d ** (-0.25)
    h0 = float(ex.get("step_size", h0))
    if not (math.isfinite(h0) and h0 > 0):
        raise ValueError(f"smc: step_size must be finite and positive, got {h0!r}")
    a_star = TARGET_ACCEPTANCE[kernel_name]
    n_pilot = min(PILOT_PARTICLES, n)

    def mcmc_params(log_h):
        p = {"step_size": jnp.exp(log_h)[None]}  # leading axis 1: shared by all particles
        if kernel_name == "hmc":
            p["inverse_mass_matrix"] = jnp.ones((1, d), dtype=dtype)
        return p

    stage_kernel = adaptive_tempered.build_kernel(log_prior, log_lik, step_fn, init_fn, resampling.systematic,
                                                  target_ess=extra["target_ess"])

    def pilot(key, state, log_h):
        """Step size for the moves at λ = state.tempering_param: one trial step from `PILOT_PARTICLES`
        particles (drawn by weight) for each of the step sizes h·PILOT_FACTORS; keep the one whose mean
        acceptance probability is closest to a*. Returns (log step size, its pilot acceptance)."""
        lam = state.tempering_param

        def log_post(x):
            return log_prior(x) + lam * log_lik(x)

        k_pick, k_try = jax.random.split(key)
        xs = state.particles[jax.random.choice(k_pick, n, (n_pilot,), p=state.weights)]
        log_hs = log_h + jnp.log(jnp.asarray(PILOT_FACTORS, dtype))

        def accept(k, x, lh):
            params = {name: v[0] for name, v in mcmc_params(lh).items()}
            return step_fn(k, init_fn(x, log_post), log_post, **params)[1].acceptance_rate

        keys = jax.random.split(k_try, (len(PILOT_FACTORS), n_pilot))
        acc = jax.vmap(jax.vmap(accept, (0, 0, None)), (0, None, 0))(keys, xs, log_hs)
        mean_acc = jnp.mean(jnp.nan_to_num(acc, nan=0.0), axis=1)
        j = jnp.argmin(jnp.abs(mean_acc - a_star))
        return log_hs[j], mean_acc[j]

    def advance(carry, stop):
        """Run tempering stages until λ = 1 or the stage counter reaches `stop`; then, if `rejuvenate`, one
        more pass of the same kernel at λ = 1 (the solver then returns δ = 0): resample and move on ρ."""

        def cond(c):
            lam = c["state"].tempering_param
            return ((lam < 1.0) & (c["k"] < stop)) | ((lam >= 1.0) & c["rejuvenate"])

        def body(c):
            key, k_pilot, k_stage = jax.random.split(c["key"], 3)
            log_h, pilot_acc = pilot(k_pilot, c["state"], c["log_h"])
            state, info = stage_kernel(k_stage, c["state"], n_mcmc, mcmc_params(log_h))
            acc = jnp.mean(info.update_info.acceptance_rate)
            is_stage = c["state"].tempering_param < 1.0  # False for the final pass at λ = 1
            k, hist = c["k"], c["hist"]
            row = {"lambda": state.tempering_param, "acceptance": acc, "pilot_acceptance": pilot_acc,
                   "step_size": jnp.exp(log_h), "log_Z_increment": info.log_likelihood_increment,
                   "ess": 1.0 / (n * jnp.sum(state.weights**2))}
            i = jnp.minimum(k, max_stages - 1)
            hist = {name: h.at[i].set(jnp.where(is_stage, row[name], h[i])) for name, h in hist.items()}
            return {"key": key, "state": state, "log_h": log_h, "k": k + is_stage,
                    "log_Z": c["log_Z"] + jnp.where(is_stage, info.log_likelihood_increment, 0.0),
                    "hist": hist, "rejuvenate": c["rejuvenate"] & is_stage, "final_acc": jnp.where(is_stage, 0.0, acc)}

        return jax.lax.while_loop(cond, body, carry)

    k_init, k_loop, k_pick = jax.random.split(key, 3)
    particles = mean + s * jax.random.normal(k_init, (n, d), dtype=dtype)
    state = tempered.TemperedSMCState(particles, jnp.full((n,), 1.0 / n, dtype), jnp.zeros((), dtype))
    names = ("lambda", "acceptance", "pilot_acceptance", "step_size", "log_Z_increment", "ess")
    carry = {"key": k_loop, "state": state, "log_h": jnp.log(jnp.asarray(h0, dtype)), "k": jnp.zeros((), jnp.int32),
             "log_Z": jnp.zeros((), dtype), "hist": {name: jnp.zeros((max_stages,), dtype) for name in names},
             "rejuvenate": jnp.asarray(extra["output"] == "resampled"), "final_acc": jnp.zeros((), dtype)}

    t_compile = time.perf_counter()
    advance_c = jax.jit(advance).lower(carry, jnp.int32(0)).compile()
    compile_seconds = time.perf_counter() - t_compile

    chunk = PROGRESS_CHUNK if progress else max_stages
    bar = tqdm(total=1.0, disable=not progress, desc=f"smc on {target.name}", unit="λ", dynamic_ncols=True,
               bar_format="{l_bar}{bar}| λ={n:.4f} [{elapsed}{postfix}]")
    t_loop = time.perf_counter()
    lam, k = 0.0, 0
    try:
        while lam < 1.0 and k < max_stages:
            carry = advance_c(carry, jnp.int32(min(k + chunk, max_stages)))
            new_lam, k = float(carry["state"].tempering_param), int(carry["k"])
            if not math.isfinite(new_lam):
                raise RuntimeError(f"smc on {target.name}: the tempering parameter became {new_lam} at stage {k} "
                                   "(non-finite log-density or log-weights?)")
            bar.set_postfix(stages=k, step=f"{math.exp(float(carry['log_h'])):.3g}", refresh=False)
            bar.update(new_lam - lam)
            lam = new_lam
    finally:
        bar.close()
    jax.block_until_ready(carry)
    loop_seconds = time.perf_counter() - t_loop
    if lam < 1.0:
        raise RuntimeError(f"smc on {target.name}: λ reached only {lam:.6g} after max_stages={max_stages} stages; "
                           "raise budget.extra['max_stages'], lower target_ess or use more particles")
    log_Z = float(carry["log_Z"])
    if not math.isfinite(log_Z):
        raise RuntimeError(f"smc on {target.name}: the log Z estimate is not finite ({log_Z})")

    final = carry["state"]
    n_out = min(int(budget.n_eval), n)
    pick = jax.random.permutation(k_pick, n)[:n_out]  # systematic resampling orders particles: pick at random
    if extra["output"] == "weighted":
        # unnormalised log w_i = log Ẑ + log(n W_i) with W the normalised final weights
        log_weights = np.asarray(log_Z + math.log(n) + jnp.log(final.weights[pick]))
        final_acc = None
        weight_note = ("particles of the last stage with log w = log rho - log pi_{lambda_(K-1)}; "
                       "logmeanexp over all particles equals log_Z_estimate")
    else:
        log_weights, final_acc = None, float(carry["final_acc"])
        weight_note = "resampled at lambda = 1 and moved on rho: equally weighted, no importance weights"
    samples = final.particles[pick]
    samples = np.asarray(samples)
    hist = {name: np.asarray(v[:k], dtype=np.float64).tolist() for name, v in carry["hist"].items()}
    info = {
        "method": f"adaptive tempered SMC ({kernel_name.upper()} moves, blackjax {blackjax.__version__})",
        "n_stages": k,
        "lambdas": hist["lambda"],
        "acceptance_rates": hist["acceptance"],
        "pilot_acceptance_rates": hist["pilot_acceptance"],
        "step_sizes": hist["step_size"],
        "log_Z_increments": hist["log_Z_increment"],
        "stage_ess": hist["ess"],
        "final_stage_ess": hist["ess"][-1],
        "final_move_acceptance": final_acc,
        "kernel": kernel_name,
        "target_acceptance": a_star,
        "hmc_steps": extra["hmc_steps"] if kernel_name == "hmc" else None,
        "target_ess": extra["target_ess"],
        "particles": n,
        "mcmc_steps": n_mcmc,
        "prior_mean": np.asarray(prior_mean).tolist(),
        "prior_scale": s,
        "initial_step_size": h0,
        "output": extra["output"],
        "weights": weight_note,
        "compile_seconds": compile_seconds,
        "loop_seconds": loop_seconds,
        "steps_are": "tempering stages; seconds_per_step = loop seconds (no compilation) / stages",
    }
    return BaselineResult(
        samples=samples,
        log_weights=log_weights,
        log_Z_estimate=log_Z,
        train_seconds=time.perf_counter() - t_start,
        seconds_per_step=loop_seconds / k,
        steps=k,
        info=info,
    )
