"""Data parallelism: on two (forced) CPU devices, the sharded run gives the unsharded losses."""

import json
import os
import subprocess
import sys

import pytest

SCRIPT = r"""
import json, sys, jax, numpy as np
import pinnflow as pf, problems
SOLVERS = sys.argv[1].split(",")
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
    if dp:
        trained = run
# Gauss-Newton from the same trained parameters, sharded and not (GN is sensitive to its start)
for dp in (True, False):
    for solver in SOLVERS:
        gcfg = trained.config.override([f"data_parallel={str(dp).lower()}", "gn.steps=3", "gn.batch_size=64",
                                        "gn.val_batch_size=64", f"gn.solver={solver}", "gn.cg_iters=5"])
        fine = pf.gauss_newton(trained, config=gcfg, progress=False)
        out[str(dp)][solver] = fine.history["val_loss_after"].tolist()
print(json.dumps(out))
"""


def _sharded_vs_unsharded(solvers: tuple[str, ...]) -> None:
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2", "JAX_PLATFORMS": "cpu"}
    res = subprocess.run([sys.executable, "-c", SCRIPT, ",".join(solvers)], env=env, capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    import numpy as np

    np.testing.assert_allclose(out["True"]["loss"], out["False"]["loss"], rtol=1e-4)
    np.testing.assert_allclose(out["True"]["log_w"], out["False"]["log_w"], rtol=1e-4, atol=1e-5)
    # float64 Gauss-Newton agrees to rounding. (With 20 CG iterations on this ill-conditioned Gramian, CG
    # amplifies the rounding of the different reduction order to 1e-4..1e-2 relative; 5 iterations do not.)
    for solver in solvers:
        np.testing.assert_allclose(out["True"][solver], out["False"][solver], rtol=1e-8)
    assert out["True"]["sharded"] == 2 and out["False"]["sharded"] == 1


def test_sharded_training_gauss_newton_and_sampling_match_unsharded():
    _sharded_vs_unsharded(("cg",))


@pytest.mark.slow  # the sample-space solver sharded; the default test covers training, sampling and CG
def test_sharded_sample_space_gauss_newton_matches_unsharded():
    _sharded_vs_unsharded(("sample-space",))
