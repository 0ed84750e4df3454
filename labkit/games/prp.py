"""PRP and PRF games: the real cipher under a fresh key, or an ideal object drawn at random.

PRP game (Boneh-Shoup ch. 4): the adversary queries ``encrypt`` (and, for a strong PRP,
``decrypt``) of either the cipher under a random key (b = 1) or a uniformly random permutation
(b = 0), and guesses b. PRF game (ch. 4): the same against a uniformly random *function*. A
permutation on n-bit blocks loses the PRF game after about 2^(n/2) queries (it never collides,
a random function does: the PRP/PRF switching lemma, advantage <= q^2 / 2^(n+1)), which is why
a block cipher on small blocks is a poor PRF.

The Feistel family generalises :func:`labkit.feistel.measure_advantage`: ``rounds`` independent
uniformly random round functions on ``half_bits``-bit halves (Luby and Rackoff, SIAM J. Comput.
17(2), 1988: 3 rounds are a PRP, 4 a strong PRP), sampled lazily from the state's seed. The AES
family is AES-128 (FIPS 197) under a fresh key, through pycryptodome.
"""
from __future__ import annotations

import secrets
from functools import partial

import numpy as np
from Crypto.Cipher import AES

from labkit import feistel
from labkit.games import Game, GameError, as_bit, count_query, finish_once, new_state, random_bytes

__all__ = ["prp_game", "prf_game", "feistel_adversary", "collision_adversary", "FAMILIES"]

FAMILIES = ("feistel", "aes")


def _rand_int(state: dict, bits: int) -> int:
    return int.from_bytes(random_bytes(state, (bits + 7) // 8), "big") >> (-bits % 8)


def _lazy(state: dict, table: str, x: int, bits: int, used: str | None = None) -> int:
    """``state[table][x]``, drawn uniformly on first use (avoiding the values of ``state[used]``,
    keys of the inverse table, when a permutation is sampled)."""
    tab = state[table]
    if x not in tab:
        y = _rand_int(state, bits)
        while used is not None and y in state[used]:
            y = _rand_int(state, bits)
        tab[x] = y
        if used is not None:
            state[used][y] = x
    return tab[x]


def _block(request: tuple, bits: int, aes: bool):
    if len(request) != 1:
        raise GameError(f"the oracle takes one block, got {len(request)} arguments")
    (x,) = request
    if aes:
        if not isinstance(x, (bytes, bytearray)) or len(x) != 16:
            raise GameError("AES blocks are 16 bytes")
        return bytes(x)
    if isinstance(x, bool) or not isinstance(x, int) or not 0 <= x < 1 << bits:
        raise GameError(f"blocks are ints in [0, 2^{bits})")
    return x


def _real(state: dict, x, inverse: bool):
    p = state["params"]
    if p["family"] == "aes":
        cipher = AES.new(state["key"], AES.MODE_ECB)
        return cipher.decrypt(x) if inverse else cipher.encrypt(x)
    n = p["half_bits"]
    rounds = [partial(_lazy, state, f"f{i}", bits=n) for i in range(p["rounds"])]
    net = feistel.Feistel([lambda v, g=g: g(v) for g in rounds], n)
    return net.decrypt(x) if inverse else net.encrypt(x)


def _ideal(state: dict, x, inverse: bool):
    p = state["params"]
    aes = p["family"] == "aes"
    bits = 128 if aes else 2 * p["half_bits"]
    key = int.from_bytes(x, "big") if aes else x
    if p["ideal"] == "function":
        y = _lazy(state, "fwd", key, bits)
    elif inverse:
        y = _lazy(state, "bwd", key, bits, used="fwd")
    else:
        y = _lazy(state, "fwd", key, bits, used="bwd")
    return y.to_bytes(16, "big") if aes else y


def _new(params: dict, token_bytes) -> dict:
    state = new_state(token_bytes, params=params, fwd={}, bwd={},
                      **{f"f{i}": {} for i in range(params.get("rounds", 0))})
    if params["family"] == "aes":
        state["key"] = token_bytes(16)
    return state


def _oracle(state: dict, name: str, request: tuple):
    p = state["params"]
    if name not in p["oracles"]:
        raise GameError(f"this game has the oracles {p['oracles']}, not {name!r}")
    count_query(state, name, p["budget"])
    aes = p["family"] == "aes"
    x = _block(request, 128 if aes else 2 * p.get("half_bits", 0), aes)
    inverse = name == "decrypt"
    return _real(state, x, inverse) if state["b"] else _ideal(state, x, inverse)


def _finish(state: dict, guess) -> bool:
    finish_once(state)
    return as_bit(guess) == state["b"]


def _game(family: str, rounds: int, half_bits: int, ideal: str, oracles: tuple, budget):
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int) or budget < 1):
        raise ValueError(f"budget must be a positive int or None, got {budget!r}")
    public = {"family": family, "oracles": oracles, "budget": budget}
    if family == "feistel":
        if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
            raise ValueError(f"rounds must be a positive int, got {rounds!r}")
        feistel.Feistel([abs], half_bits)  # validates half_bits
        public.update(rounds=rounds, half_bits=half_bits, block_bits=2 * half_bits)
    else:
        public.update(block_bytes=16)
    params = dict(public, ideal=ideal)
    what = f"{rounds}-round Feistel on {2 * half_bits}-bit blocks" if family == "feistel" else "AES-128"
    return Game(f"{'PRP' if ideal == 'permutation' else 'PRF'}: {what}"
                + (" (encrypt and decrypt)" if "decrypt" in oracles else ""),
                "distinguish", oracles, public, partial(_new, params), _oracle, _finish,
                f"b = 1: {what} under fresh random round functions or key; b = 0: a uniformly random "
                f"{ideal}. Guess b.")


def prp_game(family: str = "feistel", *, rounds: int = 3, half_bits: int = 16, strong: bool = False,
             budget: int | None = None) -> Game:
    """The (strong, with ``strong=True``: decryption queries too) PRP game of ``family``."""
    return _game(family, rounds, half_bits, "permutation",
                 ("encrypt", "decrypt") if strong else ("encrypt",), budget)


def prf_game(family: str = "feistel", *, rounds: int = 4, half_bits: int = 8,
             budget: int | None = None) -> Game:
    """The PRF game of ``family``: the permutation against a uniformly random function. The oracle
    is called ``encrypt`` as in the PRP game."""
    return _game(family, rounds, half_bits, "function", ("encrypt",), budget)


def feistel_adversary(distinguisher):
    """An adversary for :func:`prp_game` from a distinguisher of :mod:`labkit.feistel`
    (``distinguisher(oracle, half_bits, rng) -> bool``, True for "Feistel")."""
    def adversary(oracles):
        rng = np.random.default_rng(secrets.randbits(128))
        return int(bool(distinguisher(oracles, oracles.public["half_bits"], rng)))

    return adversary


def collision_adversary(queries: int):
    """The birthday adversary of the PRF game: ``queries`` distinct inputs; any two equal outputs
    say "random function" (a permutation never collides). Advantage about 1 - exp(-q^2 / 2^(n+1))."""
    def adversary(oracles):
        bits = oracles.public.get("block_bits", 128)
        outputs = set()
        for x in range(queries):
            y = oracles.encrypt(x if bits != 128 else x.to_bytes(16, "big"))
            if y in outputs:
                return 0
            outputs.add(y)
        return 1

    return adversary
