"""E3's maths against independent computations: the analytic derivative of L and a plain numpy
descent; the published numbers come from the suite file, where they live."""

import numpy as np
import pytest
import torch

from conftest import ROOT
from dlrepro.experiments.gradient_descent import Params
from dlrepro.experiments.gradient_descent import run as gd
from dlrepro.suite import load

CLAIMS = {c.id: c for c in load(ROOT / "suites" / "gradient_descent.toml").model.claims}
PUBLISHED = {(c.where["eta"], c.where["w0"]): c.value
             for c in CLAIMS.values() if c.metric == "iterate"}
GLOBAL_MIN = CLAIMS["eta-0125-from-0578-global"].value  # EXPERIMENTS.md: 0.2974 after 200 steps
SHALLOW_MIN = CLAIMS["eta-0125-from-0683-shallow"].value

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


@pytest.mark.parametrize("eta, w0", list(PUBLISHED))
def test_descent_matches_numpy_and_the_published_iterates(eta, w0):
    ours = gd.descend(gd.loss, torch.tensor(w0, dtype=torch.float64), eta, 200).numpy()
    np.testing.assert_allclose(ours, numpy_descent(w0, eta, 200), rtol=1e-10, atol=1e-12)
    assert np.abs(ours[:12] - PUBLISHED[(eta, w0)]).max() < 5e-3


def test_minima_are_located_where_the_analytic_derivative_vanishes():
    deep, shallow = gd.minima()
    assert abs(dloss(deep)) < 1e-12 and abs(dloss(shallow)) < 1e-12
    u = np.linspace(0, 1, 1_000_001)
    values = gd.loss(torch.from_numpy(u)).numpy()
    assert abs(u[values.argmin()] - deep) < 1e-6
    assert abs(deep - GLOBAL_MIN) < 1e-4 and abs(shallow - SHALLOW_MIN) < 1e-4


def test_curvature():
    h, deep = 1e-4, gd.minima()[0]
    second = (dloss(deep + h) - dloss(deep - h)) / (2 * h)
    assert gd.curvature(deep) == pytest.approx(second, rel=1e-3)


def test_a_mode_leaves_what_it_does_not_read_out_of_its_identity():
    assert set(Params(mode="basins", w0=0.9).model_dump()) == {"mode", "eta", "steps", "starts"}
    assert "eta" not in Params(mode="sweep").model_dump()
    assert Params(mode="trajectory", w0=0.9).model_dump()["w0"] == 0.9


def test_valley_minima_are_the_lifted_1d_minima():
    for m in gd.minima():
        start = torch.tensor([[m, 0.3 + 0.4 * m]], dtype=torch.float64)
        end = gd.descend(gd.valley, start, 0.1, 2000)[-1, 0]
        u, v = end.tolist()
        assert abs(u - m) < 1e-3 and abs(v - gd.valley_floor(u)) < 1e-6
