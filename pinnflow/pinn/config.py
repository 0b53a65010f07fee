"""The PINN sampler's run configuration (paper 003): its own keys plus sections owned by the modules that
read them — `network` (`pinnflow.nn`), `optim` and `gn` (`pinnflow.optim`), `collocation` and `sampler`
(`pinnflow.pinn`). Loadable from YAML, overridable by `section.key=value` strings, validated on construction
(names checked against the registries) before anything is compiled."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from pinnflow.core.config import (
    ConfigBase,
    ConfigError,
    check_name,
    check_types,
    is_number,
    is_positive,
    is_positive_int,
    need,
)
from pinnflow.core.precision import PRECISIONS
from pinnflow.nn.registry import NetworkConfig
from pinnflow.operators import BACKENDS
from pinnflow.optim.adam import OptimConfig
from pinnflow.optim.gauss_newton import GaussNewtonConfig
from pinnflow.pinn import losses
from pinnflow.pinn.collocation import CollocationConfig
from pinnflow.pinn.parametrisations import DRIFT_OFFSETS
from pinnflow.pinn.sampling import SamplerConfig

__all__ = ["Config", "ConfigError", "NetworkConfig", "OptimConfig", "CollocationConfig", "SamplerConfig",
           "GaussNewtonConfig"]


@dataclass
class Config(ConfigBase):
    """Everything a training run needs. Defaults are the CPU demo budget (a 2-D target in minutes).

    `T`, `sigma` = None take the loss's defaults (T = 1; σ = √2 for SDE losses, 0 for ODE losses).
    """

    loss: str = "log_ce"
    problem: str | None = None  # a registered problem (`problems.names()`) ...
    target: str | None = None  # ... or your own: "file.py:name" / "package.module:name" (problems.from_reference)
    problem_params: dict = field(default_factory=dict)
    T: float | None = None
    sigma: float | None = None
    alpha: float = 1e-3  # weight of the HJB term (sb, ot; eqs. 22-23): 1e-3 trained both (issue 17), 1 lost modes
    prior_std: float = 1.0
    z_init: float | str = 0.0  # initial z of eq. (10): a number, or "prior_is" (a prior importance-sampling log Z)
    drift_offset: str = "langevin"  # a name in DRIFT_OFFSETS (SDE losses; "none": the paper's μ = network)
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

    free_mappings: ClassVar[tuple[str, ...]] = ("problem_params",)
    legacy: ClassVar[dict] = {"drift_offset": "none"}  # runs saved before the key learned μ = network

    def validate(self) -> None:
        """Raise `ConfigError` naming the first invalid field."""
        check_types(self)
        check_name(losses.REGISTRY, self.loss, "loss")
        need(self.precision in PRECISIONS, "precision", f"must be one of {PRECISIONS}, got {self.precision!r}")
        check_name(BACKENDS, self.operator, "operator")
        check_name(DRIFT_OFFSETS, self.drift_offset, "drift_offset")
        need(is_positive_int(self.hutchinson_probes), "hutchinson_probes", "must be a positive integer")
        need(self.T is None or is_positive(self.T), "T", f"must be > 0, got {self.T}")
        need(self.sigma is None or is_number(self.sigma) and self.sigma >= 0, "sigma",
             f"must be >= 0, got {self.sigma}")
        need(is_positive(self.alpha), "alpha", f"must be > 0, got {self.alpha}")
        need(is_positive(self.prior_std), "prior_std", f"must be > 0, got {self.prior_std}")
        need(self.z_init == "prior_is" or is_number(self.z_init), "z_init",
             f"must be a number or 'prior_is', got {self.z_init!r}")
        need(isinstance(self.seed, int), "seed", f"must be an integer, got {self.seed!r}")
        need(isinstance(self.problem_params, dict), "problem_params", "must be a mapping")
        need(self.problem is None or self.target is None, "target",
             f"name a registered problem or a target reference, not both (problem={self.problem!r})")
        super().validate()
        c, o = self.collocation, self.optim
        need(c.trajectory_every % o.chunk == 0, "collocation.trajectory_every",
             f"must be a multiple of optim.chunk ({o.chunk}), got {c.trajectory_every}")
