"""E2: universal approximation with one hidden ReLU layer, H = 10 / 100 / 1000 (000, 002).

f(x) = Σ_j w3_j ReLU(w1_j x + b1_j) + b3 is continuous and piecewise affine with at most H kinks,
fitted to a real terrain profile (standardised x and heights).
"""

from typing import Literal

from pydantic import Field

from dlrepro.experiment import Params as BaseParams
from dlrepro.schema import Metric


class Params(BaseParams):
    hidden: int = Field(ge=1, description="H, hidden units")
    activation: Literal["relu", "none"] = Field("relu", description="none: the linear control")
    steps: int = Field(3000, ge=1)
    lr: float = Field(1e-2, gt=0)
    lstsq_every: int = Field(100, ge=0,
                             description="solve the output layer by least squares every this many "
                             "steps (0: plain Adam)")


METRICS = {
    "train_mse": Metric(better="lower",
                        description="training MSE, standardised heights", rel_tolerance=0.1),
    "lstsq_mse": Metric(better="lower",
                        description="MSE of the best output layer on the trained kinks "
                        "(what the capacity allows)", rel_tolerance=0.1),
    "optimisation_gap": Metric(better="lower",
                               description="train_mse − lstsq_mse: how far training is from "
                               "what its kinks allow", tolerance=1e-3),
    "line_mse": Metric(better="two-sided",
                       description="MSE of the best straight line", tolerance=1e-9),
    "excess_over_line": Metric(better="two-sided",
                               description="train_mse − line_mse", tolerance=1e-3),
    "max_error": Metric(better="lower",
                        description="largest |fit − height|, standardised", rel_tolerance=0.2),
}
