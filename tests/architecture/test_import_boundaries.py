"""The rooms' import rules (docs/architecture.md): only pipelines imports dagster, and imports point
toward the base (telemetry) and never back up."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: What each package may import among the project's own packages.
ALLOWED = {
    "telemetry": set(),
    "simulator": {"telemetry"},
    "scheduler": {"telemetry"},
    "signals": {"telemetry"},
    "policies": {"telemetry", "signals", "simulator", "scheduler"},
    "dashboards": {"telemetry", "signals", "policies", "simulator", "scheduler"},
    "pipelines": {"telemetry", "signals", "policies", "simulator", "scheduler", "dashboards"},
    # The command line sits on top: each command drives the package it is about.
    "heteroscale": {"telemetry", "simulator", "scheduler", "signals", "policies", "pipelines"},
}
PROJECT_PACKAGES = set(ALLOWED)


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def package_imports(package: str) -> dict[Path, set[str]]:
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"package {package} has no modules"
    return {f.relative_to(ROOT): imported_roots(f) for f in files}


@pytest.mark.parametrize("package", sorted(set(ALLOWED) - {"pipelines"}))
def test_only_pipelines_imports_dagster(package):
    offenders = [
        str(path)
        for path, roots in package_imports(package).items()
        if any(root == "dagster" or root.startswith("dagster_") for root in roots)
    ]
    assert offenders == []


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_imports_point_toward_the_base(package):
    forbidden = PROJECT_PACKAGES - ALLOWED[package] - {package}
    offenders = {
        str(path): sorted(roots & forbidden)
        for path, roots in package_imports(package).items()
        if roots & forbidden
    }
    assert offenders == {}
