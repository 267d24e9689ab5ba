"""Benchmark: how close each MNIST suite's training step, at its own settings, comes to what this
machine can do, in one run, side by side. The reference is the FLOP rate of a large matrix
product (float32) on the same threads; a step's FLOPs are torch's FlopCounterMode count of its
forward and backward (the optimiser's element-wise update is not counted, so the fractions are
slightly low). Each step in PyTorch's default memory layout is also timed with the well-known
speed-ups: channels-last memory (the classifiers' layout) and torch.compile (the optimiser
step stays eager); and an evaluation pass (the handout CNN, in the runs' layout, over the 10,000
test digits in slices of 1,000) under no_grad against inference_mode (``nets.in_batches``'s)
and larger slices. Real MNIST batches, in order; E10 trains nothing of its own (it reads E6's CNN).

    python benchmarks/step_efficiency.py [--threads 2] [--seconds 3] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode

from dlrepro.execute import warm_up
from dlrepro.experiments.autoencoder.run import Autoencoder
from dlrepro.experiments.gan.run import discriminator, generator, init_weights, train_epoch
from dlrepro.experiments.image_sets import images, verify
from dlrepro.files import data_dir
from dlrepro.experiments.mnist_classifier import trained

Prepare = Callable[[nn.Module], nn.Module]  # a network as a variant runs it
Step = Callable[[torch.Tensor, torch.Tensor], object]
# Each from PyTorch's default layout, whichever the suite's network is built in
VARIANTS: dict[str, Prepare] = {
    "eager": lambda net: net.to(memory_format=torch.contiguous_format),
    "channels-last": lambda net: net.to(memory_format=torch.channels_last),
    "compiled": lambda net: torch.compile(net.to(memory_format=torch.contiguous_format)),
}


def classifier(model: str, lr: float) -> Callable[[Prepare], Step]:
    """E6 and E7's step: SGD on the cross-entropy."""
    def make(prepare: Prepare) -> Step:
        net = prepare(trained.build(model))
        optimizer = torch.optim.SGD(net.parameters(), lr=lr)

        def step(x, y):
            loss = F.cross_entropy(net(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        return step
    return make


def autoencoder(model: str, d: int) -> Callable[[Prepare], Step]:
    """E4's step: Adam on 0.5·Σ(output − input)² per image."""
    def make(prepare: Prepare) -> Step:
        net = prepare(Autoencoder(model, d))
        optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)

        def step(x, y):
            loss = 0.5 * (net(x) - x).pow(2).sum() / len(x)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        return step
    return make


def gan(width: int) -> Callable[[Prepare], Step]:
    """E5's step, the experiment's own: D on real and fake, then G through D (a one-batch epoch)."""
    def make(prepare: Prepare) -> Step:
        g, d = generator(width), discriminator(width)
        g.apply(init_weights), d.apply(init_weights)
        g, d = prepare(g), prepare(d)
        opt_g = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
        opt_d = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
        return lambda x, y: train_epoch(g, d, opt_g, opt_d, x * 2 - 1, len(x))
    return make


# (suite and setting, batch size, cropped to 26 × 26, the step's maker): each at its profile's own
CASES = [
    ("mnist_cnn handout CNN", 100, False, classifier("cnn_handout", 0.1)),
    ("mnist_cnn CRM CNN", 10, False, classifier("cnn_crm", 0.01)),
    ("mnist_cnn CRM CNN", 32, False, classifier("cnn_crm", 0.01)),
    ("mnist_cnn CRM CNN", 100, False, classifier("cnn_crm", 0.01)),
    ("mnist_mlp MLP", 100, True, classifier("mlp", 0.1)),
    ("autoencoder CNN d=8 (quick)", 32, False, autoencoder("cnn", 8)),
    ("autoencoder CNN d=8 (full)", 100, False, autoencoder("cnn", 8)),
    ("autoencoder linear d=8 (quick)", 32, False, autoencoder("linear", 8)),
    ("gan DCGAN width 32 (quick)", 128, False, gan(32)),
    ("gan DCGAN width 64 (full)", 128, False, gan(64)),
]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(run: Callable[[int], object], device: torch.device, seconds: float) -> float:
    """Seconds per call of ``run(i)``: a few warm-up calls (compiling), then calls for about
    ``seconds``."""
    for i in range(3):
        run(i)
    sync(device)
    calls, start = 0, time.perf_counter()
    while calls < 5 or time.perf_counter() - start < seconds:
        run(calls)
        calls += 1
    sync(device)
    return (time.perf_counter() - start) / calls


def matmul_rate(device: torch.device, seconds: float, n: int = 2048) -> float:
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    return 2 * n ** 3 / timed(lambda i: a @ b, device, seconds)


def step_flops(make: Callable[[Prepare], Step], x: torch.Tensor, y: torch.Tensor) -> float:
    step = make(VARIANTS["eager"])
    with FlopCounterMode(display=False) as counter:
        step(x, y)
    return counter.get_total_flops()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=3.0, help="timed per row (default: 3)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--data-dir", help="directory holding MNIST/raw (default: "
                        "$DLREPRO_DATA_DIR)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warm_up()
    device, root = torch.device(args.device), data_dir(args.data_dir)
    verify({"mnist"}, root)
    train_x, train_y = images("mnist", root, train=True, device=device)
    peak = matmul_rate(device, args.seconds)
    print(f"on {device}, {args.threads} thread(s): a 2048 × 2048 float32 matrix product runs at "
          f"{peak / 1e9:.1f} GFLOP/s, the reference")
    print(f"{'step (suite, setting)':31} {'batch':>5} {'MFLOP':>7} {'ms':>7} {'GFLOP/s':>8} "
          f"{'of ref':>7} {'channels-last':>14} {'compiled':>9}")
    for name, batch, cropped, make in CASES:
        x_all = train_x[..., 1:-1, 1:-1] if cropped else train_x
        batches = len(x_all) // batch

        def data(i: int) -> tuple[torch.Tensor, torch.Tensor]:
            j = (i % batches) * batch
            return x_all[j:j + batch].contiguous(), train_y[j:j + batch]

        flops, times = step_flops(make, *data(0)), {}
        for variant, prepare in VARIANTS.items():
            step = make(prepare)
            layout = torch.channels_last if variant == "channels-last" and not cropped else None

            def run(i: int, step=step, layout=layout) -> object:
                x, y = data(i)
                return step(x.contiguous(memory_format=layout) if layout else x, y)
            try:
                times[variant] = timed(run, device, args.seconds)
            except Exception as err:  # torch.compile without a compiler
                print(f"  {name} {variant}: {type(err).__name__}: {str(err).splitlines()[0][:90]}")
        eager = times["eager"]
        faster = [_ratio(eager, times.get(v)) for v in ("channels-last", "compiled")]
        print(f"{name:31} {batch:5d} {flops / 1e6:7.1f} {eager * 1e3:7.2f} "
              f"{flops / eager / 1e9:8.1f} {flops / eager / peak:7.0%} {faster[0]:>14} "
              f"{faster[1]:>9}")
    evaluation(trained.build("cnn_handout").to(device).eval(),
               images("mnist", root, train=False, device=device)[0], device, args.seconds)


def _ratio(eager: float, seconds: float | None) -> str:
    return "failed" if seconds is None else f"{eager / seconds:.2f}×"


def evaluation(net: nn.Module, test_x: torch.Tensor, device: torch.device,
               seconds: float) -> None:
    """An evaluation pass in slices of 1,000 under no_grad against inference_mode (what
    ``nets.in_batches`` uses) and larger slices: test digits a second."""
    print(f"evaluation, the handout CNN over {len(test_x):,} test digits: digits/s")
    reference = None
    for mode, size in (("no_grad", 1000), ("inference_mode", 1000), ("no_grad", 10_000),
                       ("inference_mode", 10_000)):
        context = torch.no_grad if mode == "no_grad" else torch.inference_mode

        def run(i: int) -> torch.Tensor:
            with context():
                return torch.cat([net(test_x[j:j + size]).argmax(1)
                                  for j in range(0, len(test_x), size)])
        rate = len(test_x) / timed(run, device, seconds)
        reference = reference or rate
        print(f"  {mode:15} slices of {size:6,}: {rate:10,.0f}  ({rate / reference:.2f}×)")


if __name__ == "__main__":
    main()
