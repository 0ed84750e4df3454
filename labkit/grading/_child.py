"""The sandboxed side of grading: runs one graded cell and answers calls on its function.

Started by :mod:`labkit.grading.sandbox` as ``python -I -S _child.py FD_IN FD_OUT`` in an empty
working folder, with resource limits already set. It reads the job (one JSON line) from FD_IN,
puts the grader's read-only copy of labkit first on ``sys.path``, confines itself with Landlock
(the kernel's unprivileged sandbox: read only Python, the system libraries and labkit's copy, write
only its folder, no TCP, no signals outside) where the kernel has it, installs the grader's seccomp
filter (no new processes, no ptrace), tells the grader which confinement is active before any
student code runs, installs an audit hook
(PEP 578) that refuses the same in Python with a clear message (and processes, sockets, loading
foreign C libraries), runs the import statements the cell needs and the cell, and then
answers requests ``{"path": [...], "args": plain data}`` with ``{"ok": plain data}`` or
``{"raised": [type name, message]}``, one JSON line each, until FD_IN closes.

Everything here runs in the student's process: nothing it sends is trusted. The grader decodes
only plain data from it and compares in its own process (labkit.plain).
"""
import json
import os
import sys

_MAX_LINE = 64 << 20


def _reader(fd):
    buffer = bytearray()

    def readline():
        while b"\n" not in buffer:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                return None
            buffer.extend(chunk)
            if len(buffer) > _MAX_LINE:
                raise ValueError("request too long")
        line, _, rest = bytes(buffer).partition(b"\n")
        buffer[:] = rest
        return line

    return readline


def _writer(fd):
    def write(message):
        data = (json.dumps(message, separators=(",", ":"), allow_nan=False) + "\n").encode()
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]

    return write


class Guard:
    """The audit hook: a clear PermissionError for every event a graded function must not cause."""

    BLOCKED = ("os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty", "os.kill",
               "os.killpg", "subprocess.Popen", "signal.pthread_kill", "socket.", "os.symlink", "os.link",
               "sys.remote_exec", "winreg.")
    WRITES = ("os.remove", "os.rmdir", "os.mkdir", "os.chmod", "os.chown", "os.truncate", "os.utime",
              "os.rename", "shutil.copyfile", "shutil.copymode", "shutil.copystat", "shutil.copytree",
              "shutil.rmtree", "shutil.move", "shutil.make_archive", "shutil.unpack_archive")

    def __init__(self, read: list, listable: list, write: str, libraries: list) -> None:
        self.read = [os.path.realpath(p) for p in read]
        self.listable = [os.path.realpath(p) for p in listable]
        self.write = os.path.realpath(write)
        self.libraries = [os.path.realpath(p) for p in libraries]
        self.busy = False

    @staticmethod
    def _under(path, roots) -> bool:
        return any(path == root or path.startswith(root.rstrip(os.sep) + os.sep) for root in roots)

    def _path(self, value):
        if isinstance(value, int):
            return None  # an open file descriptor: opening it was checked
        if isinstance(value, bytes):
            value = os.fsdecode(value)
        return os.path.realpath(os.fspath(value))

    def _refuse(self, what):
        raise PermissionError(f"sandbox: {what} is not allowed while grading (a graded cell may read only "
                              "Python, numpy/torch and labkit, and write only in its own folder)")

    def __call__(self, event, args):
        if self.busy:
            return
        self.busy = True
        try:
            self._check(event, args)
        finally:
            self.busy = False

    def _check(self, event, args):
        if event.startswith(self.BLOCKED):
            self._refuse(event)
        if event == "ctypes.dlopen":
            name = args[0]
            path = self._path(name) if name and os.path.isabs(os.fsdecode(name)) else None
            if path is None or not self._under(path, self.libraries):
                self._refuse(f"loading the C library {name!r}")
        elif event == "open":
            path, mode, flags = args
            path = self._path(path) if path is not None else None
            if path is None:
                return
            writing = any(c in str(mode or "") for c in "wax+") or (
                isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC))
            if writing and not self._under(path, [self.write]):
                self._refuse(f"writing {path}")
            if not self._under(path, self.read + [self.write]):
                self._refuse(f"reading {path}")
        elif event in ("os.listdir", "os.scandir"):
            path = self._path(args[0] if args[0] is not None else ".")
            if path is not None and not self._under(path, self.read + [self.write]) and path not in self.listable:
                self._refuse(f"listing {path}")
        elif event in self.WRITES:
            for value in args[:2]:
                if isinstance(value, (str, bytes, os.PathLike)):
                    path = self._path(value)
                    if not self._under(path, [self.write]):
                        self._refuse(f"{event} on {path}")


def landlock(read: list, listable: list, write: str) -> bool:
    """Confine this process with Landlock (Linux 5.13+, unprivileged): read and execute only under
    ``read``, list (not read) the folders ``listable``, write only under ``write``, no TCP, no
    signals or abstract sockets outside the sandbox. Returns the Landlock ABI version enforced, or
    False where the kernel has no Landlock. The three system calls are numbered 444-446 on every
    architecture (they came after the tables were unified), so this runs on x86-64 and AArch64 alike."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    abi = libc.syscall(444, None, ctypes.c_size_t(0), ctypes.c_uint32(1))  # LANDLOCK_CREATE_RULESET_VERSION
    if abi < 1:
        return False
    read_rights = (1 << 0) | (1 << 2) | (1 << 3)  # execute, read file, read dir
    all_rights = (1 << 13) - 1
    if abi >= 2:
        all_rights |= 1 << 13  # refer
    if abi >= 3:
        all_rights |= 1 << 14  # truncate
    if abi >= 5:
        all_rights |= 1 << 15  # ioctl on devices

    class Ruleset(ctypes.Structure):
        _fields_ = [("fs", ctypes.c_uint64), ("net", ctypes.c_uint64), ("scoped", ctypes.c_uint64)]

    class PathBeneath(ctypes.Structure):
        _pack_ = 1
        _fields_ = [("allowed", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]

    attr = Ruleset(all_rights, 3 if abi >= 4 else 0, 3 if abi >= 6 else 0)
    size = 24 if abi >= 6 else (16 if abi >= 4 else 8)
    ruleset = libc.syscall(444, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    if ruleset < 0:
        return False
    try:
        for roots, rights in ((read, read_rights), (listable, 1 << 3), ([write], all_rights)):
            for root in roots:
                try:
                    fd = os.open(root, os.O_PATH | os.O_CLOEXEC)
                except OSError:
                    continue
                try:
                    rule = PathBeneath(rights if os.path.isdir(root) else rights & ((1 << 0) | (1 << 2) | (1 << 1)
                                                                                   | ((1 << 14) if abi >= 3 else 0)),
                                       fd)
                    if libc.syscall(445, ctypes.c_int(ruleset), ctypes.c_int(1), ctypes.byref(rule),
                                    ctypes.c_uint32(0)) < 0:
                        raise OSError(ctypes.get_errno(), f"landlock_add_rule {root}")
                finally:
                    os.close(fd)
        if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
        if libc.syscall(446, ctypes.c_int(ruleset), ctypes.c_uint32(0)) < 0:
            raise OSError(ctypes.get_errno(), "landlock_restrict_self")
    finally:
        os.close(ruleset)
    return int(abi)


def install_seccomp(program) -> bool:
    """Install the grader's seccomp filter (labkit.grading.seccomp: built for this machine's
    architecture, it kills any other; new processes and ptrace fail with EPERM). ``program`` is a
    list of ``(code, jt, jf, k)``; False when there is none or the kernel refuses it."""
    import ctypes

    if not program or not sys.platform.startswith("linux"):
        return False

    class Filter(ctypes.Structure):
        _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]

    class Program(ctypes.Structure):
        _fields_ = [("len", ctypes.c_uint16), ("filter", ctypes.POINTER(Filter))]

    filters = (Filter * len(program))(*[Filter(*[int(v) for v in step]) for step in program])
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
        return False
    return libc.prctl(22, 2, ctypes.byref(Program(len(program), filters)), 0, 0) == 0  # PR_SET_SECCOMP, filter


def _describe(value, plain):
    """What the grader may do with the answer: call it, call its parts, or read it as data."""
    if callable(value):
        return "callable"
    if type(value) is tuple and value and all(callable(v) for v in value):
        return ["tuple", len(value)]
    return None


def main() -> int:
    fd_in, fd_out = int(sys.argv[1]), int(sys.argv[2])
    readline, write = _reader(fd_in), _writer(fd_out)
    job = json.loads(readline())
    sys.path[:] = list(job["path"])
    sys.dont_write_bytecode = True
    os.chdir(job["workdir"])
    from labkit import plain  # the grader's read-only copy

    for module in job.get("preload", []):
        __import__(module)
    confinement = {"landlock": False, "seccomp": False, "audit_hook": True, "problems": []}
    try:
        confinement["landlock"] = landlock(job["read"] + job["system"], job["list"], job["workdir"])
    except OSError as err:  # the kernel refused (an old one, a container's seccomp)
        confinement["problems"].append(f"Landlock: {err}")
    try:
        confinement["seccomp"] = install_seccomp(job.get("seccomp"))
    except OSError as err:
        confinement["problems"].append(f"seccomp: {err}")
    sys.addaudithook(Guard(job["read"], job["list"], job["workdir"], job["libraries"]))
    write({"confinement": confinement})  # before any student code runs: the cell cannot change it
    namespace = {"__name__": "__graded__", "__builtins__": __builtins__}
    failed_imports = []
    for statement in job["imports"]:
        try:
            exec(compile(statement, "<notebook imports>", "exec"), namespace)
        except BaseException as err:  # a module the grader leaves out, or a broken import: report, go on
            failed_imports.append(f"{statement.strip()}: {type(err).__name__}: {err}")
    try:
        exec(compile(job["cell"], "<graded cell>", "exec"), namespace)
        answer = eval(compile(job["answer"], "<answer>", "eval"), namespace)
        if job.get("export"):
            module, _, name = job["export"].partition(":")
            data = plain.encode(getattr(__import__(module, fromlist=[name]), name)(answer))
            write({"ready": "data", "data": data, "imports": failed_imports})
        else:
            write({"ready": _describe(answer, plain), "imports": failed_imports})
    except BaseException as err:
        write({"failed": [type(err).__name__, str(err)[:1000]], "imports": failed_imports})
        return 0
    while True:
        line = readline()
        if line is None:
            return 0
        request = json.loads(line)
        try:
            target = answer
            for index in request["path"]:
                target = target[index]
            args = plain.decode(request["args"], calls=True)
            result = plain.encode(target(*args))
        except plain.PlainDataError as err:
            write({"raised": ["NotPlainData", str(err)[:1000]]})
            continue
        except BaseException as err:  # the student's function raised: that is its answer
            write({"raised": [type(err).__name__, str(err)[:1000]]})
            continue
        write({"ok": result})


if __name__ == "__main__":
    sys.exit(main())
