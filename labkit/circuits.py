"""Boolean circuits and corner neurons: the bridge from bits to ReLU networks.

Deep Neural Cryptography (Gerault, Hambitzer, Ronen, Shamir; ePrint 2025/288, section 3) builds
every Boolean function from *corner neurons*. For a pattern ``b`` in {0,1}^k and 0 < c <= 1::

    corner_b(x) = ReLU((sum_{b_i=1} x_i + sum_{b_i=0} (1 - x_i) - k + c) / c)

is 1 at ``x = b`` and 0 at every other corner of the cube, so ``f = sum of the corners where f = 1``
(for an m-bit output: a 0/1 linear map of the corners). With ``c = 1`` XOR is the "back-to-back"
pair ``ReLU(x - y) + ReLU(y - x)``; with ``c < 1`` its two ReLUs are separated.

This module holds the maths (``BooleanFunction``, ``corner_neurons``) and a small circuit
representation (``Circuit``: wires, gates, evaluation on bit arrays, gate counts, depth) that
:func:`labkit.neural.compile_circuit` turns into a ReLU network.

We write a corner with *integer* pre-activations, ``ReLU(z_b(x) / c + 1)`` with
``z_b(x) = sum_i s_i x_i - popcount(b)`` and ``s_i = +1 if b_i else -1``: the same function, but
on bits ``z_b`` is an exact integer (0 at ``b``, <= -1 elsewhere) for every ``c``, so binary
inputs give exact 0/1 outputs in any floating-point type.
"""
from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

import numpy as np

__all__ = [
    "check_c",
    "BooleanFunction",
    "CornerNeurons",
    "corner_neurons",
    "corner_value",
    "XOR",
    "AND",
    "OR",
    "NOT",
    "BUF",
    "lookup_function",
    "relu",
    "Wire",
    "Gate",
    "Circuit",
]


def check_c(c: float) -> float:
    """The corner neuron's constant c as a float in (0, 1] (the paper's 0 < c <= 1), else an error."""
    if isinstance(c, bool) or not isinstance(c, (int, float, np.floating)):
        raise TypeError(f"c must be a number in (0, 1], got {type(c).__name__}")
    c = float(c)
    if not 0.0 < c <= 1.0:
        raise ValueError(f"c must be in (0, 1], got {c}")
    return c


def relu(x):
    """ReLU on numpy arrays (the one nonlinearity of every network in this lab)."""
    return np.maximum(x, 0.0)


# --- Boolean functions ---------------------------------------------------------------------------


@dataclass(frozen=True)
class BooleanFunction:
    """A function f: {0,1}^k -> {0,1}^m given by its truth table.

    ``table[v]`` is f at the input whose bits, most significant first, spell ``v`` (input 0 is the
    MSB); the output is an m-bit integer, MSB = output bit 0. ``one_hot=True`` asks for a corner
    neuron on *every* input pattern (how the paper builds lookup tables such as the AES S-box:
    256 one-hot corners per byte), otherwise only on the patterns where f is not zero.
    """

    name: str
    k: int
    m: int
    table: tuple[int, ...]
    one_hot: bool = False

    def __post_init__(self):
        if not isinstance(self.k, int) or not 0 <= self.k <= 16:
            raise ValueError(f"k must be an int in 0..16, got {self.k!r}")
        if not isinstance(self.m, int) or not 1 <= self.m <= 64:
            raise ValueError(f"m must be an int in 1..64, got {self.m!r}")
        table = tuple(int(t) for t in self.table)
        if len(table) != 1 << self.k:
            raise ValueError(f"a {self.k}-input truth table needs {1 << self.k} entries, got {len(table)}")
        if any(t < 0 or t >> self.m for t in table):
            raise ValueError(f"truth-table entries must be {self.m}-bit integers")
        object.__setattr__(self, "table", table)

    @classmethod
    def from_callable(cls, name: str, k: int, m: int, f: Callable[[int], int], *, one_hot=False):
        """Tabulate ``f(v)`` for every k-bit input ``v``."""
        return cls(name, k, m, tuple(int(f(v)) for v in range(1 << k)), one_hot)

    def __call__(self, bits) -> np.ndarray:
        """Evaluate on a bit array of shape (..., k); returns (..., m) uint8."""
        x = np.asarray(bits, dtype=np.int64)
        if x.shape[-1:] != (self.k,):
            raise ValueError(f"{self.name} takes {self.k} input bits, got shape {x.shape}")
        index = (x << np.arange(self.k - 1, -1, -1)).sum(axis=-1)
        out = np.asarray(self.table, dtype=np.int64)[index]
        return ((out[..., None] >> np.arange(self.m - 1, -1, -1)) & 1).astype(np.uint8)

    def affine_form(self) -> tuple[tuple[int, int, int], ...] | None:
        """If every output bit is a constant, an input bit or its negation, return per output bit
        ``(input index or -1, sign, offset)`` so the bit equals ``sign * x[index] + offset``; such
        gates (NOT, wiring, constants) are affine and cost no neuron. Otherwise None."""
        return _affine_form(self)


@functools.lru_cache(maxsize=256)
def _affine_form(function: BooleanFunction):
    k, m = function.k, function.m
    cube = np.array([[(v >> (k - 1 - i)) & 1 for i in range(k)] for v in range(1 << k)],
                    dtype=np.int64).reshape(-1, k)
    outs = function(cube)
    form = []
    for j in range(m):
        col = outs[:, j].astype(np.int64)
        if np.all(col == col[0]):
            form.append((-1, 0, int(col[0])))
            continue
        for i in range(k):
            if np.array_equal(col, cube[:, i]):
                form.append((i, 1, 0))
                break
            if np.array_equal(col, 1 - cube[:, i]):
                form.append((i, -1, 1))
                break
        else:
            return None
    return tuple(form)


@functools.lru_cache(maxsize=None)
def XOR(k: int = 2) -> BooleanFunction:
    """Parity of k bits (2^(k-1) corners: the odd-weight patterns)."""
    return BooleanFunction.from_callable(f"XOR{k}" if k != 2 else "XOR", k, 1, lambda v: bin(v).count("1") & 1)


@functools.lru_cache(maxsize=None)
def AND(k: int = 2) -> BooleanFunction:
    """AND of k bits: a single corner (the all-ones pattern)."""
    return BooleanFunction.from_callable(f"AND{k}" if k != 2 else "AND", k, 1, lambda v: int(v == (1 << k) - 1))


@functools.lru_cache(maxsize=None)
def OR(k: int = 2) -> BooleanFunction:
    """OR of k bits: 2^k - 1 corners (every pattern but all zeros)."""
    return BooleanFunction.from_callable(f"OR{k}" if k != 2 else "OR", k, 1, lambda v: int(v != 0))


NOT = BooleanFunction("NOT", 1, 1, (1, 0))
BUF = BooleanFunction("BUF", 1, 1, (0, 1))


def lookup_function(table: Sequence[int], k: int, m: int, name: str = "LUT", *, one_hot: bool = True):
    """A k-to-m-bit lookup table (S-box, GF(2^8) multiplication...) as a BooleanFunction.

    By default one corner per input pattern (one-hot), as in the paper's AES network.
    """
    return BooleanFunction(name, k, m, tuple(int(t) for t in table), one_hot)


# --- corner neurons ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CornerNeurons:
    """The corner-neuron network of a Boolean function: ``f(x) = decode @ ReLU(weight @ x + bias)``.

    ``patterns[j]`` is the corner of neuron j; ``signs`` (+1/-1) and ``offsets`` (-popcount) give
    the integer pre-activation z = signs @ x + offsets, and the neuron is ReLU(z / c + 1).
    ``weight = signs / c`` and ``bias = offsets / c + 1`` are the same neurons in the usual form.
    """

    function: BooleanFunction
    c: float
    patterns: np.ndarray  # (N,) ints
    signs: np.ndarray  # (N, k) of +-1
    offsets: np.ndarray  # (N,) of -popcount
    decode: np.ndarray  # (m, N) of 0/1

    @property
    def weight(self) -> np.ndarray:
        return self.signs / self.c

    @property
    def bias(self) -> np.ndarray:
        return self.offsets / self.c + 1.0

    @property
    def n_neurons(self) -> int:
        return len(self.patterns)

    def hidden(self, x) -> np.ndarray:
        """Neuron outputs on real inputs x of shape (..., k)."""
        x = np.asarray(x, dtype=float)
        if x.shape[-1:] != (self.function.k,):
            raise ValueError(f"expected inputs of shape (..., {self.function.k}), got {x.shape}")
        return relu((x @ self.signs.T + self.offsets) / self.c + 1.0)

    def __call__(self, x) -> np.ndarray:
        """The network's (real-valued) outputs on real inputs x of shape (..., k): shape (..., m)."""
        return self.hidden(x) @ self.decode.T


def _pattern_bits(v: int, k: int) -> np.ndarray:
    return np.array([(v >> (k - 1 - i)) & 1 for i in range(k)], dtype=np.int64)


def corner_value(pattern: Sequence[int], x, c: float = 1.0):
    """One corner neuron of the paper on real inputs ``x`` (shape (..., k)), straight from the formula."""
    c = check_c(c)
    b = np.asarray(pattern, dtype=float)
    x = np.asarray(x, dtype=float)
    k = b.size
    total = (x * b + (1.0 - x) * (1.0 - b)).sum(axis=-1)
    return relu((total - k + c) / c)


def corner_neurons(function: BooleanFunction, c: float = 1.0) -> CornerNeurons:
    """Corner neurons computing ``function`` on bits; ``c`` in (0, 1] sets how sharp they are."""
    if not isinstance(function, BooleanFunction):
        raise TypeError(f"expected a BooleanFunction, got {type(function).__name__}")
    c = check_c(c)
    k, m = function.k, function.m
    patterns = [v for v in range(1 << k) if function.one_hot or function.table[v]]
    pbits = np.array([_pattern_bits(v, k) for v in patterns], dtype=np.int64).reshape(len(patterns), k)
    signs = 2 * pbits - 1
    offsets = -pbits.sum(axis=1)
    decode = np.array(
        [[(function.table[v] >> (m - 1 - j)) & 1 for v in patterns] for j in range(m)], dtype=np.int64
    ).reshape(m, len(patterns))
    return CornerNeurons(function, c, np.array(patterns, dtype=np.int64), signs, offsets, decode)


# --- circuits ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Wire:
    """A wire of a :class:`Circuit`; ``a ^ b``, ``a & b``, ``a | b`` and ``~a`` add gates."""

    circuit: "Circuit" = field(repr=False, compare=False)
    index: int

    def _other(self, other) -> "Wire":
        if isinstance(other, Wire):
            if other.circuit is not self.circuit:
                raise ValueError("cannot combine wires of different circuits")
            return other
        if other in (0, 1) and not isinstance(other, float):
            return self.circuit.const(int(other))
        raise TypeError(f"expected a Wire or a constant bit 0/1, got {other!r}")

    def __xor__(self, other):
        return self.circuit.xor(self, self._other(other))

    __rxor__ = __xor__

    def __and__(self, other):
        return self.circuit.and_(self, self._other(other))

    __rand__ = __and__

    def __or__(self, other):
        return self.circuit.or_(self, self._other(other))

    __ror__ = __or__

    def __invert__(self):
        return self.circuit.not_(self)


@dataclass(frozen=True)
class Gate:
    """A gate: a Boolean function applied to input wires, producing output wires.

    ``kind`` is ``"corners"`` (corner neurons) or ``"clip"`` (the 2-neuron input clip
    ``ReLU(x) - ReLU(x - 1)``, identity on bits); ``section`` names the part of the cipher it
    belongs to (for layer tables).
    """

    function: BooleanFunction
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    kind: str = "corners"
    section: str = ""


class Circuit:
    """A Boolean circuit: inputs, constants, gates (any BooleanFunction) and outputs.

    >>> circ = Circuit()
    >>> a, b = circ.add_inputs(2)
    >>> circ.set_outputs([a ^ b, a & b])          # a half adder
    >>> circ.evaluate([[1, 1]]).tolist()
    [[0, 1]]
    """

    def __init__(self, name: str = "circuit") -> None:
        self.name = name
        self.n_wires = 0
        self.inputs: list[int] = []
        self.outputs: list[int] = []
        self.gates: list[Gate] = []
        self.constants: dict[int, int] = {}  # wire -> bit
        self._const_wire: dict[int, int] = {}  # bit -> wire
        self._section = ""

    # -- building ---------------------------------------------------------------------------------
    def _new_wire(self) -> int:
        self.n_wires += 1
        return self.n_wires - 1

    def _wire(self, w) -> int:
        if not isinstance(w, Wire):
            raise TypeError(f"expected a Wire, got {type(w).__name__}")
        if w.circuit is not self:
            raise ValueError("the wire belongs to another circuit")
        return w.index

    def add_inputs(self, n: int) -> list[Wire]:
        """Append n input wires (the network's input bits, in order)."""
        if not isinstance(n, int) or n < 0:
            raise ValueError(f"number of inputs must be a non-negative int, got {n!r}")
        wires = [self._new_wire() for _ in range(n)]
        self.inputs.extend(wires)
        return [Wire(self, i) for i in wires]

    def input(self) -> Wire:
        return self.add_inputs(1)[0]

    def const(self, bit: int) -> Wire:
        """The constant wire 0 or 1 (compiled into biases: this is how a key enters the weights)."""
        if bit not in (0, 1):
            raise ValueError(f"a constant wire is 0 or 1, got {bit!r}")
        bit = int(bit)
        if bit not in self._const_wire:
            wire = self._new_wire()
            self._const_wire[bit] = wire
            self.constants[wire] = bit
        return Wire(self, self._const_wire[bit])

    @contextlib.contextmanager
    def section(self, name: str):
        """Tag the gates added inside the ``with`` block (e.g. "round 1 SubBytes")."""
        previous, self._section = self._section, name
        try:
            yield
        finally:
            self._section = previous

    def apply(self, function: BooleanFunction, wires: Iterable[Wire], *, kind: str = "corners") -> list[Wire]:
        """Add a gate computing ``function`` of ``wires``; returns its m output wires (MSB first)."""
        if not isinstance(function, BooleanFunction):
            raise TypeError(f"expected a BooleanFunction, got {type(function).__name__}")
        ins = tuple(self._wire(w) for w in wires)
        if len(ins) != function.k:
            raise ValueError(f"{function.name} takes {function.k} inputs, got {len(ins)}")
        if kind not in ("corners", "clip"):
            raise ValueError(f"gate kind must be 'corners' or 'clip', got {kind!r}")
        outs = tuple(self._new_wire() for _ in range(function.m))
        self.gates.append(Gate(function, ins, outs, kind, self._section))
        return [Wire(self, o) for o in outs]

    def xor(self, *wires: Wire) -> Wire:
        """XOR of two or more wires (one gate with 2^(k-1) corner neurons)."""
        if len(wires) < 2:
            raise ValueError("xor needs at least two wires")
        return self.apply(XOR(len(wires)), wires)[0]

    def and_(self, *wires: Wire) -> Wire:
        if len(wires) < 2:
            raise ValueError("and_ needs at least two wires")
        return self.apply(AND(len(wires)), wires)[0]

    def or_(self, *wires: Wire) -> Wire:
        if len(wires) < 2:
            raise ValueError("or_ needs at least two wires")
        return self.apply(OR(len(wires)), wires)[0]

    def not_(self, wire: Wire) -> Wire:
        """NOT: affine (1 - x), so the compiler spends no neuron on it."""
        return self.apply(NOT, [wire])[0]

    def clip(self, wire: Wire) -> Wire:
        """``ReLU(x) - ReLU(x - 1)``: identity on bits, clamps real inputs into [0, 1]."""
        return self.apply(BUF, [wire], kind="clip")[0]

    def lookup(self, function_or_table, wires: Sequence[Wire], m: int | None = None, *, name="LUT") -> list[Wire]:
        """A lookup table on ``wires`` (MSB first): a BooleanFunction or a table of m-bit ints."""
        wires = list(wires)
        if isinstance(function_or_table, BooleanFunction):
            function = function_or_table
        else:
            if m is None:
                raise ValueError("give m, the number of output bits of the table")
            function = lookup_function(function_or_table, len(wires), m, name)
        return self.apply(function, wires)

    def set_outputs(self, wires: Iterable[Wire]) -> None:
        """The circuit's output bits, in order."""
        self.outputs = [self._wire(w) for w in wires]

    # -- analysis ---------------------------------------------------------------------------------
    def evaluate(self, bits) -> np.ndarray:
        """Evaluate on bit arrays: ``bits`` of shape (n, n_inputs) or (n_inputs,); 0/1 outputs."""
        x = np.asarray(bits)
        single = x.ndim == 1
        x = x.reshape(1, -1) if single else x
        if x.ndim != 2 or x.shape[1] != len(self.inputs):
            raise ValueError(f"expected bits of shape (n, {len(self.inputs)}), got {np.asarray(bits).shape}")
        if x.size and not np.all((x == 0) | (x == 1)):
            raise ValueError("circuit inputs must be bits (0 or 1)")
        values = np.zeros((self.n_wires, x.shape[0]), dtype=np.uint8)
        values[self.inputs] = x.T.astype(np.uint8)
        for wire, bit in self.constants.items():
            values[wire] = bit
        for gate in self.gates:
            out = gate.function(values[list(gate.inputs)].T)
            values[list(gate.outputs)] = out.T
        result = values[self.outputs].T
        return result[0] if single else result

    def gate_counts(self) -> dict[str, int]:
        """How many gates of each function (by name), e.g. {"XOR": 3, "AND": 2}."""
        counts: dict[str, int] = {}
        for gate in self.gates:
            name = gate.function.name if gate.kind == "corners" else "CLIP"
            counts[name] = counts.get(name, 0) + 1
        return counts

    def levels(self) -> dict[int, int]:
        """Wire -> its ReLU depth: inputs and constants 0, a neuron gate adds 1, affine gates 0."""
        level = {w: 0 for w in self.inputs}
        level.update({w: 0 for w in self.constants})
        for gate in self.gates:
            base = max((level[i] for i in gate.inputs), default=0)
            affine = gate.kind == "corners" and gate.function.affine_form() is not None
            for o in gate.outputs:
                level[o] = base if affine else base + 1
        return level

    def depth(self) -> int:
        """Number of ReLU layers the compiled network needs (its longest chain of neuron gates)."""
        return max(self.levels().values(), default=0)

    def __repr__(self) -> str:
        return (f"Circuit({self.name!r}: {len(self.inputs)} inputs, {len(self.gates)} gates, "
                f"{len(self.outputs)} outputs, depth {self.depth()})")


def circuit_data(circuit: Circuit) -> dict:
    """A circuit as plain data (wire numbers, constants, each gate's truth table): how a circuit
    leaves the process that built it, so that whoever checks it rebuilds it with
    :func:`circuit_from_data` and never calls a method of the object it was handed."""
    if not isinstance(circuit, Circuit):
        raise TypeError(f"the answer must be a labkit.circuits.Circuit, got {type(circuit).__name__}")
    return {"name": str(circuit.name), "inputs": [int(w) for w in circuit.inputs],
            "outputs": [int(w) for w in circuit.outputs],
            "constants": [[int(w), int(b)] for w, b in circuit.constants.items()],
            "gates": [[g.function.name, g.function.k, g.function.m, [int(v) for v in g.function.table],
                       bool(g.function.one_hot), [int(w) for w in g.inputs], [int(w) for w in g.outputs],
                       str(g.kind)] for g in circuit.gates]}


def circuit_from_data(data: dict) -> Circuit:
    """The circuit :func:`circuit_data` describes, rebuilt gate by gate through :meth:`Circuit.apply`
    (so every gate is validated again); ``ValueError`` for a description that is not a circuit."""
    try:
        circuit = Circuit(str(data["name"]))
        wires = {}
        for old in data["inputs"]:
            wires[old] = circuit.input()
        for old, bit in data["constants"]:
            wires[old] = circuit.const(bit)
        for name, k, m, table, one_hot, ins, outs, kind in data["gates"]:
            made = circuit.apply(BooleanFunction(str(name), k, m, tuple(table), bool(one_hot)),
                                 [wires[w] for w in ins], kind=str(kind))
            if len(made) != len(outs):
                raise ValueError("a gate's outputs do not match its function")
            wires.update(zip(outs, made))
        circuit.set_outputs([wires[w] for w in data["outputs"]])
    except (KeyError, TypeError) as err:
        raise ValueError(f"not a circuit description ({type(err).__name__}: {err})") from None
    return circuit
