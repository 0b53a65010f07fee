"""The network registry: networks of (x, t) by name, built from the `network` config section."""

from __future__ import annotations

from dataclasses import dataclass

from flax import nnx

from pinnflow.core.config import Section, check_name, check_positive_ints
from pinnflow.core.registry import Registry
from pinnflow.nn.networks import ACTIVATIONS, FourierMLP, OTFlowPotential, ResMLP

__all__ = ["NETWORKS", "NetworkConfig", "network"]

NETWORKS: Registry[nnx.Module] = Registry("network")


@dataclass
class NetworkConfig(Section):
    """Networks for μ, φ and Φ (paper 003 App. B.1). `kind`: a name in `NETWORKS`."""

    kind: str = "fourier_mlp"
    width: int = 64
    depth: int = 3
    activation: str = "silu"
    num_freq: int = 4
    potential_kind: str = "res_mlp"  # network for Φ (sb, ot); "ot_flow" also available
    z_width: int = 16  # the small Fourier-MLP z(t) of the annealed losses
    normalize: bool = False  # feed x / scale (scale: the target box's half-width); drifts scaled back

    def validate(self, where: str = "network.") -> None:
        check_name(NETWORKS, self.kind, f"{where}kind")
        check_name(NETWORKS, self.potential_kind, f"{where}potential_kind")
        check_name(ACTIVATIONS, self.activation, f"{where}activation")
        check_positive_ints(self, where, ("width", "depth", "num_freq", "z_width"))


@NETWORKS.register(name="fourier_mlp")
def _fourier_mlp(d: int, d_out: int, cfg: NetworkConfig, T: float, rngs: nnx.Rngs, scalar: bool):
    return FourierMLP(d, d_out, width=cfg.width, depth=cfg.depth, activation=cfg.activation,
                      num_freq=cfg.num_freq, t_max=T, scalar_output=scalar, rngs=rngs)


@NETWORKS.register(name="mlp")
def _mlp(d: int, d_out: int, cfg: NetworkConfig, T: float, rngs: nnx.Rngs, scalar: bool):
    """A plain fully connected network of the input [x, t] (no time features; paper 002 §4)."""
    return FourierMLP(d, d_out, width=cfg.width, depth=cfg.depth, activation=cfg.activation,
                      num_freq=0, t_max=T, scalar_output=scalar, rngs=rngs)


@NETWORKS.register(name="res_mlp")
def _res_mlp(d: int, d_out: int, cfg: NetworkConfig, T: float, rngs: nnx.Rngs, scalar: bool):
    del T
    return ResMLP(d, d_out, width=cfg.width, depth=cfg.depth, activation=cfg.activation,
                  scalar_output=scalar, rngs=rngs)


@NETWORKS.register(name="ot_flow")
def _ot_flow(d: int, d_out: int, cfg: NetworkConfig, T: float, rngs: nnx.Rngs, scalar: bool):
    del T
    if d_out != 1 or not scalar:
        raise ValueError("the ot_flow network is a scalar potential; use it for Φ (network.potential_kind)")
    return OTFlowPotential(d, width=cfg.width, depth=cfg.depth, rngs=rngs)


def network(kind: str, d: int, d_out: int, cfg: NetworkConfig, T: float, rngs: nnx.Rngs, scalar=False):
    """Build a registered network of (x, t) with `d_out` outputs (a scalar if `scalar`)."""
    return NETWORKS.factory(kind)(d, d_out, cfg, T, rngs, scalar)
