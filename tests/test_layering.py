"""The layering of labkit is a test: its imports (read with ast, lazy ones inside functions too)
must form no cycle and never point upward, and no module grows past ~500 lines.

Order, lowest first (a module may import its own layer or any lower one):
  foundation (bits, the fields gf2, gf256 and gf128, small utilities) -> ciphers -> circuits -> neural
  -> attacks, backdoor, weights, games -> widgets -> exercises, capstone -> grading.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "labkit"

LAYERS = [
    ("foundation", {"labkit", "labkit.bits", "labkit.checks", "labkit.gf2", "labkit.gf256", "labkit.gf128", "labkit.timing", "labkit.parallel",
                    "labkit.paths", "labkit.progress", "labkit.course", "labkit.digits", "labkit.plain",
                    "labkit.memory"}),
    ("ciphers", {"labkit.feistel", "labkit.des", "labkit.des_linear", "labkit.des_security", "labkit.aes", "labkit.sbox",
                 "labkit.modes", "labkit.gcm", "labkit.square_attack", "labkit.spn", "labkit.vectors",
                 "labkit.hkdf", "labkit.padding_oracle", "labkit.gcm_pitfalls", "labkit.ed25519"}),
    ("circuits", {"labkit.circuits"}),
    ("neural", {"labkit.neural"}),
    ("attacks, backdoor, weights, games", {"labkit.attacks", "labkit.backdoor", "labkit.weights",
                                           "labkit.games"}),
    ("widgets", {"labkit.widgets"}),
    ("exercises, capstone, challenges", {"labkit.exercises", "labkit.capstone", "labkit.capstone_design",
                                         "labkit.challenges"}),
    ("grading", {"labkit.grading"}),
]

#: Inside labkit.neural the evaluation engine sits above the network definition and the C kernel.
FORBIDDEN = {
    "labkit.neural.layers": {"labkit.neural.engine", "labkit.neural.kernel"},
    "labkit.neural.kernel": {"labkit.neural.layers", "labkit.neural.engine"},
}

MAX_LINES = 500  # non-blank lines
#: Modules that follow a standard's tables, longer for that reason (stated in their docstrings).
LONG_BY_STANDARD = {"labkit.des": "FIPS 46-3", "labkit.aes": "FIPS-197"}

def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _imports(name: str) -> set[str]:
    """The labkit modules ``name`` imports (``from pkg import sub`` counts as the submodule)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:  # import labkit.x.y where y is a name
                target = target.rpartition(".")[0]
            if target.startswith("labkit") and target != name:
                found.add(target)
    return found


GRAPH = {name: _imports(name) for name in MODULES}


def _layer(name: str) -> int:
    best = None
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if name == prefix or (prefix != "labkit" and name.startswith(prefix + ".")):
                best = index
    if best is None:
        raise AssertionError(f"{name} is in no layer: add it to LAYERS in tests/test_layering.py")
    return best


def test_every_module_has_a_layer():
    for name in MODULES:
        _layer(name)


@pytest.mark.parametrize("name", list(MODULES))
def test_no_import_points_upward(name):
    mine = _layer(name)
    upward = sorted(t for t in GRAPH[name] if _layer(t) > mine)
    assert not upward, (f"{name} ({LAYERS[mine][0]}) imports {upward} from a higher layer: "
                        + ", ".join(LAYERS[_layer(t)][0] for t in upward))
    assert not GRAPH[name] & FORBIDDEN.get(name, set()), f"{name} imports {GRAPH[name] & FORBIDDEN[name]}"


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, on_stack, stack, result, counter = {}, {}, set(), [], [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                result.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return result


def test_no_import_cycle():
    assert _cycles(GRAPH) == []


def test_the_cycle_finder_finds_cycles():
    """The attacker's test of the check itself: known cycles are found, a chain is not one."""
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []
    assert _layer("labkit.neural.engine") > _layer("labkit.circuits") > _layer("labkit.aes")


def test_import_reader_resolves_submodule_imports():
    assert "labkit.neural.engine" in GRAPH["labkit.neural.compiler"]
    assert "labkit.neural.kernel" in GRAPH["labkit.neural.engine"]
    assert "labkit.attacks.recover" in GRAPH["labkit.attacks"]


@pytest.mark.parametrize("name", list(MODULES))
def test_no_module_above_about_500_lines(name):
    text = MODULES[name].read_text()
    lines = sum(1 for line in text.splitlines() if line.strip())
    if lines <= MAX_LINES:
        return
    assert name in LONG_BY_STANDARD, f"{name}: {lines} non-blank lines (at most {MAX_LINES}): split it by concern"
    docstring = ast.get_docstring(ast.parse(text)) or ""
    assert LONG_BY_STANDARD[name] in docstring and "table" in docstring, \
        f"{name} may be long only because it follows {LONG_BY_STANDARD[name]}'s tables: say so in its docstring"


def _private_reach_ins(name: str) -> list[str]:
    """Imports in module ``name`` of another labkit module's private names (``from x import _y``)
    or of a private module (``labkit.x._y``). Aliasing a public name (``import a as _a``) is fine."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            if not base.startswith("labkit"):
                continue
            if any(part.startswith("_") for part in base.split(".")):
                found.append(f"from {base} import ...")
            found += [f"from {base} import {a.name}" for a in node.names
                      if a.name.startswith("_") and not a.name.startswith("__") and base != name]
        elif isinstance(node, ast.Import):
            found += [f"import {a.name}" for a in node.names
                      if a.name.startswith("labkit") and any(p.startswith("_") for p in a.name.split("."))]
    return found


@pytest.mark.parametrize("name", list(MODULES))
def test_no_private_reach_in(name):
    """What modules share is public; a private name stays in the module that defines it."""
    assert not _private_reach_ins(name), f"{name} reaches into private names: {_private_reach_ins(name)}"


def test_the_reach_in_finder_finds_reach_ins(tmp_path, monkeypatch):
    source = ("from labkit.circuits import _check_c\nfrom labkit.exercises._private import x\n"
              "import labkit.exercises._private\nfrom labkit import bits as _bits\nfrom labkit.gf2 import rank\n")
    probe = tmp_path / "probe.py"
    probe.write_text(source)
    monkeypatch.setitem(MODULES, "labkit.probe", probe)
    assert _private_reach_ins("labkit.probe") == [
        "from labkit.circuits import _check_c", "from labkit.exercises._private import ...",
        "import labkit.exercises._private"]
