"""Networks of one point (x, t): activations, Fourier-MLP, ResMLP, OT-Flow, and the network registry."""

from pinnflow.nn.networks import ACTIVATIONS, FourierMLP, OTFlowPotential, ResMLP, activation, time_features
from pinnflow.nn.registry import NETWORKS, NetworkConfig, network

__all__ = ["ACTIVATIONS", "FourierMLP", "OTFlowPotential", "ResMLP", "activation", "time_features", "NETWORKS",
           "NetworkConfig", "network"]
