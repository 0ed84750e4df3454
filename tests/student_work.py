"""Shared by the tests that play a student: a correct answer cell of exercise 03.1 (GF(2^8)
multiplication written from scratch, as the sandboxed grader receives it) and the text a
notebook cell printed."""

GF_MULTIPLY = """
def gf_multiply(a, b):
    product = 0
    for _ in range(8):
        if b & 1:
            product ^= a
        a = ((a << 1) ^ (0x1B if a & 0x80 else 0)) & 0xFF
        b >>= 1
    return product
"""


def output_text(outputs) -> str:
    """What a code cell's outputs say: its streams and the plain-text form of its results."""
    parts = []
    for out in outputs:
        if out.get("output_type") == "stream":
            parts.append(out.get("text", ""))
        elif "data" in out:
            parts.append(str(out["data"].get("text/plain", "")))
    return "".join(parts)
