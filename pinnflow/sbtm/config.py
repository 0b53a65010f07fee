"""The SBTM solver's configuration (paper 000 Algorithm 1, §3, App. D): its own keys plus sections owned by the
modules that read them — `model` (`sbtm.models`), `loss` (`sbtm.losses`), `time` (`sbtm.integrators`) — and
`operator`, `inner`, `init` defined here. Validated on construction (registry names checked, the error names
the dotted key) before anything compiles; YAML and `section.key=value` overrides from `ConfigBase`.

Defaults are paper 000 App. D.1 where it gives them (n = 100 particles, Δt = 1e-3, up to 25 Adam steps of
learning rate 1e-4 per time step stopped at gradient norm 0.1, one hidden layer of 100 swish units, initial
fit to relative error 1e-4). Not in the paper: `init.lr` = 1e-3 (10× the inner rate, so that the initial fit
reaches 1e-4 in a few thousand steps on a CPU) and `init.max_steps`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pinnflow.core.config import (
    ConfigBase,
    ConfigError,
    Section,
    check_name,
    check_positive_ints,
    check_types,
    is_number,
    is_positive,
    need,
)
from pinnflow.core.precision import PRECISIONS
from pinnflow.operators import BACKENDS
from pinnflow.sbtm.integrators import TimeConfig
from pinnflow.sbtm.losses import LossConfig
from pinnflow.sbtm.models import ScoreModelConfig

__all__ = ["SBTMConfig", "OperatorConfig", "InnerConfig", "InitConfig", "ScoreModelConfig", "LossConfig",
           "TimeConfig", "ConfigError", "SCORES", "RESUMABLE"]

SCORES = ("learned", "exact")
"""`score`: learn it on the fly (SBTM), or use the problem's exact score (tests the transport alone)."""

RESUMABLE = ("time.T",)
"""Config keys a resumed solve may change: extending the horizon (the result equals one uninterrupted solve)."""


@dataclass
class OperatorConfig(Section):
    """Trace backends (names in `pinnflow.operators.BACKENDS`): `kind` for the loss's ∇·s, `transport` for
    ∇·v along the trajectories (log ρ, entropy route 16); `probes` for `hutchinson`. `auto` is exact (the
    forward Laplacian for second-order traces, forward-mode JVPs for divergences)."""

    kind: str = "auto"
    transport: str = "auto"
    probes: int = 1

    def validate(self, where: str = "operator.") -> None:
        check_name(BACKENDS, self.kind, f"{where}kind")
        check_name(BACKENDS, self.transport, f"{where}transport")
        check_positive_ints(self, where, ("probes",))


@dataclass
class InnerConfig(Section):
    """Score training at each time step (paper 000 App. D.1): warm start, up to `max_steps` Adam steps of
    rate `lr`, stopped after the first step whose gradient norm (before its update) is below `gtol`."""

    lr: float = 1e-4
    max_steps: int = 25
    gtol: float = 0.1

    def validate(self, where: str = "inner.") -> None:
        need(is_positive(self.lr), f"{where}lr", f"must be > 0, got {self.lr!r}")
        check_positive_ints(self, where, ("max_steps",))
        need(is_number(self.gtol) and self.gtol >= 0, f"{where}gtol", f"must be >= 0, got {self.gtol!r}")


@dataclass
class InitConfig(Section):
    """The initial fit of s_0 to ∇log ρ_0 on the initial particles (paper 000 eq. D.1): Adam of rate `lr`
    until the relative error is below `rel_tol` or `max_steps` steps (a warning says when it stopped short)."""

    rel_tol: float = 1e-4
    lr: float = 1e-3
    max_steps: int = 20000

    def validate(self, where: str = "init.") -> None:
        need(is_positive(self.rel_tol), f"{where}rel_tol", f"must be > 0, got {self.rel_tol!r}")
        need(is_positive(self.lr), f"{where}lr", f"must be > 0, got {self.lr!r}")
        check_positive_ints(self, where, ("max_steps",))


@dataclass
class SBTMConfig(ConfigBase):
    """Everything an SBTM solve needs (paper 000 Algorithm 1 with v = b − D s). `save_every`: time steps per
    history row and checkpoint (one compiled chunk of the run loop)."""

    score: str = "learned"
    n_particles: int = 100
    save_every: int = 100
    seed: int = 0
    precision: str = "float32"
    model: ScoreModelConfig = field(default_factory=ScoreModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    operator: OperatorConfig = field(default_factory=OperatorConfig)
    time: TimeConfig = field(default_factory=TimeConfig)
    inner: InnerConfig = field(default_factory=InnerConfig)
    init: InitConfig = field(default_factory=InitConfig)

    def validate(self) -> None:
        """Raise `ConfigError` naming the first invalid field: types, own keys, then each section."""
        check_types(self)
        need(self.score in SCORES, "score", f"must be one of {', '.join(SCORES)}, got {self.score!r}")
        check_positive_ints(self, "", ("n_particles", "save_every"))
        need(self.precision in PRECISIONS, "precision", f"must be one of {PRECISIONS}, got {self.precision!r}")
        super().validate()
