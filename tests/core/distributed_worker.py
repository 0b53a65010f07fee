"""One process of a two-process `jax.distributed` CPU run (launched by test_distributed.py).

Usage: python distributed_worker.py PORT NUM_PROCESSES PROCESS_ID OUT_JSON
With NUM_PROCESSES = 1 it trains the same configuration in a single process (no `jax.distributed`).
"""

import json
import sys

import jax

OVERRIDES = ["network.width=16", "network.depth=2", "optim.steps=200", "optim.batch_size=64", "optim.chunk=100",
             "optim.checkpoint_every=100"]


def main() -> None:
    port, n, pid, out = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    if n > 1:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")  # the default; explicit for clarity
        jax.distributed.initialize(coordinator_address=f"localhost:{port}", num_processes=n, process_id=pid,
                                   initialization_timeout=120)
    import pinnflow as pf
    import problems

    assert jax.process_count() == n and jax.device_count() == n and jax.local_device_count() == 1, jax.devices()
    cfg = pf.Config(loss="log_ce").override(OVERRIDES)
    run = pf.train(problems.get("gmm"), cfg, progress=False)
    mesh_devices = len(jax.tree_util.tree_leaves(run.params)[0].sharding.device_set)
    with open(out, "w") as fh:
        json.dump({"loss": run.history["loss"].tolist(), "process_index": jax.process_index(),
                   "mesh_devices": mesh_devices}, fh)
    if n > 1:
        jax.distributed.shutdown()


if __name__ == "__main__":
    main()
