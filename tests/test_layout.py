"""The package's layout rules: which part may import which, no import cycles, no private names
used across modules, and torch loaded only by the modules that compute."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parent.parent / "swag_core"

# What each part may import of swag_core (the docstrings of the sub-packages say why).
ALLOWED = {
    "engine": {"engine", "imaging", "options", "choices", "errors"},
    "imaging": {"imaging", "errors"},
    "research": {"research", "engine", "imaging", "options", "choices", "errors"},
    "bench": {"bench", "engine", "imaging", "options", "choices", "errors"},
    "service": {"service", "engine", "imaging", "options", "choices", "errors", ""},  # "": __version__
}


def _modules() -> dict[str, Path]:
    """{"swag_core.engine.pipeline": path, ...} for every module of the package."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> list[tuple[str, list[str]]]:
    """(the swag_core module imported, the names taken from it) for every import in the module,
    at its top or inside functions."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(a.name, []) for a in node.names if a.name.startswith("swag_core")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("swag_core"):
                continue
            for alias in node.names:
                submodule = f"{target}.{alias.name}"
                found.append((submodule, []) if submodule in MODULES else (target, [alias.name]))
    return found


def test_each_part_imports_only_what_its_docstring_allows():
    wrong = []
    for name, path in MODULES.items():
        parts = name.split(".")
        if len(parts) < 2 or parts[1] not in ALLOWED:
            continue
        for target, _ in _imports(name, path):
            top = target.split(".")[1] if target.count(".") else ""
            if top not in ALLOWED[parts[1]]:
                wrong.append(f"{name} imports {target}")
    assert wrong == []


def test_the_modules_import_each_other_without_cycles():
    graph = {name: {t for t, _ in _imports(name, path) if t in MODULES and t != name}
             for name, path in MODULES.items()}
    # A package's __init__ runs before its modules: importing a module imports its packages.
    for name in MODULES:
        parent = name.rpartition(".")[0]
        for edges in graph.values():
            if name in edges and parent in MODULES and parent != "swag_core":
                edges.add(parent)
    state, cycles = {}, []

    def visit(node, trail):
        state[node] = "open"
        for nxt in graph[node]:
            if state.get(nxt) == "open":
                cycles.append(" -> ".join(trail[trail.index(nxt):] + [node, nxt]) if nxt in trail else f"{node} -> {nxt}")
            elif nxt not in state:
                visit(nxt, trail + [node])
        state[node] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [])
    assert cycles == []


def test_no_module_takes_a_private_name_from_another():
    taken = [f"{name} takes {target}.{n}" for name, path in MODULES.items()
             for target, names in _imports(name, path) for n in names
             if n.startswith("_") and not n.startswith("__")]
    assert taken == []


def test_the_engine_builds_exactly_the_choices_that_validation_offers():
    from swag_core import choices
    from swag_core.engine import losses, networks, smoothing

    assert tuple(networks.ARCHITECTURES) == choices.ARCHITECTURE_NAMES
    assert tuple(n for n, a in networks.ARCHITECTURES.items() if a.imagenet) == choices.PRETRAINED_ARCHITECTURES
    import torch

    features = torch.rand(1, 2, 3, 3)
    for mode in choices.MODES:
        assert smoothing.smooth(features, mode).shape == features.shape
    for kind in choices.LAYER_WEIGHTS:
        assert len(losses.layer_weights(kind, 5)) == 5


@pytest.mark.parametrize("code", [
    "import swag_core.options, swag_core.cli; swag_core.cli.build_parser()",
    "import swag_core; swag_core.Options.build(preset='fast', arch='resnet50', smoothing='shift')",
    "from swag_core.cli import main; main(['serve', '--help'])",
    "from swag_core.cli import main; main(['--help'])",
])
def test_the_command_line_and_option_validation_leave_torch_unloaded(code):
    """In a fresh interpreter, so that what other tests imported cannot hide a failure."""
    check = (f"import sys\ntry:\n    {code}\nexcept SystemExit:\n    pass\n"
             "loaded = [m for m in ('torch', 'torchvision', 'numpy') if m in sys.modules]\n"
             "assert not loaded, loaded")
    proc = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
