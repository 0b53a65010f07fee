"""Closed-form Gaussian paths used as ground truth: Ornstein–Uhlenbeck, VP-SDE, McCann (OT) and a
quadratic-potential Schrödinger-type bridge. Each returns exact V = log p_t, drifts and potentials."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np


def gaussian_logpdf(x, m, C):
    """log N(x; m, C) for one point, differentiable in m and C."""
    r = x - m
    _, logdet = jnp.linalg.slogdet(C)
    return -0.5 * r @ jnp.linalg.solve(C, r) - 0.5 * (x.shape[-1] * jnp.log(2 * jnp.pi) + logdet)


def random_spd(rng: np.random.Generator, d: int, lo=0.3, hi=2.0):
    """A random anisotropic SPD matrix with eigenvalues in [lo, hi], and its eigenbasis."""
    Q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    ev = np.linspace(lo, hi, d)
    return Q @ np.diag(ev) @ Q.T, Q


class OU:
    """dX = −X dt + S dW, X_0 ~ N(m0, C0); S a scalar or matrix (D = SSᵀ).
    m_t = e^{−t} m0, C_t = e^{−2t} C0 + (1 − e^{−2t}) D / 2."""

    def __init__(self, m0, C0, S):
        self.m0, self.C0, self.S = jnp.asarray(m0), jnp.asarray(C0), jnp.asarray(S)
        d = self.m0.shape[0]
        self.D = self.S**2 * jnp.eye(d) if self.S.ndim == 0 else self.S @ self.S.T

    def mean_cov(self, t):
        e = jnp.exp(-t)
        return e * self.m0, e**2 * self.C0 + (1 - e**2) * self.D / 2

    def V(self, x, t):
        return gaussian_logpdf(x, *self.mean_cov(t))

    @staticmethod
    def f(x, t):
        del t
        return -x


class VP:
    """dX = −β(t) X dt + √(2β(t)) dW with β(t) = b0 + b1 t (paper 003 eq. 73), X_0 ~ N(m0, C0).
    With B(t) = ∫β: m_t = e^{−B} m0, C_t = e^{−2B} C0 + (1 − e^{−2B}) I."""

    def __init__(self, m0, C0, b0=0.5, b1=1.5):
        self.m0, self.C0, self.b0, self.b1 = jnp.asarray(m0), jnp.asarray(C0), b0, b1

    def beta(self, t):
        return self.b0 + self.b1 * t

    def sigma(self, t):
        return jnp.sqrt(2 * self.beta(t))

    def f(self, x, t):
        return -self.beta(t) * x

    def V(self, x, t):
        B = self.b0 * t + 0.5 * self.b1 * t**2
        e = jnp.exp(-B)
        d = self.m0.shape[0]
        return gaussian_logpdf(x, e * self.m0, e**2 * self.C0 + (1 - e**2) * jnp.eye(d))


def _sym_sqrt(A):
    w, U = np.linalg.eigh(A)
    return U @ np.diag(np.sqrt(w)) @ U.T


class McCann:
    """Optimal transport N(m0, C0) → N(m1, C1) on t ∈ [0, 1] (displacement interpolation).
    Map x ↦ m1 + A(x − m0), M_t = (1−t)I + tA, c_t = m0 + tΔm, B_t = (A − I)M_t⁻¹;
    Φ(y, t) = Δm·y + ½(y − c_t)ᵀB_t(y − c_t) − ½|Δm|²t solves eq. (21), μ = ∇Φ, p_t = N(c_t, M_t C0 M_t)."""

    def __init__(self, m0, C0, m1, C1):
        r = _sym_sqrt(C0)
        ri = np.linalg.inv(r)
        A = ri @ _sym_sqrt(r @ C1 @ r) @ ri
        self.A, self.m0, self.C0 = jnp.asarray(A), jnp.asarray(m0), jnp.asarray(C0)
        self.dm = jnp.asarray(m1) - jnp.asarray(m0)

    def _M(self, t):
        return (1 - t) * jnp.eye(self.A.shape[0]) + t * self.A

    def Phi(self, y, t):
        M = self._M(t)
        B = (self.A - jnp.eye(M.shape[0])) @ jnp.linalg.inv(M)
        r = y - (self.m0 + t * self.dm)
        return self.dm @ y + 0.5 * r @ B @ r - 0.5 * (self.dm @ self.dm) * t

    def V(self, y, t):
        M = self._M(t)
        return gaussian_logpdf(y, self.m0 + t * self.dm, M @ self.C0 @ M)


class QuadraticBridge:
    """μ = ∇Φ with Φ(x, t) = ½xᵀP(t)x + q(t) solving the HJB eq. (20) with diffusion S = Q diag(s) Qᵀ:
    P(t) = Q diag(p/(1+tp)) Qᵀ, q(t) = −½ Σ s_i² log(1 + t p_i). Started from N(m0, Q diag(c) Qᵀ),
    X_t ~ N(Q diag(1+tp) Qᵀ m0, Q diag((1+tp)² c + s² t (1+tp)) Qᵀ) (dm = Pm dt, dC = (2PC + D) dt)."""

    def __init__(self, Q, p, c, s, m0):
        self.Q, self.p, self.c, self.s, self.m0 = map(jnp.asarray, (Q, p, c, s, m0))

    @property
    def S(self):
        return self.Q @ jnp.diag(self.s) @ self.Q.T

    def _diag(self, v):
        return self.Q @ jnp.diag(v) @ self.Q.T

    def Phi(self, x, t):
        u = 1 + t * self.p
        return 0.5 * x @ self._diag(self.p / u) @ x - 0.5 * jnp.sum(self.s**2 * jnp.log(u))

    def V(self, x, t):
        u = 1 + t * self.p
        return gaussian_logpdf(x, self._diag(u) @ self.m0, self._diag(u**2 * self.c + self.s**2 * t * u))
