"""The grid that `evaluate --tune` scores on validation patients."""

from __future__ import annotations

from braintumor.config import EvalConfig
from braintumor.training.tune_eval import candidates


def test_grid_starts_with_the_plain_setting_and_keeps_3d_settings_to_volumes() -> None:
    base = EvalConfig(batch_size=7)
    volumes, single_slices = candidates(base), candidates(base, volumetric=False)
    first = volumes[0]
    assert (first.tta, first.threshold, first.largest_component) == (False, 0.5, False)  # ties keep it
    assert len(volumes) == 48 and len({str(c) for c in volumes}) == 48
    assert len(single_slices) == 16 and all(c.postprocess_scope == "slice" for c in single_slices)
    assert all(c.batch_size == 7 and c.fill_holes == c.largest_component for c in volumes)
    assert {c.component_fraction for c in volumes if c.postprocess_scope == "patient"} == {1.0, 0.5, 0.2, 0.1}
