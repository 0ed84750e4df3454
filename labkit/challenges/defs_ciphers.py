"""Challenge definitions of the classical chapters (02 DES, 03 AES and SPN, 04 modes), service side.

Each secret is drawn from the CSPRNG when an attempt starts and lives in the service's database;
the kernel receives the public part (ciphertexts, known plaintexts) and oracle answers only.
"""
from __future__ import annotations

import secrets

import numpy as np

from labkit import des, des_linear, des_security, gcm, modes, padding_oracle, spn
from labkit.challenges.definitions import Challenge, ChallengeError, as_bytes, as_int, register

#: The public plaintext of exercise 02.3 (only the key is secret).
COMPLEMENT_TARGET = b"target!!"
LINEAR_PAIRS_MAX = 8
SEARCH_UNKNOWN_BITS = 16
SWEET32_BLOCK_BITS = 24
SWEET32_BLOCKS = 1 << 15  # 2^15 blocks of 24 bits: about 32 collisions, half of them useful
SPN_TARGET_MASK = 0x0F0F
MAX_WRONG_SPN = 3
_KNOWN_0403 = b"From: lab-server. Status report, all systems nominal."
_SENT_0406 = (b"user=guest;role=reader;", b"user=carol;role=writer;quota=5", b"user=dave;role=reader;")
_WANTED_0406 = b"user=admin;role=writer;"


def _rows(request, width: int, dtype, what: str) -> np.ndarray:
    array = np.asarray(request)
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2 or array.shape[1] != width or not np.issubdtype(array.dtype, np.integer):
        raise ChallengeError(f"{what} must be an (n, {width}) integer array")
    if array.size and (array.min() < 0 or array.max() > np.iinfo(dtype).max):
        raise ChallengeError(f"{what} values must fit {np.dtype(dtype).name}")
    return array.astype(dtype)


@register
class Complement(Challenge):
    exercise, oracles, run_budget = "02.3", ("encrypt",), 1024

    def new_state(self, token, fresh):
        return {"key": token(8)}, {"target": COMPLEMENT_TARGET}

    def query(self, state, oracle, request, memo):
        return des.encrypt_block(state["key"], as_bytes(request, 8, "DES block"))

    def check(self, state, answer):
        ok = as_bytes(answer) == des.encrypt_block(des.complement(state["key"]), COMPLEMENT_TARGET)
        return ok, ("that is the encryption of the target under ~k" if ok
                    else "that is not DES(~k, target); one oracle query is enough.")


@register
class LinearDes(Challenge):
    exercise = "02.6"

    def new_state(self, token, fresh):
        state = {"key": token(8), "plaintexts": [token(8) for _ in range(LINEAR_PAIRS_MAX)]}
        pairs = [[m, des.encrypt_block(state["key"], m, sboxes=des_linear.LINEAR_SBOXES)] for m in state["plaintexts"]]
        return state, {"pairs": pairs}

    def check(self, state, answer):
        key = as_bytes(answer, 8, "key")
        fresh = [secrets.token_bytes(8) for _ in range(4)]  # plaintexts nobody saw: the key must generalise
        ok = all(des.encrypt_block(key, m, sboxes=des_linear.LINEAR_SBOXES)
                 == des.encrypt_block(state["key"], m, sboxes=des_linear.LINEAR_SBOXES) for m in fresh)
        return ok, ("it encrypts fresh plaintexts exactly like the secret key" if ok
                    else "this key does not reproduce the linear DES on fresh plaintexts.")


@register
class Search(Challenge):
    exercise = "02.7"

    def new_state(self, token, fresh):
        key, plaintext = des.set_parity(token(8)), b"DES 1977"
        public = [plaintext, des.encrypt_block(key, plaintext), des_security.forget_key_bits(key, SEARCH_UNKNOWN_BITS)]
        return {"key": key, "plaintext": plaintext, "ciphertext": public[1]}, public

    def check(self, state, answer):
        if des.encrypt_block(as_bytes(answer, 8, "key"), state["plaintext"]) != state["ciphertext"]:
            return False, "that key does not map the plaintext to the ciphertext."
        return True, "that key maps the plaintext to the ciphertext"


@register
class Sweet32(Challenge):
    exercise = "02.9"
    max_wrong = 10  # a 24-bit cookie: the check must not be a guessing oracle (a new run, a new cookie)

    def new_state(self, token, fresh):
        width = SWEET32_BLOCK_BITS // 8
        raw = token(width * SWEET32_BLOCKS // 2)
        key, iv, cookie = token(16), int.from_bytes(token(width), "big"), int.from_bytes(token(width), "big")
        known = [int.from_bytes(raw[n:n + width], "big") for n in range(0, len(raw), width)]
        plaintext = [block for header in known for block in (header, None)]
        cipher = des_security.ToyBlockCipher(key, SWEET32_BLOCK_BITS)
        ciphertext = des_security.cbc_encrypt(cipher, iv, [cookie if p is None else p for p in plaintext])
        return {"cookie": cookie}, {"block_bits": SWEET32_BLOCK_BITS, "iv": iv, "ciphertext": ciphertext,
                                    "plaintext": plaintext}

    def check(self, state, answer):
        ok = as_int(answer, "cookie") == state["cookie"]
        return ok, "that is the cookie, read from the ciphertext alone" if ok else "that is not the cookie."


@register
class Square(Challenge):
    exercise, oracles, run_budget = "03.6", ("encrypt",), 1 << 16

    def new_state(self, token, fresh):
        return {"key": token(16)}, None

    def query(self, state, oracle, request, memo):
        from labkit import square_attack

        blocks = _rows(request, 16, np.uint8, "plaintexts")
        return square_attack.four_round_oracle(state["key"])(blocks)

    def check(self, state, answer):
        ok = as_bytes(answer, 16, "key") == state["key"]
        return ok, ("the 4-round cipher is broken" if ok else
                    "not the key; check that it encrypts like the oracle (4 rounds) before answering")


@register
class SpnDifferential(Challenge):
    exercise, oracles, run_budget, max_wrong = "03.9", ("encrypt",), 1 << 16, MAX_WRONG_SPN

    def rows(self, oracle, request):
        return int(request.size) if isinstance(request, np.ndarray) else 1

    def new_state(self, token, fresh):
        return {"key": token(spn.KEY_BYTES)}, None

    def query(self, state, oracle, request, memo):
        if type(request) is int:
            if not 0 <= request < 1 << 16:
                raise ChallengeError("a block is a 16-bit int")
            return int(spn.encrypt(state["key"], request))
        blocks = np.asarray(request)
        if blocks.ndim != 1 or not np.issubdtype(blocks.dtype, np.integer) or (
                blocks.size and (blocks.min() < 0 or blocks.max() >= 1 << 16)):
            raise ChallengeError("blocks must be a 16-bit int or a 1-d array of them")
        return np.asarray(spn.encrypt(state["key"], blocks.astype(np.uint16)), dtype=np.uint16)

    def check(self, state, answer):
        value = as_int(answer)
        if value & ~SPN_TARGET_MASK:
            return False, "answer with nibbles 2 and 4 of K5 only: a 16-bit int like 0x0a0b (nibbles 1 and 3 zero)."
        ok = value == spn.round_keys(state["key"])[4] & SPN_TARGET_MASK
        return ok, ("8 bits of this run's last round key recovered" if ok else
                    "not this run's key bits: are the pairs chosen with the right input difference, "
                    "and is the top count well above the others?")


@register
class Keystream(Challenge):
    exercise = "04.3"

    def new_state(self, token, fresh):
        key, counter = token(16), token(12) + bytes(4)
        message = b"The exam answers are in folder " + token(8).hex().encode() + b"."
        return {"message": message}, {"ct1": modes.ctr_encrypt(key, counter, _KNOWN_0403),
                                      "ct2": modes.ctr_encrypt(key, counter, message),
                                      "known_plaintext1": _KNOWN_0403}

    def check(self, state, answer):
        return as_bytes(answer) == state["message"], ""


@register
class Forgery(Challenge):
    exercise = "04.6"

    def new_state(self, token, fresh):
        key, nonce = token(16), token(12)
        public = {"nonce": nonce}
        for i, msg in enumerate(_SENT_0406, start=1):
            public[f"ct{i}"], public[f"tag{i}"] = gcm.encrypt(key, nonce, msg, b"v1")
            public[f"aad{i}"] = b"v1"
        # CTR malleability: flipping ciphertext bits flips the same plaintext bits
        public["target_ciphertext"] = bytes(c ^ p ^ q for c, p, q in zip(public["ct1"], _SENT_0406[0], _WANTED_0406))
        public["target_aad"] = b"v1"
        return {"key": key, "nonce": nonce, "target": public["target_ciphertext"]}, public

    def check(self, state, answer):
        from Crypto.Cipher import AES

        cipher = AES.new(state["key"], AES.MODE_GCM, nonce=state["nonce"])
        cipher.update(b"v1")
        try:
            cipher.decrypt_and_verify(state["target"], as_bytes(answer, 16, "tag"))
        except ValueError:
            return False, "the server (pycryptodome, with this run's key) rejects that tag"
        return True, "the server (pycryptodome, with this run's key) accepted the forged message"


@register
class PaddingOracle(Challenge):
    exercise, oracles, run_budget = "04.10", ("padding",), 1 << 16

    def new_state(self, token, fresh):
        # 35 + filler bytes: a padding of 1 to 8 bytes, different from run to run, so the last block
        # (the answer) always holds at least 8 of the 16 random hex digits that end the message
        filler = 5 + token(1)[0] % 8
        key, iv = token(16), token(16)
        message = b"x" * filler + b"grade:" + token(4).hex().encode() + b";pin=" + token(8).hex().encode()
        ciphertext = modes.cbc_encrypt(key, iv, modes.pkcs7_pad(message))
        return {"key": key, "message": message}, {"iv": iv, "ciphertext": ciphertext}

    def query(self, state, oracle, request, memo):
        if not (isinstance(request, list) and len(request) == 2):
            raise ChallengeError("a padding query is [iv, ciphertext]")
        server = memo.get("server") or memo.setdefault("server", padding_oracle.CbcPaddingServer(state["key"]))
        try:
            return bool(server(as_bytes(request[0], 16, "iv"), as_bytes(request[1], what="ciphertext")))
        except ValueError as err:
            raise ChallengeError(str(err)) from None

    def check(self, state, answer):
        return as_bytes(answer, 16, "block") == modes.pkcs7_pad(state["message"])[-modes.BLOCK_SIZE:], ""
