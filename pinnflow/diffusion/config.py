"""The configuration of a diffusion model trained by denoising score matching plus w_R times a Fokker–Planck
residual (paper 002 §4). Sections: `sde`, `data`, `network` (`pinnflow.nn.NetworkConfig`), `loss`, `optim`
(`pinnflow.optim.adam.OptimConfig`), `sampler`, `eval`. Validated on construction — unknown names list the
choices, t_min outside (0, T), a box with lo ≥ hi, a regulariser the parametrisation cannot take — before
anything compiles; YAML and `section.key=value` overrides from `ConfigBase`.

Defaults are the paper's (§4): OU forward SDE (f = −x, g = 1, T = 10), a potential network of 2 × 80 softplus
units, likelihood weighting (λ = g² = 1), s ~ U(0, T) and x ~ U(Ω) for the residual, Adam 1e-3 → 1e-5 over
100k steps, 800 sampler steps, 3M samples on a 64 × 64 grid. From the authors' public code (the paper does not
say): t_min = 1e-4, Ω = the data set's box ([−3.5, 3.5]²), the histogram box [−4, 4]², the last 10 sampler
steps replaced by 100 steps of a tenth the size, batches of 2000 (DSM) and 5000 (residual) points.
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
from pinnflow.diffusion.losses import BASES, PARAMETRISATIONS, REGULARISERS, TIME_SAMPLING, WEIGHTINGS
from pinnflow.diffusion.sdes import SDES, ForwardSDE
from pinnflow.nn import NetworkConfig
from pinnflow.operators import BACKENDS
from pinnflow.optim.adam import OptimConfig

__all__ = ["DiffusionConfig", "SDEConfig", "DataConfig", "DiffusionLossConfig", "SamplerConfig", "EvalConfig",
           "ConfigError", "RESUMABLE"]

RESUMABLE = ("optim.steps", "optim.checkpoint_every", "eval", "sampler")
"""Config keys a resumed run may change (more steps; another evaluation of the same model)."""


@dataclass
class SDEConfig(Section):
    """The forward SDE: a name in `pinnflow.diffusion.SDES` and its parameters."""

    name: str = "ou"
    params: dict = field(default_factory=dict)

    def validate(self, where: str = "sde.") -> None:
        check_name(SDES, self.name, f"{where}name")


@dataclass
class DataConfig(Section):
    """The data set (a name in `problems.datasets`) and the training set: `size` null draws a fresh batch at
    every step (an unlimited generator, as the paper's code does); an integer fixes a training set of that
    many draws (seeded by `seed`) that batches are resampled from."""

    name: str = "mixture"
    params: dict = field(default_factory=dict)
    size: int | None = None

    def validate(self, where: str = "data.") -> None:
        need(self.size is None or (isinstance(self.size, int) and self.size > 0), f"{where}size",
             f"must be a positive integer or null, got {self.size!r}")


@dataclass
class DiffusionLossConfig(Section):
    """L = L_DSM(λ) + w_R · R̃ (+ w_R · boundary_weight · mean exp(2φ) on ∂Ω, the reference code's boundary
    term; 0 in the paper). `box`: Ω as [[lo...], [hi...]] (null: the data set's box). `base`: a name in
    `BASES` added to the network (`none`: the paper's plain network)."""

    parametrisation: str = "potential"
    base: str = "none"
    weighting: str = "likelihood"
    time_sampling: str = "uniform"
    t_min: float = 1e-4
    regulariser: str = "log_fp"
    w_R: float = 0.0
    collocation: int = 5000
    residual_t_min: float = 0.0
    box: list | None = None
    boundary_weight: float = 0.0
    operator: str = "exact"

    def validate(self, where: str = "loss.") -> None:
        check_name(PARAMETRISATIONS, self.parametrisation, f"{where}parametrisation")
        check_name(BASES, self.base, f"{where}base")
        check_name(WEIGHTINGS, self.weighting, f"{where}weighting")
        check_name(TIME_SAMPLING, self.time_sampling, f"{where}time_sampling")
        check_name(REGULARISERS, self.regulariser, f"{where}regulariser")
        check_name(BACKENDS, self.operator, f"{where}operator")
        need(is_positive(self.t_min), f"{where}t_min", f"must be > 0 (DSM diverges at t -> 0), got {self.t_min!r}")
        need(is_number(self.w_R) and self.w_R >= 0, f"{where}w_R", f"must be >= 0, got {self.w_R!r}")
        need(is_number(self.boundary_weight) and self.boundary_weight >= 0, f"{where}boundary_weight",
             f"must be >= 0, got {self.boundary_weight!r}")
        need(is_number(self.residual_t_min) and self.residual_t_min >= 0, f"{where}residual_t_min",
             f"must be >= 0, got {self.residual_t_min!r}")
        check_positive_ints(self, where, ("collocation",))
        if self.box is not None:
            ok = (isinstance(self.box, list | tuple) and len(self.box) == 2
                  and all(isinstance(b, list | tuple) and all(is_number(v) for v in b) for b in self.box)
                  and len(self.box[0]) == len(self.box[1])
                  and all(a < b for a, b in zip(self.box[0], self.box[1], strict=True)))
            need(ok, f"{where}box", f"must be [[lo, ...], [hi, ...]] with lo < hi, got {self.box!r}")
        allowed = PARAMETRISATIONS.get(self.parametrisation).regularisers
        need(self.w_R == 0 or self.regulariser in allowed, f"{where}regulariser",
             f"{self.regulariser!r} needs a potential; the {self.parametrisation!r} parametrisation takes "
             f"{', '.join(allowed)}")


@dataclass
class SamplerConfig(Section):
    """Reverse-time samplers from the prior at T: Euler–Maruyama for the reverse SDE (7) and Euler for the
    probability-flow ODE dx/dt = f − ½g²∇φ (eq. 10). `steps` uniform steps from T to `t_end`, of which the
    last `fine_final` are each replaced by 10 steps a tenth the size; the SDE's very last step adds no
    noise. `batch`: particles per compiled pass (memory)."""

    steps: int = 800
    fine_final: int = 10
    t_end: float = 0.0
    batch: int = 65536

    def validate(self, where: str = "sampler.") -> None:
        check_positive_ints(self, where, ("steps", "batch"))
        need(isinstance(self.fine_final, int) and 0 <= self.fine_final <= self.steps, f"{where}fine_final",
             f"must be an integer in [0, steps], got {self.fine_final!r}")
        need(is_number(self.t_end) and self.t_end >= 0, f"{where}t_end", f"must be >= 0, got {self.t_end!r}")


@dataclass
class EvalConfig(Section):
    """Evaluation: `samples` per sampler, W2² between `bins` × `bins` histograms on the square
    [−box, box]² (null: the data set's box), the residual R̃ and DSM at the end on `points` points."""

    samples: int = 3_000_000
    bins: int = 64
    box: float | None = 4.0
    points: int = 100_000
    noise_floor: bool = True

    def validate(self, where: str = "eval.") -> None:
        check_positive_ints(self, where, ("samples", "bins", "points"))
        need(self.bins >= 2, f"{where}bins", f"must be >= 2, got {self.bins}")
        need(self.box is None or is_positive(self.box), f"{where}box", f"must be > 0 or null, got {self.box!r}")


def _paper_optim() -> OptimConfig:
    return OptimConfig(steps=100_000, batch_size=2000, lr=1e-3, lr_final=1e-5, clip_norm=None, chunk=500,
                       checkpoint_every=5000)


def _paper_network() -> NetworkConfig:
    return NetworkConfig(kind="mlp", width=80, depth=2, activation="softplus")


@dataclass
class DiffusionConfig(ConfigBase):
    """Everything a diffusion-model run needs (see the module docstring for the defaults' sources)."""

    seed: int = 0
    precision: str = "float32"
    sde: SDEConfig = field(default_factory=SDEConfig)
    data: DataConfig = field(default_factory=DataConfig)
    network: NetworkConfig = field(default_factory=_paper_network)
    loss: DiffusionLossConfig = field(default_factory=DiffusionLossConfig)
    optim: OptimConfig = field(default_factory=_paper_optim)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    free_mappings = ("sde", "data")

    def validate(self) -> None:
        check_types(self)
        need(self.precision in PRECISIONS, "precision", f"must be one of {PRECISIONS}, got {self.precision!r}")
        super().validate()
        sde = self.forward_sde()
        need(self.loss.t_min < sde.T, "loss.t_min", f"must be < T = {sde.T} of the {sde.name} SDE, got "
             f"{self.loss.t_min}")
        need(self.loss.residual_t_min < sde.T, "loss.residual_t_min", f"must be < T = {sde.T}, got "
             f"{self.loss.residual_t_min}")
        need(self.sampler.t_end < sde.T, "sampler.t_end", f"must be < T = {sde.T}, got {self.sampler.t_end}")

    def forward_sde(self) -> ForwardSDE:
        """The configured forward SDE (its parameter errors are `ConfigError`s naming `sde.params`)."""
        try:
            return SDES.get(self.sde.name, **self.sde.params)
        except TypeError as err:
            raise ConfigError(f"sde.params: {err}") from None
