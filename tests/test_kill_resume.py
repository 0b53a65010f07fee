"""A real kill: `pinnflow train` is SIGKILLed mid-run, `--resume` finishes it, and the result equals an
uninterrupted run bit for bit (slow: two CLI trainings in subprocesses)."""

import os
import pickle
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

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
    ckpt = tmp_path / "killed" / "checkpoint.pkl"
    deadline = time.time() + 300
    while time.time() < deadline:
        if ckpt.exists() and pickle.loads(ckpt.read_bytes())["step"] >= 1000:
            break
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    step_at_kill = pickle.loads(ckpt.read_bytes())["step"]
    assert 1000 <= step_at_kill < 3000, step_at_kill
    subprocess.run(_train(tmp_path / "killed", "--resume"), check=True, capture_output=True)
    a = pickle.loads((tmp_path / "full" / "checkpoint.pkl").read_bytes())
    b = pickle.loads(ckpt.read_bytes())
    assert a["step"] == b["step"] == 3000
    for x, y in zip(a["params"] + a["state"], b["params"] + b["state"], strict=True):
        np.testing.assert_array_equal(x, y)
