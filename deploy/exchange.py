"""nbgrader's file exchange laid out so that students cannot read or change each other's work.

Usage (as root, once per course, before the students can log in):

    python deploy/exchange.py setup --root /srv/nbgrader/exchange --course deep-neural-crypto-lab --instructor lecturer
    python deploy/exchange.py check --root /srv/nbgrader/exchange --course deep-neural-crypto-lab   # before `nbgrader collect`
    python deploy/exchange.py check --kubernetes ...   # under deploy/z2jh: uids from the username (student_uid)

Every student runs as an account of their own (a uid per student: PAM accounts on one machine,
``deploy/z2jh``'s per-student uids on Kubernetes). nbgrader's exchange then keeps submissions
apart with file permissions (nbgrader docs, "Exchange"; ``nbgrader.exchange.default``):

- the root is writable by everyone, as nbgrader checks, and sticky (``1777``, owned by root), so
  no one renames or removes an entry they do not own: the course folder is the instructor's;
- ``<course>/`` and ``<course>/outbound/`` (the release) are the instructor's, ``0755``: students
  read the release and cannot change it;
- ``<course>/inbound/`` is ``3733`` (write and enter, no listing; setgid as nbgrader makes it,
  sticky added): a student creates a submission folder there, named
  ``<student>+<assignment>+<time>+<72 random bits>``, cannot list the others' names, and cannot
  rename or delete another's folder even when told its name;
- ``<course>/feedback/`` is ``0711``, as nbgrader makes it.

What permissions cannot stop, ``check`` finds: nbgrader takes the student id in a submission's
name from the submitter (``nbgrader submit --student=someone-else`` works), and nbgrader leaves each
submission folder world-writable for the instructor, so a student who learnt another's folder
name could add files to it. ``check`` lists every submission whose folder or files are not owned by
the account its name claims; ``nbgrader collect`` should wait until it reports none.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import pwd
import stat
import sys
from pathlib import Path

__all__ = ["student_uid", "ROOT_MODE", "COURSE_MODE", "INBOUND_MODE", "FEEDBACK_MODE", "ExchangeLayoutError", "setup",
           "check", "main"]

ROOT_MODE = 0o1777
COURSE_MODE = 0o755  # <course>/ and <course>/outbound/
INBOUND_MODE = 0o3733
FEEDBACK_MODE = 0o711


def student_uid(name: str) -> int:
    """A student's uid under deploy/z2jh: 200000 + the first 30 bits of SHA-256 of the username.

    The hub computes the same (``hub.extraConfig.labStudentUid``); two of 300 students share a uid
    with probability about 300**2 / 2**31 = 4e-5 (``check`` would then flag one of them).
    """
    return 200000 + (int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big") >> 2)


def _account_uid(name: str) -> int:
    return pwd.getpwnam(name).pw_uid


class ExchangeLayoutError(RuntimeError):
    """The exchange cannot be laid out safely (a course folder someone else already owns, ...)."""


def _ensure(path: Path, mode: int, uid: int, gid: int) -> None:
    """Make ``path`` a real folder (never a symlink) owned by ``uid:gid`` with exactly ``mode``."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode):
        raise ExchangeLayoutError(f"{path} exists and is not a folder (a symlink?): remove it first")
    if st.st_uid not in (uid, 0):  # made by someone else before the layout: a squatter
        raise ExchangeLayoutError(f"{path} belongs to uid {st.st_uid}, not to the instructor: remove it first")
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        os.fchown(fd, uid, gid)
        os.fchmod(fd, mode)
    finally:
        os.close(fd)


def setup(root: Path, course: str, instructor: str) -> None:
    """Lay out the exchange for ``course`` (run as root before students can reach it)."""
    if not course or "/" in course or course in (".", ".."):
        raise ValueError(f"a course id is one path component, got {course!r}")
    account = pwd.getpwnam(instructor)
    root.parent.mkdir(parents=True, exist_ok=True)
    _ensure(root, ROOT_MODE, 0, 0)
    folder = root / course
    _ensure(folder, COURSE_MODE, account.pw_uid, account.pw_gid)
    _ensure(folder / "outbound", COURSE_MODE, account.pw_uid, account.pw_gid)
    _ensure(folder / "inbound", INBOUND_MODE, account.pw_uid, account.pw_gid)
    _ensure(folder / "feedback", FEEDBACK_MODE, account.pw_uid, account.pw_gid)


def check(root: Path, course: str, uid_of=_account_uid) -> list[str]:
    """Submissions that are not what they claim: ``[]`` when every one is owned by the account it names.

    A submission folder ``<student>+<assignment>+...`` must belong to ``uid_of(<student>)`` (the
    account of that name; under Kubernetes :func:`student_uid`), and so must everything in it
    (nothing is followed).
    """
    problems = []
    inbound = root / course / "inbound"
    for entry in sorted(os.scandir(inbound), key=lambda e: e.name):
        student = entry.name.split("+", 1)[0]
        try:
            uid = uid_of(student)
        except KeyError:
            problems.append(f"{entry.name}: no account named {student!r}")
            continue
        owner = entry.stat(follow_symlinks=False).st_uid
        if owner != uid or not entry.is_dir(follow_symlinks=False):
            problems.append(f"{entry.name}: submitted by uid {owner}, not by {student} (uid {uid})")
            continue
        for folder, dirs, files in os.walk(entry.path):
            for name in dirs + files:
                path = os.path.join(folder, name)
                if os.lstat(path).st_uid != uid:
                    problems.append(f"{entry.name}: {os.path.relpath(path, entry.path)} was written by uid "
                                    f"{os.lstat(path).st_uid}, not by {student}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["setup", "check"])
    parser.add_argument("--root", default="/srv/nbgrader/exchange")
    parser.add_argument("--course", default="deep-neural-crypto-lab")
    parser.add_argument("--instructor", help="the instructor's account (setup)")
    parser.add_argument("--kubernetes", action="store_true", help="check: uids from student_uid (deploy/z2jh)")
    args = parser.parse_args(argv)
    root = Path(args.root)
    if args.action == "setup":
        if not args.instructor:
            parser.error("setup needs --instructor")
        try:
            setup(root, args.course, args.instructor)
        except (ExchangeLayoutError, KeyError, ValueError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
        print(f"{root / args.course}: laid out for {args.instructor}")
        return 0
    problems = check(root, args.course, student_uid if args.kubernetes else _account_uid)
    for line in problems:
        print(line)
    print(f"{len(problems)} suspicious submission(s)" if problems else "every submission is its student's own")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
