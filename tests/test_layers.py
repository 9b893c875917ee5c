"""The house's layers point down: no module of t2t imports from a higher layer, no import cycle runs
through the package (imports inside functions count: one placed there to dodge a cycle still is one),
and code inside a package imports a name from the module that defines it, never from its own
package's `__init__` nor from `t2t` itself (the facade for users).

The layer order is written here, once, top to bottom; docs/architecture.md draws the same picture.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
# Top to bottom. A module may import from its own layer (without a cycle) and from any layer below.
LAYERS: list[tuple[str, ...]] = [
    ("t2t.cli", "t2t.__main__"),
    ("t2t.quickstart", "t2t.experiments", "t2t.serve"),
    ("t2t.train", "t2t.evaluate"),
    ("t2t.generation",),
    ("t2t.hub",),
    ("t2t.model", "t2t.tokenizer", "t2t.data", "t2t.interop", "t2t.finetune", "t2t.peft"),
    ("t2t.config", "t2t.presets", "t2t.configbase", "t2t.metrics", "t2t.utils", "t2t.errors"),
]


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted((SRC / "t2t").rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _layer(module: str) -> int:
    for index, prefixes in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return index
    raise AssertionError(f"{module} is in no layer: add it to LAYERS in {__file__}")


def _type_checking_only(tree: ast.Module) -> set[ast.AST]:
    """Imports under `if TYPE_CHECKING:`: read by type checkers, never run."""
    skipped: set[ast.AST] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(n for stmt in node.body for n in ast.walk(stmt))
    return skipped


def _imports(module: str, path: Path) -> list[tuple[str, int]]:
    """(imported t2t module, line) for every import in the file, wherever it stands (inside functions
    too), except those for type checkers only."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    skipped = _type_checking_only(tree)
    out = []
    for node in ast.walk(tree):
        if node in skipped:
            continue
        if isinstance(node, ast.Import):
            out += [(alias.name, node.lineno) for alias in node.names if alias.name.split(".")[0] == "t2t"]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            if base.split(".")[0] != "t2t":
                continue
            for alias in node.names:  # `from t2t.x import y` names module t2t.x.y when y is a module
                target = f"{base}.{alias.name}"
                out.append((target if target in MODULES else base, node.lineno))
    return out


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for module, path in MODULES.items():
        if module == "t2t":
            continue  # the users' facade re-exports from every layer
        for target, _ in _imports(module, path):
            if target != module and target in MODULES:
                graph[module].add(target)
    return graph


def test_every_module_has_a_layer():
    for module in MODULES:
        if module != "t2t":
            _layer(module)


def test_no_module_imports_from_a_higher_layer():
    upward = []
    for module, path in MODULES.items():
        if module == "t2t":
            continue
        for target, line in _imports(module, path):
            if target in MODULES and target != "t2t" and _layer(target) < _layer(module):
                upward.append(f"{path.relative_to(SRC)}:{line} {module} -> {target}")
    assert not upward, "imports from a higher layer:\n" + "\n".join(upward)


def test_code_inside_t2t_never_imports_the_facades():
    """`import t2t` / `from t2t import x` inside the package, or a module importing its own package's
    __init__, closes a circle through the facade."""
    found = []
    for module, path in MODULES.items():
        if module == "t2t" or module == "t2t.__main__":
            continue
        own_package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for target, line in _imports(module, path):
            if target == "t2t" or (target == own_package and own_package != "t2t" and target != module):
                found.append(f"{path.relative_to(SRC)}:{line} {module} -> {target}")
    assert not found, "imports of a facade from inside the package:\n" + "\n".join(found)


def test_no_import_cycle():
    graph = _graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
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
                cycles.append(sorted(component))

    import sys

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(10_000)  # the depth-first walk recurses once per import; restored after
    try:
        for node in sorted(MODULES):
            if node not in index:
                visit(node)
    finally:
        sys.setrecursionlimit(limit)
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_the_layer_counts_for_the_record(capsys):
    """Not a check: prints modules and imports per layer (the closing note quotes it)."""
    graph = _graph()
    for index, prefixes in enumerate(LAYERS):
        members = [m for m in MODULES if m != "t2t" and _layer(m) == index]
        edges = sum(len(graph.get(m, ())) for m in members)
        print(f"layer {index}: {', '.join(prefixes)}: {len(members)} modules, {edges} imports")
    assert sum(len(v) for v in graph.values()) > 0
