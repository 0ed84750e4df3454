"""Chapter 04 views: ECB's pattern leakage on an image, and a GCM nonce-reuse playground."""
from __future__ import annotations

import html

import ipywidgets as w
import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from labkit import bits, gcm, modes
from labkit.widgets import COLORS, LabWidget, heatmap

__all__ = ["demo_image", "encrypt_image", "ModeImageView", "NonceReusePlayground"]


def demo_image(size: int = 128) -> np.ndarray:
    """A grayscale test picture drawn in code (uint8 (size, size)): flat regions like a logo,
    so many 16-pixel runs repeat, as in the classic ECB penguin."""
    if size % 16 or size < 32:
        raise ValueError(f"size must be a multiple of 16 and at least 32, got {size}")
    y, x = np.mgrid[0:size, 0:size] / size
    img = np.full((size, size), 235, dtype=np.uint8)
    ring = np.hypot(x - 0.5, y - 0.45)
    img[ring < 0.36] = 40  # a dark disc
    img[ring < 0.26] = 200  # a light face
    img[(np.hypot(x - 0.4, y - 0.38) < 0.05) | (np.hypot(x - 0.6, y - 0.38) < 0.05)] = 40  # eyes
    img[(np.abs(y - 0.55) < 0.03) & (np.abs(x - 0.5) < 0.14)] = 110  # mouth
    img[y > 0.86] = 90  # a band at the bottom
    img[(y > 0.9) & ((x * 8).astype(int) % 2 == 0)] = 160  # stripes
    return img


def encrypt_image(image: np.ndarray, mode: str, key: bytes, iv: bytes = bytes(16)) -> np.ndarray:
    """Encrypt the image's bytes (row by row) with ECB, CBC or CTR and return them as an image."""
    data = np.ascontiguousarray(image, dtype=np.uint8).tobytes()
    if mode == "ECB":
        out = modes.ecb_encrypt(key, data)
    elif mode == "CBC":
        out = modes.cbc_encrypt(key, iv, data)
    elif mode == "CTR":
        out = modes.ctr_encrypt(key, iv, data)
    else:
        raise ValueError(f"mode must be 'ECB', 'CBC' or 'CTR', got {mode!r}")
    return np.frombuffer(out, dtype=np.uint8).reshape(image.shape)


class ModeImageView(LabWidget):
    """The picture and its encryption side by side; ECB keeps the outline visible.

    State: ``encrypted`` (the current image) and ``distinct_blocks`` per mode.
    """

    def __init__(self, image: np.ndarray | None = None, key: bytes = bytes(range(16))) -> None:
        super().__init__()
        self.image = demo_image() if image is None else np.asarray(image, dtype=np.uint8)
        self.mode = w.ToggleButtons(options=["ECB", "CBC", "CTR"], value="ECB", description="mode")
        self.by_mode = {m: encrypt_image(self.image, m, key) for m in self.mode.options}
        self.distinct_blocks = {m: len(set(modes.split_blocks(img.tobytes())))
                                for m, img in self.by_mode.items()}
        self.figure = go.FigureWidget(make_subplots(rows=1, cols=2, subplot_titles=("plaintext", "ciphertext")))
        for col, img in ((1, self.image), (2, self.image)):
            self.figure.add_trace(go.Heatmap(z=img, colorscale="Gray", showscale=False, zmin=0, zmax=255),
                                  row=1, col=col)
            self.figure.update_yaxes(autorange="reversed", scaleanchor=f"x{col if col > 1 else ''}",
                                     showticklabels=False, row=1, col=col)
            self.figure.update_xaxes(showticklabels=False, row=1, col=col)
        self.figure.update_layout(height=380, width=760, margin=dict(l=10, r=10, t=40, b=10))
        self.info = w.HTML()
        self.encrypted = None
        self.watch(self.mode)
        self.refresh()

    def update(self) -> None:
        self.encrypted = self.by_mode[self.mode.value]
        with self.figure.batch_update():
            self.figure.data[1].z = self.encrypted
        total = self.image.size // 16
        self.info.value = (f"{self.mode.value}: {self.distinct_blocks[self.mode.value]} distinct ciphertext "
                           f"blocks out of {total} (the plaintext has "
                           f"{len(set(modes.split_blocks(self.image.tobytes())))})")

    def build(self) -> w.Widget:
        return w.VBox([self.mode, self.info, self.message, self.figure])


class NonceReusePlayground(LabWidget):
    """Type two messages; encrypt them with AES-GCM under one key, with the same nonce or not.

    With a reused nonce the keystreams cancel: ``ct_xor == pt_xor``, and knowing message 1 reveals
    message 2 (``recovered``). The button runs the forbidden attack: ``candidates`` for H and a
    forged tag for a modified message 1 (``forgery_accepted``).
    """

    MAX_LENGTH = 256

    def __init__(self, message1: str = "Pay Alice 100 EUR. Regards, Bob",
                 message2: str = "Meet at the lab at nine tonight", seed: int = 0) -> None:
        super().__init__()
        rng = np.random.default_rng(seed)
        self.key, self.nonce, self.other_nonce = rng.bytes(16), rng.bytes(12), rng.bytes(12)
        self.box1 = w.Text(value=message1, description="message 1", continuous_update=False,
                           layout=w.Layout(width="40em"))
        self.box2 = w.Text(value=message2, description="message 2", continuous_update=False,
                           layout=w.Layout(width="40em"))
        self.reuse = w.Checkbox(value=True, description="reuse the nonce")
        self.attack_button = w.Button(description="recover H and forge", button_style="warning")
        self.attack_button.on_click(lambda _: self.run_attack())
        self.figure = heatmap(np.zeros((2, 1)), y=["C1 xor C2", "P1 xor P2"], colorscale="Purples",
                              zmin=0, zmax=255, height=200, showscale=False,
                              title="ciphertext XOR vs plaintext XOR (bytes)")
        self.leak = w.HTML()
        self.attack_output = w.HTML()
        self.ct1 = self.ct2 = self.tag1 = self.tag2 = None
        self.ct_xor = self.pt_xor = self.recovered = None
        self.candidates: list[bytes] = []
        self.forgery_accepted = None
        self.watch(self.box1, self.box2, self.reuse)
        self.refresh()

    def _message(self, box: w.Text, what: str) -> bytes:
        data = box.value.encode("utf-8")
        if not data:
            raise ValueError(f"{what} must not be empty")
        if len(data) > self.MAX_LENGTH:
            raise ValueError(f"{what} must be at most {self.MAX_LENGTH} bytes (the attack's cost grows "
                             f"with length), got {len(data)}")
        return data

    def update(self) -> None:
        p1, p2 = self._message(self.box1, "message 1"), self._message(self.box2, "message 2")
        nonce2 = self.nonce if self.reuse.value else self.other_nonce
        self.p1, self.p2 = p1, p2
        self.ct1, self.tag1 = gcm.encrypt(self.key, self.nonce, p1)
        self.ct2, self.tag2 = gcm.encrypt(self.key, nonce2, p2)
        n = min(len(p1), len(p2))
        self.ct_xor = bits.xor_bytes(self.ct1[:n], self.ct2[:n])
        self.pt_xor = bits.xor_bytes(p1[:n], p2[:n])
        self.recovered = bits.xor_bytes(self.ct_xor, p1[:n])  # attacker knows message 1
        self.candidates, self.forgery_accepted = [], None
        self.attack_output.value = ""
        with self.figure.batch_update():
            self.figure.data[0].z = np.array([list(self.ct_xor), list(self.pt_xor)])
        same = self.ct_xor == self.pt_xor
        text = self.recovered.decode("utf-8", errors="replace")
        self.leak.value = (
            f"C1 xor C2 {'<b>equals</b>' if same else 'differs from'} P1 xor P2. "
            f"Knowing message 1, the attacker reads message 2 as: "
            f"<code style='color:{COLORS['ok' if same else 'error']}'>{html.escape(text)}</code>"
        )

    def run_attack(self) -> None:
        """The forbidden attack on the two current messages (about a second for 256 bytes)."""
        if self.error or self.ct1 is None:
            return
        self.candidates = gcm.recover_auth_key(self.ct1, self.tag1, self.ct2, self.tag2)
        true_h = gcm.auth_key(self.key)
        forged_ct = bits.xor_bytes(self.ct1[:1], b"\x01") + self.ct1[1:]  # flip one bit of message 1
        self.forgery_accepted = False
        for h in self.candidates:
            tag = gcm.forge_tag(h, b"", self.ct1, self.tag1, forged_ct)
            try:
                gcm.decrypt(self.key, self.nonce, forged_ct, tag)
            except gcm.AuthenticationError:
                continue
            self.forgery_accepted = True
        verdict = (f"<b style='color:{COLORS['error']}'>forged tag accepted</b>" if self.forgery_accepted
                   else f"<b style='color:{COLORS['ok']}'>no forgery</b> (different nonces: H is not a root)")
        self.attack_output.value = (
            f"{len(self.candidates)} candidate(s) for H; the true H is "
            f"{'among them' if true_h in self.candidates else 'not among them'}; {verdict}")

    def build(self) -> w.Widget:
        return w.VBox([self.box1, self.box2, self.reuse, self.message, self.leak, self.figure,
                       self.attack_button, self.attack_output])
