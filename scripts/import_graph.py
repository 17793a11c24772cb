"""Print the import graph of ``braintumor`` between its layers, its cycles, and the arrows that point up.

Every ``import`` in ``src/braintumor`` counts, read statically with ``ast`` (function-level lazy imports
and ``TYPE_CHECKING`` imports included). A *layer* is a subpackage (``training``) or a top-level module
(``config``); top-level ``cli_*.py`` modules (the layout before ``cli/``) count as the ``cli`` layer.

    python scripts/import_graph.py                  # edges, cycles, upward arrows, what serve reaches
    python scripts/import_graph.py --check          # exit 1 on a cycle or a new upward arrow
    python scripts/import_graph.py --src OTHER/src  # another checkout (e.g. ``git archive`` of HEAD)

The order is DESIGN.md's ("The shape of the house"): a layer imports only the layers below it, and its
rules hold (``data`` and ``models`` never import each other; ``inference`` and ``serve`` never import
``training``, not even through another layer). One change: ``bundle/`` (creating a bundle from runs,
which fits the region forest with ``training``) sits above ``inference`` and ``training``; reading a
bundle is part of ``inference``, so what ships (``serve``, ``analyze``) never reaches training code.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

PACKAGE = "braintumor"
SRC = Path(__file__).resolve().parents[1] / "src"

# Top to bottom; a layer may import the layers on later rows. Layers DESIGN.md does not name sit where
# their imports put them: ``demo`` runs a small pipeline for ``cli``; ``analysis`` holds the study
# statistics that ``experiments`` and ``cli`` call.
ORDER: list[tuple[str, ...]] = [
    ("cli",),
    ("serve",),
    ("demo",),
    ("experiments",),
    ("reports",),
    ("analysis",),
    ("inference",),
    ("bundle",),
    ("training",),
    ("evaluation",),
    ("runtime",),
    ("models", "data"),
    ("config", "registry", "errors", "io_utils", "extras", "run_dir"),
    ("__init__",),
]
# The ground floor may import itself (cycles are still reported).
GROUND = {"config", "registry", "errors", "io_utils", "extras", "run_dir"}
# Rules DESIGN.md states in words, whatever the order says.
FORBIDDEN = {
    ("inference", "training"): "inference never imports training",
    ("serve", "training"): "serve never imports training",
    ("models", "data"): "models never imports data",
    ("data", "models"): "data never imports models",
    ("reports", "training"): "reports read result files instead of importing training",
}
# Layers that must not reach ``training`` through any chain of imports (they ship without it).
NO_TRAINING = ("serve", "inference")
# Upward arrows known and left for later: reported, but ``--check`` passes with them.
KNOWN_UPWARD = {
    ("training", "reports"): "training draws its run's figures with reports.plots (figures.py, sweep.py)",
}


@dataclass
class Graph:
    """Module-level and layer-level import edges (importer -> imported, with the importing lines)."""

    modules: dict[str, Path] = field(default_factory=dict)
    module_edges: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    layer_edges: dict[tuple[str, str], list[str]] = field(default_factory=lambda: defaultdict(list))


def module_name(path: Path, src: Path) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def layer_of(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "__init__"
    head = parts[1]
    return "cli" if head.startswith("cli_") else head


def _imported(node: ast.AST, module: str, is_package: bool) -> Iterable[tuple[str, int, tuple[str, ...]]]:
    """(target, line, names) for each import in ``node``; relative imports resolved against ``module``."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            yield alias.name, node.lineno, ()
    elif isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            anchor = module.split(".") if is_package else module.split(".")[:-1]
            anchor = anchor[: len(anchor) - (node.level - 1)]
            base = ".".join([*anchor, base] if base else anchor)
        yield base, node.lineno, tuple(alias.name for alias in node.names)


def resolve(target: str, names: tuple[str, ...], modules: dict[str, Path]) -> list[str]:
    """The package modules an import reaches: ``from pkg import sub`` reaches ``pkg.sub`` if it is a
    module, and ``pkg`` itself for any name that is not (or for ``import pkg.mod``, ``pkg.mod``)."""
    hits = [f"{target}.{name}" for name in names if f"{target}.{name}" in modules]
    if names and len(hits) == len(names):
        return hits
    parts = target.split(".")
    while parts and ".".join(parts) not in modules:
        parts.pop()
    return [*hits, ".".join(parts)] if parts else hits


def build_graph(src: Path = SRC) -> Graph:
    graph = Graph()
    for path in sorted((src / PACKAGE).rglob("*.py")):
        graph.modules[module_name(path, src)] = path
    if not graph.modules:
        raise SystemExit(f"{src / PACKAGE}: no Python modules; pass the folder holding the package (src/)")
    for module, path in graph.modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            for target, line, names in _imported(node, module, path.name == "__init__.py"):
                if target != PACKAGE and not target.startswith(PACKAGE + "."):
                    continue
                for hit in resolve(target, names, graph.modules):
                    if hit == module:
                        continue
                    graph.module_edges[module].add(hit)
                    src_layer, dst_layer = layer_of(module), layer_of(hit)
                    if src_layer != dst_layer:
                        where = f"{path.relative_to(src)}:{line} -> {hit}"
                        graph.layer_edges[(src_layer, dst_layer)].append(where)
    return graph


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan), each sorted, largest first."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    nodes = sorted(set(edges) | {d for ds in edges.values() for d in ds})

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for node in nodes:
        if node not in index:
            visit(node)
    return sorted(found, key=lambda c: (-len(c), c))


def rank(layer: str) -> int | None:
    for i, row in enumerate(ORDER):
        if layer in row:
            return i
    return None


def upward(graph: Graph) -> list[tuple[str, str, str]]:
    """(importer, imported, why) for each layer edge against DESIGN.md's order or its named rules."""
    bad = []
    for src_layer, dst_layer in sorted(graph.layer_edges):
        r_src, r_dst = rank(src_layer), rank(dst_layer)
        if (src_layer, dst_layer) in FORBIDDEN:
            bad.append((src_layer, dst_layer, FORBIDDEN[(src_layer, dst_layer)]))
        elif r_src is None or r_dst is None:
            bad.append((src_layer, dst_layer, "a layer ORDER does not place"))
        elif r_dst < r_src:
            bad.append((src_layer, dst_layer, f"{dst_layer} sits above {src_layer}"))
        elif r_dst == r_src and not {src_layer, dst_layer} <= GROUND:
            bad.append((src_layer, dst_layer, "same row"))
    return bad


def layer_graph(graph: Graph) -> dict[str, set[str]]:
    edges: dict[str, set[str]] = defaultdict(set)
    for src_layer, dst_layer in graph.layer_edges:
        edges[src_layer].add(dst_layer)
    return edges


def path_to(edges: dict[str, set[str]], start: str, goal: str) -> list[str] | None:
    """The shortest chain of layers from ``start`` to ``goal`` (breadth first), or None."""
    previous: dict[str, str | None] = {start: None}
    queue = [start]
    while queue:
        node = queue.pop(0)
        if node == goal:
            chain = [node]
            while previous[chain[-1]] is not None:
                chain.append(str(previous[chain[-1]]))
            return chain[::-1]
        for nxt in sorted(edges.get(node, ())):
            if nxt not in previous:
                previous[nxt] = node
                queue.append(nxt)
    return None


@dataclass
class Findings:
    """What ``--check`` judges: cycles, arrows against the order, and shipped layers reaching training."""

    layer_cycles: list[list[str]]
    module_cycles: list[list[str]]
    upward: list[tuple[str, str, str]]
    reaches_training: dict[str, list[str]]

    @property
    def cli_cycles(self) -> list[list[str]]:
        return [c for c in self.module_cycles if all(layer_of(m) == "cli" for m in c)]

    @property
    def new_upward(self) -> list[tuple[str, str, str]]:
        return [arrow for arrow in self.upward if arrow[:2] not in KNOWN_UPWARD]

    @property
    def ok(self) -> bool:
        return not (self.layer_cycles or self.module_cycles or self.new_upward or self.reaches_training)


def module_chain(graph: Graph, start_layer: str, goal_layer: str) -> list[str] | None:
    """The shortest chain of module imports from any module of ``start_layer`` to one of
    ``goal_layer`` (breadth first), or None. Modules, not layers: ``bundle.create`` may fit a
    forest with ``training`` while ``inference`` reads bundles through ``bundle.load``."""
    starts = sorted(m for m in graph.modules if layer_of(m) == start_layer)
    previous: dict[str, str | None] = dict.fromkeys(starts)
    queue = list(starts)
    while queue:
        node = queue.pop(0)
        if layer_of(node) == goal_layer:
            chain = [node]
            while previous[chain[-1]] is not None:
                chain.append(str(previous[chain[-1]]))
            return chain[::-1]
        for nxt in sorted(graph.module_edges.get(node, ())):
            if nxt not in previous:
                previous[nxt] = node
                queue.append(nxt)
    return None


def analyse(graph: Graph) -> Findings:
    layers = layer_graph(graph)
    chains = {name: module_chain(graph, name, "training") for name in NO_TRAINING}
    return Findings(
        layer_cycles=cycles(layers),
        module_cycles=cycles(graph.module_edges),
        upward=upward(graph),
        reaches_training={name: chain for name, chain in chains.items() if chain},
    )


def report(graph: Graph, found: Findings, verbose: bool) -> None:
    print("== layer edges (importer -> imported: import statements)")
    for (src_layer, dst_layer), where in sorted(graph.layer_edges.items()):
        print(f"  {src_layer:12s} -> {dst_layer:12s} {len(where)}")
    print(f"== cycles between layers: {len(found.layer_cycles)}")
    for cycle in found.layer_cycles:
        print("  " + " <-> ".join(cycle))
    print(f"== arrows against DESIGN.md's order: {len(found.upward)} ({len(found.new_upward)} not known)")
    for src_layer, dst_layer, why in found.upward:
        known = KNOWN_UPWARD.get((src_layer, dst_layer))
        print(f"  {src_layer} -> {dst_layer}  ({why}){f'  [known: {known}]' if known else ''}")
        for line in graph.layer_edges[(src_layer, dst_layer)]:
            print(f"      {line}")
    shipped = ", ".join(NO_TRAINING)
    print(f"== {shipped} reaching training, directly or through other modules: {len(found.reaches_training)}")
    for chain in found.reaches_training.values():
        print("  " + " -> ".join(chain))
    n_cli = len(found.cli_cycles)
    print(f"== cycles between modules: {len(found.module_cycles)} ({n_cli} among cli modules)")
    for cycle in found.module_cycles:
        print("  " + " <-> ".join(cycle))
    if verbose:
        print("== module edges")
        for module in sorted(graph.module_edges):
            print(f"  {module} -> {', '.join(sorted(graph.module_edges[module]))}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--src", type=Path, default=SRC, help="the folder holding the package (src/)")
    parser.add_argument("--check", action="store_true", help="exit 1 on a cycle or a new upward arrow")
    parser.add_argument("--verbose", action="store_true", help="also list every module's imports")
    args = parser.parse_args(argv)
    graph = build_graph(args.src)
    found = analyse(graph)
    report(graph, found, args.verbose)
    if args.check:
        print("== check: " + ("ok" if found.ok else "FAILED"))
    return 1 if args.check and not found.ok else 0


if __name__ == "__main__":
    sys.exit(main())
