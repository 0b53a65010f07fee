"""Run configuration: one dataclass tree, loadable from YAML, overridable by `section.key=value` strings,
and validated before anything is compiled."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pinnflow.precision import PRECISIONS

__all__ = [
    "Config",
    "NetworkConfig",
    "OptimConfig",
    "CollocationConfig",
    "SamplerConfig",
    "GaussNewtonConfig",
    "ConfigError",
]


class ConfigError(ValueError):
    """An invalid configuration value; the message names the field and what is allowed."""


@dataclass
class NetworkConfig:
    """Networks for μ, φ and Φ (App. B.1). `kind`: a name from `pinnflow.networks.NETWORKS`."""

    kind: str = "fourier_mlp"
    width: int = 64
    depth: int = 3
    activation: str = "silu"
    num_freq: int = 4
    potential_kind: str = "res_mlp"  # network for Φ (sb, ot); "ot_flow" also available
    z_width: int = 16  # the small Fourier-MLP z(t) of the annealed losses
    normalize: bool = False  # feed x / scale (scale: the target box's half-width); drifts scaled back


@dataclass
class OptimConfig:
    """Adam with an exponentially decaying learning rate from `lr` to `lr_final` over `steps`."""

    steps: int = 40000
    batch_size: int = 256
    lr: float = 3e-3
    lr_final: float = 1e-5
    clip_norm: float | None = 1.0
    chunk: int = 1000  # steps per compiled lax.scan call (progress/NaN checks between chunks)
    checkpoint_every: int = 5000  # steps; a multiple of `chunk`


@dataclass
class CollocationConfig:
    """Uniform collocation on Ω of eq. (63): a box moving from the prior box to the target box."""

    prior_k: float = 4.0  # prior box: ±prior_k prior standard deviations
    target_lo: list[float] | float | None = None  # default: the target's domain
    target_hi: list[float] | float | None = None
    trajectory_fraction: float = 0.0  # share of each batch drawn along learned trajectories (App. D.1)
    trajectory_count: int = 10000  # trajectories per cache refresh
    trajectory_steps: int = 200  # RK4 steps (time points) per trajectory
    trajectory_every: int = 5000  # refresh the cache every k steps (a multiple of optim.chunk)


@dataclass
class SamplerConfig:
    """Time discretisation of the samplers and the evaluation sample size."""

    steps: int = 100
    n_eval: int = 20000
    sinkhorn_n: int = 500  # points per cloud; ε = 1e-3 with n = 2000 does not converge in minutes on CPU
    sinkhorn_epsilon: float = 1e-3


@dataclass
class GaussNewtonConfig:
    """Gauss–Newton fine-tuning (paper 003 §4): θ ← θ − η (G + εI)⁻¹ Jᵀr with G = JᵀJ."""

    steps: int = 20
    solver: str = "auto"  # "cg" (matrix-free), "sample-space" (Woodbury, N×N), "auto"
    damping: float = 1e-5  # ε, as in the paper (1e-4 measured about the same on GMM in float64)
    adapt_damping: bool = True  # Levenberg–Marquardt: shrink ε after full steps, grow it after rejections
    cg_iters: int = 200
    cg_tol: float = 1e-10
    batch_size: int = 4096  # collocation points N of the Gramian
    val_batch_size: int = 4096  # held-out points on which the line search judges a step
    resample_every: int = 1  # draw a fresh batch every k steps
    line_search: str = "grid"  # "grid": best of η = 2^-k; "armijo": first η with sufficient decrease
    ls_steps: int = 12
    precision: str | None = "float64"  # float32 Gramians lose their small eigenvalues; null: the run's
    checkpoint_every: int = 5
    memory_mb: float = 2000.0  # "auto" uses the sample-space solver only if J (N×p) fits in this


@dataclass
class Config:
    """Everything a training run needs. Defaults are the CPU demo budget (a 2-D target in minutes).

    `T`, `sigma` = None take the loss's defaults (T = 1; σ = √2 for SDE losses, 0 for ODE losses).
    """

    loss: str = "log_ce"
    problem: str | None = None
    problem_params: dict = field(default_factory=dict)
    T: float | None = None
    sigma: float | None = None
    alpha: float = 1.0  # weight of the HJB term (sb, ot; eqs. 22-23)
    prior_std: float = 1.0
    z_init: float | str = 0.0  # initial z of eq. (10): a number, or "prior_is" (a prior importance-sampling log Z)
    operator: str = "auto"  # trace backend, a name in pinnflow.operators.BACKENDS
    hutchinson_probes: int = 1
    seed: int = 0
    precision: str = "float32"
    data_parallel: bool = True  # shard collocation batches across all jax.devices()
    network: NetworkConfig = field(default_factory=NetworkConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    collocation: CollocationConfig = field(default_factory=CollocationConfig)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    gn: GaussNewtonConfig = field(default_factory=GaussNewtonConfig)

    def __post_init__(self):
        for name, cls in (("network", NetworkConfig), ("optim", OptimConfig),
                          ("collocation", CollocationConfig), ("sampler", SamplerConfig),
                          ("gn", GaussNewtonConfig)):
            val = getattr(self, name)
            if isinstance(val, dict):
                setattr(self, name, _build(cls, val, name))
        self.validate()

    # ---- validation -------------------------------------------------------------------------------
    def validate(self) -> None:
        """Raise `ConfigError` naming the first invalid field."""
        from pinnflow import losses, models, networks, operators  # late: registries import this module

        def need(cond: bool, key: str, msg: str):
            if not cond:
                raise ConfigError(f"config {key}: {msg}")

        need(self.loss in losses.REGISTRY, "loss",
             f"unknown loss {self.loss!r}; available: {', '.join(losses.names())}")
        need(self.precision in PRECISIONS, "precision", f"must be one of {PRECISIONS}, got {self.precision!r}")
        need(self.operator in operators.BACKENDS, "operator",
             f"unknown backend {self.operator!r}; available: {', '.join(operators.BACKENDS.names())}")
        need(_pos_int(self.hutchinson_probes), "hutchinson_probes", "must be a positive integer")
        need(self.T is None or _pos(self.T), "T", f"must be > 0, got {self.T}")
        need(self.sigma is None or _num(self.sigma) and self.sigma >= 0, "sigma", f"must be >= 0, got {self.sigma}")
        need(_pos(self.alpha), "alpha", f"must be > 0, got {self.alpha}")
        need(_pos(self.prior_std), "prior_std", f"must be > 0, got {self.prior_std}")
        need(self.z_init == "prior_is" or _num(self.z_init), "z_init",
             f"must be a number or 'prior_is', got {self.z_init!r}")
        need(isinstance(self.seed, int), "seed", f"must be an integer, got {self.seed!r}")
        need(isinstance(self.problem_params, dict), "problem_params", "must be a mapping")
        n = self.network
        for kind_key in ("kind", "potential_kind"):
            kind = getattr(n, kind_key)
            need(kind in models.NETWORKS, f"network.{kind_key}",
                 f"unknown network {kind!r}; available: {', '.join(models.NETWORKS.names())}")
        need(n.activation in networks.ACTIVATIONS, "network.activation",
             f"unknown activation {n.activation!r}; available: {', '.join(networks.ACTIVATIONS.names())}")
        for k in ("width", "depth", "num_freq", "z_width"):
            need(_pos_int(getattr(n, k)), f"network.{k}", f"must be a positive integer, got {getattr(n, k)!r}")
        o = self.optim
        for k in ("steps", "batch_size", "chunk", "checkpoint_every"):
            need(_pos_int(getattr(o, k)), f"optim.{k}", f"must be a positive integer, got {getattr(o, k)!r}")
        need(_pos(o.lr), "optim.lr", f"must be > 0, got {o.lr}")
        need(_pos(o.lr_final) and o.lr_final <= o.lr, "optim.lr_final", f"must be in (0, lr], got {o.lr_final}")
        need(o.clip_norm is None or _pos(o.clip_norm), "optim.clip_norm", f"must be > 0 or null, got {o.clip_norm}")
        need(o.checkpoint_every % o.chunk == 0, "optim.checkpoint_every",
             f"must be a multiple of optim.chunk ({o.chunk}), got {o.checkpoint_every}")
        c = self.collocation
        need(_pos(c.prior_k), "collocation.prior_k", f"must be > 0, got {c.prior_k}")
        need(_num(c.trajectory_fraction) and 0 <= c.trajectory_fraction < 1, "collocation.trajectory_fraction",
             f"must be in [0, 1), got {c.trajectory_fraction}")
        for k in ("trajectory_count", "trajectory_steps", "trajectory_every"):
            need(_pos_int(getattr(c, k)), f"collocation.{k}", f"must be a positive integer, got {getattr(c, k)!r}")
        need(c.trajectory_every % o.chunk == 0, "collocation.trajectory_every",
             f"must be a multiple of optim.chunk ({o.chunk}), got {c.trajectory_every}")
        s = self.sampler
        for k in ("steps", "n_eval", "sinkhorn_n"):
            need(_pos_int(getattr(s, k)), f"sampler.{k}", f"must be a positive integer, got {getattr(s, k)!r}")
        need(_pos(s.sinkhorn_epsilon), "sampler.sinkhorn_epsilon", f"must be > 0, got {s.sinkhorn_epsilon}")
        g = self.gn
        for k in ("steps", "cg_iters", "batch_size", "val_batch_size", "resample_every", "ls_steps",
                  "checkpoint_every"):
            need(_pos_int(getattr(g, k)), f"gn.{k}", f"must be a positive integer, got {getattr(g, k)!r}")
        need(g.solver in ("auto", "cg", "sample-space"), "gn.solver",
             f"one of auto, cg, sample-space; got {g.solver!r}")
        need(g.line_search in ("grid", "armijo"), "gn.line_search", f"'grid' or 'armijo', got {g.line_search!r}")
        need(_pos(g.damping), "gn.damping", f"must be > 0, got {g.damping}")
        need(_pos(g.cg_tol), "gn.cg_tol", f"must be > 0, got {g.cg_tol}")
        need(_pos(g.memory_mb), "gn.memory_mb", f"must be > 0, got {g.memory_mb}")
        need(g.precision is None or g.precision in PRECISIONS, "gn.precision",
             f"null or one of {PRECISIONS}, got {g.precision!r}")

    # ---- (de)serialisation ------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Config:
        return _build(cls, dict(data), "config")

    @classmethod
    def from_yaml(cls, path: str | Path) -> Config:
        data = _coerce(yaml.safe_load(Path(path).read_text()) or {})
        if not isinstance(data, dict):
            raise ConfigError(f"config file {path}: expected a mapping at top level")
        return cls.from_dict(data)

    def to_yaml(self, path: str | Path) -> None:
        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))

    def override(self, assignments: list[str]) -> Config:
        """A new config with `section.key=value` assignments applied (values parsed as YAML)."""
        data = self.to_dict()
        for item in assignments:
            if "=" not in item:
                raise ConfigError(f"override {item!r}: expected key=value, e.g. optim.lr=1e-3")
            key, raw = item.split("=", 1)
            node, parts = data, key.strip().split(".")
            for p in parts[:-1]:
                if not isinstance(node.get(p), dict):
                    raise ConfigError(f"override {item!r}: {p!r} is not a config section")
                node = node[p]
            if parts[-1] not in node and parts[0] != "problem_params":
                raise ConfigError(f"override {item!r}: unknown key {key!r}; keys here: {', '.join(node)}")
            node[parts[-1]] = _coerce(yaml.safe_load(raw))
        return Config.from_dict(data)


def _build(cls, data: dict, where: str):
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise ConfigError(f"{where}: unknown keys {sorted(unknown)}; allowed: {sorted(names)}")
    return cls(**data)


_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def _coerce(v: Any) -> Any:
    """YAML 1.1 reads `1e-3` as a string; turn such number-like strings into floats, recursively."""
    if isinstance(v, dict):
        return {k: _coerce(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_coerce(x) for x in v]
    if isinstance(v, str) and _NUMBER.match(v.strip()):
        return float(v)
    return v


def _num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _pos(v: Any) -> bool:
    return _num(v) and v > 0


def _pos_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v > 0
