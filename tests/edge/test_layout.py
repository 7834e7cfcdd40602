"""The edge package's shape: role folders, dependencies flowing one way, argparse only in cli/, SQL only
in store/, no torch anywhere, one exit-code table that the README shows."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

from edge.errors import EXIT_CODES

ROOT = Path(__file__).resolve().parents[2]
EDGE = ROOT / "edge"
TOP_LEVEL = {"__init__.py", "errors.py", "assets.py"}
TOP_LEVEL_PACKAGES = {"config"}  # the config's sections, below every role
# Each role may import from its own layer and the layers before it, never after.
LAYERS = ["(top)", "vision", "store", "pipeline", "challenge", "fleet", "review", "scenario", "cli"]


def _role(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else "(top)"


def _edge_modules() -> dict[str, Path]:
    modules = {}
    for path in EDGE.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def _imports(path: Path, modules: dict[str, Path] | None = None) -> set[str]:
    """Modules a file imports; `from package import module` counts as the module alone."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            submodules = {f"{node.module}.{alias.name}" for alias in node.names} & set(modules or {})
            found |= submodules or {node.module}
    return found


def test_only_config_errors_and_assets_live_outside_the_role_folders():
    loose = {path.name for path in EDGE.glob("*.py")} - TOP_LEVEL
    folders = {path.name for path in EDGE.iterdir() if path.is_dir() and path.name != "__pycache__"}
    assert not loose
    assert folders == set(LAYERS[1:]) | TOP_LEVEL_PACKAGES


def test_dependencies_flow_one_way_and_there_are_no_circles():
    modules = _edge_modules()
    graph = {name: {i for i in _imports(path, modules) if i in modules and i != name} for name, path in modules.items()}
    backwards = [
        f"{name} -> {target}"
        for name, targets in graph.items()
        for target in targets
        if LAYERS.index(_role(target)) > LAYERS.index(_role(name))
    ]
    assert not backwards, "a role imports a later role"
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, f"import circle: {' -> '.join((*path, name))}"
        if name in done:
            return
        for target in graph[name]:
            visit(target, (*path, name))
        done.add(name)

    for name in graph:
        visit(name, ())


def test_argparse_only_in_cli_and_sql_only_in_store():
    for name, path in _edge_modules().items():
        imports = _imports(path)
        if _role(name) != "cli":
            assert "argparse" not in imports, f"{name} imports argparse"
        if _role(name) != "store":
            assert not re.search(r"\.(execute|executemany|cursor)\(", path.read_text()), f"{name} runs SQL"


def test_no_edge_module_loads_torch():
    code = (
        "import importlib, pkgutil, sys, edge; "
        "names = [m.name for m in pkgutil.walk_packages(edge.__path__, 'edge.') if not m.name.endswith('__main__')]; "
        "[importlib.import_module(n) for n in names]; "
        "from edge.cli.entry import build_parser; build_parser(); "
        "assert len(names) > 40, names; "
        "assert not {'torch', 'torchvision'} & set(sys.modules), 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_readme_shows_the_exit_code_table():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Exit codes", 1)[1].split("\n#", 1)[0]
    codes = {int(code) for code in re.findall(r"^\| (\d+) \|", section, re.M)}
    assert codes == set(EXIT_CODES)
