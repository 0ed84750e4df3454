"""Chapter 09 views: a container inspector (flip a byte, watch the load fail), the envelope of
keys of a sealed file, the tamper trials a device must survive, and a CoreLocker slider (withhold
more weights, watch the locked model's accuracy fall)."""
from __future__ import annotations

import html
import tempfile
from dataclasses import dataclass
from pathlib import Path

import ipywidgets as w
import numpy as np
import plotly.graph_objects as go
import torch

from labkit import digits, weights
from labkit.weights import selective
from labkit.weights.format import file_regions
from labkit.widgets import COLORS, LabWidget

__all__ = ["ContainerInspector", "WithholdingView", "envelope_figure", "TamperTrial", "tamper_trials",
           "format_trials"]


_KIND_COLOURS = {"length": "#868e96", "header": COLORS["accent"], "chunk": "#2b8a3e",
                 "plain": COLORS["right"], "encrypted": "#2b8a3e"}


class ContainerInspector(LabWidget):
    """Look inside a sealed file: header, tensors, nonces, tags; flip bytes and try to open it
    (pinning ``signer``, the publisher's public key, as a device does).

    State: ``header`` (parsed), ``data`` (the current, possibly modified bytes), ``flipped``
    (offsets flipped so far), ``region`` (label of the region under the cursor), ``status``
    (``"opened"`` or the exception's class name) and ``status_message``.
    """

    def __init__(self, path, private_key, *, signer) -> None:
        super().__init__()
        self._weights = weights
        self.path = Path(path)
        self.private_key = private_key
        self.signer = signer
        self.original = self.path.read_bytes()
        self.data = bytearray(self.original)
        self.header = weights.read_header(self.path)
        self.regions = file_regions(self.header)
        self.flipped: list[int] = []
        self.status = ""
        self.status_message = ""
        self.region = ""
        self._tmp = tempfile.TemporaryDirectory(prefix="labkit-inspector-")

        self.offset = w.IntSlider(value=0, min=0, max=len(self.original) - 1,
                                  description="byte offset", continuous_update=False,
                                  layout=w.Layout(width="60em"))
        self.jump = w.Dropdown(options=[(r[0], r[1]) for r in self.regions],
                               description="jump to", layout=w.Layout(width="40em"))
        self.flip_button = w.Button(description="flip this byte", button_style="danger")
        self.reset_button = w.Button(description="restore the file")
        self.cursor = w.HTML()
        self.result = w.HTML()
        self.table = w.HTML(self._header_html())
        self.figure = go.FigureWidget()
        for label, a, b, kind in self.regions:
            self.figure.add_bar(x=[b - a], y=["file"], base=[a], orientation="h",
                                marker_color=_KIND_COLOURS[kind], name=label, hovertext=label,
                                showlegend=False)
        self.figure.add_scatter(x=[0], y=["file"], mode="markers", name="cursor",
                                marker=dict(symbol="triangle-down", size=16, color="black"),
                                showlegend=False)
        self.figure.add_scatter(x=[], y=[], mode="markers", name="flipped",
                                marker=dict(symbol="x", size=14, color=COLORS["error"]),
                                showlegend=False)
        self.figure.update_layout(height=170, margin=dict(l=40, r=10, t=30, b=30), barmode="overlay",
                                  title="file layout (grey: length, blue: header, green: "
                                        "encrypted chunks, orange: plaintext)",
                                  xaxis_title="byte offset")
        self.jump.observe(lambda change: setattr(self.offset, "value", change["new"]), "value")
        self.flip_button.on_click(lambda _: self.flip(self.offset.value))
        self.reset_button.on_click(lambda _: self.reset())
        self.watch(self.offset)
        self.refresh()
        self._try_open()

    # -- actions ------------------------------------------------------------------------------
    def flip(self, offset: int) -> None:
        """Flip the lowest bit of one byte and try to open the modified file."""
        if not 0 <= offset < len(self.data):
            raise ValueError(f"offset must be in [0, {len(self.data) - 1}], got {offset}")
        self.data[offset] ^= 0x01
        if offset in self.flipped:
            self.flipped.remove(offset)
        else:
            self.flipped.append(offset)
        self._try_open()
        self.refresh()

    def reset(self) -> None:
        self.data = bytearray(self.original)
        self.flipped = []
        self._try_open()
        self.refresh()

    def _try_open(self) -> None:
        path = Path(self._tmp.name) / self.path.name
        path.write_bytes(self.data)
        try:
            tensors = self._weights.open(path, self.private_key, signer=self.signer)
        except self._weights.WeightsError as err:
            self.status, self.status_message = type(err).__name__, str(err)
            colour, text = COLORS["error"], f"&#10008; refused: <b>{self.status}</b>: "
        else:
            self.status = "opened"
            self.status_message = f"{len(tensors)} tensors verified and decrypted"
            colour, text = COLORS["ok"], "&#10004; "
        self.result.value = (f'<span style="color:{colour}">{text}'
                             f"{html.escape(self.status_message)}</span>")

    # -- view ---------------------------------------------------------------------------------
    def update(self) -> None:
        offset = self.offset.value
        label, kind, extra = "", "", ""
        for name, a, b, k in self.regions:
            if a <= offset < b:
                label, kind = name, k
                if k == "chunk":
                    tensor, _, index = name.rpartition(" chunk ")
                    t = self.header.parsed.tensor(tensor)
                    nonce = self._weights.chunk_nonce(t.nonce_base, int(index))
                    extra = (f" &middot; nonce <code>{nonce.hex()}</code> &middot; tag "
                             f"<code>{t.tags[int(index)].hex()}</code>")
                break
        self.region = label
        self.cursor.value = (f"offset {offset}: byte <code>{self.data[offset]:02x}</code> in "
                             f"<b>{html.escape(label)}</b>{extra}")
        with self.figure.batch_update():
            self.figure.data[-2].x = [offset]
            self.figure.data[-1].x = list(self.flipped)
            self.figure.data[-1].y = ["file"] * len(self.flipped)

    def _header_html(self) -> str:
        m = self.header.parsed
        rows = []
        for t in m.tensors:
            if t.encrypted:
                detail = (f"nonce base <code>{t.nonce_base.hex()}</code>, {len(t.tags)} chunk(s), "
                          f"tag 0 <code>{t.tags[0].hex()[:16]}&hellip;</code>")
            else:
                detail = f"SHA-256 <code>{t.sha256.hex()[:16]}&hellip;</code>"
            rows.append(f"<tr><td><code>{html.escape(t.name)}</code></td><td>{t.dtype}</td>"
                        f"<td>{list(t.shape)}</td><td>{'AES-GCM' if t.encrypted else 'plain'}"
                        f"</td><td>{detail}</td></tr>")
        recips = ", ".join(f"{r.type} <code>{r.kid.hex()}</code>" for r in m.recipients)
        return (f"<div style='font-size:90%'><b>model</b> <code>{html.escape(m.model_id)}"
                f"</code> version {m.version} &middot; chunk {m.chunk_size} bytes &middot; "
                f"signer <code>{m.signer.hex()[:16]}&hellip;</code> &middot; recipients: {recips}"
                "<table><tr><th>tensor</th><th>dtype</th><th>shape</th><th>mode</th>"
                f"<th>nonces and tags</th></tr>{''.join(rows)}</table></div>")

    def build(self) -> w.Widget:
        return w.VBox([self.table, self.jump, self.offset, self.cursor,
                       w.HBox([self.flip_button, self.reset_button]), self.result,
                       self.figure, self.message])


def envelope_figure(header, *, root: str = "device key", height: int = 420) -> go.FigureWidget:
    """The envelope of a sealed file as a sunburst: the device key opens the content key, which
    unwraps one DEK per encrypted tensor, which opens that tensor's GCM chunks (sized in bytes).

    Built from the header alone (:func:`labkit.weights.file_regions`), so it shows the structure an
    attacker sees too; plaintext tensors hang under no key and are left out.
    """
    labels, parents, values = [root, "content key"], ["", root], [0, 0]
    for label, start, end, kind in file_regions(header):
        if kind != "chunk":
            continue
        tensor = label.rpartition(" chunk ")[0]
        if f"DEK {tensor}" not in labels:
            labels.append(f"DEK {tensor}"); parents.append("content key"); values.append(0)
        labels.append(label); parents.append(f"DEK {tensor}"); values.append(end - start)
    fig = go.FigureWidget(go.Sunburst(labels=labels, parents=parents, values=values, branchvalues="remainder"))
    fig.update_layout(height=height, margin=dict(l=0, r=0, t=30, b=0), title="envelope: one key opens the next")
    return fig


@dataclass(frozen=True)
class TamperTrial:
    """One change an attacker makes to a sealed file, and the device's answer: ``outcome`` is
    ``"opened"`` or the refusal's class name (a :class:`labkit.weights.WeightsError`)."""

    label: str
    outcome: str
    detail: str


def tamper_trials(path, device, *, signer, model_id: str | None = None,
                  min_version: int | None = None) -> list[TamperTrial]:
    """Attack a sealed file every way chapter 09 names, opening each result as the device would.

    ``device`` is the recipient's key pair (:func:`labkit.weights.generate_recipient_keypair`);
    the device pins ``signer`` and expects ``model_id`` and at least ``min_version`` (default: the
    genuine file's own). The trials, in order: the file as sealed (the control: it must open);
    one flipped byte at the start of every region of the file (length, header, each chunk, each
    plaintext tensor); the file truncated by one byte; one byte appended; the first two chunks of a
    tensor swapped; another device's key; a device that already runs a later version (the file
    replayed); and a file sealed by an outsider who knows only the device's public key, claiming
    version 10^9. Authenticated encryption with a signed, MAC'd header refuses all but the control
    (the AEAD and envelope design of the CryptoTensors format, arXiv 2512.04580, with the gaps
    it leaves closed).
    """
    path = Path(path)
    original = path.read_bytes()
    header = weights.read_header(path)
    model_id = header.model_id if model_id is None else model_id
    min_version = header.version if min_version is None else min_version
    regions = file_regions(header)
    with tempfile.TemporaryDirectory(prefix="labkit-tamper-") as tmp:
        target = Path(tmp) / path.name

        def attempt(label, data=original, key=device.private_key, version=min_version):
            target.write_bytes(data)
            try:
                weights.open(target, key, signer=signer, model_id=model_id, min_version=version)
            except weights.WeightsError as err:
                return TamperTrial(label, type(err).__name__, str(err))
            return TamperTrial(label, "opened", "the device accepted the file")

        def flipped(offset):
            data = bytearray(original)
            data[offset] ^= 0x01
            return bytes(data)

        trials = [attempt("the file as sealed (control)")]
        trials += [attempt(f"flip first byte of {label}", flipped(start)) for label, start, _, _ in regions]
        trials.append(attempt("truncate inside the last tensor", original[:-1]))
        trials.append(attempt("append one byte", original + b"0"))
        chunks = [(label.rpartition(" chunk ")[0], int(label.rpartition(" chunk ")[2]), start, end)
                  for label, start, end, kind in regions if kind == "chunk"]
        pair = next(((a, b) for a, b in zip(chunks, chunks[1:])  # two neighbours of one tensor, one size
                     if a[0] == b[0] and a[3] - a[2] == b[3] - b[2]), None)
        if pair is not None:
            (tensor, i, a, mid), (_, j, _, b) = pair
            swapped = original[:a] + original[mid:b] + original[a:mid] + original[b:]
            trials.append(attempt(f"swap chunks {i} and {j} of {tensor}", swapped))
        trials.append(attempt("a different device key", key=weights.generate_recipient_keypair().private_key))
        trials.append(attempt(f"device expects version >= {min_version + 1} (replayed old file)",
                              version=min_version + 1))
        outsider = Path(tmp) / "outsider.lkw"
        weights.seal({t.name: torch.zeros(t.shape, dtype=weights.DTYPES[t.dtype]) for t in header.parsed.tensors},
                     outsider, [device.public_key], signing_key=weights.generate_signing_keypair(),
                     model_id=model_id, version=10**9)
        trials.append(attempt("whole file sealed by an outsider (version 10^9)", outsider.read_bytes()))
    return trials


def format_trials(trials: list[TamperTrial]) -> str:
    """One aligned line per trial: what the attacker did, and the device's answer."""
    width = max(len(t.label) for t in trials)
    return "\n".join(f"{t.label:{width}s} -> {t.outcome}" for t in trials)


class WithholdingView(LabWidget):
    """Withhold a fraction of a model's weights as a key (CoreLocker-style) and compare the
    accuracy of the public locked model with the model restored from the key.

    State: ``fraction``, ``by``, ``locked_accuracy``, ``restored_accuracy``, ``key_fraction``.
    """

    def __init__(self, task) -> None:
        super().__init__()
        self._sel, self._accuracy = selective, digits.accuracy
        self.task = task
        self.base_accuracy = digits.accuracy(task.model, task.x_test, task.y_test)
        self.slider = w.FloatLogSlider(value=0.01, base=10, min=-3, max=-0.7, step=0.05,
                                       description="withheld", readout_format=".3f",
                                       continuous_update=False)
        self.by = w.ToggleButtons(options=["magnitude", "channel"], description="by")
        self.figure = go.FigureWidget(go.Bar(
            x=["full model", "locked (public)", "locked + key"], y=[0, 0, 0],
            marker_color=[COLORS["accent"], COLORS["error"], COLORS["ok"]]))
        self.figure.update_layout(height=300, yaxis=dict(range=[0, 1], title="test accuracy"),
                                  margin=dict(l=50, r=10, t=30, b=30))
        self.info = w.HTML()
        self.watch(self.slider, self.by)
        self.refresh()

    def update(self) -> None:
        self.fraction, self.by_value = self.slider.value, self.by.value
        locked, key = self._sel.withhold(self.task.model, self.fraction, by=self.by_value)
        t = self.task
        self.locked_accuracy = self._accuracy(t.model, t.x_test, t.y_test, locked)
        self.restored_accuracy = self._accuracy(t.model, t.x_test, t.y_test,
                                                self._sel.restore(locked, key))
        self.key_fraction = self._sel.key_size(key, locked)
        self.figure.data[0].y = [self.base_accuracy, self.locked_accuracy, self.restored_accuracy]
        self.info.value = (f"the key holds {np.round(100 * self.key_fraction, 2)}% of the "
                           f"values; without it accuracy is {self.locked_accuracy:.3f}")

    def build(self) -> w.Widget:
        return w.VBox([w.HBox([self.slider, self.by]), self.info, self.figure, self.message])
