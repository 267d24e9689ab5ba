"""E8: five-point regression and classification (000).

Polynomial least squares of degree d on five points, with training and leave-one-out error; the same
points fitted by ReLU MLPs of depth L and width H; and a 3-class problem with cross-entropy.
"""

from typing import Literal

from pydantic import Field

from dlrepro.experiment import Params as BaseParams
from dlrepro.schema import Metric


NETWORKS = frozenset({"mlp", "classify"})


class Params(BaseParams):
    MODE = "task"
    USED_BY = {"degree": frozenset({"poly"}), "layers": NETWORKS, "hidden": NETWORKS,
               "steps": NETWORKS, "lr": NETWORKS}

    task: Literal["poly", "mlp", "classify"]
    degree: int = Field(1, ge=0)
    layers: int = Field(2, ge=1, description="linear layers of the MLP")
    hidden: int = Field(10, ge=1)
    steps: int = Field(2000, ge=1)
    lr: float = Field(1e-2, gt=0)


METRICS = {
    # An MLP that interpolates ends at float32's noise, 1e-13 to 1e-5 by CPU: an absolute 1e-3
    # (y's variance is 4.3e3) tells that noise from a fit that does not interpolate.
    "train_mse": Metric(better="lower",
                        description="training MSE in y's units (0 when it interpolates)",
                        tolerance=1e-3, rel_tolerance=0.1),
    "loo_mse": Metric(better="lower",
                      description="leave-one-out MSE (polynomials)", rel_tolerance=1e-6),
    "relative_train_mse": Metric(better="lower",
                                 description="training MSE / variance of y (MLPs)", tolerance=1e-3),
    "cross_entropy": Metric(better="lower", tolerance=0.05),
    "accuracy": Metric(better="higher", tolerance=0),
}
