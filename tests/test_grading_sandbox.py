"""The grading sandbox, attacked: a graded cell that reads, writes, forks, kills, loops, allocates,
connects or imports its reference earns nothing, says why, and leaves the grader as it was.

Each test grades a cell of exercise 03.1 (gf_multiply) or 09.3 through
:func:`labkit.grading.grade_implement`, exactly as autograde does, and checks the verdict, its
message and the grader's own state (its labkit files, its process, no process left behind).
"""
from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

import labkit
from labkit import exercises
from labkit.grading import Limits, Sandbox, SandboxError, StudentError, grade_implement
from labkit.grading.notebook import graded_source, needed_imports, notebook_imports
from labkit.grading.sandbox import labkit_copy
from student_work import GF_MULTIPLY

LABKIT = Path(labkit.__file__).resolve().parent
FAST = Limits(cpu_seconds=10, call_seconds=5, start_seconds=60, memory_bytes=3 << 30)



def _labkit_digest() -> str:
    digest = hashlib.sha256()
    for path in sorted(LABKIT.rglob("*.py")):
        digest.update(str(path).encode() + path.read_bytes())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def before():
    return _labkit_digest()


def _grade(cell: str, exercise_id: str = "03.1", answer: str = "gf_multiply", imports=(), limits=FAST):
    start = time.monotonic()
    verdict = grade_implement(exercise_id, cell, answer, imports=list(imports), limits=limits)
    return verdict, time.monotonic() - start


def _body(body: str, prelude: str = "") -> str:
    return prelude + "\ndef gf_multiply(a, b):\n" + "".join(f"    {line}\n" for line in body.strip().splitlines())


def test_a_correct_cell_passes_and_the_sandbox_is_confined():
    verdict, _ = _grade(GF_MULTIPLY + '\nex.check("03.1", gf_multiply)\n')
    assert verdict.correct and verdict.how == "sandbox", verdict
    with Sandbox(GF_MULTIPLY, "gf_multiply", limits=FAST) as box:
        assert box.answer()(0x57, 0x83) == 0xC1  # FIPS-197 4.2
        if os.uname().sysname == "Linux" and os.uname().machine == "x86_64":
            assert box.confined, "Landlock and the seccomp filter must be active on Linux x86-64"


@pytest.mark.parametrize("body, message", [
    ("return len(open('/etc/passwd').read())", "sandbox: reading /etc/passwd"),
    (f"return len(open({str(LABKIT / 'exercises' / 'ch03_aes.py')!r}).read())", "sandbox: reading"),
    (f"return len(os.listdir({str(LABKIT)!r}))", "sandbox: listing"),
    ("return os.fork()", "os.fork"),
    ("return subprocess.run(['true']).returncode", "subprocess.Popen"),
    ("return os.kill(os.getppid(), signal.SIGKILL)", "os.kill"),
    ("return socket.create_connection(('127.0.0.1', 22))", "socket"),
    (f"return open({str(LABKIT / 'exercises' / '__init__.py')!r}, 'a').write('#')", "sandbox: writing"),
    (f"return os.remove({str(LABKIT / 'gf256.py')!r})", "os.remove"),
], ids=["etc-passwd", "exercise-source", "list-labkit", "fork", "subprocess", "kill-grader", "socket",
        "rewrite-checks", "delete-labkit"])
def test_a_cell_that_leaves_its_folder_earns_nothing(body, message, before):
    prelude = "import os, signal, socket, subprocess"
    verdict, _ = _grade(_body(body, prelude))
    assert not verdict.correct and message in verdict.message, verdict
    assert _labkit_digest() == before


def test_c_level_escapes_are_stopped_by_the_kernel(before):
    """Below the audit hook: libc through ctypes. Landlock and seccomp refuse what Python's hook
    cannot see (skipped where the kernel has neither)."""
    cell = f"""
import ctypes, os
libc = ctypes.pythonapi  # libc through the interpreter's own symbols (CDLL(None) is refused)
def probe(what):
    if what == "read":
        return libc.open(b"/etc/passwd", 0)
    if what == "write":
        return libc.open({str(LABKIT / 'exercises' / '__init__.py').encode()!r}, 1 | 0o2000)
    if what == "fork":
        return libc.fork()
    if what == "kill":
        return libc.kill(os.getppid(), 0)
"""
    with Sandbox(cell, "probe", limits=FAST) as box:
        if not box.confined:
            pytest.skip("no Landlock / seccomp on this kernel")
        probe = box.answer()
        for what in ("read", "write", "fork", "kill"):
            assert probe(what) == -1, what
    assert _labkit_digest() == before


def test_a_cell_that_loops_forever_is_stopped_on_time():
    verdict, seconds = _grade(_body("while True:\n    pass"))
    assert not verdict.correct and "did not answer within 5 s" in verdict.message, verdict
    assert seconds < 30


def test_a_cell_that_sleeps_a_little_on_every_call_meets_the_overall_deadline():
    limits = Limits(cpu_seconds=10, call_seconds=5, start_seconds=60, total_seconds=3, memory_bytes=3 << 30)
    start = time.monotonic()
    slow = GF_MULTIPLY.replace("    product = 0\n", "    time.sleep(0.5)\n    product = 0\n")
    verdict, seconds = _grade("import time\n" + slow, limits=limits)
    assert not verdict.correct and "3 s of wall-clock time in all" in verdict.message, verdict
    assert seconds < 20


def test_a_cell_that_burns_cpu_in_the_background_hits_the_cpu_limit():
    limits = Limits(cpu_seconds=2, call_seconds=30, start_seconds=60, memory_bytes=3 << 30)
    verdict, seconds = _grade("x = 0\nwhile True:\n    x += 1\n", limits=limits)
    assert not verdict.correct and "CPU time" in verdict.message, verdict
    assert seconds < 20


def test_a_cell_that_allocates_10_gb_gets_a_memory_error():
    verdict, _ = _grade(_body("return len(bytearray(10 * 1024 ** 3))"))
    assert not verdict.correct and "MemoryError" in verdict.message, verdict


@pytest.mark.parametrize("cell", [
    "from labkit.gf256 import mul as gf_multiply",
    "from labkit import gf256\ngf_multiply = gf256.mul",
    "import labkit.gf256\ndef gf_multiply(a, b):\n    return labkit.gf256.mul(a, b)",
    "from labkit.aes import gf256\ngf_multiply = gf256.mul",
    "from labkit import exercises\ngf_multiply = exercises.registry()['03.1'].spec.reference",
    "import sys\nsys.path.insert(0, " + repr(str(LABKIT.parent)) + ")\nfor m in [m for m in sys.modules if m.startswith('labkit')]:\n"
    "    del sys.modules[m]\nfrom labkit.gf256 import mul as gf_multiply",
], ids=["from-import", "attribute", "dotted", "re-export", "the-checks", "the-real-labkit"])
def test_a_cell_that_imports_the_reference_earns_nothing(cell):
    verdict, _ = _grade(cell)
    assert not verdict.correct, verdict
    assert any(word in verdict.message for word in ("ImportError", "AttributeError", "ModuleNotFoundError",
                                                    "sandbox: reading", "sandbox: listing", "NameError")), verdict


def test_the_reference_is_cut_from_every_import_of_it(tmp_path):
    root = labkit_copy(tmp_path, ("labkit.gf256:mul", "labkit.weights.encoding:chunk_spans"))
    gf_source = (root / "labkit" / "gf256.py").read_text()
    assert "def mul(" not in gf_source and "'mul'" not in gf_source
    assert not (root / "labkit" / "exercises").exists() and not (root / "labkit" / "grading").exists()
    assert not os.access(root / "labkit" / "gf256.py", os.W_OK) or os.geteuid() == 0
    assert (root / "labkit" / "gf256.py").stat().st_mode & 0o222 == 0
    with pytest.raises(ValueError, match="labkit.module:name"):
        labkit_copy(tmp_path / "bad", ("gf256_mul",))
    from labkit.grading.sandbox import _remove
    _remove(tmp_path / "labkit")


def test_an_answer_that_equals_everything_earns_nothing():
    cell = ("class Yes(int):\n    def __eq__(self, other):\n        return True\n    __hash__ = int.__hash__\n\n"
            "def gf_multiply(a, b):\n    return Yes(0)\n")
    verdict, _ = _grade(cell)
    assert not verdict.correct and "not plain data" in verdict.message, verdict


def test_a_crash_or_exit_is_a_clear_failure():
    verdict, _ = _grade(_body("os._exit(3)", "import os"))
    assert not verdict.correct and "exited before answering" in verdict.message, verdict
    verdict, _ = _grade("raise SystemExit('bye')")
    assert not verdict.correct and "SystemExit" in verdict.message, verdict
    verdict, _ = _grade("def gf_multiply(a, b) return 1")
    assert not verdict.correct and "not valid Python" in verdict.message, verdict


def test_an_exception_of_the_student_counts_as_a_refusal():
    """09.3 expects unwrap_dek to raise on a tampered key: an exception crosses as its type name."""
    cell = ("from Crypto.Cipher import AES\n\ndef unwrap_dek(content_key, wrapped_hex, model_id, name):\n"
            "    raw = bytes.fromhex(wrapped_hex)\n"
            "    cipher = AES.new(content_key, AES.MODE_GCM, nonce=raw[:12])\n"
            "    cipher.update(weights.dek_aad(model_id, name))\n"
            "    return cipher.decrypt_and_verify(raw[12:-16], raw[-16:])\n")
    imports = notebook_imports([{"cell_type": "code", "source": "from labkit import weights"}])
    verdict, _ = _grade(cell, "09.3", "unwrap_dek", imports=imports)
    assert verdict.correct, verdict
    lenient = cell.replace("decrypt_and_verify(raw[12:-16], raw[-16:])", "decrypt(raw[12:-16])")
    verdict, _ = _grade(lenient, "09.3", "unwrap_dek", imports=imports)
    assert not verdict.correct and "expected an exception" in verdict.message, verdict


def test_the_cell_runs_without_its_checks_and_with_only_the_imports_it_uses():
    source = graded_source('%timeit 1\nimport math\nx = math.pi\nex.check("03.1", f)\nprint(ex.hint("03.1"))\n')
    assert "ex." not in source and "timeit" not in source and "math.pi" in source
    first = {"cell_type": "code", "source": "import numpy as np\nfrom labkit import aes, gf256\n"
                                            "from labkit import exercises as ex\nimport labkit.grading\n"}
    imports = notebook_imports([first])
    assert [s for s, _ in imports] == ["import numpy as np", "from labkit import aes", "from labkit import gf256"]
    assert needed_imports(imports, "def f(a):\n    return gf256.xtime(a)") == ["from labkit import gf256"]


def test_a_dead_sandbox_fails_every_later_call():
    with Sandbox(_body("os._exit(1)", "import os"), "gf_multiply", limits=FAST) as box:
        f = box.answer()
        with pytest.raises(SandboxError):
            f(1, 2)
        with pytest.raises(SandboxError):
            f(1, 2)
    with pytest.raises(StudentError, match="not defined"):
        Sandbox("", "gf_multiply", limits=FAST).start()


def test_no_process_is_left_behind():
    with Sandbox(GF_MULTIPLY, "gf_multiply", limits=FAST) as box:
        pid = box.process.pid
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_every_implement_exercise_hides_a_reference_that_exists():
    for exercise in exercises.registry().values():
        if exercise.kind != "implement":
            continue
        for item in exercise.spec.hide:
            module, _, name = item.partition(":")
            assert hasattr(__import__(module, fromlist=[name]), name), (exercise.id, item)
