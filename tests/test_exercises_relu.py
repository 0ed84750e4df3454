"""Exercises 05.x and 06.1-06.4: the documented solutions pass, wrong answers do not."""
import numpy as np

from labkit import exercises as ex
from labkit.circuits import Circuit
from labkit.neural import aes128_network


def test_chapter_05_solutions_and_wrong_answers():
    assert ex.check("05.1", 8) and not ex.check("05.1", 16)
    assert ex.check("05.2", (np.array([1, -1, 1]), -1.0)) and not ex.check("05.2", ([1, 0, 1], -2))
    circ = Circuit("majority")
    a, b, c = circ.add_inputs(3)
    circ.set_outputs([(a & b) | (c & (a ^ b))])
    assert ex.check("05.3", circ)
    wrong = Circuit()
    a, b, c = wrong.add_inputs(3)
    wrong.set_outputs([a ^ b ^ c])
    assert not ex.check("05.3", wrong) and not ex.check("05.3", "circuit")
    assert ex.check("05.4", 0.0) and not ex.check("05.4", 0.5)


def test_chapter_06_part1_solutions_and_wrong_answers():
    assert ex.check("06.1", 4096) and not ex.check("06.1", 256)
    assert ex.check("06.2", 31) and not ex.check("06.2", 30)
    answer = aes128_network(bytes(range(16))).encrypt(b"ReLU networks!!!").hex()
    assert ex.check("06.3", answer) and not ex.check("06.3", "00" * 16)
    assert ex.check("06.4", 1) and not ex.check("06.4", 0)
    for i in ("05.1", "05.2", "05.3", "05.4", "06.1", "06.2", "06.3", "06.4"):
        assert ex.hint(i) and ex.solution(i)
