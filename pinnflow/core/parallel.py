"""Data parallelism: the collocation batch is sharded across `jax.devices()` (parameters replicated).

XLA's SPMD partitioner splits the vmapped residuals over devices and all-reduces the batch means, so the
same jitted step runs on one CPU, several GPUs, or several processes/hosts (after `jax.distributed.initialize()`;
on CPU the cross-process collectives are gloo, JAX's default). Every process then runs the same program on the
same replicated state, so the batches drawn inside the jitted step are the same global batch, each process
computing its shard. On CPU, `XLA_FLAGS=--xla_force_host_platform_device_count=2` exposes two devices for testing.
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
        """Place a pytree (parameters, optimiser state) on every device.

        Across processes (`jax.distributed`) every process must pass the same values (states built from the
        same seed); each leaf is brought to the host and becomes a global array from its local copy, which JAX
        checks is equal on all processes. (`device_put` alone refuses committed arrays and typed PRNG keys there.)
        """
        if self.size == 1:
            return tree
        sharding = NamedSharding(self.mesh, PartitionSpec())
        if sharding.is_fully_addressable:
            return jax.device_put(tree, sharding)
        return jax.tree_util.tree_map(lambda x: _replicate_global(x, sharding), tree)


def _replicate_global(x, sharding: NamedSharding):
    """One leaf as a global array replicated over `sharding`'s devices (some of them in other processes)."""
    if isinstance(x, jax.Array) and x.sharding.is_equivalent_to(sharding, x.ndim):
        return x
    if hasattr(x, "dtype") and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
        data = _replicate_global(jax.random.key_data(x), sharding)
        return jax.random.wrap_key_data(data, impl=jax.random.key_impl(x))
    return jax.device_put(np.asarray(x), sharding)  # a host value: asserts it is equal on every process
