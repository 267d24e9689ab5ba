"""TEMPLATE — copy this folder to ``dlrepro/experiments/<name>/`` (a name a suite can give as
``experiment = "<name>"``), then fill in the three files. Say here, in a sentence or two, what the
experiment reproduces and from which slide.

This module is the *declaration*: it is read whenever a suite file is checked, so it must not import
torch, pandas or Ray (dlrepro refuses a bad suite file in well under a second, and refuses a
declaration that imports them).
"""

from pydantic import Field

from dlrepro.experiment import Params as BaseParams
from dlrepro.schema import Metric


class Params(BaseParams):
    """Every parameter a suite may set (under [parameters], a profile or a grid axis). Strict: a
    suite's "10" is not 10, NaN and infinity are refused, unknown names too. Give defaults where the
    slide has one; bounds where a value makes no sense. If one parameter picks what a run does
    (a ``mode``), name it ``MODE`` and say in ``USED_BY`` which of its values read each parameter
    that not all of them read: the others leave it out of their run_id and table row, e.g.
    ``MODE = "mode"`` and ``USED_BY = {"steps": frozenset({"train"})}``."""

    width: int = Field(16, ge=1, description="hidden units")
    lr: float = Field(0.1, gt=0, description="SGD's step size")
    steps: int = Field(100, ge=1)


# Every metric a run logs, and how the regression check compares it. `better` says which way is an
# improvement; `tolerance` (absolute) or `rel_tolerance` is the change a rerun may show without
# being a regression; `timing = True` keeps machine-bound speeds out of the committed baselines.
METRICS = {
    "loss": Metric(better="lower",
                   description="training loss after the last step (step = step number)",
                   rel_tolerance=0.05),
    "train_time_s": Metric(better="lower", timing=True),
}


# Only if runs read a data set of dlrepro.experiments.image_sets.DATASETS: the names, as a
# function of the parameters. They are checked (present, sizes, checksums) once before any run
# starts.
def datasets(params: Params) -> set[str]:
    return set()
