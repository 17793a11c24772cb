"""Box plots of the strongest feature–variable associations, read from a radiogenomics folder.

Reads ``features.csv`` and ``associations.csv`` (written by :mod:`braintumor.analysis.radiogenomics`)
and writes ``associations.png``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from braintumor.errors import DataError
from braintumor.reports.document import Report, Section, fmt
from braintumor.reports.plots import save_figure

FIGURE_FILE = "associations.png"
TOP_ROWS = 25
FEATURE_PREVIEW = ("volume_px", "max_area_px", "max_circularity", "max_solidity", "max_eccentricity",
                   "max_axis_ratio", "max_angular_sd", "max_margin_fluctuation")  # fmt: skip
TEST_NAMES = {"mann-whitney": "Mann–Whitney", "kruskal-wallis": "Kruskal–Wallis", "fisher-median": "Fisher"}


def _group_label(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _tested_groups(row: pd.Series, present: list[float]) -> list[float]:
    """The groups a test used, read from its ``groups`` text ("1: 5, 2: 2"); all when unreadable."""
    names = {part.split(":")[0].strip() for part in str(row.get("groups", "")).split(",")}
    chosen = [g for g in present if _group_label(g) in names]
    return chosen or present


def _box(ax: Axes, features: pd.DataFrame, row: pd.Series, rng: np.random.Generator) -> None:
    data = features[[row["feature"], row["variable"]]].dropna()
    labels = _tested_groups(row, sorted(data[row["variable"]].unique()))
    samples = [data.loc[data[row["variable"]] == g, row["feature"]].to_numpy(float) for g in labels]
    ax.boxplot(samples, widths=0.5, showfliers=False, medianprops={"color": "tab:red"})
    for i, values in enumerate(samples, start=1):
        ax.scatter(i + rng.uniform(-0.12, 0.12, values.size), values, s=12, alpha=0.7, color="tab:blue")
    ax.set_xticks(
        range(1, len(labels) + 1),
        [f"{_group_label(g)}\n(n={s.size})" for g, s in zip(labels, samples, strict=True)],
    )
    ax.set_xlabel(row["variable"], fontsize=8)
    ax.set_ylabel(row["feature"], fontsize=8)
    ax.tick_params(labelsize=7)
    test = TEST_NAMES.get(row["test"], row["test"])
    ax.set_title(f"{test} p={row['p']:.3g}, q={row['q']:.3g}", fontsize=9)
    ax.grid(alpha=0.3, axis="y")


def plot_associations(
    features: pd.DataFrame, associations: pd.DataFrame, n: int = 9, ncols: int = 3, title: str = ""
) -> Figure:
    """A grid of box plots (with the patients as points) of the ``n`` smallest-p associations.

    Args:
        features: one row per patient holding every feature and variable named in ``associations``.
        associations: rows with feature, variable, test, p, q; only rows with a p-value are drawn
            and each feature–variable pair once (a Fisher test shows the same groups).
        n: panels at most.
        ncols: panels per row.
        title: figure title (e.g. the sample size).
    """
    ranked = associations[np.isfinite(associations["p"].astype(float))].sort_values("p", kind="stable")
    ranked = ranked.drop_duplicates(["feature", "variable"]).head(n)
    count = max(len(ranked), 1)
    cols = max(1, min(ncols, count))
    rows = math.ceil(count / cols)
    fig = Figure(figsize=(3.6 * cols, 3.2 * rows + 0.5), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    rng = np.random.default_rng(0)
    for ax in axes[len(ranked) :]:
        ax.set_axis_off()
    if ranked.empty:
        axes[0].text(0.5, 0.5, "no test could be run", ha="center", va="center", transform=axes[0].transAxes)
    for ax, (_, row) in zip(axes, ranked.iterrows(), strict=False):
        _box(ax, features, row, rng)
    fig.suptitle(title or "Strongest shape–variable associations (smallest p)")
    return fig


def write_association_figure(folder: str | Path, n: int = 9) -> Path:
    """Draw :func:`plot_associations` from ``folder``'s CSV files into ``folder/associations.png``.

    Raises:
        DataError: ``features.csv`` or ``associations.csv`` is missing.
    """
    folder = Path(folder)
    tables = {}
    for name in ("features", "associations"):
        path = folder / f"{name}.csv"
        if not path.is_file():
            raise DataError(path, "not found; run `braintumor radiogenomics --out FOLDER` first")
        tables[name] = pd.read_csv(path)
    summary_path = folder / "radiogenomics.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    n_patients = summary.get("n_patients", len(tables["features"]))
    note = "; exploratory" if summary.get("low_power", n_patients < 30) else ""
    title = f"Strongest shape–variable associations ({n_patients} patients{note})"
    fig = plot_associations(tables["features"], tables["associations"], n=n, title=title)
    return save_figure(fig, folder / FIGURE_FILE)


def radiogenomics_report(folder: Path) -> Report:
    """The report of a ``braintumor radiogenomics`` output folder."""
    from braintumor.reports.collect import figures, frame_table
    from braintumor.reports.compare import _read_json

    summary = _read_json(folder / "radiogenomics.json")
    facts = [("kind", "radiogenomics (shape features vs data.csv)"), ("data", str(summary.get("data", ""))),
             ("masks", str(summary.get("masks", ""))), ("patients analysed", fmt(summary.get("n_patients"))),
             ("tests run", f"{fmt(summary.get('n_tests_run'))} of {fmt(summary.get('n_tests'))}"),
             (f"q < {summary.get('significance_q')}", fmt(summary.get("n_significant")))]  # fmt: skip
    notes = [summary["warning"]] if summary.get("warning") else []
    for key, text in (("patients_without_tumour", "no tumour pixels (features NaN, left out)"),
                      ("patients_without_clinical", "not in data.csv (left out)")):  # fmt: skip
        if summary.get(key):
            notes.append(f"{len(summary[key])} patient(s) with {text}: {', '.join(summary[key])}")
    sections = []
    if (folder / "associations.csv").is_file():
        table = pd.read_csv(folder / "associations.csv")
        ran = table[table["test"] != "skipped"]
        caption = f"{min(TOP_ROWS, len(ran))} smallest p of {len(ran)} tests; q = Benjamini–Hochberg over all"
        sections.append(Section("Strongest associations", tables=[frame_table(ran.head(TOP_ROWS), caption)]))
    found = figures(folder)
    if found:
        sections.append(Section("Figures", figures=found))
    if (folder / "features.csv").is_file():
        features = pd.read_csv(folder / "features.csv")
        shown = ["patient_id", *FEATURE_PREVIEW, *(v for v in summary.get("variables", []))]
        sections.append(
            Section("Features per patient", tables=[frame_table(features, "", shown)], collapsed=True)
        )
    sections.append(Section("Methods", [str(summary.get("methods", ""))]))
    return Report(f"Radiogenomics {folder.name}", "radiogenomics", folder, facts, sections, summary, notes)
