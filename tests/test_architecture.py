"""The package's shape: imports go one way (import-linter's layers contract in pyproject.toml), no
module imports itself back through another (no import cycle, deferred imports included), and no
module or function grows past the size a reader can hold in mind."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HELPERS = ROOT / "helpers"
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 80


def test_layers_contract_holds():
    """`lint-imports` with the contract in pyproject.toml ([tool.importlinter])."""
    exe = Path(sys.executable).with_name("lint-imports")
    if not exe.exists():
        pytest.fail("import-linter is not installed in this environment: pip install -r "
                    "requirements.txt (it provides lint-imports)")
    proc = subprocess.run([str(exe), "--no-cache"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]


def _cycles(graph, modules):
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index, low, on_stack, stack, out, counter = {}, {}, set(), [], [], [0]
    edges = {m: sorted(graph.find_modules_directly_imported_by(m) & modules) for m in modules}
    for root in sorted(modules):
        if root in index:
            continue
        work = [(root, iter(edges[root]))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, it = work[-1]
            nxt = next(it, None)
            if nxt is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        comp.append(w)
                        if w == node:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
            elif nxt not in index:
                index[nxt] = low[nxt] = counter[0]
                counter[0] += 1
                stack.append(nxt)
                on_stack.add(nxt)
                work.append((nxt, iter(edges[nxt])))
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
    return out


def test_no_import_cycle_among_helpers_modules():
    grimp = pytest.importorskip("grimp")   # import-linter's graph builder
    sys.path.insert(0, str(ROOT))
    graph = grimp.build_graph("helpers")
    # a package's __init__ importing its own submodules (re-exports) is not a cycle of concern;
    # a submodule importing the package back is, and shows up as package <-> submodule here
    cycles = _cycles(graph, set(graph.modules))
    assert not cycles, f"import cycles: {cycles}"


def _python_files():
    return sorted((ROOT / "helpers").rglob("*.py"))


@pytest.mark.parametrize("path", _python_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_modules_and_functions_stay_readable(path):
    src = path.read_text(encoding="utf-8")
    n = len(src.splitlines())
    assert n <= MAX_MODULE_LINES, f"{path.name}: {n} lines (split it by concept)"
    long = [(node.name, node.end_lineno - node.lineno + 1) for node in ast.walk(ast.parse(src))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]
    assert not long, f"{path.name}: functions over {MAX_FUNCTION_LINES} lines: {long}"


def test_every_helpers_module_is_reachable_as_an_attribute():
    """Notebooks write ``helpers.<module>.f()`` after ``import helpers``: a module left out of
    the lazy list fails only when a notebook cell reaches it (``reproducibility`` once did)."""
    import helpers
    names = {p.stem for p in HELPERS.glob("*.py") if not p.stem.startswith("_")}
    names |= {p.parent.name for p in HELPERS.glob("*/__init__.py")}
    missing = sorted(n for n in names if n not in helpers._SUBMODULES)
    assert not missing, f"add {missing} to helpers._SUBMODULES"
