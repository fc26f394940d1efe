"""The layout holds: imports run one way (command line -> API -> reports -> matrix -> results -> attacks ->
models and attacks_ext -> leaves), no import circle, and every module and function stays small."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).parent.parent
PACKAGES = ("bench", "models", "attacks_ext")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60  # "about a screen"

# lower layers never import higher ones; a module may import its own layer and any below
LAYERS = [
    ("bench", "bench.errors", "bench.registry", "bench.paths", "bench.provenance", "bench.data"),  # leaves
    ("models", "attacks_ext"),
    ("bench.attacks",),
    ("bench.results",),
    ("bench.matrix",),
    ("bench.reports", "bench.analyses"),
    ("bench.plugins", "bench.listing"),
    ("bench.api",),
    ("bench.cli", "bench.__main__"),
]


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _imports(name: str, path: Path) -> set[str]:
    """Every module of ours that ``name`` imports, at the top or inside a function."""
    out = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + [base]).strip(".")
            out.add(base)
            out |= {f"{base}.{alias.name}" for alias in node.names}
    return {m for m in out if m.split(".")[0] in PACKAGES}


def _layer(module: str) -> int:
    best, rank = -1, None
    for i, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, rank = len(prefix), i
    assert rank is not None, f"{module} is in no layer of tests/test_layout.py"
    return rank


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: {m for m in _imports(name, path) if m in modules and m != name} for name, path in modules.items()}


def test_imports_run_one_way():
    upward = [
        f"{name} (layer {_layer(name)}) imports {target} (layer {_layer(target)})"
        for name, targets in _graph().items()
        for target in targets
        if _layer(target) > _layer(name) and target != "bench" and name != "bench"  # the root re-exports the API
    ]
    assert not upward, "\n".join(sorted(upward))


def test_no_import_circle():
    graph, state, cycles = _graph(), {}, []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = "open"
        for target in sorted(graph[node]):
            if target == "bench":  # the package root only re-exports the API lazily
                continue
            if state.get(target) == "open":
                cycles.append(" -> ".join(trail[trail.index(target) :] + [target]))
            elif target not in state:
                visit(target, trail + [target])
        state[node] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles, "\n".join(cycles)


def test_modules_and_functions_stay_small():
    too_big = []
    for name, path in _modules().items():
        text = path.read_text()
        if len(text.splitlines()) > MAX_MODULE_LINES:
            too_big.append(f"{name}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    too_big.append(f"{name}.{node.name}: {length} lines")
    assert not too_big, "\n".join(too_big)


def test_the_layers_name_real_modules():
    """A layer entry that matches nothing is a typo: the test would silently check less."""
    modules = _modules()
    for prefixes in LAYERS:
        for prefix in prefixes:
            assert any(m == prefix or m.startswith(prefix + ".") for m in modules), prefix
