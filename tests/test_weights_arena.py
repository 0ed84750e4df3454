"""The private buffer open decrypts into: transparent huge pages where they are cheap, 4 KiB
pages where a timed probe says they are not, and the same tensors either way."""
import ctypes

import pytest
import torch

from labkit import weights as W
from labkit.weights import fileio

MADV_POPULATE_WRITE, MADV_HUGEPAGE, MADV_NOHUGEPAGE = 23, 14, 15


@pytest.fixture(scope="module")
def parties():
    return {"device": W.generate_recipient_keypair(), "publisher": W.generate_signing_keypair()}


@pytest.fixture()
def advice(monkeypatch):
    """Every madvise call the arena makes, as (advice, length), passed on to the real one."""
    if fileio._madvise is None:
        pytest.skip("no madvise on this system")
    real, calls = fileio._madvise, []

    def recording(address, length, what):
        calls.append((what, length))
        return real(address, length, what)

    monkeypatch.setattr(fileio, "_madvise", recording)
    return calls


def test_a_large_arena_is_aligned_to_a_huge_page_and_probed_once(advice):
    arena = fileio.alloc(fileio.HUGE_MIN_BYTES)
    address = ctypes.addressof(ctypes.c_char.from_buffer(arena.view))
    assert address % fileio.HUGE_PAGE == 0
    assert len(arena.view) == fileio.HUGE_MIN_BYTES + fileio.SLACK
    assert advice[0] == (MADV_HUGEPAGE, len(arena.view))
    assert advice[1] == (MADV_POPULATE_WRITE, fileio.HUGE_PAGE)  # the probe, before any worker
    arena.view[-1:] = b"\x01"  # the whole usable part is writable
    assert arena.view[-1] == 1


def test_a_small_arena_keeps_4k_pages_and_makes_no_probe(advice):
    arena = fileio.alloc(fileio.HUGE_MIN_BYTES // 2)
    assert not arena.huge and arena.base == 0 and len(arena.buf) == len(arena.view)
    assert advice == []
    tiny = fileio.alloc(1000)  # below 1 MiB: a bytearray
    assert isinstance(tiny.buf, bytearray) and len(tiny.view) == 1000 + fileio.SLACK


def test_a_slow_probe_turns_huge_pages_off_for_the_rest(advice, monkeypatch):
    monkeypatch.setattr(fileio, "HUGE_MIN_RATE", 1e18)  # no populate is ever this fast
    arena = fileio.alloc(fileio.HUGE_MIN_BYTES)
    assert not arena.huge
    assert advice[-1] == (MADV_NOHUGEPAGE, len(arena.view))
    arena.populate(0, len(arena.view))  # the rest come 4 KiB at a time; no second verdict
    assert [what for what, _ in advice].count(MADV_NOHUGEPAGE) == 1


def test_a_later_slow_call_turns_them_off_even_for_a_few_bytes(advice, monkeypatch):
    """A 4 KiB bias between two large tensors may fault in a whole slow huge page: a small call
    is judged as the huge page it may fault in, so only a call slower than a huge page should
    take (here: any, at an impossible rate) turns huge pages off."""
    monkeypatch.setattr(fileio, "HUGE_MIN_RATE", 0.0)
    arena = fileio.alloc(fileio.HUGE_MIN_BYTES)
    assert arena.huge
    monkeypatch.setattr(fileio, "HUGE_MIN_RATE", 1e18)
    arena.populate(fileio.HUGE_PAGE, fileio.HUGE_PAGE + 4096)
    assert not arena.huge and advice[-1] == (MADV_NOHUGEPAGE, len(arena.view))


def test_a_fast_small_call_is_not_mistaken_for_a_slow_one(advice, monkeypatch):
    monkeypatch.setattr(fileio, "HUGE_MIN_RATE", 0.0)
    arena = fileio.alloc(fileio.HUGE_MIN_BYTES)
    # 4 KiB in ~1 us is 4 GB/s, below a rate meant for 2 MiB calls: judged against 2 MiB, it is
    # 2 TB/s, far above this (generous) threshold of 20 GB/s
    monkeypatch.setattr(fileio, "HUGE_MIN_RATE", 20e9)
    arena.populate(0, 4096)  # already in (the probe): the call only walks one page table entry
    assert arena.huge


def test_fast_huge_pages_stay_on(advice, monkeypatch):
    monkeypatch.setattr(fileio, "HUGE_MIN_RATE", 0.0)  # every populate counts as fast
    arena = fileio.alloc(fileio.HUGE_MIN_BYTES)
    arena.populate(0, len(arena.view))
    assert arena.huge and MADV_NOHUGEPAGE not in [what for what, _ in advice]


@pytest.mark.parametrize("rate", [0.0, 1e18], ids=["huge pages kept", "huge pages dropped"])
def test_open_gives_the_same_tensors_with_huge_pages_on_or_dropped(tmp_path, parties,
                                                                    monkeypatch, rate):
    """Huge pages change speed only: the tensors (at their offsets in the aligned view) are
    bit-identical whether the arena kept them, dropped them at the probe, or never had them."""
    state = {"big": torch.randn(3 << 18), "plain": torch.randn(1 << 18), "odd": torch.randn(7)}
    path = tmp_path / "big.lkw"
    W.seal(state, path, [parties["device"].public_key], signing_key=parties["publisher"],
           encrypt=["big", "odd"], chunk_size=1 << 20)
    opened = {}
    for huge_from in (1 << 20, 1 << 60):  # every arena huge, then none
        monkeypatch.setattr(fileio, "HUGE_MIN_BYTES", huge_from)
        monkeypatch.setattr(fileio, "HUGE_MIN_RATE", rate)
        opened[huge_from] = W.open(path, parties["device"].private_key,
                                   signer=parties["publisher"].public_key, workers=2)
    for out in opened.values():
        assert all(torch.equal(out[n], t) for n, t in state.items())


def test_open_never_decrypts_in_place(tmp_path, parties, monkeypatch):
    """``cryptography`` 51 refuses overlapping input and output (in place included): open reads
    each chunk's ciphertext into a buffer of its own and decrypts from there, whatever version
    is installed. Every update's input and output are checked to be disjoint memory."""
    from labkit.weights import aead

    def span(view):
        view = memoryview(view).cast("B")
        start = ctypes.addressof(ctypes.c_char.from_buffer(view)) if len(view) else 0
        return start, start + len(view)

    real, seen = aead.OpenSSLGCM.decryptor, []

    def checking(*args):
        update, finish = real(*args)

        def checked(src, dst):
            (a, b), (c, d) = span(src), span(dst)
            seen.append(len(src))
            assert b <= c or d <= a, "decrypting into the memory it reads from"
            update(src, dst)

        return checked, finish

    monkeypatch.setattr(aead.OpenSSLGCM, "decryptor", staticmethod(checking))
    state = {"big": torch.randn(3 << 18), "odd": torch.randn(7)}
    path = tmp_path / "m.lkw"
    W.seal(state, path, [parties["device"].public_key], signing_key=parties["publisher"],
           chunk_size=1 << 20)
    out = W.open(path, parties["device"].private_key, signer=parties["publisher"].public_key,
                 workers=2, backend="cryptography")
    assert all(torch.equal(out[n], t) for n, t in state.items())
    assert sum(seen) == sum(t.numel() * t.element_size() for t in state.values())
