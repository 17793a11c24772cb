"""Association tests between per-patient features and categorical clinical variables.

Each feature is tested against each variable on the patients with both values present:
Mann–Whitney U (two-sided) for two groups, Kruskal–Wallis for more; and, for binary outcomes,
Fisher's exact test of the feature binarised at its median (above vs at or below) against the
outcome. Benjamini–Hochberg q-values are taken over every test that produced a p-value.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

COLUMNS = ("feature", "variable", "test", "n", "groups", "statistic", "p", "q")
MIN_PER_GROUP = 2  # groups smaller than this are dropped from a test


def benjamini_hochberg(p_values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg adjusted p-values (q), in the input order.

    NaN p-values stay NaN and do not count towards the number of tests.
    """
    p = np.asarray(p_values, dtype=float)
    q = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    if ok.size == 0:
        return q
    order = ok[np.argsort(p[ok], kind="stable")]
    ranked = p[order] * ok.size / np.arange(1, ok.size + 1)
    q[order] = np.minimum(np.minimum.accumulate(ranked[::-1])[::-1], 1.0)
    return q


def _group_label(value: object) -> str:
    number = float(value)  # type: ignore[arg-type]
    return str(int(number)) if number.is_integer() else f"{number:g}"


def _row(feature: str, variable: str, test: str, groups: dict[str, int], stat: float, p: float) -> dict:
    text = ", ".join(f"{k}: {v}" for k, v in groups.items())
    return {"feature": feature, "variable": variable, "test": test, "n": sum(groups.values()),
            "groups": text, "statistic": stat, "p": p, "q": math.nan}  # fmt: skip


def rank_test(values: pd.Series, labels: pd.Series, feature: str, variable: str) -> dict:
    """Mann–Whitney U (2 groups) or Kruskal–Wallis (>2) of ``values`` across ``labels``.

    Rows with a missing value or label are dropped, as are groups under :data:`MIN_PER_GROUP`;
    fewer than two groups left, or identical values everywhere, gives test ``"skipped"`` and p NaN.
    """
    data = pd.DataFrame({"x": values, "g": labels}).dropna()
    data["g"] = [_group_label(g) for g in data["g"]]
    sizes = data["g"].value_counts()
    keep = sorted(sizes[sizes >= MIN_PER_GROUP].index, key=lambda s: float(s))
    samples = [data.loc[data["g"] == g, "x"].to_numpy(float) for g in keep]
    groups = {g: len(s) for g, s in zip(keep, samples, strict=True)}
    if len(samples) < 2 or np.ptp(np.concatenate(samples)) == 0:
        return _row(feature, variable, "skipped", groups, math.nan, math.nan)
    if len(samples) == 2:
        result = stats.mannwhitneyu(samples[0], samples[1], alternative="two-sided")
        return _row(feature, variable, "mann-whitney", groups, float(result.statistic), float(result.pvalue))
    result = stats.kruskal(*samples)
    return _row(feature, variable, "kruskal-wallis", groups, float(result.statistic), float(result.pvalue))


def fisher_median_test(values: pd.Series, labels: pd.Series, feature: str, variable: str) -> dict:
    """Fisher's exact test of (feature > its median) against a binary outcome.

    The statistic is the odds ratio; the ``groups`` text counts patients per outcome. Skipped when
    the outcome does not have exactly two values or the split leaves an empty side.
    """
    data = pd.DataFrame({"x": values, "g": labels}).dropna()
    data["g"] = [_group_label(g) for g in data["g"]]
    outcomes = sorted(data["g"].unique(), key=float)
    high = data["x"] > data["x"].median()
    groups = {g: int((data["g"] == g).sum()) for g in outcomes}
    if len(outcomes) != 2 or high.all() or not high.any():
        return _row(feature, variable, "skipped", groups, math.nan, math.nan)
    table = [[int((high & (data["g"] == g)).sum()), int((~high & (data["g"] == g)).sum())] for g in outcomes]
    result = stats.fisher_exact(table)
    return _row(feature, variable, "fisher-median", groups, float(result.statistic), float(result.pvalue))


def association_table(
    features: pd.DataFrame,
    variables: pd.DataFrame,
    feature_names: Sequence[str],
    variable_names: Sequence[str],
    binary_outcomes: Sequence[str] = (),
) -> pd.DataFrame:
    """Every feature × variable test, with BH q-values over all tests, sorted by p.

    Args:
        features: one row per patient (same index as ``variables``).
        variables: clinical columns, one row per patient.
        feature_names: numeric columns of ``features`` to test.
        variable_names: categorical columns of ``variables`` (rank tests).
        binary_outcomes: columns that also get the Fisher median-split test.

    Returns:
        A DataFrame with :data:`COLUMNS`; skipped tests keep p and q NaN and sort last.
    """
    rows = []
    for feature in feature_names:
        for variable in variable_names:
            rows.append(rank_test(features[feature], variables[variable], feature, variable))
            if variable in binary_outcomes:
                rows.append(fisher_median_test(features[feature], variables[variable], feature, variable))
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    table["q"] = benjamini_hochberg(table["p"].to_numpy(float))
    return table.sort_values(["p", "feature", "variable"], kind="stable", na_position="last").reset_index(
        drop=True
    )
