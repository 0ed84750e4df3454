"""What the grading sandbox holds for each implement exercise: only what its graded cell needs.

Hiding the reference by name is not enough: a re-export, a function that calls it, a table that
encodes it, or the module a chapter builds on (``labkit.aes`` holds the real ``mix_columns`` while
the student writes ``mix_single_column``) give the answer as well. So the sandbox's copy of labkit
is built from a white list, per exercise:

- :data:`BASE`, modules that compute no exercise's answer (bit conversions, input checks, the
  plain-data wire format), and the exercise's :attr:`Scope.modules`, the chapter modules its
  graded cell legitimately uses (those the instructor solution imports), with everything they
  import at module level (:func:`module_closure`); no other labkit module is in the copy;
- from those modules the exercise's reference (``FunctionSpec.hide``) and :attr:`Scope.cut`,
  the equivalents found in them (aliases, wrappers, tables), are cut out by AST;
- the cryptographic libraries (:data:`CRYPTO_LIBRARIES`: pycryptodome, pyca/cryptography,
  cryptotensors) are not readable unless :attr:`Scope.crypto` says the exercise builds on them
  (verifying an Ed25519 signature, unwrapping with AES-GCM, a container of chapter 09): a
  standard primitive the student implements (CBC, GHASH, HKDF) is not importable ready-made.

``tests/test_grading_scope.py`` attacks every exercise from inside the real sandbox (every name in
every module of the copy called on the checker's inputs, tables indexed, the known adapters, the
real labkit by path and by source, the cryptographic libraries) and proves that nothing passes the
checker, and ``tests/test_grading_solutions.py`` that the instructor solutions still pass.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Scope", "SCOPES", "BASE", "CRYPTO_LIBRARIES", "scope_of", "module_closure"]

#: labkit modules every graded cell gets: representations, input checks, the wire format.
BASE = ("labkit.bits", "labkit.checks", "labkit.plain")
#: Third-party libraries with ready-made standard primitives (top-level names in site-packages).
CRYPTO_LIBRARIES = ("Crypto", "Cryptodome", "cryptography", "cryptotensors", "nacl")


@dataclass(frozen=True)
class Scope:
    """The chapter modules a graded cell may import (``"labkit.des"``), the names cut from them
    besides the reference (``"labkit.module:name"``), and whether the cryptographic libraries
    are readable."""

    modules: tuple[str, ...] = ()
    cut: tuple[str, ...] = ()
    crypto: bool = False


_FEISTEL = ("labkit.feistel:run_rounds", "labkit.feistel:apply_rounds")
_DES_F = ("labkit.des:feistel_round", "labkit.des:_f_traced", "labkit.des:_sp_tables", "labkit.des:_SP_CACHE")
_DES_SCHEDULE = ("labkit.des:_subkey_selectors", "labkit.des:_subkey_byte_tables", "labkit.des:_SUBKEY_TABLES")

#: Per implement (and design) exercise: what its sandbox holds beyond :data:`BASE`.
SCOPES: dict[str, Scope] = {
    # labkit.feistel rebuilds the round function the checker hands over (plain data's "$call")
    "01.1": Scope(("labkit.feistel",), _FEISTEL),
    "01.2": Scope(("labkit.feistel",), _FEISTEL),
    "02.1": Scope(("labkit.des",), _DES_SCHEDULE),
    "02.2": Scope(("labkit.des",), _DES_F),
    "02.4": Scope(),
    "02.8": Scope(("labkit.des", "labkit.des_security"), ("labkit.des_security:MeetInTheMiddle",), crypto=True),
    "03.1": Scope(("labkit.gf256",), ("labkit.gf256:_mul_slow", "labkit.gf256:_build_log_tables", "labkit.gf256:EXP",
                                      "labkit.gf256:LOG", "labkit.gf256:pow", "labkit.gf256:inverse")),
    "03.2": Scope(("labkit.gf256",)),
    "03.3": Scope(("labkit.gf256",)),
    "03.4": Scope(("labkit.aes",), ("labkit.aes:_expand_words", "labkit.aes:round_keys_array",
                                    "labkit.aes:invert_key_schedule")),
    "03.7": Scope(),
    "03.8": Scope(("labkit.spn",), ("labkit.spn:differential_counts", "labkit.spn:partial_decrypt")),
    "04.2": Scope(("labkit.aes",)),
    "04.4": Scope(("labkit.gf128",)),
    "04.5": Scope(("labkit.gf128", "labkit.gcm"), ("labkit.gcm:_ghash_polynomial", "labkit.gcm:recover_auth_key")),
    "04.11": Scope(),
    "05.2": Scope(),
    "05.4": Scope(("labkit.circuits",)),
    "05.5": Scope(),
    "06.3": Scope(),
    "06.6": Scope(),
    "07.1": Scope(),
    "07.2": Scope(),
    "08.3": Scope(),
    "08.4": Scope(("labkit.backdoor.trigger",), ("labkit.backdoor.trigger:parse_trigger",
                                                 "labkit.backdoor.trigger:read_fields"), crypto=True),
    "09.1": Scope(),
    "09.2": Scope(),
    "09.3": Scope(("labkit.weights",), crypto=True),
    "10.2": Scope(),
    "10.5": Scope(("labkit.weights",), crypto=True),  # a design: chapter 09's container is the material
}


def scope_of(exercise_id: str) -> Scope:
    """The exercise's :class:`Scope`; ``KeyError`` for an exercise without one (an implement
    exercise must have one: the test of this module says so)."""
    return SCOPES[exercise_id]


def _module_file(root: Path, module: str) -> Path | None:
    base = root.joinpath(*module.split("."))
    for path in (base / "__init__.py", base.with_suffix(".py")):
        if path.is_file():
            return path
    return None


def _top_level_imports(root: Path, module: str, path: Path) -> set[str]:
    """The labkit modules ``module`` imports when it is imported (statements at module level,
    including those inside ``if``/``try``; imports inside functions run only when called)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    statements = []
    for statement in ast.parse(path.read_text(), str(path)).body:
        statements += list(ast.walk(statement)) if isinstance(statement, (ast.If, ast.Try)) else [statement]
    for node in statements:
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for target in targets:
            if target.split(".")[0] == "labkit" and _module_file(root, target) is not None:
                found.add(target)
    return found


def module_closure(root: Path, modules) -> set[str]:
    """``modules`` with their parent packages and every labkit module they import at module level,
    transitively (``root`` is the folder that holds the ``labkit`` package)."""
    done: set[str] = set()
    todo = ["labkit", *modules]
    while todo:
        module = todo.pop()
        if module in done:
            continue
        path = _module_file(root, module)
        if path is None:
            raise ValueError(f"labkit has no module {module}")
        done.add(module)
        parts = module.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]
        todo += sorted(_top_level_imports(root, module, path))
    return done
