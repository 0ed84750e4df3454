"""Exercises 05.x and 06.1-06.4: the documented solutions pass, wrong answers do not."""
import numpy as np

from labkit import exercises as ex
from labkit.circuits import Circuit
from labkit.neural import aes128_network


def _corner_by_formula(pattern, c):
    """The paper's corner neuron expanded by hand: +x_i/c on ones, (1 - x_i)/c on zeros, (c - k)/c."""
    weights = np.array([1 / c if b else -1 / c for b in pattern])
    return weights, (sum(1 for b in pattern if not b) - len(pattern) + c) / c


def _sbox_network_by_hand(sbox):
    """One-hot corners (c = 1) and a 0/1 decode matrix, written from the definition."""
    patterns = np.array([[(v >> (3 - i)) & 1 for i in range(4)] for v in range(16)])
    decode = np.array([[(sbox[v] >> (3 - j)) & 1 for v in range(16)] for j in range(4)])
    return 2 * patterns - 1, 1 - patterns.sum(axis=1), decode


def test_chapter_05_solutions_and_wrong_answers():
    assert ex.check("05.1", 8) and not ex.check("05.1", 16)
    assert ex.check("05.2", _corner_by_formula)
    near_miss = ex.check("05.2", lambda p, c: (_corner_by_formula(p, c)[0], 1 - sum(p)))  # forgot 1/c
    assert not near_miss and "expected (array(" in str(near_miss)
    assert ex.check("05.3", 0.0) and not ex.check("05.3", 0.5)
    circ = Circuit("majority")
    a, b, c = circ.add_inputs(3)
    circ.set_outputs([(a & b) | (c & (a ^ b))])
    assert ex.check("05.4", circ)
    wrong = Circuit()
    a, b, c = wrong.add_inputs(3)
    wrong.set_outputs([a ^ b ^ c])
    feedback = ex.check("05.4", wrong)
    assert not feedback and "expected 0" in str(feedback)
    assert not ex.check("05.4", "circuit")


def test_chapter_05_sbox_network_is_checked_on_fresh_permutations():
    assert ex.check("05.5", _sbox_network_by_hand)
    # the decode rows in the wrong bit order: right only for S-boxes symmetric under bit reversal
    reversed_bits = ex.check("05.5", lambda s: (*_sbox_network_by_hand(s)[:2], _sbox_network_by_hand(s)[2][::-1]))
    assert not reversed_bits and "expected [" in str(reversed_bits)
    # a network built for one fixed S-box cannot pass: every check draws new permutations
    fixed = _sbox_network_by_hand(list(range(16)))
    assert not ex.check("05.5", lambda s: fixed)
    # c = 0.5 corners are as exact on bits: any corner-neuron network of the table passes
    assert ex.check("05.5", lambda s: (2 * _sbox_network_by_hand(s)[0], 2 * _sbox_network_by_hand(s)[1] - 1,
                                       _sbox_network_by_hand(s)[2]))
    shape = ex.check("05.5", lambda s: (np.zeros((16, 3)), np.zeros(16), np.zeros((4, 16))))
    assert not shape and "weight (N, 4)" in str(shape)


def test_chapter_06_part1_solutions_and_wrong_answers():
    assert ex.check("06.1", 4096) and not ex.check("06.1", 256)
    assert ex.check("06.2", 31) and not ex.check("06.2", 30)
    assert ex.check("06.4", 1) and not ex.check("06.4", 0)
    for i in ("05.1", "05.2", "05.3", "05.4", "05.5", "06.1", "06.2", "06.3", "06.4"):
        assert ex.hint(i) and ex.solution(i)


def test_xor_neurons_checker_accepts_the_paper_formula_and_rejects_the_c1_shortcut():
    from labkit.exercises import ch06_networks

    def paper(x, k, c):  # DESIGN.md / ePrint 2025/288: XOR(x, k) = ReLU((x-k-1+c)/c) + ReLU((k-x-1+c)/c)
        return max((x - k - 1 + c) / c, 0.0) + max((k - x - 1 + c) / c, 0.0)

    assert ex.check("06.3", paper) and ex.check("06.3", ch06_networks._xor_neurons_reference)
    wrong = ex.check("06.3", lambda x, k, c: abs(x - k))  # right only for c = 1
    assert not wrong and "xor_neurons(" in str(wrong) and "expected" in str(wrong)
    assert ex.registry()["06.3"].kind == "implement"
