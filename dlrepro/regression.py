"""The regression gate: result tables summarised per configuration, metric and step, compared
with the committed baselines; the verdicts and the gate's policy are docs/gate.md's."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from dlrepro import claims, devices, fidelity, tables
from dlrepro.tables import CLAIMS_FILE, FIDELITY_FILE, KEY, STATS, Baselines
from dlrepro.errors import Refused
from dlrepro.files import atomic_write
from dlrepro.layout import Results
from dlrepro.overrides import Override
from dlrepro.project import baselines_dir, given, resolve, shipped
from dlrepro.schema import Metric
from dlrepro.suite import Suite
from dlrepro.formatting import MEASURED, GateVerdict, assignments

ALPHA = 0.01
DEFAULT_REL_TOLERANCE = 1e-9


def summarise(runs: pd.DataFrame, metrics: pd.DataFrame, suite: Suite,
              profile: str) -> pd.DataFrame:
    """Mean, std and seed count of every (configuration, metric, step) of one suite's successful
    runs; a configuration is named by the parameters the suite file varies, not by what the table
    holds, so that a failed run cannot rename the others."""
    table = tables.joined(runs, metrics, suite.name)
    timing = [name for name, metric in suite.metrics.items() if metric.timing]
    table = table[~table["metric"].isin(timing)]  # speed depends on the machine: cost.csv covers it
    if table.empty:
        return pd.DataFrame(columns=KEY + STATS)
    varied = [name for name in suite.runs(profile)[0].varied if name in table]
    table["configuration"] = "all"
    if varied:  # a parameter its run's mode does not read is empty in its row: left out
        table["configuration"] = table.apply(lambda row: assignments(
            (name, row[name]) for name in varied if pd.notna(row[name])), axis=1)
    table["step"] = table["step"].astype("Int64")
    summary = (table.groupby(["configuration", "metric", "step"], dropna=False, sort=True)["value"]
               .agg(n="count", mean="mean", std="std").reset_index())
    summary.insert(0, "suite", suite.name)
    return summary[KEY + STATS]


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


def write_verdicts(baselines: Baselines, verdicts: list,
                   numbers: list[dict]) -> list[tuple[Path, int]]:
    """Replace the evaluated suites' claims and published numbers, but a claim measured earlier
    and not now (its runs are in another folder) keeps its rows; the files written."""
    written = []
    for path, new, read in (
            (baselines.dir / CLAIMS_FILE, claims.table(verdicts), claims.read),
            (baselines.dir / FIDELITY_FILE, pd.DataFrame(numbers, columns=fidelity.COLUMNS),
             fidelity.read)):
        old = read(path)
        new = _keep_measured(new, old[old["status"].isin(MEASURED)])
        tables.write_csv(path, claims.csv_cells(tables.replaced(old, new)))
        written.append((path, len(new)))
    return written


def _keep_measured(new: pd.DataFrame, measured: pd.DataFrame) -> pd.DataFrame:
    """``new``'s rows, but a claim with rows in ``measured`` and not measured in ``new`` keeps
    those, in its place."""
    before = dict(list(measured.groupby(["suite", "claim"], sort=False)))
    rows = []
    for key, now in new.groupby(["suite", "claim"], sort=False):
        rows.append(now if now["status"].isin(MEASURED).any() else before.get(key, now))
    return pd.concat(rows, ignore_index=True) if rows else new


def compared(verdicts: pd.DataFrame) -> int:
    """How many values were compared with a baseline value (neither missing nor new)."""
    return int((~verdicts["verdict"].isin([GateVerdict.MISSING, GateVerdict.NEW])).sum())


def described(verdicts: pd.DataFrame) -> tuple[list[str], list[tuple[GateVerdict, str]]]:
    """Each suite's verdicts counted, a line each; then each change, a line each, with its
    verdict. Values missing or new come by whole configurations (a changed parameter): a line a
    configuration."""
    def number(value) -> str:
        return "" if pd.isna(value) else f"{value:.6g}"

    counted = verdicts.groupby("suite")["verdict"].value_counts().unstack(fill_value=0)
    counts = [f"{suite}: " + ", ".join(f"{n} {verdict}" for verdict, n in row.items() if n)
              for suite, row in counted.iterrows()]
    changed = [GateVerdict.REGRESSED, GateVerdict.IMPROVED, GateVerdict.INCONCLUSIVE]
    lines = []
    for row in verdicts[verdicts["verdict"].isin(changed)].itertuples():
        step = "" if pd.isna(row.step) else f" step {row.step}"
        welch = "" if pd.isna(row.p_value) else f", Welch p = {row.p_value:.2g}"
        lines.append((row.verdict, f"{row.suite} [{row.configuration}] {row.metric}{step}: "
                      f"{number(row.mean_base)} → {number(row.mean)} (Δ {number(row.delta)}, "
                      f"allowed ± {number(row.allowed)}{welch})"))
    absent = verdicts[verdicts["verdict"].isin([GateVerdict.MISSING, GateVerdict.NEW])]
    by_configuration = absent.groupby(["verdict", "suite", "configuration"], sort=False)
    for (verdict, suite, configuration), rows in by_configuration:
        steps = rows.groupby("metric", sort=False)["step"].count()
        names = ", ".join(map(_metric_steps, steps.index, steps))
        lines.append((verdict, f"{suite} [{configuration}]: {names}"))
    return counts, lines


def _metric_steps(metric: str, steps: int) -> str:
    return f"{metric} ({steps} steps)" if steps else metric


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
    """Time and energy against the baseline's on the same hardware, what the baseline lacks,
    seeds that differ from the runs', and a baseline from another kind of device."""
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


def check(names: list[str], results: Path, profile: str, baseline_root: Path, allow_new: bool,
          say: Callable[[str], None]) -> tuple[str, pd.DataFrame, list[str], list[str], list[str],
                                               Path]:
    """Every named suite's tables (none named: every suite and every baseline) against its
    baseline: what it compares, a line; the verdicts, written to check.csv; notes on them; why
    the gate fails, a reason a line (none: it passes), and what fixes that; check.csv's path."""
    baselines = Baselines(baseline_root, profile)
    baselines.ensure_exists()
    folder = Results(results, profile)
    suites = given(names, folder, [])
    known = {s.name for s in suites}
    reasons = [f"baseline of {name} has no suite file {name}.toml"
               for name in baselines.suites() if not names and name not in known]
    runs, metrics = tables.load(folder)
    executed = set(tables.ran(runs)["suite"])  # once, not per suite
    ran = [s.name for s in suites if s.name in executed]
    header = (f"comparing {folder.root} with {baselines.dir}: ran here: {', '.join(ran) or 'none'}"
              f"; did not run here: {', '.join(sorted(known - set(ran))) or 'none'}")
    costs = {row["suite"]: row for row in baselines.cost().to_dict("records")}
    empty, verdicts, notes, unrun = pd.DataFrame(columns=KEY + STATS), [], [], []
    for suite in suites:
        baseline, current = baselines.read(suite.name), summarise(runs, metrics, suite, profile)
        if suite.name not in ran:  # nothing to compare, with a baseline or without
            absent = set(tables.not_run(runs, suite.name).values())  # its data set is not here
            notes += [f"{suite.name}: not compared, not run here: {why}" for why in absent]
            unrun += [] if absent else [suite]
            continue
        if baseline is None and not allow_new:
            reasons.append(f"{suite.name} has no baseline (add one on purpose, or pass "
                           "--allow-new)")
        baseline = empty if baseline is None else baseline
        before, now = costs.get(suite.name), cost(runs, suite.name)
        other_device = bool(before and before["hardware"] and now["runs"]) and (
            _kinds(before["hardware"]) != _kinds(now["hardware"]))
        verdicts.append(compare(baseline, current, suite.metrics, other_device))
        notes += _notes(baseline, current, verdicts[-1], before, now, other_device)
    verdicts = pd.concat(verdicts or [compare(empty, empty, {})], ignore_index=True)
    blocking = int(verdicts["verdict"].isin([GateVerdict.REGRESSED, GateVerdict.MISSING]).sum())
    if blocking:
        reasons.append(f"{blocking} value(s) regressed or missing")
    if not compared(verdicts) and not unrun:
        reasons.append("no value was compared with a baseline")
    own = "" if baseline_root == baselines_dir() else f" --baseline {baseline_root}"
    fixes = [f"Fix the cause, or refresh a baseline on purpose with `dlrepro baseline update "
             f"SUITE --profile {profile}{own}`."] if reasons else []
    if unrun:
        shipped_names = {path: name for name, path in shipped().items()}  # else, the file's path
        named = [shipped_names.get(s.path, str(s.path)) for s in unrun]
        where = "" if results == Path("results") else f" --results {results}"
        reasons.append(f"{', '.join(s.name for s in unrun)}: did not run here, so not compared")
        fixes.insert(0, f"Run {'them' if len(unrun) > 1 else 'it'}: `dlrepro run "
                     f"{' '.join(named)} --profile {profile}{where}`.")
    with folder.lock(say):
        atomic_write(folder.check, lambda tmp: verdicts.to_csv(tmp, index=False))
    return header, verdicts, notes, reasons, fixes, folder.check


def update_baselines(names: list[str], results: Path, profile: str, baseline_root: Path,
                     show: Callable[[str, pd.DataFrame | None], None],
                     overrides: list[Override] = (),
                     only: list[Override] = ()) -> list[tuple[Path, int]]:
    """Refresh the named suites' baselines (default: every suite with results), from the profile's
    folder or that of ``--set seeds=...`` and ``--only`` (docs/gate.md); ``show`` gets each suite's
    changes from its old baseline (None: a new one). Returns the files written."""
    changed = sorted({key for key, _ in overrides} - {"seeds"})
    if changed:
        raise Refused(f"--set {changed[0]}: a baseline is of its profile's settings; only "
                      "--set seeds=[...] and --only select part of them")
    baselines = Baselines(baseline_root, profile)
    folder = Results(results, profile, overrides, only)
    runs, metrics = tables.load(folder)
    suites = [s for s in given(names, folder, overrides, only)
              if names or (runs["suite"] == s.name).any()]
    if not suites:
        raise Refused(f"{folder.root}: no results: run `dlrepro run --profile {profile}` first")
    written = []
    for suite in suites:
        # named by what the profile varies, so that the profile's own runs meet these rows
        profile_suite = resolve([str(suite.path)])[0]
        summary = summarise(runs, metrics, profile_suite, profile)
        if summary.empty:
            raise Refused(f"{folder.root}: no successful runs of {suite.name}: nothing to "
                          "baseline")
        old = baselines.read(suite.name)
        if old is not None:  # the profile's configurations not measured here keep their rows
            specs = profile_suite.runs(profile)
            kept = {assignments((n, s.params[n]) for n in specs[0].varied if n in s.params)
                    or "all" for s in specs}
            summary = tables.replaced(old[old["configuration"].isin(kept)], summary,
                                      "configuration").sort_values(KEY, ignore_index=True)
        show(suite.name, None if old is None else compare(old, summary, suite.metrics))
        path = baselines.write(suite.name, summary, cost(runs, suite.name))
        written.append((path, len(summary)))
    written += write_verdicts(baselines, *fidelity.evaluated(suites, runs, metrics, profile))
    return written
