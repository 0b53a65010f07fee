"""The import graph of `pinnflow/`: no cycle, no import of `experiments`, no private name imported from another
module, and imports only go down the layers (core → operators → pde → nn → dynamics → metrics → optim →
solvers → viz → cli). Importing pinnflow loads no module of experiments."""

import ast
import subprocess
import sys
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "pinnflow"

# the layer of each top-level part of pinnflow; a module may import its own layer or lower ones
LAYERS = {
    "core": 0, "distributions": 0, "target": 0, "fokker_planck": 0,
    "operators": 1, "pde": 2, "nn": 2, "dynamics": 3, "metrics": 3, "optim": 3,
    "gradient_flow": 0, "dataset": 0, "diffusion": 4,
    "pinn": 4, "baselines": 4, "sbtm": 4, "wgf": 4, "fpe": 5, "sampling": 5, "viz": 5, "cli": 6,
}


def _modules() -> dict[str, Path]:
    out = {}
    for p in PKG.rglob("*.py"):
        rel = p.relative_to(PKG.parent).with_suffix("")
        out[".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)] = p
    return out


def _imports(name: str, path: Path) -> list[tuple[str, list[str], int]]:
    """(module, imported names, line) of every import statement in the module (relative ones resolved)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [(a.name, [], node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
                base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
            out.append((base, [a.name for a in node.names], node.lineno))
    return out


def _edges():
    mods = _modules()
    edges = {m: set() for m in mods}
    for name, path in mods.items():
        for base, names, _ in _imports(name, path):
            for target in [base] + [f"{base}.{n}" for n in names]:
                if target in mods and target != name:
                    edges[name].add(target)
    return mods, edges


def _part(module: str) -> str:
    return module.split(".")[1] if module.count(".") else "__init__"


def test_no_import_cycles():
    mods, edges = _edges()

    def related(a, b):  # a package's __init__ re-exporting its children is not a cycle
        return a.startswith(b + ".") or b.startswith(a + ".")

    state, stack, cycles = {}, [], []

    def visit(u):
        state[u] = 1
        stack.append(u)
        for v in edges[u]:
            if related(u, v):
                continue
            if state.get(v) == 1:
                cycles.append(stack[stack.index(v):] + [v])
            elif v not in state:
                visit(v)
        stack.pop()
        state[u] = 2

    for m in mods:
        if m not in state:
            visit(m)
    assert not cycles, cycles


def test_imports_go_down_the_layers_and_never_to_experiments_or_private_names():
    mods, _ = _edges()
    bad = []
    for name, path in mods.items():
        for base, names, line in _imports(name, path):
            where = f"{path.relative_to(PKG.parent)}:{line}"
            if base == "experiments" or base.startswith("experiments."):
                bad.append(f"{where} imports {base}")
            if not base.startswith("pinnflow.") or name == "pinnflow":
                continue
            if any(n.startswith("_") for n in names):
                bad.append(f"{where} imports private {names} from {base}")
            src, dst = _part(name), _part(base)
            if src in LAYERS and dst in LAYERS and LAYERS[dst] > LAYERS[src]:
                bad.append(f"{where}: {src} (layer {LAYERS[src]}) imports {base} (layer {LAYERS[dst]})")
    parts = {_part(m) for m in mods} - {"__init__"}
    assert parts <= set(LAYERS), f"give these parts a layer: {parts - set(LAYERS)}"
    assert not bad, "\n".join(bad)


def test_importing_pinnflow_loads_no_experiments_module():
    code = "import sys, pinnflow; print([m for m in sys.modules if m.split('.')[0] == 'experiments'])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
