"""Benchmark: the handout CNN's training epochs four ways, in one run, side by side: the
pytorch/examples `mnist` way (a torchvision dataset with ToTensor + Normalize behind a
DataLoader), dlrepro's loop (MNIST resident on the device, batches cut by slicing), and that
resident loop with its model compiled (torch.compile) and, on CUDA, with the whole training step
captured once in a CUDA graph and replayed per batch. Same model and initialisation, batches,
order, optimiser and epochs; each row's last-epoch summed loss shows the same maths ran.

    python benchmarks/mnist_loop.py [--epochs 1] [--threads 2] [--device cpu|cuda] [--workers 0]

torch.compile needs a C compiler (and Triton on CUDA); where it fails, its row says why.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

from dlrepro.execute import warm_up
from dlrepro.experiment import RunContext, get
from dlrepro.experiments.image_sets import verify
from dlrepro.experiments.mnist_classifier import Params
from dlrepro.experiments.mnist_classifier import run as mc
from dlrepro.files import data_dir
from dlrepro.experiments.mnist_classifier import trained

Step = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
SEED = 0  # every variant starts from the same weights


def eager_step(model: nn.Module, optimizer: torch.optim.Optimizer) -> Step:
    """One SGD step of dlrepro's loop; returns the batch's loss and its count of wrong answers,
    left on the device."""
    def step(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        output = model(x)
        loss = F.cross_entropy(output, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.detach(), (output.argmax(1) != y).sum()
    return step


def compiled_step(model: nn.Module, optimizer: torch.optim.Optimizer) -> Step:
    """The eager step with the model's forward and backward compiled (the SGD step stays eager:
    one fused foreach update)."""
    return eager_step(torch.compile(model), optimizer)


def graphed_step(model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor,
                 y: torch.Tensor) -> Step:
    """The eager step captured once in a CUDA graph: each batch is copied into the graph's input
    and the whole step (forward, backward, SGD update) replays as one launch. Warm-up steps
    before capture (on a side stream, as CUDA graphs need) are undone, so training starts from
    the same weights."""
    static_x, static_y = x.clone(), y.clone()
    step = eager_step(model, optimizer)
    initial = [p.detach().clone() for p in model.parameters()]
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            step(static_x, static_y)
    torch.cuda.current_stream().wait_stream(side)
    with torch.no_grad():
        for p, p0 in zip(model.parameters(), initial):
            p.copy_(p0)
    optimizer.zero_grad(set_to_none=True)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_out = step(static_x, static_y)

    def replay(batch_x: torch.Tensor, batch_y: torch.Tensor):
        static_x.copy_(batch_x)
        static_y.copy_(batch_y)
        graph.replay()
        return static_out
    return replay


def resident(params: Params, root: Path, device: torch.device, kind: str) -> tuple[float, float]:
    """dlrepro's loop around a step of KIND (eager, compiled, graphed): training seconds and the
    last epoch's summed loss. The first batch, which compiles or captures, is outside the clock
    and trains like any other; a last partial batch (never, at batch 100) is left out."""
    train_x, train_y, _, _, mean, std = mc.load_data(params, root, device)
    inputs = (train_x - mean) / std
    torch.manual_seed(SEED)
    model = trained.build(params.model).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=params.lr)
    first = slice(0, params.batch_size)
    if kind == "graphed":
        step = graphed_step(model, optimizer, inputs[first], train_y[first])
    else:
        step = (compiled_step if kind == "compiled" else eager_step)(model, optimizer)
    starts = range(0, len(inputs) - params.batch_size + 1, params.batch_size)
    loss_sum = torch.zeros((), device=device)
    loss_sum += step(inputs[first], train_y[first])[0]  # compiles, or replays the capture
    sync(device)
    start = time.perf_counter()
    for epoch in range(params.epochs):
        if epoch:
            loss_sum = torch.zeros((), device=device)
        for i in starts[1:] if epoch == 0 else starts:
            loss_sum += step(inputs[i:i + params.batch_size], train_y[i:i + params.batch_size])[0]
    last_loss = loss_sum.item()  # waits for the device
    return time.perf_counter() - start, last_loss


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def dataloader_loop(params: Params, root: Path, device: torch.device,
                    workers: int) -> tuple[float, float]:
    """pytorch/examples mnist: per-sample transforms, batches collated by a DataLoader."""
    train = datasets.MNIST(root, train=True, download=False)
    pixels = train.data[: params.train_size].float() / 255
    mean, std = pixels.mean().item(), pixels.std().item()
    train.transform = transforms.Compose([transforms.ToTensor(),
                                          transforms.Normalize((mean,), (std,))])
    subset = torch.utils.data.Subset(train, range(params.train_size))
    loader = DataLoader(subset, batch_size=params.batch_size, shuffle=False, num_workers=workers,
                        pin_memory=device.type == "cuda")
    torch.manual_seed(SEED)
    model = trained.build(params.model).to(device)
    step = eager_step(model, torch.optim.SGD(model.parameters(), lr=params.lr))
    start = time.perf_counter()
    for _ in range(params.epochs):
        loss_sum = torch.zeros((), device=device)
        for data, target in loader:
            loss_sum += step(data.to(device, non_blocking=True),
                             target.to(device, non_blocking=True))[0]
    last_loss = loss_sum.item()
    return time.perf_counter() - start, last_loss


def dlrepro_loop(params: Params, root: Path, device: torch.device) -> tuple[float, float]:
    """dlrepro's own training function, as a run executes it (its per-epoch test error is not
    in the time)."""
    ctx = RunContext(seed=SEED, device=device, data_dir=root, artifact_dir=Path(os.devnull),
                     declared=frozenset(get("mnist_classifier").metrics))
    torch.manual_seed(SEED)
    mc.train(params, ctx)
    values = {m["metric"]: m["value"] for m in ctx.metrics if m.get("step") == params.epochs}
    seconds = sum(m["value"] for m in ctx.metrics if m["metric"] == "epoch_time_s")
    return seconds, values["loss_sum"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--train-size", type=int, default=60_000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--data-dir",
                        help="directory holding MNIST/raw (default: $DLREPRO_DATA_DIR)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warm_up()
    root, device = data_dir(args.data_dir), torch.device(args.device)
    verify({"mnist"}, root)  # unpacks a gzipped copy, which torchvision's dataset cannot read
    params = Params(model="cnn_handout", lr=0.1, batch_size=100, epochs=args.epochs,
                    train_size=args.train_size)
    print(f"handout CNN, {args.epochs} epoch(s) × {args.train_size} images, batch 100, on {device} "
          f"({args.threads} thread(s), DataLoader workers: {args.workers}); training time only")
    variants: list[tuple[str, Callable[[], tuple[float, float]]]] = [
        ("DataLoader (pytorch/examples)", lambda: dataloader_loop(params, root, device,
                                                                  args.workers)),
        ("resident, dlrepro's loop", lambda: dlrepro_loop(params, root, device)),
        ("resident, eager step", lambda: resident(params, root, device, "eager")),
        ("resident, torch.compile", lambda: resident(params, root, device, "compiled")),
    ]
    if device.type == "cuda":
        variants.append(("resident, CUDA graph", lambda: resident(params, root, device, "graphed")))
    print(f"{'loop':32} {'time (s)':>9} {'× DataLoader':>13} {'last loss sum':>14}")
    baseline = None
    for name, measure in variants:
        try:
            seconds, loss = measure()
        except Exception as err:  # torch.compile without a compiler, a graph that cannot capture
            print(f"{name:32} skipped: {type(err).__name__}: {str(err).splitlines()[0][:120]}")
            continue
        baseline = baseline or seconds
        print(f"{name:32} {seconds:9.2f} {baseline / seconds:12.2f}× {loss:14.4f}")
    if device.type != "cuda":
        print("CUDA graph: needs a CUDA device (skipped)")


if __name__ == "__main__":
    main()
