"""Data parallelism: on two (forced) CPU devices, the sharded run gives the unsharded losses."""

import json
import os
import subprocess
import sys

SCRIPT = r"""
import json, jax, numpy as np
import pinnflow as pf, problems
assert jax.device_count() == 2, jax.devices()
t = problems.get("gaussian", mean=(1.0, -0.5), cov=((1.5, 0.4), (0.4, 0.6)))
base = ["network.width=16", "network.depth=2", "optim.steps=100", "optim.batch_size=64", "optim.chunk=50",
        "optim.checkpoint_every=50", "sampler.steps=10"]
out = {}
for dp in (True, False):
    cfg = pf.Config(loss="log_ce").override(base + [f"data_parallel={str(dp).lower()}"])
    run = pf.train(t, cfg, progress=False)
    s = pf.sample(run, jax.random.PRNGKey(0), 256)
    out[str(dp)] = {"loss": run.history["loss"].tolist(), "log_w": np.asarray(s.log_w).tolist(),
                    "sharded": len(s.x.sharding.device_set)}
print(json.dumps(out))
"""


def test_sharded_training_and_sampling_match_unsharded():
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2", "JAX_PLATFORMS": "cpu"}
    res = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    import numpy as np

    np.testing.assert_allclose(out["True"]["loss"], out["False"]["loss"], rtol=1e-4)
    np.testing.assert_allclose(out["True"]["log_w"], out["False"]["log_w"], rtol=1e-4, atol=1e-5)
    assert out["True"]["sharded"] == 2 and out["False"]["sharded"] == 1
