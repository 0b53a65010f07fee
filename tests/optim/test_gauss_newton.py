"""Gauss–Newton: exact on linear least squares, matrix-free Gramian = dense JᵀJ, CG = sample-space solve,
the line search never increases the loss it judges, and fine-tuning a trained run lowers its loss."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

import pinnflow as pf
import problems
from pinnflow.optim.gauss_newton import GaussNewtonConfig, GNState, choose_solver, line_search, make_step
from pinnflow.optim.linsolve import cg, cholesky_solve, gram
from pinnflow.pinn.finetune import gauss_newton


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


def linear_problem(seed=0, n=40, p=7):
    """r_i(θ) = a_iᵀθ − b_i: the collocation point carries the row (x = a_i, t = b_i)."""
    rng = np.random.default_rng(seed)
    A, b = rng.normal(size=(n, p)), rng.normal(size=n)

    def point(theta, x, t):
        return jnp.atleast_1d(x @ theta - t)

    return A, b, point


@pytest.mark.parametrize("solver", ["cg", "sample-space"])
def test_one_undamped_step_solves_linear_least_squares(solver):
    A, b, point = linear_problem(n=40 if solver == "cg" else 5, p=7)
    X, ts = jnp.asarray(A), jnp.asarray(b)
    theta0 = jnp.zeros(A.shape[1])
    gn = GaussNewtonConfig(damping=1e-12, cg_iters=100, cg_tol=1e-14, adapt_damping=False, ls_steps=1)
    step, loss = make_step(point, lambda th: th, gn, solver)
    state = GNState(jnp.zeros_like(theta0), jnp.asarray(gn.damping))
    theta1, _, info = step(theta0, state, X, ts, X, ts)
    exact = np.linalg.lstsq(A, b, rcond=None)[0]
    np.testing.assert_allclose(theta1, exact, rtol=1e-6, atol=1e-8)
    assert info["eta"] == 1.0
    if solver == "sample-space":  # under-determined: the minimum-norm solution, residual zero
        assert float(loss(theta1, X, ts)) < 1e-16


def test_matrix_free_gramian_equals_dense_and_solvers_agree():
    rng = np.random.default_rng(1)
    W = jnp.asarray(rng.normal(size=(6, 2)))
    params = {"w": W, "b": jnp.asarray(rng.normal(size=6))}
    theta, unravel = ravel_pytree(params)
    xs = jnp.asarray(rng.normal(size=(9, 2)))

    def rvec(th):
        p = unravel(th)
        return jnp.tanh(xs @ p["w"].T + p["b"]).sum(1) - jnp.sin(xs[:, 0])

    r, jvp = jax.linearize(rvec, theta)
    vjp = jax.linear_transpose(jvp, theta)
    J = jax.jacfwd(rvec)(theta)
    v = jnp.asarray(rng.normal(size=theta.shape))
    np.testing.assert_allclose(vjp(jvp(v))[0], J.T @ (J @ v), rtol=1e-12)
    eps = 1e-3
    g = J.T @ r
    x_cg, iters = cg(lambda u: vjp(jvp(u))[0] + eps * u, g, maxiter=200, tol=1e-14)
    x_ss = J.T @ cholesky_solve(J @ J.T + eps * jnp.eye(J.shape[0]), r)
    x_dense = jnp.linalg.solve(J.T @ J + eps * jnp.eye(theta.size), g)
    np.testing.assert_allclose(x_cg, x_dense, rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(x_ss, x_dense, rtol=1e-7, atol=1e-10)
    assert 0 < int(iters) <= 200
    x_jo, _ = cg(lambda u: vjp(jvp(u))[0] + eps * u, g, maxiter=200, tol=1e-14, backend="jaxopt")
    np.testing.assert_allclose(x_jo, x_dense, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("n, blocks", [(9, 1), (9, 4), (16, 8), (5, 8)])
def test_blocked_gram_equals_J_Jt(n, blocks):
    J = jnp.asarray(np.random.default_rng(n).normal(size=(n, 7)))
    K = gram(J, blocks)
    np.testing.assert_allclose(K, J @ J.T, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(K, K.T)


def test_line_search_never_increases_the_loss():
    f = lambda th: jnp.sum((th - 1.0) ** 2) + jnp.sum(jnp.sin(5 * th))  # noqa: E731
    rng = np.random.default_rng(2)
    for rule in ("grid", "armijo"):
        for _ in range(20):
            theta = jnp.asarray(rng.normal(size=4))
            delta = jnp.asarray(rng.normal(size=4)) * 3  # often an ascent direction
            L0 = f(theta)
            eta, L1 = line_search(f, theta, delta, L0, 10, rule, 0.0)
            assert L1 <= L0 and np.isclose(L1, f(theta - eta * delta))
    # non-finite trials are rejected
    g = lambda th: jnp.where(th[0] < 0.5, jnp.nan, th @ th)  # noqa: E731
    eta, L1 = line_search(g, jnp.array([1.0, 1.0]), jnp.array([1.0, 0.0]), g(jnp.array([1.0, 1.0])), 1,
                               "grid", 0.0)
    assert eta == 0 and L1 == 2.0


def test_choose_solver():
    gn = GaussNewtonConfig(solver="auto", memory_mb=100)
    assert choose_solver(gn, 1000, 20000, 4) == "sample-space"
    assert choose_solver(gn, 30000, 20000, 4) == "cg"
    assert choose_solver(GaussNewtonConfig(solver="auto", memory_mb=1), 1000, 20000, 8) == "cg"
    assert choose_solver(GaussNewtonConfig(solver="cg"), 10, 20000, 4) == "cg"


# the sample-space solver equals the dense solve in the test above; its end-to-end run is a slow check
@pytest.mark.parametrize("solver", ["cg", pytest.param("sample-space", marks=pytest.mark.slow)])
def test_finetuning_lowers_the_loss_and_resumes(solver, tmp_path):
    target = problems.get("gaussian", mean=(1.0, -0.5), cov=((1.5, 0.4), (0.4, 0.6)), log_Z=0.7)
    cfg = pf.Config(loss="log_ce").override([
        "network.width=16", "network.depth=2", "network.num_freq=2", "optim.steps=300", "optim.batch_size=128",
        "optim.chunk=100", "optim.checkpoint_every=100", "sampler.steps=20", "sampler.sinkhorn_n=100",
        "gn.steps=4", "gn.batch_size=256", "gn.val_batch_size=512", f"gn.solver={solver}", "gn.cg_iters=50",
        "gn.checkpoint_every=2", "gn.resample_every=4"])
    run = pf.train(target, cfg, run_dir=tmp_path, progress=False)
    ft = gauss_newton(run, progress=False)
    h = ft.history
    assert (h["val_loss_after"] <= h["val_loss"]).all()
    assert h["val_loss_after"].iloc[-1] < 0.5 * h["val_loss"].iloc[0], h.to_string()
    assert set(h["solver"]) == {solver}
    # resume: a new fine-tuning in the same directory continues to the same parameters
    again = gauss_newton(run, config=cfg.override(["gn.steps=6"]), run_dir=tmp_path / "finetune", resume=True,
                         progress=False)
    assert again.step == 6
    with pytest.raises(FileExistsError):
        gauss_newton(run, progress=False)
    loaded = pf.load_run(tmp_path / "finetune", target=target)
    for a, b in zip(jax.tree_util.tree_leaves(loaded.params), jax.tree_util.tree_leaves(again.params), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b))


def test_finetuning_uses_the_runs_trajectory_collocation():
    """A run trained with trajectory collocation is fine-tuned on the same mix (App. D.1): a quarter of both
    batches along trajectories of the current model, and the step still lowers the held-out loss."""
    target = problems.get("gaussian", mean=(1.0, -0.5), cov=((1.5, 0.4), (0.4, 0.6)), log_Z=0.7)
    cfg = pf.Config(loss="log_ce").override([
        "network.width=16", "network.depth=2", "network.num_freq=2", "optim.steps=200", "optim.batch_size=128",
        "optim.chunk=100", "sampler.steps=20", "collocation.trajectory_fraction=0.25",
        "collocation.trajectory_count=64", "collocation.trajectory_steps=10", "collocation.trajectory_every=100",
        "gn.steps=3", "gn.batch_size=256", "gn.val_batch_size=512", "gn.solver=sample-space"])
    run = pf.train(target, cfg, progress=False)
    h = gauss_newton(run, progress=False).history
    assert (h["trajectory_points"] == 64).all()
    assert (h["val_loss_after"] <= h["val_loss"]).all() and h["val_loss_after"].iloc[-1] < h["val_loss"].iloc[0]


def test_lbfgs_comparison_optimiser_lowers_the_loss():
    from pinnflow.pinn.finetune import lbfgs

    target = problems.get("gaussian", mean=(1.0, -0.5), cov=((1.5, 0.4), (0.4, 0.6)), log_Z=0.7)
    cfg = pf.Config(loss="log_ce").override([
        "network.width=16", "network.depth=2", "network.num_freq=2", "optim.steps=200", "optim.batch_size=128",
        "optim.chunk=100", "optim.checkpoint_every=100"])
    run = pf.train(target, cfg, progress=False)
    tuned = lbfgs(run, steps=60, batch_size=512, resample_every=30)
    assert tuned.step == 60
    h = tuned.history
    assert h["loss"].iloc[-1] < run.history["loss"].iloc[-1]
