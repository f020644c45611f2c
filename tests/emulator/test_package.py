"""The emulator is a package of its own: it imports nothing of the gateway (its checks of requests, its
errors and its settings are its own), only the settings plumbing both commands share (``proxy.config``);
and the gateway imports nothing of the emulator except where the command line starts it."""

from __future__ import annotations

import ast
from pathlib import Path

PROXY = Path(__file__).resolve().parents[2] / "proxy"
SHARED = {"proxy.config"}


def imported(path: Path) -> set[str]:
    """The ``proxy`` modules a module imports, wherever in it."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module == "proxy":
            names.update(f"proxy.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return {name for name in names if name == "proxy" or name.startswith("proxy.")}


def test_the_emulator_imports_nothing_of_the_gateway() -> None:
    modules = sorted((PROXY / "emulator").glob("*.py"))
    assert len(modules) > 20
    foreign = {
        f"{path.name}: {name}"
        for path in modules
        for name in imported(path)
        if not name.startswith("proxy.emulator") and name not in SHARED
    }
    assert foreign == set()


def test_only_the_command_line_starts_the_emulator() -> None:
    importers = {
        str(path.relative_to(PROXY))
        for path in PROXY.rglob("*.py")
        if "emulator" not in path.relative_to(PROXY).parts
        and any(name.startswith("proxy.emulator") for name in imported(path))
    }
    assert importers == {"cli.py"}
