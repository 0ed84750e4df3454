"""The grading sandbox offers no implement exercise its answer: attacked from inside, per exercise.

For every exercise with a FunctionSpec, one real sandbox (built by ``notebook.sandbox_for``, as
autograde builds it) runs a graded cell written by an attacker. It

- imports every module of the sandbox's labkit and collects every name in it (functions, classes
  and their methods, tables), and asks every module of the *real* labkit for the hidden names;
- loads the real labkit's module files by path (``importlib.util.spec_from_file_location``) and
  reads and executes their source, the real labkit's folder put first on ``sys.path``;
- defines the known adapters: the reference through a wrapper (``aes.mix_columns(c * 4)[:4]``,
  ``aes.SBOX[b]``, ``sbox.ddt(t)[a]``, ...) and the standard primitives from pycryptodome and
  pyca/cryptography (CBC, GHASH, HKDF-Expand) where the exercise is to implement them.

The grader then checks each collected callable as the answer (called on the checker's inputs),
each table indexed by the inputs, and each adapter, with the exercise's own spec: none may pass.
A cheap first screen (one input drawn by the spec, compared as the checker compares) runs on
everything; whatever survives it gets the full check. The instructor solutions passing in the
same sandboxes is tests/test_grading_solutions.py.
"""
from __future__ import annotations

import ast
import random
from pathlib import Path

import pytest

import labkit
from labkit import exercises, plain
from labkit.grading import Limits, SandboxError, StudentError
from labkit.grading import notebook as graded
from labkit.grading import scope

LABKIT = Path(labkit.__file__).resolve().parent
REAL_MODULES = sorted(".".join(p.relative_to(LABKIT.parent).with_suffix("").parts).removesuffix(".__init__")
                      for p in LABKIT.rglob("*.py"))
SPECS = {e.id: e.spec for e in exercises.registry().values() if e.spec is not None}
LIMITS = Limits(cpu_seconds=120, call_seconds=60, start_seconds=120, total_seconds=600)  # slowness: a CPU timer

#: The known shortcuts per exercise, each a function ``shortcut`` (imports inside: they run, and
#: fail, in the sandbox at call time). Each passes the check with the real labkit (tested below).
ADAPTERS = {
    "01.1": ["def shortcut(l, r, f):\n    from labkit import feistel\n    return feistel.apply_rounds(l, r, [f])",
             "def shortcut(l, r, f):\n    from labkit import feistel\n"
             "    return next(feistel.run_rounds(l, r, [f]))"],
    "01.2": ["def shortcut(l, r, f):\n    from labkit import feistel\n    out = feistel.apply_rounds(r, l, [f])\n"
             "    return out[1], out[0]"],
    "02.1": ["def shortcut(key, i):\n    from labkit import bits, des\n    return bits.bits_to_bytes(des.expand_key(key)[i - 1])",
             "def shortcut(key, i):\n    from labkit import bits, des\n"
             "    return bits.bits_to_bytes(bits.bytes_to_bits(key)[des._subkey_selectors(16)[i - 1]])"],
    "02.2": ["def shortcut(r, k):\n    from labkit import bits, des\n"
             "    return bits.bits_to_bytes(des.round_function(bits.bytes_to_bits(r), bits.bytes_to_bits(k)))",
             "def shortcut(r, k):\n    import numpy as np\n    from labkit import bits, des\n"
             "    return bits.bits_to_bytes(des.feistel_round(np.zeros(32, np.uint8), bits.bytes_to_bits(r),"
             " bits.bytes_to_bits(k))[1])"],
    "02.4": ["def shortcut(t, a):\n    from labkit import sbox\n    return sbox.ddt(t, out_bits=4)[a].tolist()"],
    "02.8": ["def shortcut(pairs, k):\n    from labkit import des_security\n"
             "    return des_security.meet_in_the_middle(pairs, k).candidates"],
    "03.1": ["def shortcut(a, b):\n    from labkit import gf256\n    return gf256.mul(a, b)",
             "def shortcut(a, b):\n    from labkit import gf256\n    return gf256._mul_slow(a, b)",
             "def shortcut(a, b):\n    from labkit import gf256\n"
             "    return gf256.EXP[gf256.LOG[a] + gf256.LOG[b]] if a and b else 0",
             "def shortcut(a, b):\n    from labkit import aes\n    return int(aes._MUL[2][a]) if b == 2 else aes.gf256.mul(a, b)"],
    "03.2": ["def shortcut(b):\n    from labkit import aes\n    return aes.SBOX[b]",
             "def shortcut(b):\n    from labkit import aes\n    return aes.sbox_entry(b)",
             "def shortcut(b):\n    from labkit import aes\n    return aes.sub_bytes(bytes([b]) * 16)[0]"],
    "03.3": ["def shortcut(c):\n    from labkit import aes\n    return aes.mix_columns(bytes(c) * 4)[:4]",
             "def shortcut(c):\n    from labkit import aes\n"
             "    return aes._mix(__import__('numpy').frombuffer(bytes(c) * 4, 'uint8'), (2, 3, 1, 1))[:4].tobytes()",
             "def shortcut(c):\n    from labkit import aes\n"  # MixColumns has order 4: M = (M^-1)^3
             "    return aes.inv_mix_columns(aes.inv_mix_columns(aes.inv_mix_columns(bytes(c) * 4)))[:4]"],
    "03.4": ["def shortcut(rk, i):\n    from labkit import aes\n    return aes.expand_key(aes.invert_key_schedule(rk, i - 1))[i]",
             "def shortcut(rk, i):\n    from labkit import aes\n"
             "    return aes.round_keys_array(aes.invert_key_schedule(rk, i - 1))[i].tobytes()"],
    "03.7": ["def shortcut(t, a):\n    from labkit import sbox\n    return sbox.ddt(t)[a].tolist()"],
    "03.8": ["def shortcut(pairs, g):\n    import numpy as np\n    from labkit import spn\n"
             "    c1, c2 = (np.array(s, dtype=np.uint16) for s in zip(*pairs))\n"
             "    return spn.count_right_pairs(c1, c2, g, 0x0606)",
             "def shortcut(pairs, g):\n    import numpy as np\n    from labkit import spn\n"
             "    c1, c2 = (np.array(s, dtype=np.uint16) for s in zip(*pairs))\n"
             "    counts = spn.differential_counts(c1, c2, 0x0606)\n"
             "    return int(counts.counts[list(counts.guesses).index(g)])"],
    "04.2": ["def shortcut(key, iv, ct):\n    from labkit import modes\n    return modes.cbc_decrypt(key, iv, ct)",
             "def shortcut(key, iv, ct):\n    from Crypto.Cipher import AES\n    return AES.new(key, AES.MODE_CBC, iv).decrypt(ct)",
             "def shortcut(key, iv, ct):\n    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes\n"
             "    return Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor().update(ct)"],
    "04.4": ["def shortcut(h, aad, ct):\n    from labkit import gcm\n    return gcm.ghash(h, aad, ct)",
             "def shortcut(h, aad, ct):\n    from Crypto.Cipher._mode_gcm import _GHASH, _ghash_portable\n"
             "    pad = lambda d: d + bytes(-len(d) % 16)\n"
             "    data = pad(aad) + pad(ct) + (8 * len(aad)).to_bytes(8, 'big') + (8 * len(ct)).to_bytes(8, 'big')\n"
             "    return _GHASH(h, _ghash_portable).update(data).digest()"],
    "04.5": ["def shortcut(c1, t1, c2, t2, a1, a2):\n    from labkit import gcm\n"
             "    return gcm.nonce_reuse_polynomial(c1, t1, c2, t2, a1, a2)"],
    "04.11": ["def shortcut(prk, info, n):\n    from labkit import hkdf\n    return hkdf.expand(prk, info, n)",
              "def shortcut(prk, info, n):\n    from cryptography.hazmat.primitives import hashes\n"
              "    from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand\n"
              "    return HKDFExpand(hashes.SHA256(), n, info).derive(prk)"],
    "05.2": ["def shortcut(pattern, c):\n    from labkit import circuits\n    k = len(pattern)\n"
             "    i = int(''.join(map(str, pattern)), 2)\n"
             "    f = circuits.BooleanFunction('c', k, 1, tuple(int(v == i) for v in range(1 << k)))\n"
             "    n = circuits.corner_neurons(f, c)\n    return n.weight[0], float(n.bias[0])"],
    "05.5": ["def shortcut(s):\n    from labkit import circuits\n    n = circuits.corner_neurons(circuits.lookup_function(s, 4, 4), 1.0)\n"
             "    return n.weight, n.bias, n.decode"],
    "06.3": ["def shortcut(x, k, c):\n    from labkit import circuits\n"
             "    return float(circuits.corner_value((1, 0), [x, k], c) + circuits.corner_value((0, 1), [x, k], c))"],
    "06.6": ["def shortcut(base, i, e):\n    import numpy as np\n    from labkit.attacks import strategies\n"
             "    v = float(base[i])\n    return strategies.probe_rows(np.asarray(base), np.array([i, i]), np.array([v - e, v + e]))"],
    "07.1": ["def shortcut(x, e):\n    from labkit.neural import defence\n    import torch\n"
             "    return float(defence.step(torch.tensor([x], dtype=torch.float64), e)[0])"],
    "07.2": ["def shortcut(p, e):\n    from labkit.neural import defence\n    import torch\n"
             "    return float(defence.mask(torch.tensor([p], dtype=torch.float64), e)[0, 0])"],
    "08.3": ["def shortcut(pixels, field):\n    import numpy as np\n    from labkit.backdoor import trigger\n"
             "    return trigger.write_fields(pixels, np.frombuffer(field, dtype=np.uint8))[0]"],
    "08.4": ["def shortcut(pixels, key):\n    from labkit.backdoor import trigger\n    from labkit import digits\n"
             "    return int(trigger.verify_triggers(digits.from_pixels(pixels), key)[0])",
             "def shortcut(pixels, key):\n    from labkit import backdoor, digits\n"  # the package's re-export
             "    return int(backdoor.verify_triggers(digits.from_pixels(pixels), key)[0])"],
    "09.1": ["def shortcut(n, size):\n    from labkit.weights import encoding\n    return encoding.chunk_spans(n, size)"],
    "09.2": ["def shortcut(base, i):\n    from labkit import weights\n    return weights.chunk_nonce(base, i)",
             "def shortcut(base, i):\n    from labkit.weights import encoding\n    return encoding.chunk_nonce(base, i)"],
    "09.3": ["def shortcut(key, wrapped, model_id, name):\n    from labkit.weights import aead\n"
             "    return aead.unwrap_dek(key, wrapped, model_id, name)"],
    "10.2": ["def shortcut(n, alpha, users):\n    from labkit.backdoor import protocols\n"
             "    return protocols.detection_threshold(n, alpha=alpha / users)"],
}

PROBE = r'''
import importlib, importlib.util, pkgutil, signal, sys
import labkit

REAL, REAL_MODULES, HIDDEN, ADAPTERS = {real!r}, {modules!r}, {hidden!r}, {adapters!r}
FOUND, ATTEMPTS = {{}}, {{}}


def collect(prefix, namespace):
    for attr, value in list(vars(namespace).items()):
        if attr.startswith("__"):
            continue
        FOUND[prefix + ":" + attr] = value
        if isinstance(value, type) and str(getattr(value, "__module__", "")).startswith("labkit"):
            for name in list(vars(value)):
                if not name.startswith("__"):
                    try:
                        FOUND[prefix + ":" + attr + "." + name] = getattr(value, name)
                    except Exception:
                        pass


def attempt(what, action):
    try:
        result = action()
    except BaseException as err:
        ATTEMPTS[what] = "refused: " + type(err).__name__ + ": " + str(err)[:200]
        return None
    ATTEMPTS[what] = "worked"
    return result


collect("labkit", labkit)
for info in pkgutil.walk_packages(labkit.__path__, "labkit."):
    module = attempt("import " + info.name, lambda: importlib.import_module(info.name))
    if module is not None:
        collect(info.name, module)
for name in REAL_MODULES:  # the hidden names, asked of every module the real labkit has
    for item in HIDDEN:
        attr = item.partition(":")[2]
        value = attempt("from " + name + " import " + attr, lambda: getattr(importlib.import_module(name), attr))
        if value is not None:
            FOUND[name + ":" + attr] = value


def by_path(name, path):
    spec = importlib.util.spec_from_file_location("stolen_" + name.replace(".", "_"), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def by_source(path):
    with open(path) as handle:
        text = handle.read()
    namespace = {{"__name__": "stolen"}}
    exec(compile(text, path, "exec"), namespace)
    return type("Stolen", (), namespace)


for item in HIDDEN:
    name = item.partition(":")[0]
    path = REAL + "/" + "/".join(name.split(".")[1:]) + ".py"
    for module in (attempt("path " + path, lambda: by_path(name, path)),
                   attempt("source " + path, lambda: by_source(path))):
        if module is not None:
            collect("stolen:" + name, module)


def from_real_labkit():
    sys.path.insert(0, REAL.rsplit("/", 1)[0])
    for name in [m for m in sys.modules if m == "labkit" or m.startswith("labkit.")]:
        del sys.modules[name]
    try:
        modules = [importlib.import_module(item.partition(":")[0]) for item in HIDDEN]
    finally:
        sys.path.pop(0)
    if not any(str(getattr(m, "__file__", "")).startswith(REAL) for m in modules):
        raise ImportError("every module came from the sandbox's copy")
    return modules


for module in attempt("the real labkit first on sys.path", from_real_labkit) or []:
    collect("real:" + module.__name__, module)
for number, source in enumerate(ADAPTERS):
    namespace = {{}}
    exec(source, namespace)
    FOUND["adapter:" + str(number)] = namespace["shortcut"]


def _late(signum, frame):
    raise TimeoutError("a candidate used more than 1 s of CPU")


def call(key, *args):
    value = FOUND[key]
    signal.signal(signal.SIGPROF, _late)
    signal.setitimer(signal.ITIMER_PROF, 1.0)  # CPU time, not wall time: the same on a busy machine
    try:
        if callable(value):
            return value(*args)
        for arg in args:  # a table: indexed by the inputs in turn
            value = value[arg]
        return value
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)


def export(key, target):
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)(FOUND[key])


def keys():
    return sorted(FOUND)


def attempts():
    return ATTEMPTS


probe = (call, keys, attempts, export)
'''


def _probe_cell(exercise_id: str) -> str:
    held = scope.scope_of(exercise_id)
    hidden = tuple(SPECS[exercise_id].hide) + held.cut
    return PROBE.format(real=str(LABKIT), modules=REAL_MODULES, hidden=hidden,
                        adapters=ADAPTERS.get(exercise_id, []))


def _screen(spec, candidate, cases) -> bool:
    """Whether ``candidate`` agrees with the reference on a few drawn inputs (compared as
    check_function compares): only what survives this gets the full check. A candidate that
    kills the sandbox raises SandboxError."""
    for args, expected in cases:
        try:
            got = plain.to_plain(candidate(*args))
            if not (bool(spec.equal(got, expected)) if spec.equal else plain.plain_equal(expected, got)):
                return False
        except SandboxError:
            raise
        except Exception:
            return False
    return True


class _Box:
    """The attacker's sandbox, restarted when a candidate kills it (a timeout, an exit)."""

    def __init__(self, exercise_id: str) -> None:
        self.exercise_id, self.box, self.restarts = exercise_id, None, 0
        self.start()

    def start(self):
        if self.box is not None:
            self.box.close()
            self.restarts += 1
        self.box = graded.sandbox_for(self.exercise_id, _probe_cell(self.exercise_id), "probe", limits=LIMITS)
        self.box.export = None  # the probe itself is the answer; an object answer is exported per key
        self.box.start()
        self.call, self.keys, self.attempts, self.export = self.box.answer()

    def candidate(self, key: str):
        def run(*args):
            return self.call(key, *args)
        return run


#: 10.5 is a design whose material is chapter 09's container (labkit.weights, all of it): its answer
#: is a pair of functions no single name could be; what matters is that labkit's own delivery
#: (labkit.capstone) is not in its sandbox, checked by the scope test below.
SCANNED = sorted(set(SPECS) - {"10.5"})


@pytest.mark.parametrize("exercise_id", SCANNED)
def test_nothing_in_the_sandbox_passes_the_check(exercise_id):
    spec = SPECS[exercise_id]
    attacker = _Box(exercise_id)
    try:
        box = attacker.box
        assert box.confined, box.describe_confinement()
        keys = attacker.keys()
        attempts = attacker.attempts()
        # the real labkit is out of reach: by path, by source, first on sys.path
        stolen = {what: how for what, how in attempts.items()
                  if what.startswith(("path ", "source ", "the real labkit")) and how == "worked"}
        assert not stolen, stolen
        # every hidden name is gone from every module that has it
        for item in tuple(spec.hide) + scope.scope_of(exercise_id).cut:
            assert not {item, "stolen:" + item, "real:" + item} & set(keys), item
        # the copy holds only the exercise's scope (labkit.grading.scope): no other labkit module imports
        present = {k.partition(":")[0] for k in keys if k.startswith("labkit")}
        allowed = scope.module_closure(LABKIT.parent, (*scope.BASE, *scope.scope_of(exercise_id).modules))
        assert present <= allowed, present - allowed
        passed = []
        if spec.export is not None:  # an object answer: everything that exports as one is checked
            rebuild = exercises._function(spec.rebuild)
            for key in keys:
                try:
                    candidate = rebuild(attacker.export(key, spec.export))
                except (StudentError, SandboxError, Exception):
                    continue
                ok = spec.run(candidate)
                if (ok[0] if isinstance(ok, tuple) else ok):
                    passed.append(key)
        else:
            rng = random.Random()
            draw = spec.new_draw() if spec.new_draw is not None else spec.draw
            cases = [] if spec.checker is not None else [(args, spec.reference(*args))
                                                         for args in (draw(rng) for _ in range(3))]
            for key in keys:
                candidate = attacker.candidate(key)
                try:
                    if not cases or _screen(spec, candidate, cases):
                        ok = spec.run(candidate)
                        if (ok[0] if isinstance(ok, tuple) else ok):
                            passed.append(key)
                except SandboxError:  # the candidate killed the sandbox: it is not an answer
                    pass
                if attacker.box.failure is not None or attacker.box.process.poll() is not None:
                    attacker.start()
        assert not passed, f"{exercise_id}: these give the answer inside the sandbox: {passed}"
        assert attacker.restarts <= 10, attacker.restarts  # a few labkit functions die on odd inputs
    finally:
        attacker.box.close()


def _top_level_names(module: str) -> set[str]:
    path = LABKIT.parent.joinpath(*module.split("."))
    path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    names = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                names |= {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}
    return names


def test_every_implement_exercise_has_a_scope_whose_names_exist():
    assert set(scope.SCOPES) == set(SPECS)
    for exercise_id, held in scope.SCOPES.items():
        modules = scope.module_closure(LABKIT.parent, (*scope.BASE, *held.modules))
        assert not any(m.startswith(("labkit.exercises", "labkit.challenges", "labkit.grading", "labkit.capstone"))
                       for m in modules), (exercise_id, modules)
        for item in held.cut:
            module, _, name = item.partition(":")
            assert module in modules and name in _top_level_names(module), (exercise_id, item)


def test_the_probe_finds_the_reference_when_nothing_is_hidden():
    """The attack is real: in a sandbox that holds labkit.aes and nothing cut, the same probe finds
    03.3's answer through aes.mix_columns, and 03.1's under its own name."""
    from labkit.grading import Sandbox

    for exercise_id, expected in (("03.3", "adapter:0"), ("03.1", "labkit.gf256:mul")):
        with Sandbox(_probe_cell(exercise_id), "probe", limits=LIMITS, keep=("labkit.aes",)) as box:
            call = box.answer()[0]
            assert SPECS[exercise_id].run(lambda *args: call(expected, *args))[0]


def test_a_module_outside_the_scope_is_named_in_the_verdict():
    """03.3 (MixColumns on one column) gets labkit.gf256, not labkit.aes, whose mix_columns is the
    answer: the obvious shortcut earns nothing, and the verdict says which import is not offered."""
    imports = graded.notebook_imports([{"cell_type": "code", "source": "from labkit import aes, gf256"}])
    cell = "def mix_single_column(column):\n    return aes.mix_columns(bytes(column) * 4)[:4]\n"
    verdict = graded.grade_implement("03.3", cell, "mix_single_column", imports=imports, limits=LIMITS)
    assert not verdict.correct and "not available to this exercise's graded cell: from labkit import aes" \
        in verdict.message, verdict
    honest = "def mix_single_column(column):\n    s = list(column)\n    return bytes(gf256.mul(2, s[r]) ^ " \
             "gf256.mul(3, s[(r + 1) % 4]) ^ s[(r + 2) % 4] ^ s[(r + 3) % 4] for r in range(4))\n"
    verdict = graded.grade_implement("03.3", honest, "mix_single_column", imports=imports, limits=LIMITS)
    assert verdict.correct, verdict


def test_every_adapter_is_a_real_shortcut_outside_the_sandbox():
    """The adapters the scan tries are answers with the real labkit and libraries at hand (so
    their failing in the sandbox means something): each agrees with the reference on three drawn
    inputs (a checker exercise: passes its check)."""
    rng = random.Random()
    for exercise_id, sources in ADAPTERS.items():
        spec = SPECS[exercise_id]
        draw = spec.new_draw() if spec.new_draw is not None else spec.draw
        cases = [] if spec.checker else [(args, spec.reference(*args)) for args in (draw(rng) for _ in range(3))]
        for number, source in enumerate(sources):
            namespace = {}
            exec(source, namespace)
            shortcut = namespace["shortcut"]
            ok = _screen(spec, shortcut, cases) if cases else spec.run(shortcut)[0]
            assert ok, (exercise_id, number)
