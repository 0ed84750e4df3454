"""The chapter 01/02 exercise checks accept the worked solutions and reject wrong answers."""
from labkit import bits, des, feistel, sbox
from labkit import exercises as ex
from labkit.exercises import ch01_feistel as c1, ch02_des as c2


def test_chapter_01_checks():
    net = c1.exercise_network()
    assert ex.check("01.1", net.encrypt(0x1234))
    assert not ex.check("01.1", 0x1234)
    assert ex.check("01.2", net.reversed().encrypt(0xBEEF))
    assert not ex.check("01.2", 0xBEEF)
    assert ex.check("01.3", feistel.two_round_distinguisher)
    assert not ex.check("01.3", feistel.one_round_distinguisher)
    assert not ex.check("01.3", 42)


def test_chapter_02_checks():
    assert ex.check("02.1", bits.bits_to_hex(des.expand_key(c2.EXAMPLE_KEY)[0]))
    assert not ex.check("02.1", "000000000000")
    key, block, c = c2.complement_challenge()
    assert ex.check("02.2", des.complement(c)) and not ex.check("02.2", c)
    assert ex.check("02.3", des.recover_linear_key(c2.linear_challenge()).key)
    assert not ex.check("02.3", bytes(8))
    assert ex.check("02.4", sbox.linearity(des.SBOX_TABLES[4]))
    assert not ex.check("02.4", 16)
    p, c, known = c2.search_challenge()
    found = des.exhaustive_search(p, c, known, 16, progress=False).keys
    assert len(found) == 1 and ex.check("02.5", found[0]) and not ex.check("02.5", known)


def test_every_exercise_has_hint_and_solution():
    for eid in ["01.1", "01.2", "01.3", "02.1", "02.2", "02.3", "02.4", "02.5"]:
        assert ex.hint(eid) and ex.solution(eid)
