"""E10: MNIST test digits as the successive layers of a trained network encode them, seen
through t-SNE (002, «Compréhension des modèles»: "Encodages de MNIST dans les couches d'un
LeNet", panels Input, Layer #1, #4, #7, #9).

E6's handout CNN, as the ``mnist_cnn`` suite trains it, plays the LeNet; the same network left at
its initialisation is the control. Per layer: how well the digits separate, on the 2-D map and in
the layer's own space. The slide's second figure, CIFAR-10 images through a ResNet, is the same
experiment with ``dataset = "cifar10"`` and ``model = "resnet"`` (the ``cifar_maps`` suite).
"""

from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from dlrepro.experiment import Params as BaseParams
from dlrepro.experiments import image_sets
from dlrepro.experiments.image_sets import CIFAR10, TEST_IMAGES, DatasetName
from dlrepro.schema import Metric

# The handout CNN is an nn.Sequential of 10 modules (dlrepro/experiments/nets.py, mnist_cnn):
# Conv 0, ReLU 1, MaxPool 2, Conv 3, ReLU 4, MaxPool 5, Flatten 6, Linear 7, ReLU 8, Linear 9.
# Read as the slide numbers its LeNet's layers, #1 and #4 are the two convolutions after their
# ReLU, #7 the hidden fully connected layer, #9 the output. The ResNet-20 (nets.resnet) is one of
# 13: its first convolution, nine residual blocks, pooling, Flatten, the output layer.
MODULES = {"cnn_handout": 10, "resnet": 13}
SLIDE_LAYERS = [1, 4, 7, 9]


class Params(BaseParams):
    dataset: DatasetName = Field("mnist", description="the set read: mnist, fashion_mnist "
                                 "(clothing) or cifar10 (with model resnet)")
    model: Literal["cnn_handout", "resnet"] = Field(
        "cnn_handout", description="the classifier whose layers are mapped, as the run this one "
        "needs trained it")
    network: Literal["trained", "untrained"] = Field(
        "trained", description="that run's network, or the same shape at its initialisation "
        "(the control)")
    points: int = Field(5000, ge=100, le=TEST_IMAGES, description="the first N test images")
    perplexity: float = Field(30.0, gt=0, description="t-SNE's perplexity")
    panels: list[int] = Field(SLIDE_LAYERS, min_length=1,
                              description="the panels after the input: outputs of these modules "
                              "of the network, numbered from 0 as PyTorch prints it")

    @field_validator("perplexity")
    @classmethod
    def _below_a_third(cls, perplexity: float, info: ValidationInfo) -> float:
        points = info.data.get("points", TEST_IMAGES)
        if 3 * perplexity > points - 1:  # openTSNE would lower it to (N − 1) / 3, with a warning
            raise ValueError(f"must be at most (points − 1) / 3 = {(points - 1) / 3:g}: t-SNE "
                             f"looks at 3 × perplexity neighbours of each of the {points} points")
        return perplexity

    @field_validator("panels")
    @classmethod
    def _modules(cls, panels: list[int], info: ValidationInfo) -> list[int]:
        modules = MODULES[info.data.get("model", "cnn_handout")]
        increasing = all(a < b for a, b in zip(panels, panels[1:]))
        if not increasing or panels[0] < 1 or panels[-1] >= modules:
            raise ValueError(f"must be increasing module numbers from 1 to {modules - 1} "
                             "(0 is the input's step)")
        return panels

    @model_validator(mode="after")
    def _sized_for_the_images(self) -> "Params":
        if (self.dataset == CIFAR10) != (self.model == "resnet"):
            raise ValueError("the ResNet maps CIFAR-10's 32 × 32 colour images, the handout CNN "
                             "the 28 × 28 grey sets: dataset cifar10 goes with model resnet")
        return self


datasets = image_sets.datasets


SEPARATION = ("held-out accuracy (%) of a 10-nearest-neighbour classifier fitted on the even-"
              "numbered points, scored on the odd; step = layer (0 the input)")
# The maps' tolerances cover their spread over seeds, which another CPU's rounding also draws
# from (docs/tsne.md); the layer's own space is computed alike everywhere.
METRICS = {
    "map_knn_accuracy": Metric(better="higher", tolerance=5.0,
                               description=f"on the t-SNE map: {SEPARATION}"),
    "space_knn_accuracy": Metric(better="higher", tolerance=3.0,
                                 description=f"in the layer's own space: {SEPARATION}"),
    "separation_gain": Metric(
        better="two-sided", tolerance=5.0,
        description="map_knn_accuracy at the last layer minus at the input, in points"),
    "tsne_time_s": Metric(better="lower", timing=True),
}
