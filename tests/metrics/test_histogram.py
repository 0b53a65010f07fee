"""Exact histogram W2 (paper 002, Tables 1–3): nearest-node binning by hand, W2² against brute-force OT over
permutations, exact values for self and translated histograms, the errors, and the noise floor's decay."""

import itertools

import numpy as np
import pytest

from pinnflow.metrics.histogram import HistogramGrid, histogram, noise_floor, w2_squared, w2_squared_samples


def test_grid_nodes_are_linspace_meshgrid_ij():
    g = HistogramGrid(lo=(0.0, -1.0), hi=(2.0, 1.0), bins=3)
    assert g.nodes.shape == (9, 2)
    np.testing.assert_array_equal(g.spacing, [1.0, 1.0])
    np.testing.assert_array_equal(g.nodes[:4], [[0, -1], [0, 0], [0, 1], [1, -1]])
    np.testing.assert_array_equal(g.nodes[-1], [2, 1])
    sq = HistogramGrid.square(2.0, bins=5, d=3)
    assert sq.lo == (-2.0,) * 3 and sq.hi == (2.0,) * 3 and sq.nodes.shape == (125, 3)
    assert HistogramGrid.square(1.0).bins == 64


def test_nearest_node_binning_by_hand():
    g = HistogramGrid(lo=(0.0, 0.0), hi=(2.0, 2.0), bins=3)  # h = 1, box [-0.5, 2.5]^2
    x = np.array([
        [0.0, 0.0],    # at node (0, 0) -> flat 0
        [1.0, 2.0],    # at node (1, 2) -> flat 5
        [0.3, 1.6],    # between nodes, nearest (0, 2) -> flat 2
        [2.4, -0.4],   # beyond the end nodes but inside the box, nearest (2, 0) -> flat 6
        [1.0, 2.6],    # outside the box: dropped
        [0.7, 1.2],    # nearest (1, 1) -> flat 4
    ])
    w, kept = histogram(x, g)
    expected = np.zeros(9)
    expected[[0, 5, 2, 6, 4]] = 0.2
    np.testing.assert_allclose(w, expected, rtol=0, atol=1e-15)
    assert kept == pytest.approx(5 / 6)
    np.testing.assert_array_equal(g.nodes[5], [1.0, 2.0])
    with pytest.raises(ValueError, match="1 of 6 samples lie outside"):
        histogram(x, g, outside="raise")
    w_in, kept_in = histogram(x[:4], g, outside="raise")
    assert kept_in == 1.0 and w_in.sum() == pytest.approx(1.0)


def _brute_force_w2_squared(p, q, nodes, n_atoms=6):
    """min over permutations of the mean squared distance between the atom lists (weights multiples of 1/n)."""
    xs = np.repeat(nodes, np.rint(p * n_atoms).astype(int), axis=0)
    ys = np.repeat(nodes, np.rint(q * n_atoms).astype(int), axis=0)
    assert len(xs) == len(ys) == n_atoms
    d2 = ((xs[:, None, :] - ys[None, :, :]) ** 2).sum(-1)
    return min(d2[np.arange(n_atoms), list(perm)].mean() for perm in itertools.permutations(range(n_atoms)))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_w2_squared_matches_brute_force_on_a_3x3_grid(seed):
    g = HistogramGrid(lo=(-1.0, 0.0), hi=(1.0, 3.0), bins=3)  # unequal spacings 1 and 1.5
    rng = np.random.default_rng(seed)
    x = g.nodes[rng.integers(0, 9, size=6)] + rng.uniform(-0.3, 0.3, size=(6, 2))  # nearest node unchanged
    y = g.nodes[rng.integers(0, 9, size=6)]
    p, _ = histogram(x, g)
    q, _ = histogram(y, g)
    brute = _brute_force_w2_squared(p, q, g.nodes)
    assert brute > 0
    assert abs(w2_squared(p, q, g) - brute) < 1e-12


def test_w2_squared_self_is_zero_and_translation_is_exact():
    g = HistogramGrid(lo=(-1.0, -2.0), hi=(1.0, 2.0), bins=21)  # h = (0.1, 0.2)
    rng = np.random.default_rng(3)
    base = np.zeros((21, 21))
    base[5:12, 6:13] = rng.uniform(0.0, 1.0, size=(7, 7)) * (rng.uniform(size=(7, 7)) > 0.3)
    base /= base.sum()
    assert w2_squared(base.ravel(), base.ravel(), g) == 0.0
    for k0, k1 in [(3, 0), (0, 4), (-2, 5)]:
        shifted = np.roll(base, (k0, k1), axis=(0, 1))  # no mass wraps: support stays inside
        assert shifted.sum() == pytest.approx(1.0) and shifted[:2].sum() == 0 and shifted[:, -3:].sum() == 0
        expected = (k0 * 0.1) ** 2 + (k1 * 0.2) ** 2
        assert w2_squared(base.ravel(), shifted.ravel(), g) == pytest.approx(expected, rel=1e-12)


def test_w2_squared_samples_reports_its_definition():
    g = HistogramGrid.square(1.0, bins=8)
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(500, 2))
    out = w2_squared_samples(x, x + np.array([3.0, 0.0]) * g.spacing, g, min_kept=0.0)
    assert set(out) == {"w2_squared", "kept_x", "kept_y", "bins", "box", "solver"}
    assert out["kept_x"] == 1.0 and 0.5 < out["kept_y"] < 1.0 and out["bins"] == 8
    assert out["box"] == {"lo": (-1.0, -1.0), "hi": (1.0, 1.0)} and "ot.emd2" in out["solver"]
    assert out["w2_squared"] > 0


def test_errors_name_the_problem():
    g = HistogramGrid.square(1.0, bins=4)
    x = np.zeros((10, 2))
    x[[1, 4], 0] = np.nan
    with pytest.raises(ValueError, match="2 of 10 samples are non-finite"):
        histogram(x, g)
    with pytest.raises(ValueError, match=r"shape \(n, 2\)"):
        histogram(np.zeros(10), g)
    with pytest.raises(ValueError, match=r"shape \(n, 2\)"):
        histogram(np.zeros((10, 3)), g)
    far = np.concatenate([np.zeros((3, 2)), np.full((7, 2), 5.0)])
    with pytest.raises(ValueError, match=r"only 30\.0% of the samples.*wider box"):
        histogram(far, g)
    with pytest.raises(ValueError, match="none of the 7 samples.*wider box"):
        histogram(np.full((7, 2), 5.0), g)
    with pytest.raises(ValueError, match="bins must be >= 2"):
        HistogramGrid((0.0, 0.0), (1.0, 1.0), bins=1)
    with pytest.raises(ValueError, match="lo must be < hi"):
        HistogramGrid((0.0, 1.0), (1.0, 1.0))
    with pytest.raises(ValueError, match="mismatched lengths"):
        HistogramGrid((0.0, 0.0), (1.0,))
    w = np.full(16, 1 / 16)
    with pytest.raises(ValueError, match=r"shape \(16,\)"):
        w2_squared(w, w[:-1], g)
    bad = w.copy()
    bad[0] = -0.1
    with pytest.raises(ValueError, match="negative"):
        w2_squared(bad, w, g)


def test_noise_floor_decreases_with_n():
    g = HistogramGrid.square(1.0, bins=16)

    def uniform(seed, n):
        return np.random.default_rng(seed).uniform(-1.0, 1.0, size=(n, 2))

    small = noise_floor(uniform, 2_000, g, seeds=(0, 1))
    large = noise_floor(uniform, 32_000, g, seeds=(0, 1))
    assert 0 < large < small / 2
    with pytest.raises(ValueError, match="two different seeds"):
        noise_floor(uniform, 10, g, seeds=(0, 0))


def test_exported_from_pinnflow_metrics():
    import sys

    import pinnflow.metrics as m

    module = sys.modules["pinnflow.metrics.histogram"]  # the attribute `m.histogram` is the function
    assert m.histogram is histogram
    for name in module.__all__:
        assert getattr(m, name) is getattr(module, name) and name in m.__all__
