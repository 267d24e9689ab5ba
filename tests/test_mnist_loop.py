"""benchmarks/mnist_loop.py's fast training steps do the eager step's maths: torch.compile on the
CPU here, the CUDA graph where a GPU is visible."""

import importlib.util
import shutil
from pathlib import Path

import pytest
import torch

from dlrepro.experiments.mnist_classifier import trained

pytestmark = pytest.mark.slow  # torch.compile: half a minute of compiling

spec = importlib.util.spec_from_file_location(
    "mnist_loop", Path(__file__).resolve().parents[1] / "benchmarks" / "mnist_loop.py")
mnist_loop = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mnist_loop)

STEPS = 3


def trained_weights(make_step, device: str) -> tuple[list[torch.Tensor], list[float]]:
    """The handout CNN after STEPS SGD steps on fixed random batches: weights and losses."""
    torch.manual_seed(0)
    batches = [(torch.randn(8, 1, 28, 28, device=device), torch.randint(10, (8,), device=device))
               for _ in range(STEPS)]
    model = trained.build("cnn_handout").to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    step = make_step(model, optimizer, *batches[0])
    losses = [step(x, y)[0].item() for x, y in batches]
    return [p.detach().cpu() for p in model.parameters()], losses


def assert_same_training(make_step, device: str) -> None:
    eager = trained_weights(lambda model, opt, x, y: mnist_loop.eager_step(model, opt), device)
    fast = trained_weights(make_step, device)
    assert fast[1] == pytest.approx(eager[1], rel=1e-4)
    for mine, theirs in zip(fast[0], eager[0]):
        torch.testing.assert_close(mine, theirs, rtol=1e-4, atol=1e-5)
    assert eager[1][0] != eager[1][-1]  # the steps did train


@pytest.mark.skipif(shutil.which("cc") is None, reason="torch.compile needs a C compiler")
def test_the_compiled_step_trains_like_the_eager_one_on_the_cpu():
    assert_same_training(lambda model, opt, x, y: mnist_loop.compiled_step(model, opt), "cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA device")
def test_the_cuda_graph_step_trains_like_the_eager_one():
    assert_same_training(mnist_loop.graphed_step, "cuda")
