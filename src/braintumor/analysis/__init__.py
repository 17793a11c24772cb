"""Radiogenomics: tumour shape features from masks against the LGG ``data.csv`` clusters."""

from braintumor.analysis.radiogenomics import (
    CLUSTERS,
    OUTCOMES,
    RadiogenomicsResult,
    run_radiogenomics,
    write_radiogenomics,
)
from braintumor.analysis.shape import slice_features, volume_features
from braintumor.analysis.stats import association_table, benjamini_hochberg

__all__ = [
    "CLUSTERS",
    "OUTCOMES",
    "RadiogenomicsResult",
    "association_table",
    "benjamini_hochberg",
    "run_radiogenomics",
    "slice_features",
    "volume_features",
    "write_radiogenomics",
]
