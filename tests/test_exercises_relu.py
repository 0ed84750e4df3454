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
    assert ex.check("06.4", 1) and not ex.check("06.4", 0)
    for i in ("05.1", "05.2", "05.3", "05.4", "06.1", "06.2", "06.3", "06.4"):
        assert ex.hint(i) and ex.solution(i)


def test_xor_neurons_checker_accepts_the_paper_formula_and_rejects_the_c1_shortcut():
    from labkit.exercises import ch06_networks

    def paper(x, k, c):  # DESIGN.md / ePrint 2025/288: XOR(x, k) = ReLU((x-k-1+c)/c) + ReLU((k-x-1+c)/c)
        return max((x - k - 1 + c) / c, 0.0) + max((k - x - 1 + c) / c, 0.0)

    assert ex.check("06.3", paper) and ex.check("06.3", ch06_networks._xor_neurons_reference)
    wrong = ex.check("06.3", lambda x, k, c: abs(x - k))  # right only for c = 1
    assert not wrong and "xor_neurons(" in str(wrong) and "expected" in str(wrong)
    assert ex.registry()["06.3"].kind == "implement"
