"""Association tests and the Benjamini–Hochberg correction."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from braintumor.analysis.stats import (
    association_table,
    benjamini_hochberg,
    fisher_median_test,
    rank_test,
)


def test_benjamini_hochberg_by_hand() -> None:
    # sorted p: 0.005 (×4/1 = 0.02), 0.01 (×4/2 = 0.02), 0.03 (×4/3 = 0.04), 0.04 (×4/4 = 0.04)
    q = benjamini_hochberg([0.01, 0.04, 0.03, 0.005])
    np.testing.assert_allclose(q, [0.02, 0.04, 0.04, 0.02])


def test_benjamini_hochberg_is_monotone_capped_and_skips_nan() -> None:
    # m = 3 finite: 0.02×3 = 0.06, 0.03×3/2 = 0.045 -> step-up minimum 0.045 for both; 0.9×3/3 = 0.9
    q = benjamini_hochberg([0.03, math.nan, 0.02, 0.9])
    np.testing.assert_allclose(q, [0.045, math.nan, 0.045, 0.9])
    assert benjamini_hochberg([0.5, 0.9])[1] <= 1.0
    assert np.isnan(benjamini_hochberg([math.nan])).all()


def test_rank_test_picks_mann_whitney_or_kruskal_and_drops_missing() -> None:
    x = pd.Series([1.0, 2, 3, 4, 5, 6, 7, np.nan])
    two = pd.Series([1, 1, 1, 2, 2, 2, np.nan, 1])
    row = rank_test(x, two, "f", "v")
    assert row["test"] == "mann-whitney" and row["n"] == 6 and row["groups"] == "1: 3, 2: 3"
    assert row["p"] == pytest.approx(stats.mannwhitneyu([1, 2, 3], [4, 5, 6]).pvalue)
    three = pd.Series([1, 1, 2, 2, 3, 3, 3, 3])
    row = rank_test(x, three, "f", "v")
    assert row["test"] == "kruskal-wallis" and row["n"] == 7
    assert row["p"] == pytest.approx(stats.kruskal([1, 2], [3, 4], [5, 6, 7]).pvalue)


def test_rank_test_skips_without_two_groups() -> None:
    row = rank_test(pd.Series([1.0, 2, 3]), pd.Series([1, 1, 2]), "f", "v")
    assert row["test"] == "skipped" and math.isnan(row["p"])


def test_fisher_median_split_by_hand() -> None:
    x = pd.Series([1.0, 2, 3, 4, 5, 6, 7, 8])
    outcome = pd.Series([0, 0, 0, 0, 1, 1, 1, 0])
    row = fisher_median_test(x, outcome, "f", "death01")
    # above median 4.5: outcome 0 -> 1 (8), outcome 1 -> 3 ; at/below: outcome 0 -> 4, outcome 1 -> 0
    expected = stats.fisher_exact([[1, 4], [3, 0]])
    assert row["test"] == "fisher-median"
    assert row["p"] == pytest.approx(expected.pvalue)


def test_association_table_is_tidy_sorted_and_corrected() -> None:
    rng = np.random.default_rng(0)
    group = np.repeat([1, 2, 3], 10)
    features = pd.DataFrame({"signal": group + rng.normal(0, 0.3, 30), "noise": rng.normal(size=30)})
    variables = pd.DataFrame({"cluster": group, "death01": np.tile([0, 1], 15)})
    table = association_table(features, variables, ["signal", "noise"], ["cluster", "death01"], ["death01"])
    assert list(table.columns) == ["feature", "variable", "test", "n", "groups", "statistic", "p", "q"]
    assert len(table) == 2 * (2 + 1)
    assert table.iloc[0]["feature"] == "signal" and table.iloc[0]["variable"] == "cluster"
    assert table["p"].is_monotonic_increasing
    np.testing.assert_allclose(table["q"], benjamini_hochberg(table["p"].to_numpy()))
