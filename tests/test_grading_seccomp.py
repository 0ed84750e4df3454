"""The grading sandbox's seccomp filter on x86-64 and AArch64, and what happens without confinement.

Only x86-64 runs here, so the filters are run by a small classic-BPF interpreter (the subset
seccomp programs use: load a word of ``struct seccomp_data``, jump on equal / greater-or-equal /
bits set, return) for both architectures: allowed system calls pass, forbidden ones fail with
EPERM, clone3 with ENOSYS, a process-creating clone with EPERM, and a foreign architecture (or the
x32 ABI) is killed. The syscall numbers are checked against the kernel headers where installed.
Then the real filter is installed in a child process on this machine and attacked: fork,
subprocess, a 32-bit ``int 0x80`` call and an x32 call. Finally the sandbox without kernel
confinement: it refuses, or with ``allow_unconfined`` grades and says so in the verdict.
"""
from __future__ import annotations

import os
import re
import signal
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from labkit.grading import Limits, Sandbox, SandboxError, grade_implement
from labkit.grading import seccomp
from labkit.grading.sandbox import ConfinementError
from student_work import GF_MULTIPLY

ROOT = Path(__file__).resolve().parent.parent
BPF_MAXINSNS = 4096
I386, ARM = 0x40000003, 0x40000028  # AUDIT_ARCH_I386, AUDIT_ARCH_ARM (32-bit ABIs of the same CPUs)


def run_bpf(program, nr: int, arch: int, args=(0,) * 6, ip: int = 0) -> int:
    """Classic BPF as the kernel runs a seccomp filter: the accumulator, absolute word loads from
    ``struct seccomp_data`` (little-endian: nr, arch, instruction_pointer, args[6]), forward jumps."""
    data = struct.pack("<IIQ6Q", nr & 0xFFFFFFFF, arch, ip, *[a & 0xFFFFFFFFFFFFFFFF for a in args])
    acc, pc, steps = 0, 0, 0
    while True:
        assert 0 <= pc < len(program), "the program runs off its end"
        code, jt, jf, k = program[pc]
        steps += 1
        assert steps <= len(program)
        if code == seccomp.LD_W_ABS:
            assert k % 4 == 0 and k + 4 <= len(data), f"load outside seccomp_data at {k}"
            acc = struct.unpack_from("<I", data, k)[0]
            pc += 1
        elif code in (seccomp.JEQ_K, seccomp.JGE_K, seccomp.JSET_K):
            taken = {seccomp.JEQ_K: acc == k, seccomp.JGE_K: acc >= k, seccomp.JSET_K: bool(acc & k)}[code]
            pc += 1 + (jt if taken else jf)
        elif code == seccomp.RET_K:
            return k
        else:
            raise AssertionError(f"opcode {code:#x} is not one this interpreter (or the filter) uses")


# syscalls a graded cell needs, per architecture: read, write, openat, mmap, futex, exit_group, getpid
ALLOWED = {"x86_64": {"read": 0, "write": 1, "openat": 257, "mmap": 9, "futex": 202, "exit_group": 231,
                      "getpid": 39},
           "aarch64": {"read": 63, "write": 64, "openat": 56, "mmap": 222, "futex": 98, "exit_group": 94,
                       "getpid": 172}}
CLONE_THREAD_FLAGS = 0x3D0F00  # what glibc's pthread_create passes (CLONE_VM|FS|FILES|SIGHAND|THREAD|...)
FORK_FLAGS = 0x01200011  # what glibc's fork passes to clone (CLONE_CHILD_SETTID|CLEARTID|SIGCHLD)


@pytest.mark.parametrize("arch", seccomp.ARCHES)
def test_the_filter_of_each_architecture_in_a_bpf_interpreter(arch):
    program = seccomp.filter_program(arch)
    assert len(program) <= BPF_MAXINSNS and program[-1][0] == seccomp.RET_K
    token = seccomp.AUDIT_ARCH[arch]
    for name, number in ALLOWED[arch].items():
        assert run_bpf(program, number, token) == seccomp.RET_ALLOW, name
    for name, number in seccomp.DENIED[arch].items():
        assert run_bpf(program, number, token) == seccomp.RET_EPERM, name
    clone = seccomp.CLONE[arch]
    assert run_bpf(program, clone, token, (CLONE_THREAD_FLAGS, 0, 0, 0, 0, 0)) == seccomp.RET_ALLOW
    assert run_bpf(program, clone, token, (FORK_FLAGS, 0, 0, 0, 0, 0)) == seccomp.RET_EPERM
    assert run_bpf(program, clone, token, (CLONE_THREAD_FLAGS << 32, 0, 0, 0, 0, 0)) == seccomp.RET_EPERM  # high word
    assert run_bpf(program, seccomp.CLONE3[arch], token) == seccomp.RET_ENOSYS
    others = [seccomp.AUDIT_ARCH[a] for a in seccomp.ARCHES if a != arch] + [I386, ARM, 0, 0xFFFFFFFF]
    for foreign in others:  # the same numbers under another ABI mean other calls: killed
        for number in [*ALLOWED[arch].values(), *seccomp.DENIED[arch].values(), clone]:
            assert run_bpf(program, number, foreign) == seccomp.RET_KILL_PROCESS, (hex(foreign), number)
    if arch == "x86_64":  # the x32 ABI shares AUDIT_ARCH_X86_64: its numbers carry bit 30
        for number in (39, 57, 59, 56, 520, 545):
            assert run_bpf(program, number | seccomp.X32_SYSCALL_BIT, token) == seccomp.RET_KILL_PROCESS


def test_the_filter_refuses_an_architecture_it_does_not_know():
    with pytest.raises(ValueError, match="architecture"):
        seccomp.filter_program("riscv64")


HEADERS = {"x86_64": Path("/usr/include/x86_64-linux-gnu/asm/unistd_64.h"),
           "aarch64": Path("/usr/include/asm-generic/unistd.h")}


@pytest.mark.parametrize("arch", seccomp.ARCHES)
def test_syscall_numbers_agree_with_the_kernel_headers(arch):
    if not HEADERS[arch].exists():
        pytest.skip(f"{HEADERS[arch]} is not installed (linux-libc-dev)")
    defined = {m[0]: int(m[1]) for m in re.findall(r"#define __NR(?:3264)?_(\w+)\s+(\d+)\b", HEADERS[arch].read_text())}
    wanted = {**seccomp.DENIED[arch], **ALLOWED[arch], "clone": seccomp.CLONE[arch], "clone3": seccomp.CLONE3[arch]}
    if arch == "aarch64":  # the generic table names mmap __NR3264_mmap; no fork or vfork exist
        assert "fork" not in defined and "vfork" not in defined
    assert {name: defined.get(name) for name in wanted} == wanted


# -- the real filter on this machine ---------------------------------------------------------------
ATTACK = r"""
import ctypes, mmap, os, subprocess, sys, threading
sys.path.insert(0, {root!r})
from labkit.grading import _child, seccomp
what = sys.argv[1]

def machine_code(code):
    page = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    page.write(code)
    address = ctypes.addressof(ctypes.c_char.from_buffer(page))
    return page, ctypes.CFUNCTYPE(ctypes.c_long)(address)

if sys.argv[2] == "filtered":
    assert _child.install_seccomp(seccomp.filter_program(seccomp.native_arch()))
if what == "fork":
    try:
        os.fork()
    except PermissionError:
        print("EPERM")
elif what == "subprocess":
    try:
        subprocess.run(["/bin/true"])
    except PermissionError:
        print("EPERM")
elif what == "thread":
    box = []
    thread = threading.Thread(target=lambda: box.append(os.getpid()))
    thread.start(); thread.join()
    print("thread ran" if box == [os.getpid()] else "no thread")
elif what == "int80":  # mov eax, 20 (getpid on i386); int 0x80; ret
    page, f = machine_code(bytes.fromhex("b814000000cd80c3"))
    print("int80 getpid", f() == os.getpid())
elif what == "x32":  # mov eax, 0x40000027 (getpid, x32); syscall; ret
    page, f = machine_code(bytes.fromhex("b8270000400f05c3"))
    print("x32 returned", f())
"""


def _attack(what: str, mode: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", ATTACK.format(root=str(ROOT)), what, mode], capture_output=True,
                          text=True, timeout=120, env={"PATH": "/usr/bin:/bin"})


needs_filter = pytest.mark.skipif(seccomp.native_arch() is None, reason="no seccomp filter for this machine")


@needs_filter
def test_the_real_filter_stops_new_processes_and_lets_threads_run():
    assert _attack("fork", "filtered").stdout.strip() == "EPERM"
    assert _attack("subprocess", "filtered").stdout.strip() == "EPERM"
    assert _attack("thread", "filtered").stdout.strip() == "thread ran"


@pytest.mark.skipif(seccomp.native_arch() != "x86_64", reason="x86-64 machine code")
def test_the_real_filter_kills_a_32_bit_or_x32_system_call():
    control = _attack("int80", "open")
    if control.stdout.strip() != "int80 getpid True":
        pytest.skip(f"this kernel has no 32-bit emulation ({control.returncode})")
    killed = _attack("int80", "filtered")
    assert killed.returncode == -signal.SIGSYS, (killed.returncode, killed.stdout, killed.stderr[-300:])
    killed = _attack("x32", "filtered")
    assert killed.returncode == -signal.SIGSYS, (killed.returncode, killed.stdout, killed.stderr[-300:])


# -- without kernel confinement ----------------------------------------------------------------------
FAST = Limits(cpu_seconds=10, call_seconds=10, start_seconds=60)


def test_the_sandbox_says_what_confines_it():
    with Sandbox(GF_MULTIPLY, "gf_multiply", limits=FAST, keep=()) as box:
        described = box.describe_confinement()
        assert box.confinement["audit_hook"] and "resource limits" in described
        if os.uname().sysname == "Linux" and seccomp.native_arch() is not None:
            assert box.confinement["seccomp"] == seccomp.native_arch() and "seccomp" in described
    verdict = grade_implement("03.1", GF_MULTIPLY, "gf_multiply", limits=FAST)
    assert verdict.correct and verdict.confinement == described, verdict


def test_without_seccomp_the_sandbox_refuses_or_marks_the_grade(monkeypatch):
    """An architecture with no filter (here pretended): no silent grading without confinement."""
    monkeypatch.setattr(seccomp, "native_arch", lambda: None)
    liar = ("import os, sys\nos.write(int(sys.argv[2]), b'{\"confinement\": {\"landlock\": 7, \"seccomp\": true, \"audit_hook\": true}}\\n')\n"
            + GF_MULTIPLY)  # a cell that claims confinement: too late, the report came first
    for cell in (GF_MULTIPLY, liar):
        with pytest.raises(ConfinementError, match="no seccomp"):
            Sandbox(cell, "gf_multiply", limits=FAST, keep=()).start()
        with pytest.raises(ConfinementError):
            grade_implement("03.1", cell, "gf_multiply", limits=FAST)
    marked = Limits(cpu_seconds=10, call_seconds=10, start_seconds=60, allow_unconfined=True)
    verdict = grade_implement("03.1", GF_MULTIPLY, "gf_multiply", limits=marked)
    assert verdict.correct and "WITHOUT kernel confinement" in verdict.message, verdict
    assert "no seccomp" in verdict.confinement


@pytest.mark.parametrize("report, missing", [
    ({"landlock": False, "seccomp": True, "audit_hook": True, "problems": ["Landlock: landlock_restrict_self"]},
     "no Landlock"),
    ({"landlock": 7, "seccomp": False, "audit_hook": True, "problems": []}, "no seccomp"),
    ({"landlock": True, "seccomp": "yes", "audit_hook": True}, "no Landlock"),  # only an ABI number counts
    ("confined", "did not report"),
])
def test_the_confinement_report_decides_before_the_cell_runs(report, missing):
    """The grader's reading of the child's first message (sent before any student code): anything
    short of a Landlock ABI and an installed filter refuses; a report that is not one kills the run."""
    box = Sandbox(GF_MULTIPLY, "gf_multiply", limits=FAST)
    box._folder = None
    with pytest.raises((ConfinementError, SandboxError), match=missing):
        box._confinement({"confinement": report}, "x86_64")
    lenient = Sandbox(GF_MULTIPLY, "gf_multiply", limits=Limits(allow_unconfined=True))
    lenient._folder = None
    if isinstance(report, dict):
        lenient._confinement({"confinement": report}, "x86_64")
        assert not lenient.confined and missing in lenient.describe_confinement()
