"""The seccomp filter of the grading sandbox, as a classic-BPF program, for x86-64 and AArch64.

A graded cell must not start processes or read other processes' memory. Resource limits cannot
say this for root (RLIMIT_NPROC does not count for it), so the sandboxed process installs a
seccomp filter (Linux ``seccomp(2)``, ``SECCOMP_MODE_FILTER``) built here, in the grader:

- the filter first checks ``seccomp_data.arch`` (offset 4) against the one architecture it was
  built for (``AUDIT_ARCH_X86_64`` or ``AUDIT_ARCH_AARCH64``, linux/audit.h) and kills the process
  on any other (a 32-bit ``int 0x80`` call on x86-64 arrives as ``AUDIT_ARCH_I386``: its numbers
  mean other system calls, so a filter that ignored the arch could be walked around);
- on x86-64, numbers with the x32 bit (``0x40000000``) are killed for the same reason;
- fork, vfork, execve, execveat, ptrace, process_vm_readv/writev fail with EPERM (AArch64 has no
  fork or vfork: the generic table creates processes through clone only);
- clone3 fails with ENOSYS, so the C library falls back to clone, whose flags (argument 0, offset
  16, low word on these little-endian ABIs) a filter can read: with CLONE_THREAD it is a thread and
  allowed, without it a new process and EPERM;
- everything else is allowed (Landlock and the audit hook confine files, sockets and signals).

Syscall numbers: arch/x86/entry/syscalls/syscall_64.tbl and include/uapi/asm-generic/unistd.h.
"""
from __future__ import annotations

import platform
import sys

__all__ = ["ARCHES", "AUDIT_ARCH", "DENIED", "RET_ALLOW", "RET_KILL_PROCESS", "RET_EPERM", "RET_ENOSYS",
           "X32_SYSCALL_BIT", "native_arch", "filter_program"]

# classic BPF opcodes (linux/filter.h) and seccomp return values (linux/seccomp.h)
LD_W_ABS = 0x20  # BPF_LD | BPF_W | BPF_ABS
JEQ_K = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
JGE_K = 0x35  # BPF_JMP | BPF_JGE | BPF_K
JSET_K = 0x45  # BPF_JMP | BPF_JSET | BPF_K
RET_K = 0x06  # BPF_RET | BPF_K
RET_KILL_PROCESS = 0x80000000
RET_ALLOW = 0x7FFF0000
RET_ERRNO = 0x00050000
RET_EPERM = RET_ERRNO | 1
RET_ENOSYS = RET_ERRNO | 38
CLONE_THREAD = 0x00010000
X32_SYSCALL_BIT = 0x40000000

# offsets in struct seccomp_data
OFFSET_NR, OFFSET_ARCH, OFFSET_ARG0_LOW = 0, 4, 16

#: audit architecture tokens (linux/audit.h): EM_* | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE
AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
ARCHES = tuple(AUDIT_ARCH)

#: per architecture: the system calls that fail with EPERM, and the numbers of clone and clone3
DENIED = {
    "x86_64": {"fork": 57, "vfork": 58, "execve": 59, "execveat": 322, "ptrace": 101,
               "process_vm_readv": 310, "process_vm_writev": 311},
    "aarch64": {"execve": 221, "execveat": 281, "ptrace": 117, "process_vm_readv": 270, "process_vm_writev": 271},
}
CLONE = {"x86_64": 56, "aarch64": 220}
CLONE3 = {"x86_64": 435, "aarch64": 435}


def native_arch() -> str | None:
    """This machine's architecture as a key of :data:`AUDIT_ARCH`, or None (not Linux, or an
    architecture the filter is not written for: the sandbox then reports no seccomp)."""
    if not sys.platform.startswith("linux"):
        return None
    machine = platform.machine().lower()
    machine = {"amd64": "x86_64", "arm64": "aarch64"}.get(machine, machine)
    return machine if machine in AUDIT_ARCH else None


def filter_program(arch: str) -> list[tuple[int, int, int, int]]:
    """The filter for ``arch`` as ``(code, jt, jf, k)`` instructions (struct sock_filter); jumps
    count instructions after the next one, as in classic BPF."""
    if arch not in AUDIT_ARCH:
        raise ValueError(f"no seccomp filter for the architecture {arch!r} (known: {', '.join(ARCHES)})")
    program: list[tuple[int, int, int, int]] = []
    labels: dict[str, int] = {}
    fixups: list[tuple[int, str | None, str | None]] = []

    def emit(code, k, jt=None, jf=None):  # jt/jf: label names, resolved once every label is placed
        fixups.append((len(program), jt, jf))
        program.append((code, 0, 0, k))

    emit(LD_W_ABS, OFFSET_ARCH)
    emit(JEQ_K, AUDIT_ARCH[arch], jf="kill")
    emit(LD_W_ABS, OFFSET_NR)
    if arch == "x86_64":
        emit(JGE_K, X32_SYSCALL_BIT, jt="kill")
    for number in DENIED[arch].values():
        emit(JEQ_K, number, jt="eperm")
    emit(JEQ_K, CLONE3[arch], jt="enosys")
    emit(JEQ_K, CLONE[arch], jf="allow")
    emit(LD_W_ABS, OFFSET_ARG0_LOW)
    emit(JSET_K, CLONE_THREAD, jt="allow", jf="eperm")
    for label, value in (("allow", RET_ALLOW), ("eperm", RET_EPERM), ("enosys", RET_ENOSYS),
                         ("kill", RET_KILL_PROCESS)):
        labels[label] = len(program)
        program.append((RET_K, 0, 0, value))
    for index, jt, jf in fixups:
        code, _, _, k = program[index]
        offsets = [labels[name] - index - 1 if name else 0 for name in (jt, jf)]
        if not all(0 <= offset <= 255 for offset in offsets):
            raise AssertionError("a BPF jump is out of range")
        program[index] = (code, offsets[0], offsets[1], k)
    return program
