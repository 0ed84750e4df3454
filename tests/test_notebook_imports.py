"""The notebooks' one import convention (README, Contributing): every labkit import sits in the
first code cell of a notebook, and imports modules, never names (``from labkit import aes, bits``,
``from labkit.widgets import aes as aes_widgets``), so every use reads ``aes.encrypt_block``."""
import ast
import importlib
import importlib.util
import types
from pathlib import Path

import nbformat
import pytest

from labkit.course import notebook_paths

NOTEBOOKS = notebook_paths(Path(__file__).resolve().parent.parent / "notebooks")


def _labkit_imports(source: str):
    """(module, imported names) of every labkit import in a cell (IPython magics skipped)."""
    code = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!")))
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "labkit":
            yield node.module, [alias.name for alias in node.names]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "labkit":
                    yield alias.name, []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_labkit_is_imported_as_modules_in_the_first_code_cell(path):
    cells = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
    assert cells, f"{path.name} has no code cell"
    for index, cell in enumerate(cells):
        for module, names in _labkit_imports(cell.source):
            assert index == 0, f"{path.name}: `{module}` imported in code cell {index}, not the first"
            package = importlib.import_module(module)
            for name in names:
                assert isinstance(getattr(package, name, None), types.ModuleType) or \
                    importlib.util.find_spec(f"{module}.{name}") is not None, \
                    f"{path.name}: `from {module} import {name}` imports a name, not a module"
