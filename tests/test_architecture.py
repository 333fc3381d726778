"""The layout shows the architecture: imports point down only (docs/architecture.md)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHELLS = ("web", "scheduler", "recordings")
COMPOSITION_ROOT = ROOT / "callcenter" / "cli.py"


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_the_core_imports_no_shell() -> None:
    offenders = []
    for path in sorted((ROOT / "callcenter").rglob("*.py")):
        if path == COMPOSITION_ROOT:
            continue
        for module in imported_modules(path):
            if module.split(".")[0] in SHELLS:
                offenders.append(f"{path.relative_to(ROOT)} imports {module}")
    assert offenders == []


def test_the_composition_root_imports_shells_only_inside_commands() -> None:
    tree = ast.parse(COMPOSITION_ROOT.read_text(encoding="utf-8"))
    top_level = [node for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom)]
    for node in top_level:
        module = node.module if isinstance(node, ast.ImportFrom) else node.names[0].name
        assert (module or "").split(".")[0] not in SHELLS, module


def test_the_ivr_engine_does_no_io() -> None:
    forbidden = {"socket", "sqlalchemy", "asterisk", "twilio", "flask", "requests", "os", "time"}
    for path in (ROOT / "callcenter" / "ivr").glob("*.py"):
        roots = {module.split(".")[0] for module in imported_modules(path)}
        assert not roots & forbidden, f"{path.name} imports {roots & forbidden}"


def test_voice_adapters_do_not_import_the_web() -> None:
    for path in (ROOT / "callcenter" / "voice").rglob("*.py"):
        assert not {m for m in imported_modules(path) if m.split(".")[0] == "flask"}, path
