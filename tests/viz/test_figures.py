"""Figures (issue 12, item 5): every function writes a PNG, the backend is never switched, `plot_samples` takes
what `pf.sample` returns, the density path says its t = T panel is the target by construction and shows the
model's samples beside it, and d > 2 figures say that densities are a slice while samples are projected."""

import jax
import matplotlib
import numpy as np
import pytest

import pinnflow as pf
import problems
from pinnflow.pinn.train import Run, build
from pinnflow.viz import figures, plot_density_path, plot_samples, plot_trajectories

TINY = ["network.width=8", "network.depth=1", "network.num_freq=1", "optim.steps=20", "optim.chunk=10",
        "optim.checkpoint_every=10", "optim.batch_size=32", "sampler.steps=4"]


def _config():
    return pf.Config(loss="log_ce").override(TINY)


@pytest.fixture(scope="module")
def run():
    return pf.train(problems.get("gmm"), _config(), progress=False)


@pytest.fixture(scope="module")
def drawn(run):
    return pf.sample(run, jax.random.PRNGKey(0), 300)


@pytest.fixture(scope="module")
def run3d():
    """An untrained 3-D run (the wording does not depend on training; `build` avoids a second compile)."""
    target = problems.get("gaussian", mean=(0, 0, 0), cov=((1, 0, 0), (0, 1, 0), (0, 0, 1)), log_Z=0.0)
    config = _config()
    with pf.precision(config.precision):
        loss, setup, _, graphdef, params = build(target, config)
    return Run(config, target, loss, setup, graphdef, params)


@pytest.fixture
def no_backend_switch(monkeypatch):
    """Fail on any `matplotlib.use`, and check the backend name is unchanged."""
    before = matplotlib.get_backend()

    def refuse(*args, **kwargs):
        raise AssertionError(f"matplotlib.use{args} called: figures must not switch the backend")

    monkeypatch.setattr(matplotlib, "use", refuse)
    yield
    assert matplotlib.get_backend() == before


def _png(path):
    data = path.read_bytes()
    assert len(data) > 1000 and data[:8] == b"\x89PNG\r\n\x1a\n"


def _titles(fig):
    return [ax.get_title() for ax in fig.axes]


def test_each_function_writes_a_png_without_touching_the_backend(run, drawn, tmp_path, no_backend_switch):
    assert plot_samples(run, drawn, tmp_path / "s.png") == tmp_path / "s.png"
    assert plot_trajectories(run, tmp_path / "t.png", n=20, steps=4) == tmp_path / "t.png"
    assert plot_density_path(run, str(tmp_path / "d.png"), grid=24, samples=drawn) == tmp_path / "d.png"
    for name in ("s", "t", "d"):
        _png(tmp_path / f"{name}.png")


@pytest.mark.parametrize("kind", ["Samples", "jax", "numpy"])
def test_plot_samples_accepts_samples_jax_and_numpy(run, drawn, tmp_path, kind):
    arg = {"Samples": drawn, "jax": drawn.x, "numpy": np.asarray(drawn.x)}[kind]
    _png(plot_samples(run, arg, tmp_path / f"{kind}.png", title="custom"))


def test_plot_samples_drops_non_finite_and_says_how_many(run, drawn):
    x = np.asarray(drawn.x).copy()
    x[:3, 0] = np.nan
    x[3, 1] = np.inf
    fig = figures._samples_figure(run, x)
    assert "4 of 300 samples with non-finite coordinates dropped" in fig.get_suptitle()
    assert "dropped" not in figures._samples_figure(run, drawn).get_suptitle()


def test_colour_bars(run, drawn):
    """A colour bar beside the contours (plot_samples) and one for the density images (density path)."""
    fig = figures._samples_figure(run, drawn)
    assert any("log ρ" in ax.get_ylabel() for ax in fig.axes)  # the colour bar's label
    fig = figures._density_path_figure(run, times=[0.0, 1.0], grid=16, samples=drawn)
    assert len(fig.axes) == 2 + 1 + 1  # two times, the model-samples panel, the colour bar
    assert any("exp(V" in ax.get_ylabel() for ax in fig.axes)


def test_density_path_labels_the_target_panel_and_adds_model_samples(run):
    fig = figures._density_path_figure(run, grid=16, n_samples=200)  # draws its own ODE samples
    titles = _titles(fig)
    end = [t for t in titles if t.startswith("t = T")]
    assert len(end) == 1 and "target" in end[0] and "eq. 10" in end[0]
    assert "prior" in titles[0]
    last = titles[5]  # five times by default, then the model's samples
    assert last.startswith("model samples at T") and "ESS" in last
    value = float(last.split("ESS ")[1].rstrip(")"))
    assert 0.0 < value <= 1.0


def test_density_path_ess_uses_finite_weights_only(run, drawn):
    log_w = np.asarray(drawn.log_w).copy()
    log_w[:5] = np.nan
    fig = figures._density_path_figure(run, times=[1.0], grid=16, samples=drawn._replace(log_w=log_w))
    expected = float(pf.metrics.ess(log_w[5:]))
    assert f"ESS {expected:.3f}" in _titles(fig)[1]


def test_3d_target_says_slice_and_projection(run3d, tmp_path, no_backend_switch):
    x = np.asarray(jax.random.normal(jax.random.PRNGKey(1), (200, 3)))
    fig = figures._samples_figure(run3d, x)
    assert "slice x₃ = centre" in _titles(fig)[0] and "projected" in _titles(fig)[0]
    fig = figures._density_path_figure(run3d, times=[0.0, 1.0], grid=16, n_samples=100)
    assert "slice x₃ = centre" in fig.get_suptitle() and "samples projected" in fig.get_suptitle()
    _png(plot_samples(run3d, x, tmp_path / "s3.png"))


def test_slice_note():
    assert figures._slice_note(2) == ""
    assert "x₃…x_d = centre" in figures._slice_note(5)
