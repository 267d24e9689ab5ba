"""E2's maths against independent computations."""

import numpy as np
import torch

from dlrepro.experiments.universal_approximation import Params
from dlrepro.experiments.universal_approximation import run as ua


def test_terrain_is_the_documented_transect():
    x, y, heights = ua.terrain()
    assert len(x) == 403 and heights.min() == 251 and heights.max() == 1035
    assert abs(x.mean()) < 1e-12 and abs(y.std() - 1) < 1e-12


def test_lstsq_matches_numpy():
    rng = np.random.default_rng(0)
    features, y = rng.normal(size=(50, 7)), rng.normal(size=50)
    design = np.c_[features, np.ones(50)]
    coef = np.linalg.lstsq(design, y, rcond=None)[0]
    expected = np.mean((design @ coef - y) ** 2)
    assert abs(ua.lstsq_mse(torch.from_numpy(features), torch.from_numpy(y)) - expected) < 1e-12


def test_stacked_seeds_train_exactly_like_single_ones():
    x, y, _ = ua.terrain()
    x, y = torch.from_numpy(x), torch.from_numpy(y)
    p = Params(hidden=20, steps=50)
    stacked = ua.train([3, 4], p, x, y)
    for i, seed in enumerate([3, 4]):
        single = ua.train([seed], p, x, y)
        for a, b in zip(stacked, single):
            torch.testing.assert_close(a[i], b[0], rtol=1e-9, atol=1e-12)


def test_initial_kinks_lie_in_the_data_range():
    x = torch.from_numpy(ua.terrain()[0])
    w1, b1, _, _ = ua.init([0], 100, x)
    kinks = -b1 / w1
    assert (kinks >= x.min()).all() and (kinks <= x.max()).all()


def test_without_relu_the_model_is_a_line():
    x = torch.from_numpy(ua.terrain()[0])
    params = ua.init([0], 50, x)
    f = ua.predict(params, x, "none")[0].detach().numpy()
    slope, intercept = np.polyfit(x.numpy(), f, 1)
    np.testing.assert_allclose(f, slope * x.numpy() + intercept, atol=1e-10)
