"""The command line's layout: the package builds the app, command modules never import it."""

from __future__ import annotations

import ast
from pathlib import Path

import failwise

SRC = Path(failwise.__file__).resolve().parent


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
    return out


def test_command_modules_do_not_import_the_cli_package() -> None:
    modules = {p.stem: p for p in (SRC / "cli").glob("_*.py") if p.stem != "__main__"}
    graph = {
        name: {m.rsplit(".", 1)[1] for m in _imports(path) if m.startswith("failwise.cli.")}
        for name, path in modules.items()
    }
    for name, path in modules.items():
        assert "failwise.cli" not in _imports(path), f"cli/{name}.py imports the package"
    # The imports among command modules form no cycle.
    done: set[str] = set()

    def visit(node: str, path: tuple[str, ...]) -> None:
        assert node not in path, f"import cycle: {' -> '.join((*path, node))}"
        if node in done:
            return
        for child in graph.get(node, ()):
            visit(child, (*path, node))
        done.add(node)

    for name in graph:
        visit(name, ())


def test_cli_evaluation_and_report_modules_stay_under_600_lines() -> None:
    for package in ("cli", "evaluation", "report"):
        for path in (SRC / package).glob("*.py"):
            lines = len(path.read_text(encoding="utf-8").splitlines())
            assert lines < 600, f"{package}/{path.name} has {lines} lines; split it by concept"
