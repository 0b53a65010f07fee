"""`FokkerPlanckProblem`: a forward Fokker–Planck equation (drift, diffusion, initial density, horizon) and
whatever is known about its solution in closed form (paper 000 = Boffi & Vanden-Eijnden, *Probability flow
solution of the Fokker–Planck equation*).

Convention (paper 000 eq. 1 with an x-independent diffusion tensor):

    ∂_t ρ_t = −∇·(b_t ρ_t) + ∇·(D_t ∇ρ_t),      D_t = D_tᵀ ⪰ 0,

the law of the SDE dX = b_t(X) dt + √2 σ_t dW with σ_tσ_tᵀ = D_t (paper 000 eq. 2; no ∇·D term since D does
not depend on x). pinnflow's residuals (`pinnflow.pde.residuals.log_fp`, paper 003 eq. 7) are written for
dX = μ dt + σ dW with generator ½Tr(σσᵀ∇²): the σ there is `sde_sigma(t)`, with σσᵀ = 2D. D = 0.25 in the
paper's harmonic trap therefore means `log_fp` sees σσᵀ = 0.5.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NoReturn

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["FokkerPlanckProblem", "Diffusion", "psd_sqrt", "potential_problem", "check_beta"]

# the same field types as pinnflow.pde.diffusion (not imported: this module sits at layer 0, like target.py)
ScalarField = Callable[[jax.Array, jax.Array], jax.Array]  # (x (d,), t) -> ()
VectorField = Callable[[jax.Array, jax.Array], jax.Array]  # (x (d,), t) -> (d,)
LogDensity0 = Callable[[jax.Array], jax.Array]  # x (d,) -> ()
Score0 = Callable[[jax.Array], jax.Array]  # x (d,) -> (d,)
Sampler = Callable[[jax.Array, int], jax.Array]  # (key, n) -> (n, d)
OfTime = Callable[[jax.Array], jax.Array]  # t -> array
Diffusion = float | np.ndarray | jax.Array | Callable[[jax.Array], jax.Array]

PSD_RTOL = 1e-10  # eigenvalues of D may be as low as −PSD_RTOL · max|D| (round-off), not lower


def _default_float(t) -> jax.Array:
    return jnp.asarray(t, dtype=jnp.result_type(t, float))


def psd_sqrt(M: jax.Array) -> jax.Array:
    """The symmetric positive semi-definite square root of a symmetric PSD matrix (rank-deficient allowed;
    round-off negative eigenvalues are clipped to 0). Jittable."""
    M = 0.5 * (M + M.T)
    w, U = jnp.linalg.eigh(M)
    return (U * jnp.sqrt(jnp.clip(w, 0.0))) @ U.T


@dataclass(frozen=True, eq=False)
class FokkerPlanckProblem:
    """∂_t ρ = −∇·(b ρ) + ∇·(D ∇ρ) on R^d for t ∈ [0, T], ρ(·, 0) = ρ0 (paper 000 eq. 1).

    - `drift(x (d,), t) -> (d,)`: b_t(x).
    - `D`: the diffusion tensor, a scalar (D·I), a (d, d) symmetric PSD matrix (rank-deficient allowed, e.g.
      noise on some coordinates only), or a function of t returning either. SDE: dX = b dt + √(2D) dW, i.e.
      paper 000's dX = b dt + √2 σ dW with D = σσᵀ. `sde_sigma(t)` is the σ of pinnflow's convention
      dX = b dt + σ dW (σσᵀ = 2D) that `pinnflow.pde.residuals.log_fp(V, drift, sde_sigma(t), x, t)` takes.
    - `log_rho0(x)`: the normalised initial log-density; `score0(x)` its gradient (default `jax.grad`);
      `sample0(key, n) -> (n, d)` exact samples of ρ0.
    - optional exact solution: `mean(t) -> (d,)`, `cov(t) -> (d, d)`, `log_rho(x, t) -> ()`,
      `score(x, t) -> (d,)`, `entropy(t) -> ()` (the differential entropy −∫ρ log ρ, paper 000 eq. 21).
    - `particles = (N, k)` for N particles in k spatial dimensions (d = N·k, particle-major: x = (x⁽¹⁾, …, x⁽ᴺ⁾)).
    - `potential(x (d,)) -> ()`: V when the problem is a Wasserstein gradient flow ∂_tρ = ∇·(ρ∇V) + βΔρ
      (paper 004 eq. 5): then the drift must be −∇V and D the scalar β (checked at a sample of ρ0); built by
      `potential_problem`. Solvers of the free energy (`pinnflow.wgf`) need it.
    - `info`: parameters, paper references and further exact facts (e.g. marginals).

    Checked once at construction (before anything compiles); a problem raises `ValueError` naming itself.
    """

    name: str
    dim: int
    drift: VectorField
    D: Diffusion
    T: float
    log_rho0: LogDensity0
    sample0: Sampler
    score0: Score0 | None = None
    mean: OfTime | None = None
    cov: OfTime | None = None
    log_rho: ScalarField | None = None
    score: VectorField | None = None
    entropy: OfTime | None = None
    particles: tuple[int, int] | None = None
    potential: Callable[[jax.Array], jax.Array] | None = None
    info: dict = field(default_factory=dict)

    # ---------------------------------------------------------------------------------------- validation
    def _fail(self, msg: str) -> NoReturn:
        raise ValueError(f"Fokker-Planck problem {self.name!r}: {msg}")

    def __post_init__(self):
        fail = self._fail
        if isinstance(self.dim, bool) or not isinstance(self.dim, int | np.integer) or self.dim < 1:
            fail(f"dim must be a positive integer, got {self.dim!r}")
        object.__setattr__(self, "dim", int(self.dim))
        d = self.dim
        try:
            T = float(self.T)
        except (TypeError, ValueError):
            fail(f"T must be a positive number, got {self.T!r}")
        if not (np.isfinite(T) and T > 0):
            fail(f"T must be finite and > 0, got {self.T!r}")
        object.__setattr__(self, "T", T)
        if self.particles is not None:
            try:
                n_part, k = (int(v) for v in self.particles)
            except (TypeError, ValueError):
                fail(f"particles must be a pair (N, spatial dim), got {self.particles!r}")
            if n_part < 1 or k < 1 or n_part * k != d:
                fail(f"particles = {self.particles!r} must be positive with N·k = dim = {d}")
            object.__setattr__(self, "particles", (n_part, k))
        for nm in ("drift", "log_rho0", "sample0"):
            if not callable(getattr(self, nm)):
                fail(f"{nm} must be callable, got {type(getattr(self, nm)).__name__}")
        self._check_diffusion()
        # the initial density and its sampler
        try:
            xs = self.sample0(jax.random.key(0), 2)
        except Exception as err:  # noqa: BLE001 - report any failure with the problem's name
            fail(f"sample0(key, 2) failed: {type(err).__name__}: {err}")
        if jnp.shape(xs) != (2, d):
            fail(f"sample0(key, 2) must return shape (2, {d}), got {jnp.shape(xs)}")
        if not np.all(np.isfinite(np.asarray(xs))):
            fail("sample0 returned non-finite samples")
        x0 = jnp.asarray(xs[0])
        val = self._call(self.log_rho0, "log_rho0", x0)
        if jnp.shape(val) != ():
            fail(f"log_rho0 must return a scalar for one point of shape ({d},), got shape {jnp.shape(val)}")
        if not np.isfinite(float(val)):
            fail(f"log_rho0 is not finite at a sample of sample0 ({val}); ρ0 must be positive where it has mass")
        if self.score0 is None:
            try:
                jax.eval_shape(jax.grad(self.log_rho0), x0)
            except Exception as err:  # noqa: BLE001
                fail("log_rho0 cannot be differentiated by JAX (pass score0, or make it traceable): "
                     f"{type(err).__name__}: {str(err).splitlines()[0]}")
            object.__setattr__(self, "score0", jax.grad(self.log_rho0))
        s0 = self._call(self.score0, "score0", x0)
        if jnp.shape(s0) != (d,):
            fail(f"score0 must return shape ({d},), got {jnp.shape(s0)}")
        # the drift at both ends of the horizon
        for t in (0.0, T):
            bx = self._call(self.drift, "drift", x0, _default_float(t))
            if jnp.shape(bx) != (d,):
                fail(f"drift(x, t) must return shape ({d},) for x of shape ({d},), got {jnp.shape(bx)} at t = {t}")
            if not np.all(np.isfinite(np.asarray(bx))):
                fail(f"drift is not finite at a sample of ρ0 at t = {t}")
        self._check_exact(x0, float(val))
        if self.potential is not None:
            self._check_potential(xs)

    def _check_potential(self, xs: jax.Array) -> None:
        fail = self._fail
        if not callable(self.potential):
            fail(f"potential must be callable or None, got {type(self.potential).__name__}")
        if callable(self.D) or np.ndim(self.D) != 0 or not float(self.D) > 0:
            fail(f"a problem with a potential needs D = β, a positive constant scalar (∂_tρ = ∇·(ρ∇V) + βΔρ), "
                 f"got D = {self.D!r}")
        for x in xs:
            v = self._call(self.potential, "potential", x)
            if jnp.shape(v) != ():
                fail(f"potential must return a scalar for one point of shape ({self.dim},), got {jnp.shape(v)}")
            if not np.isfinite(float(v)):
                fail(f"potential is not finite at a sample of ρ0 (V = {float(v)})")
            g = np.asarray(jax.grad(self.potential)(x), dtype=np.float64)
            b = np.asarray(self.drift(x, _default_float(0.0)), dtype=np.float64)
            if not np.allclose(b, -g, rtol=1e-4, atol=1e-5 * (1.0 + np.abs(g).max())):
                fail(f"the drift must be −∇V for a problem with a potential; at a sample of ρ0 the largest "
                     f"difference is {np.abs(b + g).max():.3g}")

    @property
    def beta(self) -> float:
        """β of ∂_tρ = ∇·(ρ∇V) + βΔρ (the scalar D) for a problem with a potential."""
        if self.potential is None:
            raise ValueError(f"Fokker-Planck problem {self.name!r} has no potential (not a gradient flow)")
        return float(self.D)

    def _call(self, fn, nm: str, *args):
        try:
            return fn(*args)
        except Exception as err:  # noqa: BLE001 - report any failure with the problem's name
            fail_args = ", ".join(f"shape {jnp.shape(a)}" for a in args)
            self._fail(f"{nm}({fail_args}) failed: {type(err).__name__}: {err}")

    def _check_diffusion(self):
        d = self.dim
        if not callable(self.D):
            Dc = np.asarray(self.D, dtype=np.float64)
            object.__setattr__(self, "D", float(Dc) if Dc.ndim == 0 else Dc)
        for t in (0.0, self.T):
            Dt = np.asarray(self._call(self.D, "D", _default_float(t)) if callable(self.D) else self.D,
                            dtype=np.float64)
            where = f" at t = {t}" if callable(self.D) else ""
            if Dt.shape not in ((), (d, d)):
                self._fail(f"D must be a scalar or a ({d}, {d}) matrix, got shape {Dt.shape}{where}")
            if not np.all(np.isfinite(Dt)):
                self._fail(f"D must be finite{where}")
            if Dt.ndim == 0:
                if Dt < 0:
                    self._fail(f"D must be positive semi-definite; the scalar D = {float(Dt)} < 0{where}")
                continue
            scale = float(np.max(np.abs(Dt)))
            if not np.allclose(Dt, Dt.T, rtol=0.0, atol=1e-10 * max(scale, 1e-300)):
                self._fail(f"D must be symmetric{where} (max |D − Dᵀ| = {np.max(np.abs(Dt - Dt.T)):.3g})")
            lo = float(np.linalg.eigvalsh(Dt).min())
            if lo < -PSD_RTOL * scale:
                self._fail(f"D must be positive semi-definite{where}; its smallest eigenvalue is {lo:.6g}")
        if not callable(self.D) and np.ndim(self.D) == 2:
            w, U = np.linalg.eigh(2.0 * self.D)
            object.__setattr__(self, "_sigma_const", (U * np.sqrt(np.clip(w, 0.0, None))) @ U.T)

    def _check_exact(self, x0: jax.Array, log_rho0_x0: float):
        d, fail = self.dim, self._fail
        t0 = _default_float(0.0)
        for nm, shape, args in (("mean", (d,), (t0,)), ("cov", (d, d), (t0,)), ("entropy", (), (t0,)),
                                ("log_rho", (), (x0, t0)), ("score", (d,), (x0, t0))):
            fn = getattr(self, nm)
            if fn is None:
                continue
            if not callable(fn):
                fail(f"{nm} must be callable or None, got {type(fn).__name__}")
            out = self._call(fn, nm, *args)
            if jnp.shape(out) != shape:
                fail(f"exact {nm} must return shape {shape}, got {jnp.shape(out)}")
            if not np.all(np.isfinite(np.asarray(out))):
                fail(f"exact {nm} is not finite at t = 0")
        if self.log_rho is not None:
            v = float(self.log_rho(x0, t0))
            if abs(v - log_rho0_x0) > 1e-4 * (1.0 + abs(log_rho0_x0)):
                fail(f"exact log_rho(x, 0) = {v} disagrees with log_rho0(x) = {log_rho0_x0} at a sample of ρ0")

    # ---------------------------------------------------------------------------------------- helpers
    def D_at(self, t) -> jax.Array:
        """D(t) as a (d, d) matrix, whatever form `D` was given in."""
        t = _default_float(t)
        Dt = jnp.asarray(self.D(t) if callable(self.D) else self.D, dtype=t.dtype)
        return Dt * jnp.eye(self.dim, dtype=t.dtype) if Dt.ndim == 0 else Dt

    def sde_sigma(self, t) -> jax.Array:
        """σ(t) with σσᵀ = 2D(t): the diffusion of dX = b dt + σ dW in pinnflow's convention (`log_fp`).

        A scalar √(2D) when D is a scalar, else the symmetric PSD square root of 2D(t) (rank-deficient D
        allowed). The bound method itself is a valid time-dependent `sigma` for `pinnflow.pde.residuals`."""
        t = _default_float(t)
        if not callable(self.D):
            if np.ndim(self.D) == 0:
                return jnp.sqrt(jnp.asarray(2.0 * self.D, dtype=t.dtype))
            return jnp.asarray(self._sigma_const, dtype=t.dtype)
        Dt = jnp.asarray(self.D(t), dtype=t.dtype)
        return jnp.sqrt(jnp.clip(2.0 * Dt, 0.0)) if Dt.ndim == 0 else psd_sqrt(2.0 * Dt)

    def apply_D(self, t, g: jax.Array) -> jax.Array:
        """D(t) g for one vector g (d,), without forming D·I for a scalar D."""
        Dt = jnp.asarray(self.D(_default_float(t)) if callable(self.D) else self.D, dtype=g.dtype)
        return Dt * g if Dt.ndim == 0 else Dt @ g

    def velocity(self, score: VectorField) -> VectorField:
        """The probability-flow velocity v(x, t) = b(x, t) − D(t) s(x, t) (paper 000 eq. 5; Algorithm 1 prints
        b + D s, which is wrong). With the exact score, dX/dt = v pushes ρ0 onto ρ_t (paper 000 eq. 6)."""

        def v(x: jax.Array, t) -> jax.Array:
            return self.drift(x, t) - self.apply_D(t, score(x, t))

        return v

    @property
    def has_exact_density(self) -> bool:
        return self.log_rho is not None

    def log_rho0_batch(self, x: jax.Array) -> jax.Array:
        """log ρ0 for a batch (n, d)."""
        return jax.vmap(self.log_rho0)(jnp.asarray(x))

    def __repr__(self) -> str:
        exact = [nm for nm in ("mean", "cov", "log_rho", "score", "entropy") if getattr(self, nm) is not None]
        return (f"FokkerPlanckProblem(name={self.name!r}, dim={self.dim}, T={self.T}, "
                f"particles={self.particles}, exact={exact})")


def check_beta(name: str, beta) -> float:
    """β as a float; `ValueError` naming the problem unless it is a finite number > 0."""
    try:
        beta = float(beta)
    except (TypeError, ValueError):
        raise ValueError(f"Fokker-Planck problem {name!r}: beta must be a positive number, got {beta!r}") from None
    if not (np.isfinite(beta) and beta > 0):
        raise ValueError(f"Fokker-Planck problem {name!r}: beta must be finite and > 0, got {beta!r}")
    return beta


def potential_problem(name: str, dim: int, potential: Callable[[jax.Array], jax.Array], beta: float, T: float,
                      log_rho0: LogDensity0, sample0: Sampler, **exact) -> FokkerPlanckProblem:
    """∂_tρ = ∇·(ρ∇V) + βΔρ (paper 004 eq. 5; the law of dX = −∇V dt + √(2β) dW): a `FokkerPlanckProblem` with
    drift −∇V, D = β and `potential = V`. `exact`: any of the optional fields (mean, cov, log_rho, score,
    entropy, score0, info). Raises `ValueError` for β ≤ 0 or a V that is not finite at samples of ρ0."""
    beta = check_beta(name, beta)
    grad_v = jax.grad(potential)

    def drift(x: jax.Array, t) -> jax.Array:
        del t
        return -grad_v(x)

    return FokkerPlanckProblem(name=name, dim=dim, drift=drift, D=beta, T=T, log_rho0=log_rho0, sample0=sample0,
                               potential=potential, **exact)
