"""Run a student's graded cell in a fresh, limited process and call its function with plain data.

The grader never executes student code. :class:`Sandbox` starts ``python -I -S`` (isolated: no
PYTHONPATH, no user site, no ``.pth`` hooks) on :mod:`labkit.grading._child` with

- an empty temporary working folder, stdin closed, an environment of a handful of fixed variables;
- resource limits (``setrlimit``): CPU seconds, address space, file size, no new processes;
- a fresh read-only copy of labkit (:func:`labkit_copy`) holding only the modules the exercise's
  graded cell needs (:mod:`labkit.grading.scope`), from which the exercise's reference and its
  equivalents are cut out by AST, and never the exercises, the challenge handles or the grader;
- Landlock and a seccomp filter for this machine's architecture (:mod:`labkit.grading.seccomp`):
  the child reports which are active before any student code runs, and the sandbox refuses to
  run the cell without both (:class:`ConfinementError`) unless ``Limits.allow_unconfined``;
- an audit hook (PEP 578) refusing writes outside the folder, reads outside Python's installation,
  the copy and the folder, processes, signals, sockets and ctypes calls;
- a wall-clock deadline per call, after which the whole process group is killed.

The grader talks to it over two pipes in JSON lines of plain data (:mod:`labkit.plain`):
:meth:`Sandbox.answer` returns handles (:class:`Remote`) that look like the student's functions, so
the exercise's own check (:class:`labkit.exercises.FunctionSpec`) runs unchanged in the grader,
comparing plain data only. What the student's process can do is bounded by those limits; what it
sends back can only be plain data, which decides nothing by itself.
"""
from __future__ import annotations

import ast
import functools
import json
import os
import resource
import select
import shutil
import signal
import stat
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labkit import plain
from labkit.grading import scope, seccomp

__all__ = ["Limits", "Sandbox", "SandboxError", "ConfinementError", "StudentError", "Remote", "labkit_copy",
           "LEFT_OUT"]

#: Parts of labkit a graded cell never gets: the checks and references, the challenge handles, the grader.
LEFT_OUT = ("exercises", "challenges", "grading")
_CHILD = Path(__file__).with_name("_child.py")
_MAX_LINE = 64 << 20


class SandboxError(RuntimeError):
    """The sandboxed process failed as a whole: it timed out, ran out of memory or CPU, or died."""


class ConfinementError(SandboxError):
    """The kernel confinement (Landlock, seccomp) is missing, and the limits do not allow grading
    without it: the machine needs fixing, the submission is not at fault."""


class StudentError(Exception):
    """The student's function raised (``kind`` is the type name it raised, ``str`` its message)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Limits:
    """What one graded cell may use: CPU seconds, address space, wall-clock seconds per call, for
    starting up and in all, file size written; and whether it may run where the kernel offers no
    Landlock or seccomp (only the audit hook and these limits then confine it: verdicts say so)."""

    cpu_seconds: int = 60
    memory_bytes: int = 3 << 30
    call_seconds: float = 30.0
    start_seconds: float = 60.0
    file_bytes: int = 16 << 20
    total_seconds: float = 240.0  # a function that sleeps uses no CPU: the whole run has a deadline too
    allow_unconfined: bool = False


def _python_roots() -> list[str]:
    """Where Python's standard library and installed packages live (C libraries may load from there)."""
    paths = sysconfig.get_paths()
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
             paths["stdlib"], paths["platstdlib"], paths["purelib"], paths["platlib"]}
    return sorted(os.path.realpath(p) for p in roots if p)


def _site_packages() -> list[str]:
    paths = sysconfig.get_paths()
    return sorted({os.path.realpath(paths["purelib"]), os.path.realpath(paths["platlib"])})


def _readable(deny: tuple[str, ...] = ()) -> tuple[list[str], list[str]]:
    """(folders and files the child may read, folders it may only list): the standard library and
    every installed package, but not an installed labkit (the real one, with its references), nor
    the editable-install hooks that point at it, nor the packages named in ``deny``."""
    read = [os.path.realpath(p) for p in _standard_path() if os.path.exists(p)]
    for folder in _site_packages():
        for name in sorted(os.listdir(folder)):
            if name.startswith(("labkit", "__editable__", "_labkit", "__pycache__")) or name.endswith(".pth"):
                continue
            if name.split(".")[0].split("-")[0] in deny:
                continue
            read.append(os.path.join(folder, name))
    return read, _site_packages()


@functools.lru_cache(maxsize=1)
def _standard_path() -> tuple[str, ...]:
    """The standard library's folders, as an isolated interpreter without site finds them."""
    done = subprocess.run([sys.executable, "-I", "-S", "-c", "import sys, json; print(json.dumps(sys.path))"],
                          capture_output=True, text=True, timeout=60, check=True, env={})
    return tuple(p for p in json.loads(done.stdout) if p)


def _search_path(copy_root: Path) -> list[str]:
    """``sys.path`` of the child: labkit's copy first, then the standard library and site-packages
    (added as folders: no ``.pth`` file runs, so no editable install points back at the real labkit)."""
    paths = sysconfig.get_paths()
    out = []
    for entry in [str(copy_root), *_standard_path(), paths["purelib"], paths["platlib"]]:
        if entry not in out:
            out.append(entry)
    return out


# -- the copy of labkit -------------------------------------------------------------------------
def _module_file(root: Path, module: str) -> Path:
    parts = module.split(".")
    base = root.joinpath(*parts)
    return base / "__init__.py" if base.is_dir() else base.with_suffix(".py")


def _absolute(module_name: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    anchor = module_name.split(".") if is_package else module_name.split(".")[:-1]
    anchor = anchor[: len(anchor) - node.level + 1]
    return ".".join(anchor + ([node.module] if node.module else []))


class _Cut(ast.NodeTransformer):
    """Remove the definitions of ``names`` (top level of their module) and every import of them."""

    def __init__(self, module: str, is_package: bool, hidden: dict[str, set[str]]) -> None:
        self.module, self.is_package, self.hidden = module, is_package, hidden
        self.changed = False

    def _mine(self) -> set[str]:
        return self.hidden.get(self.module, set())

    def visit_Module(self, node):
        body = []
        for statement in node.body:
            targets = set()
            if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                targets = {statement.name}
            elif isinstance(statement, (ast.Assign, ast.AnnAssign)):
                for target in (statement.targets if isinstance(statement, ast.Assign) else [statement.target]):
                    targets |= {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}
            if targets & self._mine():
                self.changed = True
                continue
            if isinstance(statement, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__"
                                                          for t in statement.targets) \
                    and isinstance(statement.value, (ast.List, ast.Tuple)):
                kept = [e for e in statement.value.elts
                        if not (isinstance(e, ast.Constant) and e.value in self._mine())]
                if len(kept) != len(statement.value.elts):
                    statement.value.elts = kept
                    self.changed = True
            body.append(statement)
        node.body = body
        return self.generic_visit(node)

    def visit_ImportFrom(self, node):
        source = _absolute(self.module, self.is_package, node)
        gone = self.hidden.get(source, set())
        kept = [alias for alias in node.names if alias.name not in gone]
        if len(kept) == len(node.names):
            return node
        self.changed = True
        if kept:
            node.names = kept
            return node
        return ast.Pass()


def labkit_copy(destination: Path, hide: tuple[str, ...] = (), keep: tuple[str, ...] | None = None) -> Path:
    """A read-only copy of the installed labkit under ``destination`` (returned: the folder to put
    on ``sys.path``), without :data:`LEFT_OUT`, and with each ``"labkit.module:name"`` of ``hide``
    cut out of its module and out of every ``from ... import`` of it, so the name cannot be imported
    from anywhere in the copy. With ``keep`` (module names), the copy holds only
    :data:`labkit.grading.scope.BASE`, those modules and what they import at module level."""
    import labkit

    source = Path(labkit.__file__).resolve().parent
    target = destination / "labkit"
    modules = None if keep is None else scope.module_closure(source.parent, (*scope.BASE, *keep))

    def wanted(path: Path) -> bool:
        name = ".".join(path.relative_to(source.parent).with_suffix("").parts)
        if path.is_dir():
            return any(m == name or m.startswith(name + ".") for m in modules)
        return not path.name.endswith(".py") or name.removesuffix(".__init__") in modules

    def ignore(folder, names):
        skip = {n for n in names if n == "__pycache__" or n.endswith((".pyc", ".so.lock"))}
        if Path(folder).resolve() == source:
            skip |= {n for n in names if n in LEFT_OUT}
        if modules is not None:
            skip |= {n for n in names if not wanted(Path(folder).resolve() / n)}
        return skip

    shutil.copytree(source, target, ignore=ignore)
    hidden: dict[str, set[str]] = {}
    for item in hide:
        module, _, name = item.partition(":")
        if not module.startswith("labkit.") or not name.isidentifier():
            raise ValueError(f"hide entries are 'labkit.module:name', got {item!r}")
        if not _module_file(source.parent, module).is_file():
            raise ValueError(f"hide names a module labkit does not have: {module}")
        hidden.setdefault(module, set()).add(name)
    if hidden:
        for path in target.rglob("*.py"):
            parts = path.relative_to(destination).with_suffix("").parts
            is_package = parts[-1] == "__init__"
            module = ".".join(parts[:-1] if is_package else parts)
            text = path.read_text()
            if not any(name in text for names in hidden.values() for name in names):
                continue  # the name does not occur: nothing to cut (and no need to parse)
            tree = ast.parse(text, str(path))
            cut = _Cut(module, is_package, hidden)
            tree = cut.visit(tree)
            if cut.changed:
                path.write_text(ast.unparse(ast.fix_missing_locations(tree)) + "\n")
    for folder, dirs, files in os.walk(target):
        for name in files:
            os.chmod(os.path.join(folder, name), stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
        os.chmod(folder, stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
    return destination


def _remove(folder: Path) -> None:
    for root, dirs, _ in os.walk(folder):
        for name in dirs:
            try:
                os.chmod(os.path.join(root, name), stat.S_IRWXU)
            except OSError:
                pass
    try:
        os.chmod(folder, stat.S_IRWXU)
    except OSError:
        pass
    shutil.rmtree(folder, ignore_errors=True)


# -- the process ---------------------------------------------------------------------------------
def _limit(limits: Limits):
    def apply():  # runs in the child between fork and exec
        os.setsid()
        resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 1))
        resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_bytes, limits.file_bytes))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))  # no fork; the child runs one thread

    return apply


class Remote:
    """A handle on a function in the sandbox: calling it sends plain data and returns plain data
    (or raises :class:`StudentError` / :class:`SandboxError`). It has no code of the student's."""

    def __init__(self, sandbox: "Sandbox", path: tuple[int, ...], name: str) -> None:
        self._sandbox, self._path, self.__name__ = sandbox, path, name

    def __call__(self, *args):
        return self._sandbox.call(self._path, args)

    def __repr__(self) -> str:
        return f"<{self.__name__} in the grading sandbox>"


class Sandbox:
    """One sandboxed run of one graded cell (use as a context manager; it cleans up after itself).

    ``cell`` is the graded cell's source (without its ``ex.check`` lines), ``imports`` the import
    statements it may need from the notebook's first cell, ``answer`` the expression naming the
    answer (``"feistel_round"``), ``hide`` the references to cut out of labkit's copy, ``keep`` the
    labkit modules the copy holds (None: all), ``deny`` installed packages the cell may not read.
    ``confinement`` says, once started, what confines the process (Landlock ABI, seccomp, audit hook).
    """

    def __init__(self, cell: str, answer: str, *, imports: tuple[str, ...] = (), hide: tuple[str, ...] = (),
                 export: str | None = None, limits: Limits = Limits(), keep: tuple[str, ...] | None = None,
                 deny: tuple[str, ...] = ()) -> None:
        self.cell, self.answer_source, self.imports = cell, answer, tuple(imports)
        self.hide, self.export, self.limits = tuple(hide), export, limits
        self.keep, self.deny = (None if keep is None else tuple(keep)), tuple(deny)
        self.confinement: dict = {}
        self.confined = False
        self.process: subprocess.Popen | None = None
        self.failure: str | None = None
        self.import_problems: list[str] = []
        self._folder: Path | None = None
        self._buffer = bytearray()

    # lifecycle
    def __enter__(self) -> "Sandbox":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self) -> dict:
        self._deadline = time.monotonic() + self.limits.total_seconds
        self._folder = Path(tempfile.mkdtemp(prefix="labkit-grading-"))
        root = labkit_copy(self._folder / "lib", self.hide, self.keep)
        work = self._folder / "work"
        work.mkdir()
        log = open(self._folder / "log.txt", "wb")
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": str(work), "TMPDIR": str(work),
               "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
               "LABKIT_PROGRESS": "off", "PYTHONHASHSEED": "random"}
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-I", "-S", "-B", str(_CHILD), str(to_child_r), str(from_child_w)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=work, env=env,
                pass_fds=(to_child_r, from_child_w), preexec_fn=_limit(self.limits), close_fds=True)
        finally:
            os.close(to_child_r)
            os.close(from_child_w)
            log.close()
        libraries = _python_roots()
        readable, listable = _readable(self.deny)
        arch = seccomp.native_arch()
        job = {"path": _search_path(root / ""), "workdir": str(work), "read": [str(root)] + readable
               + ["/dev/null", "/dev/urandom", "/proc/self", "/proc/cpuinfo", "/proc/meminfo", "/sys/devices/system/cpu",
                  "/sys/fs/cgroup", "/etc/localtime", "/usr/share/zoneinfo"], "list": listable,
               "system": ["/usr/lib", "/usr/lib64", "/lib", "/lib64", "/etc/ld.so.cache", "/etc/ld.so.conf",
                          "/etc/ld.so.conf.d"],
               "libraries": libraries, "imports": list(self.imports), "cell": self.cell,
               "answer": self.answer_source, "export": self.export, "preload": [],
               "seccomp": seccomp.filter_program(arch) if arch else None}
        try:
            self._send(job)
            self._confinement(self._receive(self.limits.start_seconds), arch)
            ready = self._receive(self.limits.start_seconds)
        except BaseException:
            self.close()
            raise
        self.import_problems = list(ready.get("imports", []))
        if "failed" in ready:
            kind, message = (str(v)[:1000] for v in ready["failed"])
            self.close()
            raise StudentError(kind, message)
        self.ready = ready
        return ready

    def _confinement(self, message: dict, arch: str | None) -> None:
        """Read the child's first message (sent before any student code ran) and refuse to go on
        without Landlock and seccomp unless the limits allow it."""
        report = message.get("confinement")
        if not isinstance(report, dict):
            raise self._fail("did not report its confinement")
        landlock = report.get("landlock")
        self.confinement = {"landlock": int(landlock) if type(landlock) is int and landlock > 0 else 0,
                            "seccomp": arch if report.get("seccomp") is True else None,
                            "audit_hook": report.get("audit_hook") is True,
                            "problems": [str(p)[:300] for p in report.get("problems", [])][:4]}
        self.confined = bool(self.confinement["landlock"] and self.confinement["seccomp"])
        if not self.confined and not self.limits.allow_unconfined:
            self.close()
            raise ConfinementError(f"refusing to run a graded cell without kernel confinement: "
                                   f"{self.describe_confinement()} (Landlock needs Linux 5.13+, the seccomp "
                                   f"filter x86-64 or AArch64; Limits(allow_unconfined=True) grades anyway, "
                                   f"marked as unconfined)")

    def describe_confinement(self) -> str:
        """What confines the process, in words (for logs and verdicts)."""
        c = self.confinement
        parts = [f"Landlock ABI {c['landlock']}" if c.get("landlock") else "no Landlock",
                 f"seccomp ({c['seccomp']})" if c.get("seccomp") else "no seccomp",
                 "audit hook" if c.get("audit_hook") else "no audit hook", "resource limits"]
        problems = "; ".join(c.get("problems", []))
        return ", ".join(parts) + (f" [{problems}]" if problems else "")

    def __del__(self) -> None:
        self.close()

    def close(self) -> None:
        self._stop()
        if self._folder is not None:
            _remove(self._folder)
            self._folder = None

    def _stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            self.process.wait()
        for fd in ("_to_child", "_from_child"):
            value = getattr(self, fd, None)
            if value is not None:
                try:
                    os.close(value)
                except OSError:
                    pass
                setattr(self, fd, None)

    # the answer
    def answer(self) -> Any:
        """What the graded cell's answer is, as the grader may use it: a :class:`Remote` for a
        function, a tuple of them for a tuple of functions, or plain data (an exported object)."""
        kind = self.ready.get("ready")
        name = self.answer_source
        if kind == "callable":
            return Remote(self, (), name)
        if kind == "data":
            return plain.decode(self.ready.get("data"))
        if isinstance(kind, list) and len(kind) == 2 and kind[0] == "tuple" and type(kind[1]) is int \
                and 0 < kind[1] <= 16:
            return tuple(Remote(self, (i,), f"{name}[{i}]") for i in range(kind[1]))
        raise StudentError("TypeError", f"{name} is not a function (the graded cell must define it)")

    def call(self, path: tuple[int, ...], args: tuple) -> Any:
        if self.failure is not None:
            raise SandboxError(self.failure)
        self._send({"path": list(path), "args": plain.encode(tuple(args))})
        reply = self._receive(self.limits.call_seconds)
        if "ok" in reply:
            try:
                return plain.decode(reply["ok"])
            except plain.PlainDataError as err:
                raise StudentError("NotPlainData", str(err)) from None
        if "raised" in reply and isinstance(reply["raised"], list) and len(reply["raised"]) == 2:
            kind, message = (str(v)[:1000] for v in reply["raised"])
            raise StudentError(kind, message)
        raise self._fail("sent something that is not an answer")

    # the wire
    def _fail(self, why: str) -> SandboxError:
        code = self.process.poll() if self.process is not None else None
        self._stop()
        if code is not None and code < 0:
            name = signal.Signals(-code).name
            why = {"SIGXCPU": f"used more than its {self.limits.cpu_seconds} s of CPU time",
                   "SIGKILL": "was killed (out of time or memory)",
                   "SIGSEGV": "crashed (segmentation fault; perhaps out of memory)"}.get(name, f"died of {name}")
        self.failure = f"the graded cell's process {why}"
        tail = self._log_tail()
        if tail:
            self.failure += f"; its last output: {tail}"
        return SandboxError(self.failure)

    def _log_tail(self, size: int = 600) -> str:
        try:
            with open(self._folder / "log.txt", "rb") as log:
                log.seek(0, os.SEEK_END)
                log.seek(max(0, log.tell() - size))
                return log.read().decode("utf-8", "replace").strip()
        except (OSError, TypeError):
            return ""

    def _send(self, message: dict) -> None:
        data = (json.dumps(message, separators=(",", ":"), allow_nan=False) + "\n").encode()
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._to_child, view):]
        except (BrokenPipeError, OSError, TypeError):
            raise self._fail("stopped reading its input") from None

    def _receive(self, seconds: float) -> dict:
        deadline = min(time.monotonic() + seconds, self._deadline)
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                if time.monotonic() >= self._deadline:
                    raise self._fail(f"ran past its {self.limits.total_seconds:g} s of wall-clock time in all")
                raise self._fail(f"did not answer within {seconds:g} s of wall-clock time")
            ready, _, _ = select.select([self._from_child], [], [], left)
            if not ready:
                continue
            chunk = os.read(self._from_child, 1 << 16)
            if not chunk:
                self.process.wait()
                raise self._fail("exited before answering")
            self._buffer.extend(chunk)
            if len(self._buffer) > _MAX_LINE:
                raise self._fail("sent an answer larger than 64 MiB")
        line, _, rest = bytes(self._buffer).partition(b"\n")
        self._buffer = bytearray(rest)
        try:
            message = json.loads(line)
        except (ValueError, UnicodeDecodeError):
            raise self._fail("sent something that is not JSON") from None
        if not isinstance(message, dict):
            raise self._fail("sent something that is not an answer")
        return message
