"""The WGF solver's configuration (paper 004 Algorithm 1, §6): sections `flow` (`pinnflow.nn.flows`), `psi`
(`pinnflow.wgf.psi`), `scheme` and `eval` (here). Validated on construction, before anything compiles; YAML and
`section.key=value` overrides from `ConfigBase`.

Defaults are §6's: planar flow of length 60 (tanh), ψ a ReLU network of 6 layers of width 20, Adam (β1 = 0.9,
β2 = 0.999, ε = 1e-8) with α_out = 0.005 and α_in = 0.0005, h = 0.005, M_out = 20, M_in = 100,
K_in = K_out = max{1000, 300d} and the rescaling ε = α_out of Remark 9.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pinnflow.core.config import (
    ConfigBase,
    Section,
    check_name,
    check_positive_ints,
    check_types,
    is_positive,
    is_positive_int,
    need,
)
from pinnflow.core.precision import PRECISIONS
from pinnflow.nn.flows import FlowConfig
from pinnflow.wgf.psi import PsiConfig
from pinnflow.wgf.scheme import INNER_SOLVERS, OPTIMIZERS, SCHEMES

__all__ = ["WGFConfig", "SchemeConfig", "EvalConfig", "FlowConfig", "PsiConfig", "RESUMABLE"]

RESUMABLE = ("scheme.T",)
"""Keys a resumed solve may change: a longer horizon (the result equals one uninterrupted solve)."""


@dataclass
class SchemeConfig(Section):
    """The time stepping (paper 004 Algorithm 1). `kind`: a name in `SCHEMES` (`semi_implicit`, the paper's;
    `flat`, the parameter gradient flow θ̇ = −∇H of Fig. 16). `h`: time step; `T`: horizon (null: the
    problem's). Per time step, `m_out` outer steps, each after `m_in` inner steps (`inner_solver`: a name in
    `OPTIMIZERS` at rate `lr_in`, or `lstsq` for a ψ linear in its parameters). `batch`: K_in = K_out (null:
    max{1000, 300d}); `eps`: the rescaling of Remark 9 (null: `lr_out`). `warm_start`: both optimiser states
    carry over between time steps (false: reset at each step); ψ always starts from the last step's λ.
    `outer_decay` (beyond the paper): the outer rate falls geometrically within each time step from `lr_out` to
    `lr_out · outer_decay` (1: constant, the paper's), so that the outer steps settle on the proximal point
    instead of moving ~lr_out each."""

    kind: str = "semi_implicit"
    h: float = 0.005
    T: float | None = None
    m_out: int = 20
    m_in: int = 100
    batch: int | None = None
    lr_out: float = 0.005
    lr_in: float = 0.0005
    eps: float | None = None
    optimizer: str = "adam"
    inner_solver: str = "adam"
    warm_start: bool = True
    outer_decay: float = 1.0

    def validate(self, where: str = "scheme.") -> None:
        check_name(SCHEMES, self.kind, f"{where}kind")
        check_name(OPTIMIZERS, self.optimizer, f"{where}optimizer")
        check_name(INNER_SOLVERS, self.inner_solver, f"{where}inner_solver")
        need(is_positive(self.h), f"{where}h", f"must be > 0, got {self.h!r}")
        need(self.T is None or is_positive(self.T), f"{where}T", f"must be > 0 or null, got {self.T!r}")
        check_positive_ints(self, where, ("m_out", "m_in"))
        need(self.batch is None or (is_positive_int(self.batch) and self.batch >= 2), f"{where}batch",
             f"must be an integer >= 2 or null, got {self.batch!r}")
        need(is_positive(self.lr_out), f"{where}lr_out", f"must be > 0, got {self.lr_out!r}")
        need(is_positive(self.lr_in), f"{where}lr_in", f"must be > 0, got {self.lr_in!r}")
        need(self.eps is None or is_positive(self.eps), f"{where}eps", f"must be > 0 or null, got {self.eps!r}")
        need(is_positive(self.outer_decay) and self.outer_decay <= 1, f"{where}outer_decay",
             f"must be in (0, 1], got {self.outer_decay!r}")

    def batch_size(self, d: int) -> int:
        """K_in = K_out: `batch`, or max{1000, 300d} (paper 004 Remark 10)."""
        return int(self.batch) if self.batch is not None else max(1000, 300 * d)

    @property
    def rescale(self) -> float:
        """ε of Remark 9 (the displacement is divided by it): `eps`, or `lr_out`."""
        return float(self.lr_out if self.eps is None else self.eps)


@dataclass
class EvalConfig(Section):
    """One history row (and checkpoint) every `every` time steps: H, entropy, moments (and errors against the
    exact ones where known) from `samples` push-forward samples of one fixed reference draw (common random
    numbers across times). The paper uses 6000 samples; 20000 keeps the sampling error of a 10-D
    covariance's Frobenius norm near 0.03."""

    every: int = 10
    samples: int = 20000

    def validate(self, where: str = "eval.") -> None:
        check_positive_ints(self, where, ("every", "samples"))
        need(self.samples >= 2, f"{where}samples", f"must be >= 2, got {self.samples}")


@dataclass
class WGFConfig(ConfigBase):
    """Everything a WGF solve needs (paper 004 Algorithm 1 on ρ_θ = T_θ#N(0, I))."""

    seed: int = 0
    precision: str = "float32"
    flow: FlowConfig = field(default_factory=FlowConfig)
    psi: PsiConfig = field(default_factory=PsiConfig)
    scheme: SchemeConfig = field(default_factory=SchemeConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def validate(self) -> None:
        """Raise `ConfigError` naming the first invalid field."""
        check_types(self)
        need(self.precision in PRECISIONS, "precision", f"must be one of {PRECISIONS}, got {self.precision!r}")
        super().validate()
        if self.scheme.inner_solver == "lstsq":
            from pinnflow.wgf.psi import make_psi

            need(make_psi(1, self.psi).linear, "scheme.inner_solver",
                 f"lstsq needs a ψ linear in its parameters (psi.kind: quadratic), got psi.kind = {self.psi.kind!r}")
