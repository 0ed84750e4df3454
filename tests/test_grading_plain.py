"""Plain data (labkit.plain) and the in-kernel self-check attacked with answers that equal everything.

Before, 12 of the 30 implement checks passed a function returning an object whose ``__eq__`` is
always True. Now a check copies what the function returned into plain data first (exact builtin
types, fresh arrays) and compares with labkit's answer deciding the type, so no such object passes
any implement exercise; the wire format carries only plain data and never builds an object a
grader did not ask for.
"""
from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import pytest
import torch

from labkit import exercises as ex
from labkit import plain

IMPLEMENT = sorted(e.id for e in ex.registry().values() if e.spec is not None)
#: Answers that are not a single function: 05.4 is a circuit, 10.5 a pair of functions.
OBJECT_ANSWERS = {"05.4", "10.5"}


class Yes:
    def __eq__(self, other):
        return True

    __hash__ = object.__hash__


class YesInt(int):
    def __eq__(self, other):
        return True

    __hash__ = int.__hash__


class YesTuple(tuple):
    def __eq__(self, other):
        return True

    __hash__ = tuple.__hash__


class YesBytes(bytes):
    def __eq__(self, other):
        return True

    __hash__ = bytes.__hash__


class YesList(list):
    def __eq__(self, other):
        return True


class YesArray(np.ndarray):
    def __eq__(self, other):
        return np.ones(np.shape(other), dtype=bool)

    def __array_finalize__(self, obj):
        pass


def _liars():
    return [Yes(), YesInt(0), YesTuple((0, 0)), YesBytes(b""), YesList([]), np.zeros((32, 32), np.uint8).view(YesArray)]


def test_implement_exercises_are_all_specs():
    assert len(IMPLEMENT) == 30  # 29 implement and the design exercise 10.5, all FunctionSpecs
    for exercise_id in IMPLEMENT:
        spec = ex.registry()[exercise_id].spec
        assert isinstance(spec, ex.FunctionSpec) and spec.name, exercise_id
        assert spec.checker is not None or (spec.reference and (spec.draw or spec.new_draw)), exercise_id


@pytest.mark.parametrize("exercise_id", [e for e in IMPLEMENT if e not in OBJECT_ANSWERS])
def test_an_answer_that_equals_everything_fails_every_implement_check(exercise_id):
    for liar in _liars():
        feedback = ex.check(exercise_id, lambda *args, liar=liar: liar)
        assert not feedback.correct, (exercise_id, type(liar).__name__, feedback)


def test_object_answers_are_checked_as_plain_data():
    from labkit.circuits import Circuit, circuit_data

    class Lying(Circuit):
        def evaluate(self, bits):  # claims to be the majority whatever its gates are
            rows = np.asarray(bits)
            return (rows.sum(axis=1, keepdims=True) >= 2).astype(np.uint8)

    lying = Lying()
    a, b, c = lying.add_inputs(3)
    lying.set_outputs([a & b])
    assert not ex.check("05.4", lying).correct
    honest = Circuit()
    a, b, c = honest.add_inputs(3)
    honest.set_outputs([(a & b) | (a & c) | (b & c)])
    assert ex.check("05.4", honest).correct
    assert circuit_data(honest)["inputs"] == [0, 1, 2]
    assert not ex.check("10.5", (lambda *a: Yes(), lambda *a: Yes())).correct


@pytest.mark.parametrize("value", [
    None, True, 0, -(1 << 200), 1.5, float("nan"), float("-inf"), "text", b"\x00\xff", Fraction(1, 3),
    [1, [2, (3, b"4")]], {"a": 1, 2: (b"x",)}, np.arange(6, dtype=np.int16).reshape(2, 3),
    np.array([True, False]), np.float32(2.5), np.uint8(7), np.zeros((0, 4)), np.array(1.0 + 2.0j),
])
def test_plain_data_survives_the_wire(value):
    back = plain.loads(plain.dumps(value))
    assert type(back) is type(value)
    if isinstance(value, np.ndarray):
        assert back.dtype == value.dtype and back.shape == value.shape and np.array_equal(back, value)
    elif isinstance(value, float) and value != value:
        assert back != back
    else:
        assert back == value


def test_a_bytearray_arrives_as_bytes():
    assert plain.to_plain(bytearray(b"\x01\x02")) == b"\x01\x02" and type(plain.to_plain(bytearray(b"x"))) is bytes
    from labkit import modes

    assert ex.check("04.2", lambda *args: bytearray(modes.cbc_decrypt(*args))).correct


def test_tensors_travel_as_arrays_and_come_back_as_tensors():
    back = plain.loads(plain.dumps({"w": torch.arange(4, dtype=torch.float32)}))
    assert isinstance(back["w"], torch.Tensor) and torch.equal(back["w"], torch.arange(4, dtype=torch.float32))


@pytest.mark.parametrize("value", _liars()[:5] + [np.array([object()]), object(), lambda: 1, {1, 2},
                                                   np.zeros(2, dtype=[("a", "i4")]), memoryview(b"x")])
def test_anything_else_is_not_plain_data(value):
    with pytest.raises(plain.PlainDataError):
        plain.encode(value)


def test_deep_nesting_is_refused_not_recursed():
    deep = []
    for _ in range(plain.MAX_DEPTH + 5):
        deep = [deep]
    with pytest.raises(plain.PlainDataError):
        plain.encode(deep)
    text = "[" * 5000 + "]" * 5000
    with pytest.raises((plain.PlainDataError, RecursionError)):
        plain.loads(text)


@pytest.mark.parametrize("data", [
    {"$bytes": 5}, {"$array": {"dtype": "|O", "shape": [1], "hex": "00" * 8}},
    {"$array": {"dtype": "<i4", "shape": [3], "hex": "00" * 8}}, {"$fraction": [1, 0]},
    {"$tuple": [1], "$bytes": "00"}, {"$unknown": 1}, {"plain": "dict"},
    {"$call": ["labkit.feistel:make_round_function", {"$tuple": ["x and k", 1, 8]}]},
    {"$call": ["os:system", {"$tuple": ["true"]}]},
])
def test_the_grader_decodes_nothing_but_plain_data(data):
    with pytest.raises(plain.PlainDataError):
        plain.loads(json.dumps(data))


def test_only_a_sandbox_rebuilds_labkit_objects_and_only_labkit_ones():
    from labkit.exercises.ch01_feistel import ShownRoundFunction

    shown = ShownRoundFunction("x and k", 0x0F, 8)
    rebuilt = plain.loads(plain.dumps(shown), calls=True)
    assert [rebuilt(x) for x in range(256)] == [shown(x) for x in range(256)]
    with pytest.raises(plain.PlainDataError, match="cannot rebuild"):
        plain.loads(json.dumps({"$call": ["os:system", {"$tuple": ["true"]}]}), calls=True)


def test_plain_equal_lets_labkit_decide_the_type():
    assert plain.plain_equal(3, np.int64(3)) and not plain.plain_equal(3, True) and not plain.plain_equal(3, "3")
    assert plain.plain_equal((1, 2), (1, 2)) and not plain.plain_equal((1, 2), [1, 2])
    assert plain.plain_equal(b"ab", b"ab") and not plain.plain_equal(b"ab", "ab")
    assert not plain.plain_equal(np.zeros(3), np.zeros(4)) and plain.plain_equal(np.ones(2), np.ones(2))
