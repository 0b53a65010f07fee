"""Data parallelism across processes: two CPU processes joined by `jax.distributed` (gloo collectives on
localhost) train one sharded run, and their losses match the single-process run."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

WORKER = Path(__file__).with_name("distributed_worker.py")
TIMEOUT = 240


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_process_training_matches_single_process(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}  # one CPU device per process
    env["JAX_PLATFORMS"] = "cpu"
    port = _free_port()
    jobs = {name: (n, pid) for name, n, pid in (("p0", 2, 0), ("p1", 2, 1), ("single", 1, 0))}
    procs = {name: subprocess.Popen([sys.executable, str(WORKER), str(port), str(n), str(pid),
                                     str(tmp_path / f"{name}.json")],
                                    env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for name, (n, pid) in jobs.items()}
    logs = {}
    try:
        for name, p in procs.items():
            logs[name] = p.communicate(timeout=TIMEOUT)[0]
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
                p.communicate()
    for name, p in procs.items():
        assert p.returncode == 0, f"{name} exited with {p.returncode}:\n{logs[name][-3000:]}"
    out = {name: json.loads((tmp_path / f"{name}.json").read_text()) for name in procs}

    assert [out["p0"]["process_index"], out["p1"]["process_index"]] == [0, 1]
    assert out["p0"]["mesh_devices"] == out["p1"]["mesh_devices"] == 2 and out["single"]["mesh_devices"] == 1
    assert len(out["p0"]["loss"]) == 2
    assert out["p0"]["loss"] == out["p1"]["loss"]  # one run: both processes see the same replicated outputs
    np.testing.assert_allclose(out["p0"]["loss"], out["single"]["loss"], rtol=1e-4)
