"""The package's imports follow DESIGN.md's order: no cycles, no arrows back up (scripts/import_graph.py)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("import_graph", ROOT / "scripts" / "import_graph.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


ig = _load_script()


@pytest.fixture(scope="module")
def graph() -> Any:
    return ig.build_graph(ROOT / "src")


def test_no_cycles_between_layers_or_modules(graph: Any) -> None:
    found = ig.analyse(graph)
    assert found.layer_cycles == []
    assert found.module_cycles == []


def test_inference_and_serve_never_import_training(graph: Any) -> None:
    for shipped in ("inference", "serve"):
        assert (shipped, "training") not in graph.layer_edges, graph.layer_edges.get((shipped, "training"))
    assert ig.analyse(graph).reaches_training == {}  # not through another layer either


def test_training_never_imports_cli(graph: Any) -> None:
    assert [edge for edge in graph.layer_edges if edge[1] == "cli"] == []


def test_no_new_upward_arrows_and_known_ones_still_exist(graph: Any) -> None:
    found = ig.analyse(graph)
    assert found.new_upward == []
    stale = set(ig.KNOWN_UPWARD) - {arrow[:2] for arrow in found.upward}
    assert not stale, f"fixed, so take them out of KNOWN_UPWARD in scripts/import_graph.py: {stale}"


def test_check_passes(capsys: pytest.CaptureFixture[str]) -> None:
    assert ig.main(["--check"]) == 0
    assert "== check: ok" in capsys.readouterr().out


def test_check_finds_a_lazy_upward_import_and_its_cycle(tmp_path: Path) -> None:
    package = tmp_path / "braintumor"
    for folder in ("inference", "training"):
        (package / folder).mkdir(parents=True)
        (package / folder / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    lazy = "def run():\n    from braintumor.training.fit import fit\n"  # a function-level import counts
    (package / "inference" / "predict.py").write_text(lazy)
    (package / "training" / "fit.py").write_text("from ..inference.predict import run\n\nfit = run\n")
    found = ig.analyse(ig.build_graph(tmp_path))
    assert found.layer_cycles == [["inference", "training"]]
    assert ("inference", "training", "inference never imports training") in found.upward
    assert found.reaches_training == {
        "inference": ["braintumor.inference.predict", "braintumor.training.fit"]
    }
    assert not found.ok


def test_reaching_training_is_judged_module_by_module(tmp_path: Path) -> None:
    """``inference`` may read bundles while another ``bundle`` module (creation) imports ``training``;
    a chain through modules that inference actually imports is still found."""
    package = tmp_path / "braintumor"
    for folder in ("inference", "bundle", "training"):
        (package / folder).mkdir(parents=True)
        (package / folder / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "inference" / "analyzer.py").write_text("from braintumor.bundle.load import load\n")
    (package / "bundle" / "load.py").write_text("def load():\n    return 1\n")
    (package / "bundle" / "create.py").write_text("from braintumor.training.fit import fit\n")
    (package / "training" / "fit.py").write_text("def fit():\n    return 2\n")
    assert ig.analyse(ig.build_graph(tmp_path)).reaches_training == {}
    (package / "bundle" / "load.py").write_text("from braintumor.bundle.create import fit\n")
    chain = ig.analyse(ig.build_graph(tmp_path)).reaches_training["inference"]
    assert chain == ["braintumor.inference.analyzer", "braintumor.bundle.load", "braintumor.bundle.create",
                     "braintumor.training.fit"]  # fmt: skip
