"""Exercises of chapter 00 (notation)."""
from labkit import bits
from labkit.exercises import exercise


@exercise(
    "00.1",
    "bits of 0xA5, most significant first",
    hint="0xA5 = 1010 0101; the first bit is the most significant bit of the first byte.",
    solution="labkit.bits.bytes_to_bits(bytes([0xA5])).tolist()  # [1, 0, 1, 0, 0, 1, 0, 1]",
)
def _bits_of_a5(answer):
    return list(map(int, answer)) == bits.bytes_to_bits(bytes([0xA5])).tolist()


@exercise(
    "00.2",
    "Hamming distance between 'lab' and 'lap'",
    hint="XOR the two byte strings and count the one bits (labkit.bits.hamming_distance).",
    solution="labkit.bits.hamming_distance(b'lab', b'lap')  # 'b' ^ 'p' = 0x12: 2 bits",
)
def _distance(answer):
    return int(answer) == bits.hamming_distance(b"lab", b"lap")


@exercise(
    "00.3",
    "index of the bit that flip_bit(b'\\x00\\x00', i) sets in 0x0080",
    hint="Bit 0 is the MSB of byte 0; 0x0080 has the MSB of byte 1 set.",
    solution="8: labkit.bits.flip_bit(bytes(2), 8) == bytes([0x00, 0x80])",
)
def _flip_index(answer):
    i = int(answer)
    return 0 <= i < 16 and bits.flip_bit(bytes(2), i) == bytes([0x00, 0x80])
