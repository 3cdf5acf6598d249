"""The house rules, read from the code's own imports (grimp builds the graph, as import-linter does).

- `retrieval/` knows nothing of chats: it imports neither `bot` nor `connectors`.
- `bot/` knows no platform: only the composition root `bot.app` imports `connectors`.
- One connector never imports another.
- No import cycles between modules, and no module imports another's private (`_name`) parts.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import grimp
import pytest

PACKAGES = ("bot", "connectors", "retrieval")


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(*PACKAGES, cache_dir=None)


def _imports(graph: grimp.ImportGraph) -> Iterator[tuple[str, str]]:
    for importer in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(importer)):
            yield importer, imported


def _inside(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_retrieval_imports_neither_bot_nor_connectors(graph: grimp.ImportGraph) -> None:
    bad = [(a, b) for a, b in _imports(graph) if _inside(a, "retrieval") and b.split(".")[0] in ("bot", "connectors")]
    assert bad == []


def test_only_the_composition_root_imports_connectors(graph: grimp.ImportGraph) -> None:
    bad = [(a, b) for a, b in _imports(graph)
           if _inside(a, "bot") and not _inside(a, "bot.app") and _inside(b, "connectors")]
    assert bad == []


def test_connectors_do_not_import_each_other(graph: grimp.ImportGraph) -> None:
    def platform(module: str) -> str | None:
        parts = module.split(".")
        return parts[1] if parts[0] == "connectors" and len(parts) > 1 and parts[1] != "registry" else None

    bad = [(a, b) for a, b in _imports(graph) if platform(a) and platform(b) and platform(a) != platform(b)]
    assert bad == []


def test_no_import_cycles(graph: grimp.ImportGraph) -> None:
    edges: dict[str, set[str]] = {m: set() for m in graph.modules}
    for a, b in _imports(graph):
        if _is_package_init_reexport(graph, a, b):
            continue
        edges[a].add(b)
    cycles = [c for c in _strongly_connected(edges) if len(c) > 1]
    assert cycles == []


def test_no_module_imports_private_names_of_another(graph: grimp.ImportGraph) -> None:
    private = re.compile(r"\bimport\b.*(?<![\w.])_[a-z]\w*")
    bad = []
    for a, b in _imports(graph):
        for detail in graph.get_import_details(importer=a, imported=b):
            if private.search(detail["line_contents"]):
                bad.append(f"{a}: {detail['line_contents']}")
    assert bad == []


def _is_package_init_reexport(graph: grimp.ImportGraph, importer: str, imported: str) -> bool:
    """A package's `__init__` re-exporting its own modules is not a cycle with them."""
    return imported.startswith(importer + ".")


def _strongly_connected(edges: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iteratively: every strongly connected component of the import graph."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                out.append(sorted(component))
    return out


def test_serves_front_process_loads_nothing_heavy():
    """`serve`'s front (bot/app/front.py) must stay small and keep its event loop free: with the platforms'
    front doors it loads no index, model, numerical library or platform SDK."""
    import subprocess
    import sys

    heavy = ("numpy", "onnxruntime", "fastembed", "qdrant_edge", "qdrant_client", "lark_oapi", "slack_bolt",
             "slack_sdk", "anthropic", "jieba", "retrieval", "bot.answering.wikibot")
    code = ("import sys, bot.app.front, connectors.registry, connectors.feishu.front, "
            "connectors.slack.front\n"
            f"print(','.join(m for m in {heavy!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
