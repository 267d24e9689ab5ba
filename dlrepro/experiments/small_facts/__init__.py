"""E9: small facts from the slides worth a check (001, 002, 004), and vanishing gradients (004).

Each ``fact`` computes what a slide states; ``vanishing`` measures the gradient norm per layer of a
deep MLP with sigmoid vs ReLU activations.
"""

from typing import Literal

from pydantic import Field

from dlrepro.experiment import Params as BaseParams
from dlrepro.schema import Metric


VANISHING = frozenset({"vanishing"})


class Params(BaseParams):
    MODE = "fact"
    USED_BY = {"activation": VANISHING, "depth": VANISHING, "width": VANISHING,
               "batch": VANISHING}

    fact: Literal["autograd", "conv_derivative", "parameter_counts", "sequential_shapes",
                  "vanishing"]
    activation: Literal["sigmoid", "relu"] = "sigmoid"
    depth: int = Field(20, ge=2, description="linear layers (vanishing)")
    width: int = Field(64, ge=1)
    batch: int = Field(256, ge=1)


EXACT = {"tolerance": 0.0}
METRICS = {
    "gradient": Metric(better="two-sided",
                       description="autograd's ∇ Σ t² at t = [1, 2, 4] (step = element)",
                       **EXACT),
    "derivative": Metric(better="two-sided",
                         description="conv1d of the slide's signal with (−1, 1) (step = element)",
                         **EXACT),
    "image_linear_map_params": Metric(better="two-sided", **EXACT),
    "mlp_001_params": Metric(better="two-sided", **EXACT),
    "cnn_handout_params": Metric(better="two-sided", **EXACT),
    "shapes_match": Metric(better="higher", **EXACT),
    "parameter_sizes": Metric(better="two-sided",
                              description="elements of each parameter tensor of 002's "
                              "nn.Sequential (step = tensor)", **EXACT),
    "output_shape_match": Metric(better="higher", **EXACT),
    "grad_norm": Metric(better="two-sided",
                        description="‖∂loss/∂W‖ of each layer (step = layer)",
                        rel_tolerance=0.5),
    "first_to_last_grad_ratio": Metric(better="two-sided", rel_tolerance=0.5),
}
