"""The layout rules of DESIGN.md and STYLE.md, checked on the source.

- No import cycle between the modules of `muit_core`, `sweeps`, `fits` and `planner`; a
  function-local import counts (it hides a cycle, it does not remove it). Imports under
  `if TYPE_CHECKING:` do not run, so they do not count towards cycles.
- Arrows between packages run one way: planner -> fits, every package -> muit_core, and
  muit_core -> nothing of ours.
- A module whose name starts with `_` is imported only from inside its own package: tests,
  bench/, notebooks/ and the other packages use the package root or a public module.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("muit_core", "sweeps", "fits", "planner")
ALLOWED_ARROWS = {("planner", "fits")} | {(p, "muit_core") for p in PACKAGES if p != "muit_core"}


@dataclass(frozen=True)
class ImportEdge:
    """One import statement: who imports, what module it names, and how it runs."""

    importer: str  # dotted module name, or a path for files outside the packages
    target: str  # dotted module name as resolved (a submodule when `from pkg import sub`)
    line: int
    typing_only: bool


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _is_package(dotted: str) -> bool:
    return (ROOT / Path(*dotted.split(".")) / "__init__.py").is_file()


def _is_module(dotted: str) -> bool:
    path = ROOT / Path(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _typing_blocks(tree: ast.AST) -> set[int]:
    """Ids of import nodes inside `if TYPE_CHECKING:` blocks."""
    ids: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            test = node.test
            name = test.id if isinstance(test, ast.Name) else getattr(test, "attr", None)
            if name == "TYPE_CHECKING":
                for child in node.body:
                    for inner in ast.walk(child):
                        if isinstance(inner, ast.Import | ast.ImportFrom):
                            ids.add(id(inner))
    return ids


def _edges(source: str, importer: str, package_of_file: str | None) -> Iterator[ImportEdge]:
    tree = ast.parse(source)
    typing_ids = _typing_blocks(tree)
    for node in ast.walk(tree):
        typing_only = id(node) in typing_ids
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield ImportEdge(importer, alias.name, node.lineno, typing_only)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                assert package_of_file is not None, (
                    f"relative import outside a package: {importer}"
                )
                base_parts = package_of_file.split(".")[
                    : len(package_of_file.split(".")) - node.level + 1
                ]
                base = ".".join([*base_parts, node.module] if node.module else base_parts)
            else:
                base = node.module or ""
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                target = candidate if _is_module(candidate) else base
                yield ImportEdge(importer, target, node.lineno, typing_only)


def _package_edges() -> list[ImportEdge]:
    edges: list[ImportEdge] = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            name = _module_name(path)
            home = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
            edges.extend(_edges(path.read_text(encoding="utf-8"), name, home))
    return [e for e in edges if e.target.split(".")[0] in PACKAGES]


def _outside_sources() -> Iterator[tuple[str, str]]:
    """(label, source) of every Python file and notebook code cell outside the packages."""
    for folder in ("tests", "bench", "notebooks"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            yield str(path.relative_to(ROOT)), path.read_text(encoding="utf-8")
        for path in sorted((ROOT / folder).rglob("*.ipynb")):
            cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
            for i, cell in enumerate(cells):
                if cell["cell_type"] == "code":
                    code = "".join(cell["source"])
                    # IPython magics are not Python.
                    code = "\n".join(
                        line
                        for line in code.splitlines()
                        if not line.lstrip().startswith(("%", "!"))
                    )
                    yield f"{path.relative_to(ROOT)}[cell {i}]", code


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of `graph` as a list of nodes (first == last), or None."""
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_no_import_cycle() -> None:
    graph: dict[str, set[str]] = {}
    for edge in _package_edges():
        if edge.typing_only or edge.target == edge.importer:
            continue
        graph.setdefault(edge.importer, set()).add(edge.target)
        # Importing `pkg.sub` runs `pkg/__init__` first.
        parent = edge.target.rsplit(".", 1)[0] if "." in edge.target else None
        if parent and _is_package(parent) and not edge.importer.startswith(parent):
            graph[edge.importer].add(parent)
    cycle = _find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_arrows_between_packages_run_one_way() -> None:
    wrong = sorted(
        {
            f"{e.importer}:{e.line} imports {e.target}"
            for e in _package_edges()
            if (src := e.importer.split(".")[0]) != (dst := e.target.split(".")[0])
            and (src, dst) not in ALLOWED_ARROWS
        }
    )
    assert not wrong, "imports against the arrows: " + "; ".join(wrong)


def _private_part(target: str) -> str | None:
    parts = target.split(".")
    for i, part in enumerate(parts[1:], start=1):
        if part.startswith("_") and not part.startswith("__"):
            return ".".join(parts[: i + 1])
    return None


def test_private_modules_stay_inside_their_package() -> None:
    wrong: list[str] = []
    for edge in _package_edges():
        private = _private_part(edge.target)
        if private and edge.importer.split(".")[0] != private.split(".")[0]:
            wrong.append(f"{edge.importer}:{edge.line} imports {private}")
    for label, source in _outside_sources():
        for edge in _edges(source, label, None):
            private = _private_part(edge.target)
            if private and private.split(".")[0] in PACKAGES:
                wrong.append(f"{label}:{edge.line} imports {private}")
    assert not wrong, "private modules used outside their package: " + "; ".join(wrong)


@pytest.mark.parametrize(
    ("graph", "has_cycle"),
    [({"a": {"b"}, "b": {"c"}}, False), ({"a": {"b"}, "b": {"a"}}, True), ({"a": {"a"}}, True)],
)
def test_cycle_finder(graph: dict[str, set[str]], has_cycle: bool) -> None:
    assert (_find_cycle(graph) is not None) is has_cycle
