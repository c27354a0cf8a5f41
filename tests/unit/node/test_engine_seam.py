"""The node reaches the engine only through the seam: `inference.api` (the `EngineClient` protocol, its types and
errors), the factory (`inference.build_engine`) and `inference.chat`; never the concrete engine, cache or model."""

from __future__ import annotations

import ast
import pathlib

import node

ALLOWED = {"inference", "inference.api", "inference.chat"}
SERVING = ["services.py", "app.py", "metrics.py", "api"]


def _inference_imports(path: pathlib.Path) -> set[str]:
    out = set()
    for n in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(n, ast.ImportFrom) and n.module and n.module.split(".")[0] == "inference":
            out.add(n.module)
        elif isinstance(n, ast.Import):
            out |= {a.name for a in n.names if a.name.split(".")[0] == "inference"}
    return out


def test_serving_node_imports_only_the_seam() -> None:
    root = pathlib.Path(node.__file__).parent
    files = [f for s in SERVING for f in ([root / s] if s.endswith(".py") else sorted((root / s).glob("*.py")))]
    assert len(files) > 5
    seen = {f.relative_to(root).as_posix(): _inference_imports(f) for f in files}
    bad = {f: mods - ALLOWED for f, mods in seen.items() if mods - ALLOWED}
    assert not bad, f"the node imports past the engine seam: {bad}"
    assert any(seen.values())  # the check looked at real imports
