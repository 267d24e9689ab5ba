"""E3's maths against independent computations: the analytic derivative of L and a plain numpy descent."""

import numpy as np
import pytest
import torch

from dlrepro.experiments.gradient_descent import experiment as gd

A, C, S1, S2 = (0.4222, 0.4193), (0.1426, 0.2717, 0.1822), (0.1313, 0.9118, 0.1771), None


def dloss(u):
    """L'(u) by hand."""
    (a, m), (h1, c1, s1), (h2, c2, s2) = A, C, S1
    g1 = h1 * np.exp(-(u - c1) ** 2 / (2 * s1 ** 2)) * (u - c1) / s1 ** 2
    g2 = h2 * np.exp(-(u - c2) ** 2 / (2 * s2 ** 2)) * (u - c2) / s2 ** 2
    return 2 * a * (u - m) + g1 + g2


def numpy_descent(w0, eta, steps):
    w = [w0]
    for _ in range(steps):
        w.append(w[-1] - eta * dloss(w[-1]))
    return np.array(w)


def test_autograd_gradient_matches_the_analytic_one():
    u = torch.linspace(0, 1, 101, dtype=torch.float64)
    path = gd.descend(gd.loss, u, 1.0, 1)  # one step of size 1: w1 = w0 − L'(w0)
    np.testing.assert_allclose((u - path[1]).numpy(), dloss(u.numpy()), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("eta, w0", list(gd.PUBLISHED))
def test_descent_matches_numpy_and_the_published_iterates(eta, w0):
    ours = gd.descend(gd.loss, torch.tensor(w0, dtype=torch.float64), eta, 200).numpy()
    np.testing.assert_allclose(ours, numpy_descent(w0, eta, 200), rtol=1e-10, atol=1e-12)
    assert np.abs(ours[:12] - gd.PUBLISHED[(eta, w0)]).max() < 5e-3


def test_minima_and_curvature():
    u = np.linspace(0, 1, 1_000_001)
    values = gd.loss(torch.from_numpy(u)).numpy()
    assert abs(u[values.argmin()] - gd.GLOBAL_MIN) < 1e-3
    h = 1e-4
    second = (dloss(gd.GLOBAL_MIN + h) - dloss(gd.GLOBAL_MIN - h)) / (2 * h)
    assert gd.curvature(gd.GLOBAL_MIN) == pytest.approx(second, rel=1e-3)


def test_valley_minima_are_the_lifted_1d_minima():
    for m in (gd.GLOBAL_MIN, gd.SHALLOW_MIN):
        start = torch.tensor([[m, 0.3 + 0.4 * m]], dtype=torch.float64)
        end = gd.descend(gd.valley, start, 0.1, 2000)[-1, 0]
        assert abs(end[0].item() - m) < 1e-3 and abs(end[1].item() - (0.3 + 0.4 * end[0].item())) < 1e-6
