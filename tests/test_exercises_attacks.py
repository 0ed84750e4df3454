import numpy as np

from labkit import exercises as ex
from labkit.exercises.ch06_attacks import demo_oracle


def test_chapter_06_attack_exercises():
    assert ex.check("06.11", 2.0) and not ex.check("06.11", 0.0) and not ex.check("06.11", 1.0)
    assert ex.check("06.12", 0x52) and not ex.check("06.12", 0x00)
    oracle = demo_oracle()
    q = np.zeros((17, 16))
    q[np.arange(1, 17), np.arange(16)] = 2.0
    out = oracle(q)
    bits = np.isclose(out[1:], out[0], rtol=0, atol=1e-9).all(axis=1).astype(int)
    assert ex.check("06.13", bits) and not ex.check("06.13", 1 - bits)
    assert not ex.check("06.13", [0, 1])


def test_chapter_07_exercises():
    assert ex.check("07.1", 0.3) and not ex.check("07.1", 0.4)
    assert ex.check("07.2", 1.9) and not ex.check("07.2", 2.0)
    assert ex.check("07.3", 2**23 + 1) and not ex.check("07.3", 0.5) and not ex.check("07.3", 1.0)
