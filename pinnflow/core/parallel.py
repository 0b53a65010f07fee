"""Data parallelism: the collocation batch is sharded across `jax.devices()` (parameters replicated).

XLA's SPMD partitioner splits the vmapped residuals over devices and all-reduces the batch means, so the
same jitted step runs on one CPU, several GPUs, or several hosts (after `jax.distributed.initialize()`).
On CPU, `XLA_FLAGS=--xla_force_host_platform_device_count=2` exposes two devices for testing.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

__all__ = ["DataParallel"]


@dataclass(frozen=True)
class DataParallel:
    """Shardings over a 1-D mesh of all devices (axis "data"); with one device everything is a no-op."""

    mesh: Mesh

    @classmethod
    def create(cls, enabled: bool = True) -> DataParallel:
        devices = jax.devices() if enabled else jax.devices()[:1]
        return cls(Mesh(np.array(devices), ("data",)))

    @property
    def size(self) -> int:
        return self.mesh.devices.size

    def check_batch(self, n: int, what: str) -> None:
        if n % self.size:
            raise ValueError(f"{what} = {n} must be a multiple of the number of devices ({self.size})")

    def shard_batch(self, x: jax.Array) -> jax.Array:
        """Constrain an array whose leading axis is the batch to be split across devices (inside jit)."""
        if self.size == 1:
            return x
        return jax.lax.with_sharding_constraint(x, NamedSharding(self.mesh, PartitionSpec("data")))

    def replicate(self, tree):
        """Place a pytree (parameters, optimiser state) on every device."""
        if self.size == 1:
            return tree
        return jax.device_put(tree, NamedSharding(self.mesh, PartitionSpec()))
