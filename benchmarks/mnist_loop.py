"""Benchmark: the handout CNN's training epochs with MNIST resident on the device and batches cut by
slicing (dlrepro's loop) vs the pytorch/examples `mnist` way (a torchvision dataset with
ToTensor + Normalize transforms behind a DataLoader). Same model, batches, order, optimiser and
epochs; reports both times and their ratio in one run.

    python benchmarks/mnist_loop.py [--epochs 1] [--threads 2] [--device cpu|cuda] [--workers 0]
"""

import argparse
import os
import time
from pathlib import Path

import torch
from torch.nn import functional as F
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

from dlrepro.data import data_dir
from dlrepro.execute import warm_up
from dlrepro.experiment import RunContext, get
from dlrepro.experiments.mnist_classifier import Params
from dlrepro.experiments.mnist_classifier import run as mc
from dlrepro.experiments.mnist_classifier import trained


def dataloader_loop(params: Params, root: Path, device: torch.device, workers: int) -> float:
    """pytorch/examples mnist: per-sample transforms, batches collated by a DataLoader."""
    train = datasets.MNIST(root, train=True, download=False)
    pixels = train.data[: params.train_size].float() / 255
    mean, std = pixels.mean().item(), pixels.std().item()
    train.transform = transforms.Compose([transforms.ToTensor(),
                                          transforms.Normalize((mean,), (std,))])
    subset = torch.utils.data.Subset(train, range(params.train_size))
    loader = DataLoader(subset, batch_size=params.batch_size, shuffle=False, num_workers=workers,
                        pin_memory=device.type == "cuda")
    model = trained.build(params.model).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=params.lr)
    start = time.perf_counter()
    for _ in range(params.epochs):
        for data, target in loader:
            data, target = data.to(device), target.to(device)
            optimizer.zero_grad()
            loss = F.cross_entropy(model(data), target)
            loss.backward()
            optimizer.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def resident_loop(params: Params, root: Path, device: torch.device) -> float:
    ctx = RunContext(seed=0, device=device, data_dir=root, artifact_dir=Path(os.devnull),
                     declared=frozenset(get("mnist_classifier").metrics))
    mc.train(params, ctx)
    return sum(m["value"] for m in ctx.metrics if m["metric"] == "epoch_time_s")


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
    params = Params(model="cnn_handout", lr=0.1, batch_size=100, epochs=args.epochs,
                    train_size=args.train_size)
    print(f"handout CNN, {args.epochs} epoch(s) × {args.train_size} images, batch 100, on {device} "
          f"({args.threads} thread(s), DataLoader workers: {args.workers}); training time only")
    loader = dataloader_loop(params, root, device, args.workers)
    resident = resident_loop(params, root, device)
    print(f"{'DataLoader (pytorch/examples)':32} {loader:8.2f} s")
    print(f"{'resident tensors, slicing':32} {resident:8.2f} s")
    print(f"{'speed-up':32} {loader / resident:8.2f}×")


if __name__ == "__main__":
    main()
