"""A real kill: `pinnflow train` is SIGKILLed mid-run, `--resume` finishes it, and the result equals an
uninterrupted run bit for bit (slow: two CLI trainings in subprocesses)."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from pinnflow.core import checkpoint

SETTINGS = ["network.width=16", "network.depth=2", "optim.batch_size=64", "optim.steps=3000",
            "optim.chunk=100", "optim.checkpoint_every=200", "optim.lr_final=1e-4"]


def _train(out, *extra):
    cmd = [sys.executable, "-m", "pinnflow.cli", "train", "--problem", "gmm", "--loss", "log_ce", "--out",
           str(out), "--quiet", *extra, "--set", *SETTINGS]
    return cmd


@pytest.mark.slow
def test_sigkill_then_resume_matches_uninterrupted(tmp_path):
    subprocess.run(_train(tmp_path / "full"), check=True, capture_output=True)
    proc = subprocess.Popen(_train(tmp_path / "killed"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt = tmp_path / "killed" / "checkpoint.npz"
    deadline = time.time() + 300
    while time.time() < deadline:
        if ckpt.exists() and checkpoint.read(ckpt)[1]["step"] >= 1000:
            break
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    step_at_kill = checkpoint.read(ckpt)[1]["step"]
    assert 1000 <= step_at_kill < 3000, step_at_kill
    subprocess.run(_train(tmp_path / "killed", "--resume"), check=True, capture_output=True)
    (a, meta_a), (b, meta_b) = checkpoint.read(tmp_path / "full" / "checkpoint.npz"), checkpoint.read(ckpt)
    assert meta_a["step"] == meta_b["step"] == 3000
    assert a.keys() == b.keys()
    for name in a:
        for x, y in zip(a[name], b[name], strict=True):
            np.testing.assert_array_equal(x, y)
