"""The maintainers' commands: console scripts of ``labkit_tools``, each with a working ``--help``.

pyproject.toml's ``[project.scripts]`` installs them (``labkit-execute-notebooks``, ...). They
import labkit as an installed package, never by editing ``sys.path``, and labkit never imports
them: the student-facing layering (tests/test_layering.py) stays closed.
"""
from __future__ import annotations

import ast
import importlib
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import labkit_tools

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
TOOLS = sorted(p for p in (ROOT / "labkit_tools").glob("*.py") if p.name != "__init__.py")


def test_every_tool_is_a_console_script_and_the_package_lists_them():
    assert {f"labkit_tools.{p.stem}:main" for p in TOOLS} == set(SCRIPTS.values())
    assert {name: f"labkit_tools.{module}:main" for name, module in labkit_tools.COMMANDS.items()} == SCRIPTS
    assert all(name == "labkit-" + target.split(".")[1].split(":")[0].replace("_", "-")
               for name, target in SCRIPTS.items())
    assert not (ROOT / "tools").exists(), "the scripts moved to labkit_tools"


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_help_prints_the_usage_and_exits_zero(name, capsys):
    module_name, _, function = SCRIPTS[name].partition(":")
    main = getattr(importlib.import_module(module_name), function)
    with pytest.raises(SystemExit) as stop:
        main(["--help"])
    assert stop.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: {name} ") and "-h, --help" in out


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_an_unknown_option_is_refused_with_a_usage_error(name, capsys):
    module_name, _, function = SCRIPTS[name].partition(":")
    main = getattr(importlib.import_module(module_name), function)
    with pytest.raises(SystemExit) as stop:
        main(["--no-such-option"])
    assert stop.value.code == 2 and "unrecognized arguments: --no-such-option" in capsys.readouterr().err


def test_module_run_answers_help_in_a_fresh_interpreter():
    """What ``python tools/execute_notebooks.py --help`` did before: it crashed executing '--help'."""
    run = subprocess.run([sys.executable, "-m", "labkit_tools.execute_notebooks", "--help"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("usage: labkit-execute-notebooks")


@pytest.mark.parametrize("path", TOOLS, ids=lambda p: p.stem)
def test_tools_do_not_edit_sys_path(path):
    tree = ast.parse(path.read_text(), str(path))
    edits = [node.lineno for node in ast.walk(tree)
             if isinstance(node, ast.Attribute) and node.attr == "path"
             and isinstance(node.value, ast.Name) and node.value.id == "sys"]
    assert not edits, f"{path.name} touches sys.path at line(s) {edits}"


def test_labkit_never_imports_the_tools():
    for path in (ROOT / "labkit").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(n.split(".")[0] == "labkit_tools" for n in names), path


def test_stored_outputs_do_not_depend_on_how_the_kernel_flushed():
    from nbformat.v4 import new_output

    from labkit_tools.execute_notebooks import coalesce_streams

    split = [new_output("stream", name="stdout", text="a\n"), new_output("stream", name="stdout", text=["b\n", "c"]),
             new_output("stream", name="stderr", text="warn\n"), new_output("stream", name="stdout", text="d\n"),
             new_output("execute_result", data={"text/plain": "1"}, execution_count=1),
             new_output("stream", name="stdout", text="e\n")]
    split[0]["metadata"] = {"flushed": 1}
    merged = coalesce_streams(split)
    assert [(o.output_type, o.get("name"), o.get("text")) for o in merged] == [
        ("stream", "stdout", "a\nb\nc"), ("stream", "stderr", "warn\n"), ("stream", "stdout", "d\n"),
        ("execute_result", None, None), ("stream", "stdout", "e\n")]
    assert "metadata" not in merged[0]
    once = [new_output("stream", name="stdout", text="a\nb\nc")]
    assert coalesce_streams(once)[0].text == merged[0].text
