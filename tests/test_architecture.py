"""The import graph of ``src/emorec`` keeps the shape ARCHITECTURE.md describes.

grimp reads every import statement (inside functions and ``TYPE_CHECKING`` blocks too), so a
lazy import that closes a circle or climbs a layer fails here as surely as a top-level one.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import grimp
import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "emorec"

# Highest first: a layer may import the layers below it, never one above. The modules of a
# set are siblings and may not import each other either. ARCHITECTURE.md draws the same table.
LAYERS: list[str | set[str]] = [
    "cli",
    "service",
    {"pipeline", "tune"},
    {"train", "export"},
    "inference",
    {"hub", "explain"},
    {"evaluation", "data", "losses"},
    "artifacts",
    {"calibration", "modeling", "text"},
    {"config", "labels", "metrics"},
    "task",
    {"errors", "_io", "_strict", "progress"},
]
# Names kept so that former imports keep working; each only re-exports its new home.
COMPAT_SHIMS = {"calibrate", "evaluate", "evaluate_multilabel", "predict_io"}
TRAINING = ("emorec.train", "emorec.tune", "emorec.pipeline", "emorec.losses")
STAGES = (
    "emorec.calibration",
    "emorec.data",
    "emorec.evaluation",
    "emorec.explain",
    "emorec.export",
    "emorec.hub",
    "emorec.inference",
    "emorec.losses",
    "emorec.modeling",
    "emorec.text",
    "emorec.train",
    "emorec.tune",
)


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("emorec", cache_dir=None)


def _top(module: str) -> str:
    return ".".join(module.split(".")[:2])


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_cycle_finder_finds_a_circle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_imports_itself_in_a_circle(graph: grimp.ImportGraph) -> None:
    edges = {m: set(graph.find_modules_directly_imported_by(m)) for m in graph.modules}
    assert _cycles(edges) == []


def test_no_circle_between_packages(graph: grimp.ImportGraph) -> None:
    edges: dict[str, set[str]] = {}
    for module in graph.modules:
        for imported in graph.find_modules_directly_imported_by(module):
            if _top(imported) != _top(module):
                edges.setdefault(_top(module), set()).add(_top(imported))
    assert _cycles(edges) == []


def test_layers_hold(graph: grimp.ImportGraph) -> None:
    illegal = graph.find_illegal_dependencies_for_layers(layers=LAYERS, containers={"emorec"})
    assert [(d.importer, d.imported) for d in illegal] == []


def test_every_module_has_a_layer(graph: grimp.ImportGraph) -> None:
    placed = {name for layer in LAYERS for name in ([layer] if isinstance(layer, str) else layer)}
    tops = {_top(m).removeprefix("emorec.") for m in graph.modules if m != "emorec"}
    assert tops - placed - COMPAT_SHIMS == set()


@pytest.mark.parametrize("vocabulary", ["emorec.config", "emorec.task", "emorec.labels"])
def test_vocabulary_imports_no_stage(graph: grimp.ImportGraph, vocabulary: str) -> None:
    for stage in STAGES:
        assert not graph.chain_exists(vocabulary, stage, as_packages=True), (vocabulary, stage)


@pytest.mark.parametrize("training", TRAINING)
def test_inference_imports_no_training(graph: grimp.ImportGraph, training: str) -> None:
    assert not graph.chain_exists("emorec.inference", training, as_packages=True)


@pytest.mark.parametrize("user", ["emorec.hub", "emorec.explain"])
def test_what_inference_uses_does_not_import_it(graph: grimp.ImportGraph, user: str) -> None:
    assert not graph.chain_exists(user, "emorec.inference", as_packages=True)


def test_only_the_service_app_imports_the_app(graph: grimp.ImportGraph) -> None:
    importers = graph.find_modules_that_directly_import("emorec.service.app")
    assert {m for m in importers if m.startswith("emorec.service")} == set()


def test_routers_take_shared_dependencies_from_deps(graph: grimp.ImportGraph) -> None:
    routers = graph.find_children("emorec.service.routes")
    assert {r.rsplit(".", 1)[1] for r in routers} >= {"health", "predict", "history", "jobs"}
    for router in routers - {"emorec.service.routes.health"}:
        assert graph.direct_import_exists(importer=router, imported="emorec.service.deps"), router


def test_compat_shims_only_re_export(graph: grimp.ImportGraph) -> None:
    for shim in COMPAT_SHIMS:
        assert not graph.find_modules_that_directly_import(f"emorec.{shim}"), shim


def test_no_file_over_500_lines() -> None:
    long = {
        str(path.relative_to(SRC)): n
        for path in SRC.rglob("*.py")
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > 500
    }
    assert long == {}


# `multi_label` may be stored (emorec.json, calibration.json, an estimator's parameter), its
# type checked, and turned into a task (task_for); only emorec.task may decide anything by it.
_BRANCH = re.compile(r"\bmulti_label\b")


def _is_type_check(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and getattr(node.func, "id", None) == "isinstance"


def _decisive_parts(test: ast.expr) -> list[ast.expr]:
    """The parts of a condition that decide by a value: all of it but type checks."""
    if _is_type_check(test):
        return []
    if isinstance(test, ast.UnaryOp):
        return _decisive_parts(test.operand)
    return [test]


def _branches_on_multi_label(path: Path) -> list[int]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    lines = []
    for node in ast.walk(tree):
        tests = []
        if isinstance(node, ast.If | ast.IfExp | ast.While):
            tests.append(node.test)
        elif isinstance(node, ast.comprehension):
            tests.extend(node.ifs)
        elif isinstance(node, ast.BoolOp):
            tests.extend(node.values)
        elif isinstance(node, ast.Match):
            tests.append(node.subject)
        for test in tests:
            if any(_BRANCH.search(ast.unparse(part)) for part in _decisive_parts(test)):
                lines.append(test.lineno)
    return sorted(set(lines))


def test_only_the_task_branches_on_multi_label() -> None:
    found = {
        str(path.relative_to(SRC)): lines
        for path in SRC.rglob("*.py")
        if path.name != "task.py" and (lines := _branches_on_multi_label(path))
    }
    assert found == {}


def test_the_branch_finder_sees_a_branch(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text(
        "def f(space):\n"
        "    if not isinstance(space.multi_label, bool):\n"
        "        raise TypeError\n"
        "    return 1 if space.multi_label else 2\n"
    )
    assert _branches_on_multi_label(source) == [4]
