"""The layout rules of issue 19, on the code's own imports (`scripts/import_graph.py`): no import circle among
the `attribution`, `inference` and `node` modules, no benchmark inside the library packages, no module past 600
lines."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("import_graph", ROOT / "scripts" / "import_graph.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("import_graph", module)
    spec.loader.exec_module(module)
    return module


graph = _script()


def test_the_graph_sees_the_packages_and_their_imports() -> None:
    g = graph.graph(ROOT)
    assert {"attribution.chain.client", "inference.engine", "node.services"} <= set(g)
    assert "attribution.chain.errors" in g["attribution.chain.client"]  # a module-level import
    assert "attribution.store.log" in g["attribution.store"]  # a package's __init__ re-exporting its module


def test_a_cycle_is_found_and_named(tmp_path: Path) -> None:
    pkg = tmp_path / "attribution"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from attribution.b import x\n")
    (pkg / "b.py").write_text("def x() -> None:\n    from attribution import a  # a lazy import is an edge too\n")
    (pkg / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from attribution.a import y\n")
    for name in ("inference", "node"):
        (tmp_path / name).mkdir()
    assert graph.cycles(graph.graph(tmp_path)) == [["attribution.a", "attribution.b"]]
    assert "attribution.a" in graph.graph(tmp_path)["attribution.c"]  # TYPE_CHECKING imports count


def test_no_import_cycles() -> None:
    assert graph.cycles(graph.graph(ROOT)) == []


def test_no_benchmark_inside_the_library() -> None:
    assert graph.misplaced_benches(ROOT) == []


@pytest.mark.parametrize("package", ["attribution", "node", "inference"])
def test_no_module_over_600_lines(package: str) -> None:
    long = [(m, n) for m, n in graph.long_modules(ROOT) if m.split(".")[0] == package]
    assert long == []
