"""Regression checks of result tables against committed baselines.

A baseline is, per suite, one CSV people can read in a diff: for every configuration (the
parameters that vary across the suite's runs), metric and step, the mean, standard deviation and
number of seeds. ``compare`` gives each row a verdict:

- ``unchanged``: the means differ by no more than the metric's tolerance from its suite
  (``tolerance`` absolute, ``rel_tolerance`` relative to the baseline; the larger one wins; a
  metric that declares neither must match to ``DEFAULT_REL_TOLERANCE``);
- ``inconclusive``: beyond tolerance, but both sides have ≥ 3 seeds and Welch's t-test cannot
  tell the difference from seed noise (p ≥ ``ALPHA``);
- ``improved`` / ``regressed``: beyond tolerance in the metric's better / worse direction (any
  change of a two-sided metric is a regression);
- ``missing``: in the baseline, not in the results (a failed run, a changed parameter);
- ``new``: in the results, not in the baseline.

Only ``regressed`` and ``missing`` block, and a gate that compared no value fails (``failures``:
the gate's whole policy). Time and energy are compared only when the hardware
matches, and never block; metrics declared ``timing = true`` (speeds) stay out of baselines.

A baseline measured on another kind of device (a CPU's, checked on a CUDA machine) holds its
metrics to the same declared tolerances, but kernels round differently there and training paths
part as they would from another seed: beyond tolerance, a value regresses only when Welch's
t-test on ≥ 3 seeds a side says so, and is ``inconclusive`` otherwise. The notes say so, and
when the baseline's seeds or hardware differ from the runs', or it covers part of the suite.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from dlrepro import devices, tables
from dlrepro.formatting import assignments
from dlrepro.errors import Refused
from dlrepro.layout import Results
from dlrepro.schema import Metric
from dlrepro.suite import Suite
from dlrepro.formatting import MEASURED, GateVerdict

KEY = ["suite", "configuration", "metric", "step"]
STATS = ["n", "mean", "std"]
BLOCKING = frozenset({GateVerdict.REGRESSED, GateVerdict.MISSING})
# The verdicts of values found on both sides: a gate that has none of them compared nothing.
COMPARED = frozenset({GateVerdict.UNCHANGED, GateVerdict.INCONCLUSIVE, GateVerdict.IMPROVED,
                      GateVerdict.REGRESSED})
ALPHA = 0.01
DEFAULT_REL_TOLERANCE = 1e-9
COST_FILE = "cost.csv"
# Beside the value baselines: the claims and published numbers measured when they were written.
CLAIMS_FILE, FIDELITY_FILE = "claims.csv", "fidelity.csv"
COST_COLUMNS = ["suite", "hardware", "runs", "wall_time_s", "energy_kwh", "energy_method"]


def summarise(runs: pd.DataFrame, metrics: pd.DataFrame, suite: Suite,
              profile: str) -> pd.DataFrame:
    """Mean, std and seed count of every (configuration, metric, step) of one suite's successful
    runs.

    A configuration is named by the parameters the suite file varies (not by what happens to be in
    the table), so that a failed run cannot rename the others."""
    table = tables.joined(runs, metrics, suite.name)
    timing = [name for name, metric in suite.metrics.items() if metric.timing]
    table = table[~table["metric"].isin(timing)]  # speed depends on the machine: cost.csv covers it
    if table.empty:
        return empty_summary()
    varied = [name for name in suite.runs(profile)[0].varied if name in table]
    table["configuration"] = "all"
    if varied:
        table["configuration"] = table.apply(lambda row: _configuration(row, varied), axis=1)
    table["step"] = table["step"].astype("Int64")
    summary = (table.groupby(["configuration", "metric", "step"], dropna=False, sort=True)["value"]
               .agg(n="count", mean="mean", std="std").reset_index())
    summary.insert(0, "suite", suite.name)
    return summary[KEY + STATS]


def updated(old: pd.DataFrame, summary: pd.DataFrame, suite: Suite,
            profile: str) -> pd.DataFrame:
    """A baseline refreshed by ``summary``: the configurations it measured replace their rows,
    the profile's other configurations keep theirs (measured earlier, on other seeds or in
    another folder), those the profile no longer has are dropped."""
    specs = suite.runs(profile)
    names = {assignments((n, s.params[n]) for n in specs[0].varied if n in s.params) or "all"
             for s in specs}
    found = tables.replaced(old[old["configuration"].isin(names)], summary, "configuration")
    return found.sort_values(KEY, ignore_index=True)


def empty_summary() -> pd.DataFrame:
    return pd.DataFrame(columns=KEY + STATS)


def _configuration(row: pd.Series, varied: list[str]) -> str:
    # A parameter its run's mode does not read is empty in its row, as in its label: left out.
    return assignments((name, row[name]) for name in varied if pd.notna(row[name]))


def cost(runs: pd.DataFrame, suite: str) -> dict:
    """Total run time and energy of one suite, with the hardware they were measured on."""
    mine = runs[(runs["suite"] == suite) & (runs["status"] == "ok")]
    return {"suite": suite, "hardware": " + ".join(sorted(set(mine["device"].dropna()))),
            "runs": len(mine), # 4 digits, a readable diff: the rest is noise
            "wall_time_s": float(f"{mine['wall_time_s'].sum():.4g}"),
            "energy_kwh": float(f"{mine['energy_kwh'].sum():.4g}"),
            "energy_method": " + ".join(sorted(set(mine["energy_method"].dropna())))}


def compare(baseline: pd.DataFrame, current: pd.DataFrame, declared: dict[str, Metric],
            other_device: bool = False) -> pd.DataFrame:
    """Join a suite's baseline and current summaries and give every row its verdict;
    ``other_device`` when the baseline was measured on another kind of device."""
    joined = baseline.merge(current, on=KEY, how="outer", suffixes=("_base", ""), indicator="side")
    joined["delta"] = joined["mean"] - joined["mean_base"]
    verdicts = [_verdict(row, declared.get(row.metric), other_device)
                for row in joined.itertuples()]
    for i, name in enumerate(("verdict", "allowed", "p_value")):
        joined[name] = [found[i] for found in verdicts]
    columns = KEY + ["verdict", "mean_base", "mean", "delta", "allowed", "p_value", "n_base", "n",
                     "std_base", "std"]
    return joined[columns].sort_values(KEY, ignore_index=True)


def _verdict(row, metric: Metric | None,
             other_device: bool) -> tuple[GateVerdict, float, float]:
    if row.side == "left_only":
        return GateVerdict.MISSING, math.nan, math.nan
    if row.side == "right_only":
        return GateVerdict.NEW, math.nan, math.nan
    better = metric.better if metric else "two-sided"
    base_nan, now_nan = math.isnan(row.mean_base), math.isnan(row.mean)
    if base_nan or now_nan:  # NaN means "never converged" or "diverged"
        if base_nan and now_nan:
            return GateVerdict.UNCHANGED, math.nan, math.nan
        if base_nan and better != "two-sided":
            return GateVerdict.IMPROVED, math.nan, math.nan
        return GateVerdict.REGRESSED, math.nan, math.nan
    allowed = _allowed(metric, row.mean_base)
    if abs(row.delta) <= allowed:
        return GateVerdict.UNCHANGED, allowed, math.nan
    p_value = math.nan
    if row.n_base >= 3 and row.n >= 3 and (row.std_base > 0 or row.std > 0):
        from scipy import stats  # a second to import: only for a value beyond tolerance

        p_value = stats.ttest_ind_from_stats(row.mean_base, row.std_base, row.n_base, row.mean,
                                             row.std, row.n, equal_var=False).pvalue
        if p_value >= ALPHA:
            return GateVerdict.INCONCLUSIVE, allowed, p_value
    elif other_device:  # too few seeds to tell another device's rounding from a regression
        return GateVerdict.INCONCLUSIVE, allowed, p_value
    improved = (better == "higher" and row.delta > 0) or (better == "lower" and row.delta < 0)
    return (GateVerdict.IMPROVED if improved else GateVerdict.REGRESSED), allowed, p_value


def _allowed(metric: Metric | None, reference: float) -> float:
    if metric is None or (metric.tolerance is None and metric.rel_tolerance is None):
        return DEFAULT_REL_TOLERANCE * abs(reference)
    return max(metric.tolerance or 0.0, (metric.rel_tolerance or 0.0) * abs(reference))


class Baselines:
    """``<root>/<profile>/<suite>.csv``, the profile's ``cost.csv``, and the ``claims.csv`` and
    ``fidelity.csv`` of the runs the baselines were made from."""

    def __init__(self, root: Path, profile: str):
        self.dir = Path(root) / profile

    def ensure_exists(self) -> None:
        """A gate pointed at a folder that is not there must fail, not compare nothing and pass."""
        root = self.dir.parent
        if not root.is_dir():
            raise Refused(f"{root}: no such baseline folder")
        if not self.dir.is_dir():
            raise Refused(f"{self.dir}: no baselines for profile {self.dir.name!r} (create them "
                          f"with `dlrepro baseline update --profile {self.dir.name}`)")

    def suites(self) -> list[str]:
        kept = {COST_FILE, CLAIMS_FILE, FIDELITY_FILE}
        return sorted(p.stem for p in self.dir.glob("*.csv") if p.name not in kept)

    def read(self, suite: str) -> pd.DataFrame | None:
        path = self.dir / f"{suite}.csv"
        if not path.exists():
            return None
        table = _read_csv(path, KEY + STATS, "a baseline",
                          dtype={"configuration": str, "metric": str})
        table["step"] = table["step"].astype("Int64")
        return table[KEY + STATS]

    def cost(self) -> pd.DataFrame:
        """The profile's cost.csv, every run count, time and energy a finite number ≥ 0."""
        path = self.dir / COST_FILE
        if not path.exists():
            return pd.DataFrame(columns=COST_COLUMNS)
        table = _read_csv(path, COST_COLUMNS, "a cost table")
        for column in ("runs", "wall_time_s", "energy_kwh"):
            values = pd.to_numeric(table[column], errors="coerce")
            bad = ~values.between(0, math.inf)  # NaN and text (coerced to NaN) fall outside too
            if bad.any():
                row = bad.idxmax()
                raise Refused(f"{path}: {column} of {table.at[row, 'suite']}: "
                              f"'{table.at[row, column]}' is not a finite number >= 0")
            table[column] = values
        return table

    def mean_run_times(self) -> dict[str, float]:
        """Each suite's mean run time in seconds on the machine its cost was measured on."""
        return {row.suite: row.wall_time_s / row.runs for row in self.cost().itertuples()
                if row.runs > 0}

    def write(self, suite: str, summary: pd.DataFrame, suite_cost: dict) -> Path:
        path = self.dir / f"{suite}.csv"
        # repr-exact floats (no float_format): read back, it compares equal to its summary.
        tables.write_csv(path, summary)
        costs = tables.replaced(self.cost(), pd.DataFrame([suite_cost]))
        tables.write_csv(self.dir / COST_FILE, costs.sort_values("suite"))
        return path

    def write_verdicts(self, verdicts: list, numbers: list[dict]) -> list[tuple[Path, int]]:
        """Replace the evaluated suites' claims and published numbers, but a claim measured
        earlier and not now (its runs are in another folder) keeps its verdict; the files
        written."""
        from dlrepro import claims, fidelity

        to_claims, to_numbers = self.dir / CLAIMS_FILE, self.dir / FIDELITY_FILE
        verdicts = _keep_measured(claims.table(verdicts), claims.read(to_claims))
        claims.write(to_claims, claims.results(verdicts))
        numbers = _keep_measured(pd.DataFrame(numbers, columns=fidelity.COLUMNS),
                                 fidelity.read(to_numbers))
        fidelity.write(to_numbers, numbers.to_dict("records"))
        return [(to_claims, len(verdicts)), (to_numbers, len(numbers))]

    def fidelity(self) -> pd.DataFrame:
        """The published numbers as measured at this profile (empty: none kept)."""
        from dlrepro import fidelity

        return fidelity.read(self.dir / FIDELITY_FILE)


def _keep_measured(new: pd.DataFrame, old: pd.DataFrame) -> pd.DataFrame:
    """``new``'s rows (claims, or their published numbers), but a claim measured in ``old`` and
    not in ``new`` keeps its old rows, in its place."""
    old = old[old["status"].isin(MEASURED)]
    before = dict(list(old.groupby(["suite", "claim"], sort=False)))
    rows = []
    for key, now in new.groupby(["suite", "claim"], sort=False):
        rows.append(now if now["status"].isin(MEASURED).any() else before.get(key, now))
    return pd.concat(rows, ignore_index=True) if rows else new


def _read_csv(path: Path, columns: list[str], what: str, **options) -> pd.DataFrame:
    try:
        table = pd.read_csv(path, **options)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise Refused(f"{path}: not a readable CSV: {err}") from None
    missing = set(columns) - set(table.columns)
    if missing:
        raise Refused(f"{path}: not {what}: no column {', '.join(sorted(missing))}")
    return table


def check(suites: list[Suite], baselines: Baselines,
          results: Results) -> tuple[pd.DataFrame, list[str], list[str]]:
    """Compare every suite's current tables with its baseline; return the verdicts, notes on cost,
    and the suites that have no baseline."""
    runs, metrics = tables.load(results)
    costs = {row["suite"]: row for row in baselines.cost().to_dict("records")}
    verdicts, notes, unbaselined = [], [], []
    for suite in suites:
        baseline = baselines.read(suite.name)
        current = summarise(runs, metrics, suite, baselines.dir.name)
        if baseline is None:
            unbaselined.append(suite.name)
            baseline = empty_summary()
        before, now = costs.get(suite.name), cost(runs, suite.name)
        other_device = bool(before and before["hardware"] and now["runs"]) and (
            _kinds(before["hardware"]) != _kinds(now["hardware"]))
        verdicts.append(compare(baseline, current, suite.metrics, other_device))
        notes += _notes(baseline, current, verdicts[-1], before, now, other_device)
    if not verdicts:
        return compare(empty_summary(), empty_summary(), {}), notes, unbaselined
    return pd.concat(verdicts, ignore_index=True), notes, unbaselined


def compared(verdicts: pd.DataFrame) -> int:
    """How many values were compared with a baseline value (neither missing nor new)."""
    return int(verdicts["verdict"].isin(COMPARED).sum())


def failures(verdicts: pd.DataFrame, unbaselined: list[str], gone: list[str],
             allow_new: bool) -> list[str]:
    """Why the gate fails, one reason a line; none: it passes."""
    reasons = [f"baseline of {name} has no suite file {name}.toml" for name in gone]
    if not allow_new:
        reasons += [f"{name} has no baseline (add one on purpose, or pass --allow-new)"
                    for name in unbaselined]
    blocking = int(verdicts["verdict"].isin(BLOCKING).sum())
    if blocking:
        reasons.append(f"{blocking} value(s) regressed or missing")
    if not compared(verdicts):
        reasons.append("no value was compared with a baseline")
    return reasons


def _kinds(hardware: str) -> set[str]:
    """The kinds of device (cpu, cuda) a cost row's hardware names (joined by ``+``)."""
    return {devices.kind(part) for part in hardware.split(" + ")}


def _cost_note(before: dict | None, now: dict) -> list[str]:
    if before is None or not now["runs"]:
        return []
    if before["hardware"] != now["hardware"]:
        return [f"{now['suite']}: time and energy not compared (baseline on "
                f"{before['hardware']}, now on {now['hardware']})"]
    if before["runs"] != now["runs"]:  # a baseline of part of the suite, or part of a run
        return [f"{now['suite']}: time and energy not compared (the baseline's {before['runs']} "
                f"run(s) are not these {now['runs']})"]
    ratio = now["wall_time_s"] / before["wall_time_s"] if before["wall_time_s"] else math.nan
    energy = now["energy_kwh"] / before["energy_kwh"] if before["energy_kwh"] else math.nan
    return [f"{now['suite']}: run time ×{ratio:.2f} ({now['wall_time_s']:.1f} s), "
            f"energy ×{energy:.2f} vs the baseline on the same hardware (informative, never "
            "blocks)"]


def _notes(baseline: pd.DataFrame, current: pd.DataFrame, verdicts: pd.DataFrame,
           before: dict | None, now: dict, other_device: bool) -> list[str]:
    """Time and energy against the baseline's (``_cost_note``), what the baseline lacks, seeds
    that differ from the runs', and a baseline from another kind of device."""
    suite, notes = now["suite"], _cost_note(before, now)
    new = int((verdicts["verdict"] == GateVerdict.NEW).sum())
    if len(baseline) and len(current) and new:
        notes.append(f"{suite}: {new} value(s) have no baseline: it covers "
                     f"{baseline['configuration'].nunique()} of "
                     f"{current['configuration'].nunique()} configuration(s)")
    seeds_base, seeds_now = baseline["n"].max(), current["n"].max()
    if len(baseline) and len(current) and seeds_base != seeds_now:
        notes.append(f"{suite}: the baseline has {int(seeds_base)} seed(s) a value, the runs "
                     f"{int(seeds_now)}")
    if other_device:
        unsure = int((verdicts["verdict"] == GateVerdict.INCONCLUSIVE).sum())
        notes.append(f"{suite}: baseline on {before['hardware']}, runs on {now['hardware']}: "
                     "beyond its tolerance a value regresses only if ≥ 3 seeds a side show "
                     f"it; {unsure} value(s) inconclusive")
    return notes
