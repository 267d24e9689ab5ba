"""Benchmark: training the seeds of one configuration as one stacked model vs a Python loop of
single models (E2, the universal-approximation MLP). Same maths, same steps; reports the ratio
that sets ``universal_approximation.STACK_ELEMENTS``.

    python benchmarks/stacked_seeds.py [--seeds 5] [--steps 300] [--hidden 10 100 1000]
"""

import argparse
import time

import torch

from dlrepro.execute import warm_up
from dlrepro.experiments.universal_approximation import Params
from dlrepro.experiments.universal_approximation import run as ua


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--hidden", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warm_up()
    xs, ys, _ = ua.terrain()
    x, y = torch.from_numpy(xs).float(), torch.from_numpy(ys).float()
    seeds = list(range(args.seeds))
    print(f"{args.seeds} seeds × {args.steps} full-batch Adam steps, {len(x)} points, "
          f"{args.threads} thread(s)")
    print(f"{'H':>6} {'loop (s)':>10} {'stacked (s)':>12} {'speed-up':>9}")
    for hidden in args.hidden:
        p = Params(hidden=hidden, steps=args.steps)
        loop = timed(lambda: [ua.train([s], p, x, y) for s in seeds])
        stacked = timed(lambda: ua.train(seeds, p, x, y))
        print(f"{hidden:>6} {loop:>10.2f} {stacked:>12.2f} {loop / stacked:>8.1f}×")


if __name__ == "__main__":
    main()
