"""Study files: parsing, the errors they give, dataset resolution and anchors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from braintumor.errors import ConfigError
from braintumor.experiments import STEP_KINDS, find_shared_data, load_study, parse_data_options, plan_study
from braintumor.experiments.headlines import anchor_for
from braintumor.experiments.study import Anchor

REPO = Path(__file__).resolve().parents[2]
STUDIES = sorted((REPO / "configs" / "studies").glob("*.yaml"))


ROI = {"name": "a", "kind": "train", "config": "base.yaml", "set": ["data.roi_expansion=1.5"]}


def write_study(folder: Path, steps: list[dict], **extra: object) -> Path:
    """A study file beside a minimal experiment config ``base.yaml``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "base.yaml").write_text(
        yaml.safe_dump({"model": {"name": "cnn-small"}, "train": {"task": "classify"}})
    )
    (folder / "data").mkdir(exist_ok=True)
    study = {"name": "s", "data": {"main": "data"}, "steps": steps, **extra}
    path = folder / "study.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return path


def test_shipped_studies_parse_and_plan(tmp_path: Path) -> None:
    assert {p.stem for p in STUDIES} == {
        "kaggle4-classification", "figshare-classification", "figshare-segment-classify",
        "lgg-segmentation", "lgg-radiogenomics",
    }  # fmt: skip
    for path in STUDIES:
        study = load_study(path)
        assert all(s.kind in STEP_KINDS for s in study.steps)
        fake = {name: str(tmp_path) for name in study.datasets}  # any existing folder will do for planning
        for quick in (False, True):
            steps = plan_study(study, tmp_path / study.name, quick=quick, data=fake)
            assert [s.name for s in steps] == [s.name for s in study.steps]


def test_quick_and_references_resolve(tmp_path: Path) -> None:
    study = load_study(REPO / "configs" / "studies" / "figshare-classification.yaml")
    fake = {name: str(tmp_path) for name in study.datasets}
    steps = {s.name: s for s in plan_study(study, tmp_path / "run", quick=True, data=fake)}
    pretrained = steps["resnet18-pretrained"]
    assert "train.epochs=1" in pretrained.overrides and pretrained.folds == (0,)
    assert (
        pretrained.refs["init_from"]
        == tmp_path / "run" / "kaggle4-resnet18" / "checkpoints" / "best.safetensors"
    )
    assert pretrained.config().model.init_from.endswith("best.safetensors")
    assert steps["kaggle4-resnet18"].data == tmp_path.resolve()
    assert "model.kwargs={classifier_width: 64}" in steps["vgg16-scratch"].overrides
    fused = steps["resnet18-fused"]
    assert fused.refs == {"cls": tmp_path / "run" / "resnet18-scratch"} and fused.data_name == "figshare"
    assert fused.spec.options == {"cls": "resnet18-scratch", "weight": 0.5, "trees": 1000}
    assert fused.summary_file == tmp_path / "run" / "resnet18-fused" / "cv_metrics.json"
    assert fused.overrides == () and fused.trainer == {}
    segment_classify = load_study(REPO / "configs" / "studies" / "figshare-segment-classify.yaml")
    assert segment_classify.step("pipeline").options["cls"] == "roi-sweep"  # the five arms, as t1ce ships
    planned = {s.name: s for s in plan_study(segment_classify, tmp_path / "fsc", data=fake)}
    assert planned["pipeline"].refs["cls"] == tmp_path / "fsc" / "roi-sweep"
    full = {s.name: s for s in plan_study(study, tmp_path / "run", data=fake)}
    assert full["vgg16-scratch"].folds is None and full["vgg16-scratch"].config().train.epochs == 18


def test_unknown_step_kind_lists_the_valid_ones(tmp_path: Path) -> None:
    path = write_study(tmp_path, [{"name": "a", "kind": "fit", "config": "base.yaml"}])
    with pytest.raises(ConfigError, match=r"step 'a': unknown kind 'fit'; valid kinds: train, cv") as info:
        load_study(path)
    assert str(path) in str(info.value)


def test_missing_config_file_is_named(tmp_path: Path) -> None:
    path = write_study(tmp_path, [{"name": "a", "kind": "train", "config": "nope.yaml"}])
    with pytest.raises(ConfigError, match=r"config 'nope.yaml' not found \(looked for .*nope.yaml\)"):
        load_study(path)


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ([{"name": "a", "kind": "train"}], "a train step needs config"),
        (
            [{"name": "a", "kind": "train", "config": "base.yaml", "factors": [1]}],
            r"unknown key\(s\) \['factors'\]",
        ),
        ([{"name": "p", "kind": "pipeline", "seg": "x", "cls": "y"}], "seg='x' names no earlier step"),
        ([{"name": "c", "kind": "compare", "runs": ["c"]}], "runs='c' names no earlier step"),
        ([{"name": "a", "kind": "train", "config": "base.yaml"}] * 2, "two steps are named 'a'"),
        (
            [{"name": "a", "kind": "train", "config": "base.yaml", "data": "other"}],
            "data='other' is not one of",
        ),
        (
            [{"name": "a", "kind": "train", "config": "base.yaml", "set": ["epochs=3"]}],
            "must look like section.key",
        ),
        ([{"name": "../a", "kind": "train", "config": "base.yaml"}], "must be a folder name"),
        ([{"name": "r", "kind": "radiogenomics", "top": "many"}], "top must be int, got 'many'"),
        (
            [{"name": "a", "kind": "cv", "config": "base.yaml", "then_all": "yes"}],
            "then_all must be bool, got 'yes'",
        ),
        (
            [{"name": "a", "kind": "train", "config": "base.yaml", "then_all": True}],
            r"unknown key\(s\) \['then_all'\]",
        ),
        ([{"name": "f", "kind": "fuse"}], "a fuse step needs cls"),
        ([{"name": "f", "kind": "fuse", "cls": "a"}, ROI], "cls='a' names no earlier step"),
        (
            [ROI, {"name": "f", "kind": "fuse", "cls": "a", "weight": 1.5}],
            r"weight is the CNN's share .*\[0, 1\]",
        ),
        ([ROI, {"name": "f", "kind": "fuse", "cls": "a", "weight": -0.1}], r"in \[0, 1\]; got -0\.1"),
        ([ROI, {"name": "f", "kind": "fuse", "cls": "a", "weight": "half"}], "weight must be int or float"),
        ([ROI, {"name": "f", "kind": "fuse", "cls": "a", "weight": True}], "weight must be int or float"),
        ([ROI, {"name": "f", "kind": "fuse", "cls": "a", "trees": 0}], "trees must be at least 1, got 0"),
        ([ROI, {"name": "f", "kind": "fuse", "cls": "a", "trees": 10.5}], "trees must be int"),
        ([ROI, {"name": "f", "kind": "fuse", "cls": "a", "folds": [0]}], r"unknown key\(s\) \['folds'\]"),
        ([ROI, {"name": "f", "kind": "fuse", "cls": "a", "data": "main"}], r"unknown key\(s\) \['data'\]"),
        (
            [{"name": "rg", "kind": "radiogenomics"}, {"name": "f", "kind": "fuse", "cls": "rg"}],
            "cls='rg' is a radiogenomics step; expected train/cv",
        ),
        (
            [
                {"name": "s", "kind": "sweep-roi", "config": "base.yaml", "factors": [1.5]},
                {"name": "f", "kind": "fuse", "cls": "s"},
            ],
            "cls='s' is a sweep-roi step; expected train/cv",
        ),
        (
            [ROI, {"name": "f", "kind": "fuse", "cls": "a"}, {"name": "g", "kind": "fuse", "cls": "f"}],
            "cls='f' is a fuse step; expected train/cv",
        ),
        (
            [ROI, {"name": "p", "kind": "pipeline", "seg": "a", "cls": "a", "fuse_weight": 2}],
            r"fuse_weight is the CNN's share of the probabilities, in \[0, 1\]; got 2",
        ),
        (
            [ROI, {"name": "p", "kind": "pipeline", "seg": "a", "cls": "a", "fuse_weight": "yes"}],
            "fuse_weight must be int or float",
        ),
        (
            [ROI, {"name": "p", "kind": "pipeline", "seg": "a", "cls": "a", "gate": 3}],
            "gate must be str",
        ),
        (
            [
                {"name": "rg", "kind": "radiogenomics"},
                ROI,
                {"name": "p", "kind": "pipeline", "seg": "a", "cls": "a", "gate": "rg"},
            ],
            "gate='rg' is a radiogenomics step; expected train/cv",
        ),
    ],
)
def test_bad_steps_are_refused(tmp_path: Path, steps: list[dict], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_study(write_study(tmp_path, steps))


def test_then_all_cv_step_is_finished_only_with_its_all_patient_model(tmp_path: Path) -> None:
    """``cv_metrics.json`` is written before the all-patient training: a study stopped during that
    training must train ``all/`` on rerun, not reuse the step."""
    from braintumor.experiments.runner import STEP_FILE, _check_fingerprint
    from braintumor.experiments.steps import step_record

    path = write_study(tmp_path, [{"name": "cv", "kind": "cv", "config": "base.yaml", "then_all": True}])
    (step,) = plan_study(load_study(path), tmp_path / "run")
    assert step.summary_file == tmp_path / "run" / "cv" / "cv_metrics.json"
    assert step.done_file == tmp_path / "run" / "cv" / "all" / "metrics.json"
    step.folder.mkdir(parents=True)
    (step.folder / STEP_FILE).write_text(json.dumps(step_record(step)))
    step.summary_file.write_text("{}")
    assert not _check_fingerprint(step)
    step.done_file.parent.mkdir()
    step.done_file.write_text("{}")
    assert _check_fingerprint(step)


def test_fuse_step_defaults_data_and_settings(tmp_path: Path) -> None:
    """A fuse step reads its classifier's dataset; its defaults are part of its recorded settings."""
    steps = [
        {**ROI, "data": "other"},
        {"name": "f", "kind": "fuse", "cls": "a", "description": "fused"},
        {"name": "g", "kind": "fuse", "cls": "a", "weight": 1, "trees": 7},
        {"name": "p", "kind": "pipeline", "seg": "a", "cls": "a", "fuse_weight": 0},
    ]
    study = load_study(write_study(tmp_path, steps, data={"main": "data", "other": "."}))
    assert study.step("f").options == {"cls": "a", "weight": 0.5, "trees": 1000}
    assert study.step("g").options["weight"] == 1.0 and isinstance(study.step("g").options["weight"], float)
    assert study.step("p").options["fuse_weight"] == 0.0
    gated = {"name": "q", "kind": "pipeline", "seg": "a", "cls": "a", "gate": "a"}
    planned_gate = plan_study(load_study(write_study(tmp_path, [ROI, gated])), tmp_path / "run")[1]
    assert planned_gate.refs["gate"] == (tmp_path / "run" / "a").resolve()
    planned = {s.name: s for s in plan_study(study, tmp_path / "run")}
    fused = planned["f"]
    assert fused.data_name == "other" and fused.data == tmp_path.resolve()
    assert fused.refs == {"cls": (tmp_path / "run" / "a").resolve()}
    assert fused.summary_file.name == "cv_metrics.json"
    record = fused.fingerprint()
    assert record["kind"] == "fuse" and record["options"] == {"cls": "a", "weight": 0.5, "trees": 1000}
    explicit = [*steps[:1], {"name": "f", "kind": "fuse", "cls": "a", "weight": 0.5, "trees": 1000}]
    again = plan_study(load_study(write_study(tmp_path, explicit, data={"main": "data", "other": "."})),
                       tmp_path / "run")  # fmt: skip
    assert again[1].fingerprint() == record


def test_fuse_step_needs_a_tumour_region_classifier(tmp_path: Path) -> None:
    steps = [{"name": "a", "kind": "cv", "config": "base.yaml"}, {"name": "f", "kind": "fuse", "cls": "a"}]
    study = load_study(write_study(tmp_path, steps))
    with pytest.raises(ConfigError, match=r"step 'f': cls='a' is not a tumour-region classifier"):
        plan_study(study, tmp_path / "run")


def test_reference_to_a_radiogenomics_step_is_refused(tmp_path: Path) -> None:
    steps = [
        {"name": "rg", "kind": "radiogenomics"},
        {"name": "p", "kind": "pipeline", "seg": "rg", "cls": "rg"},
    ]
    with pytest.raises(ConfigError, match="seg='rg' is a radiogenomics step; expected train/cv"):
        load_study(write_study(tmp_path, steps))


def test_plan_checks_model_and_task(tmp_path: Path) -> None:
    steps = [{"name": "a", "kind": "train", "config": "base.yaml", "set": ["model.name=unet"]}]
    study = load_study(write_study(tmp_path, steps))
    with pytest.raises(ConfigError, match=r"'unet' is a segment model but train\.task='classify'"):
        plan_study(study, tmp_path / "run")
    steps = [{"name": "a", "kind": "train", "config": "base.yaml", "set": ["model.name=resnet-9000"]}]
    with pytest.raises(ConfigError, match="unknown model 'resnet-9000'"):
        plan_study(load_study(write_study(tmp_path, steps)), tmp_path / "run")


def test_plan_checks_sweep_factors(tmp_path: Path) -> None:
    steps = [{"name": "s", "kind": "sweep-roi", "config": "base.yaml", "factors": [1.0, 0.5]}]
    with pytest.raises(ConfigError, match=r"step 's': expansion factor '0\.5': expected a number >= 1"):
        plan_study(load_study(write_study(tmp_path, steps)), tmp_path / "run")


def test_data_options_and_shared_folder(tmp_path: Path) -> None:
    steps = [{"name": "a", "kind": "train", "config": "base.yaml"}]
    data = {"main": "${shared}/x", "other": "data"}
    study = load_study(write_study(tmp_path / "repo" / "configs", steps, data=data))
    assert parse_data_options(["/d", "other=/e"], study) == {"main": "/d", "other": "/e"}
    with pytest.raises(ConfigError, match="'nope' is not a dataset"):
        parse_data_options(["nope=/e"], study)
    (tmp_path / "shared" / "data" / "x").mkdir(parents=True)
    shared = find_shared_data([study.path.parent])
    assert shared == (tmp_path / "shared" / "data").resolve()
    assert find_shared_data([study.path.parent], "/elsewhere") == Path("/elsewhere")
    step = plan_study(study, tmp_path / "run", shared=shared)[0]
    assert step.data == shared / "x" and f"data.path={shared / 'x'}" in step.overrides
    with pytest.raises(ConfigError, match="no shared data folder was found; set BRAINTUMOR_SHARED_DATA"):
        plan_study(study, tmp_path / "run", shared=None)


def test_anchors_match_base_names_and_datasets() -> None:
    anchors = {"dice": Anchor(0.75, "seed"), "accuracy": Anchor(0.96, "seed", data="figshare")}
    assert anchor_for("dice_per_slice", anchors) == ("dice", anchors["dice"])
    assert anchor_for("accuracy[roi 1.5]", anchors, "figshare") == ("accuracy", anchors["accuracy"])
    assert anchor_for("accuracy", anchors, "kaggle4") is None
    assert anchor_for("accuracy_gt_crop_fused", anchors, "figshare") == ("accuracy", anchors["accuracy"])
    assert anchor_for("accuracy_forest", anchors, "figshare") == ("accuracy", anchors["accuracy"])
    # a patient's slices voting is not the anchors' per-slice protocol
    assert anchor_for("accuracy_patient_vote", anchors, "figshare") is None
    assert anchor_for("train_seconds", {"train_seconds": Anchor(1.0)}) is None
