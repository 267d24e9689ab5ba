"""E10's runs: the first N test images through the classifier, trained (the ``model.pt`` of the
run this suite needs: ``mnist_cnn``'s handout CNN, ``cifar_resnet``'s ResNet) or untrained (the
same shape at PyTorch's default initialisation, drawn from the run's seed; the trained one's input
normalisation). At the input (step 0) and at the output of each module of ``panels`` (step =
its number): the encodings mapped to 2-D by openTSNE (perplexity as given, the run's seed; wider
than 50 numbers, reduced to 50 by PCA first, as t-SNE is usually run), and the class separation
measured on the map and in the layer's own space. openTSNE rather than scikit-learn's TSNE: as
good a map, faster here (docs/tsne.md).
"""

from __future__ import annotations

import time

import numpy as np
import torch

from dlrepro.experiment import RunContext
from dlrepro.experiments.image_sets import images
from dlrepro.experiments.layer_maps import Params
from dlrepro.experiments.mnist_classifier.trained import Trained, build
from dlrepro.experiments.nets import in_batches

NEIGHBOURS = 10  # the kNN classifier's k: Kobak & Berens' measure of a t-SNE map's quality
PCA_DIMS = 50


def encodings(net: torch.nn.Module, inputs: torch.Tensor,
              layers: list[int]) -> dict[int, torch.Tensor]:
    """{0: the inputs, k: the output of module k for k in ``layers``}, one flat row per image."""
    found = {0: inputs.flatten(1)}
    for layer in layers:
        found[layer] = in_batches(lambda x: net[:layer + 1](x).flatten(1), inputs)
    return found


def knn_accuracy(points: torch.Tensor, labels: torch.Tensor) -> float:
    """% of the odd-numbered points whose ``NEIGHBOURS`` nearest even-numbered points vote for
    their label (a tie: the smallest label)."""
    nearest = torch.cdist(points[1::2], points[::2]).topk(NEIGHBOURS, largest=False).indices
    votes = labels[::2][nearest].mode(1).values
    return 100.0 * (votes == labels[1::2]).float().mean().item()


def tsne_map(points: torch.Tensor, perplexity: float, seed: int) -> np.ndarray:
    """A 2-D t-SNE map of ``points`` [N, d], reduced to ``PCA_DIMS`` by a randomised PCA first if
    wider."""
    from openTSNE import TSNE

    if points.shape[1] > PCA_DIMS:
        centred = points - points.mean(0)
        with torch.random.fork_rng(devices=[]):  # the same projection whatever ran before
            torch.manual_seed(seed)
            _, _, directions = torch.pca_lowrank(centred, q=PCA_DIMS, center=False)
        points = centred @ directions
    tsne = TSNE(perplexity=perplexity, random_state=seed, n_jobs=torch.get_num_threads())
    return np.asarray(tsne.fit(points.double().cpu().numpy()), dtype=np.float32)


def run(params: Params, ctx: RunContext) -> None:
    test_x, test_y = images(params.dataset, ctx.data_dir, train=False, device=ctx.device)
    trained = Trained(ctx.input("classifier", "model.pt"), ctx.device)
    if trained.model != params.model:
        raise ValueError(f"model {params.model!r}, but the classifier it needs is a "
                         f"{trained.model!r}: the panels would be another network's")
    net = trained.net if params.network == "trained" else build(trained.model, trained.channels)
    net = net.to(ctx.device)
    inputs = (test_x[:params.points] - trained.mean) / trained.std
    labels = test_y[:params.points]
    maps, map_accuracy, seconds = {}, {}, 0.0
    for layer, points in encodings(net.eval(), inputs, params.panels).items():
        start = time.perf_counter()
        maps[f"step_{layer}"] = tsne_map(points, params.perplexity, ctx.seed)
        seconds += time.perf_counter() - start
        map_accuracy[layer] = knn_accuracy(torch.from_numpy(maps[f"step_{layer}"]), labels.cpu())
        ctx.log("map_knn_accuracy", map_accuracy[layer], layer)
        ctx.log("space_knn_accuracy", knn_accuracy(points, labels), layer)
    ctx.log("separation_gain", map_accuracy[params.panels[-1]] - map_accuracy[0])
    ctx.log("tsne_time_s", seconds)
    np.savez_compressed(ctx.artifact("maps.npz"), labels=labels.cpu().numpy(), **maps)
