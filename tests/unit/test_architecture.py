"""The layout's rules (README, "The map"; docs/architecture.md): dependencies point one way, and no module cycles.

- ``schemas`` imports nothing of zhucan's; ``streams`` nothing of ``connectors``;
- ``streams/domain`` nothing outside itself (and no I/O: ``streams/domain/test_purity.py``);
- no import cycle between modules, counting imports inside functions and under TYPE_CHECKING.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("schemas", "streams", "connectors")


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _graph() -> dict[str, set[str]]:
    modules = {_module(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            for t in targets:
                while t and t not in modules:
                    t = t.rpartition(".")[0]
                if t and t != name and not name.startswith(t + "."):  # a package's own __init__ is not a cycle
                    deps.add(t)
        graph[name] = deps
    return graph


def test_the_graph_sees_every_module():
    graph = _graph()
    assert {"streams.app", "streams.handlers", "streams.domain.person", "connectors.ops.cli", "schemas.codec"} <= set(graph)
    assert "streams.domain.person" in graph["streams.handlers"]


def test_dependencies_point_one_way():
    wrong = []
    for name, deps in _graph().items():
        for dep in deps:
            top, dtop = name.split(".")[0], dep.split(".")[0]
            if top == "schemas" and dtop != "schemas":
                wrong.append(f"{name} -> {dep}")
            if top == "streams" and dtop == "connectors":
                wrong.append(f"{name} -> {dep}")
            if name.startswith("streams.domain") and not dep.startswith("streams.domain"):
                wrong.append(f"{name} -> {dep}")
    assert wrong == []


def test_no_module_cycle():
    graph = _graph()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                cycles.append(stack[stack.index(dep):] + [dep])
            elif dep not in state:
                visit(dep)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert cycles == []


def test_nothing_outside_the_domain_decides_from_a_class_alone():
    """Issue #19 (9): a decision from the class on a topic drops children, the other identities,
    the dates and the people with no standard. Only the domain decides from a timeline; outside
    it, ``decide`` is called only by ``zhucan policy explain`` (the identities are the operator's
    question); the budget what-if is the workers' preview of a revision (issue #22), on the
    person timelines. A new caller must come through the domain."""
    callers = set()
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            if path.is_relative_to(ROOT / "streams" / "domain"):
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "decide":
                    callers.add(str(path.relative_to(ROOT)))
    assert callers == {"connectors/ops/policy_cli.py"}


def test_the_person_state_stays_split_along_its_jobs():
    """Issue #21 (6): the person state under 300 lines; what is kept (person_record), tax's
    acknowledgements (person_acks) and money to people (person_money) beside it. The money and
    ledger work had grown it back to 413 lines in one module."""
    domain = ROOT / "streams" / "domain"
    assert len((domain / "person.py").read_text(encoding="utf-8").splitlines()) < 300
    for job in ("person_record.py", "person_acks.py", "person_money.py", "year.py", "state_codec.py"):
        assert (domain / job).is_file(), job
