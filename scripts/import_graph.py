"""The import graph of the `attribution`, `inference` and `node` packages: cycles, long modules, misplaced benches.

Every `import` counts: at module level, inside a function (a lazy import still ties two modules together) and
under `if TYPE_CHECKING:` (a type named across modules is a dependency too). Exits 1 and says what is wrong when
the graph has a cycle, a module is longer than `MAX_LINES` lines, or a module named `*bench*` sits inside
`attribution/` or `inference/`.

    .venv/bin/python scripts/import_graph.py
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("attribution", "inference", "node")
LIBRARY_PACKAGES = ("attribution", "inference")  # no benchmark code inside these
MAX_LINES = 600


def module_name(path: Path, root: Path = ROOT) -> str:
    """`attribution/chain/client.py` -> `attribution.chain.client`; a package's `__init__.py` -> the package."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules(root: Path = ROOT) -> dict[str, Path]:
    """Every module of the packages, by dotted name."""
    return {module_name(p, root): p for pkg in PACKAGES for p in sorted((root / pkg).rglob("*.py"))}


def _imports(tree: ast.AST, name: str, is_package: bool) -> Iterable[str]:
    """Dotted names imported by a module, anywhere in it (relative imports resolved)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                here = name.split(".") if is_package else name.split(".")[:-1]
                here = here[: len(here) - node.level + 1]
                base = ".".join([*here, base] if base else here)
            yield base
            yield from (f"{base}.{a.name}" for a in node.names)


def graph(root: Path = ROOT) -> dict[str, set[str]]:
    """module -> the modules of the packages it imports (a name imported from a package maps to its module when
    it is one, else to the package)."""
    mods = modules(root)
    out: dict[str, set[str]] = {}
    for name, path in mods.items():
        deps = set()
        for target in _imports(ast.parse(path.read_text(encoding="utf-8")), name, path.name == "__init__.py"):
            while target and target not in mods:
                target = target.rpartition(".")[0]
            if target and target != name:
                deps.add(target)
        out[name] = deps
    return out


def _parent_packages(name: str) -> set[str]:
    parts = name.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts))}


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted.

    A package's `__init__` that re-exports its own modules is not a cycle with them: importing `a.b` runs `a`
    first anyway, so the edge module -> its own parent package is left out.
    """
    edges = {m: {d for d in deps if d not in _parent_packages(m)} for m, deps in g.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    sys.setrecursionlimit(max(10_000, sys.getrecursionlimit()))
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return sorted(found)


def long_modules(root: Path = ROOT, limit: int = MAX_LINES) -> list[tuple[str, int]]:
    """(module, lines) of every module longer than `limit` lines, longest first."""
    sizes = [(n, len(p.read_text(encoding="utf-8").splitlines())) for n, p in modules(root).items()]
    return sorted(((n, k) for n, k in sizes if k > limit), key=lambda t: -t[1])


def longest(root: Path = ROOT, n: int = 3) -> list[tuple[str, int]]:
    """The `n` longest modules (what came closest to the limit)."""
    sizes = [(m, len(p.read_text(encoding="utf-8").splitlines())) for m, p in modules(root).items()]
    return sorted(sizes, key=lambda t: -t[1])[:n]


def misplaced_benches(root: Path = ROOT) -> list[str]:
    """Modules or packages named `*bench*` inside the library packages."""
    return sorted(n for n in modules(root) if n.split(".")[0] in LIBRARY_PACKAGES
                  and any("bench" in part for part in n.split(".")[1:]))


def main() -> int:
    """Print the report; 1 when something is wrong."""
    g = graph()
    problems = 0
    for comp in cycles(g):
        sys.stdout.write(f"cycle: {' <-> '.join(comp)}\n")
        problems += 1
    for name, lines in long_modules():
        sys.stdout.write(f"too long: {name} has {lines} lines (limit {MAX_LINES})\n")
        problems += 1
    for name in misplaced_benches():
        sys.stdout.write(f"bench inside the library: {name} (benchmarks live in node/bench/)\n")
        problems += 1
    edges = sum(len(d) for d in g.values())
    top = ", ".join(f"{n} {k}" for n, k in longest())
    sys.stdout.write(f"{len(g)} modules, {edges} import edges, {problems} problem(s); longest: {top}\n")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
