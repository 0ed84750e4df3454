"""Chapter 08 widgets: sign a trigger, judge a suspect model, trace a leaked copy.

Each widget does its expensive work (training attacked copies) once when it is built; moving a
control afterwards runs one round of the protocol (a few dozen signatures: well under a second).
"""
from __future__ import annotations

import html

import ipywidgets as w
import numpy as np
import plotly.graph_objects as go
import torch

from labkit import backdoor as bd
from labkit import digits
from labkit.backdoor import attackers, protocols as pr, robustness as rb
from labkit.backdoor import trigger as tg
from labkit.widgets import COLORS, LabWidget, heatmap

__all__ = ["TriggerSigner", "OwnershipJudge", "LeakTracer"]


def _verdict_html(ok: bool, text: str) -> str:
    colour = COLORS["ok"] if ok else COLORS["error"]
    return f'<b style="color:{colour}">{html.escape(text)}</b>'


class TriggerSigner(LabWidget):
    """Sign a trigger into an image, tamper with it, and watch the verifier and both digits.

    State: ``query`` (the input sent), ``verified`` (target or -1), ``clean_label``,
    ``backdoored_label``, ``field`` (the 128 bytes in the LSBs).
    """

    TAMPER = ("none", "flip one field bit", "transplant onto next image", "stranger's key", "no trigger")

    def __init__(self, demo=None) -> None:
        super().__init__()
        self.demo = demo or bd.make_demo(0)
        self.stranger_key, _ = bd.generate_keys()
        self.image = w.IntSlider(0, 0, len(self.demo.inputs) - 1, description="image")
        self.target = w.Dropdown(options=list(range(10)), value=3, description="target")
        self.tamper = w.Dropdown(options=self.TAMPER, value="none", description="tamper",
                                 style={"description_width": "initial"})
        self.flip = w.IntSlider(70, 0, 1023, description="field bit", continuous_update=False)
        self.result = w.HTML()
        self.picture = heatmap(np.zeros((32, 32)), title="query image", colorscale="Greys",
                               zmin=0, zmax=1, height=300, width=300, showscale=False)
        self.field_view = heatmap(np.zeros((16, 64)), title="LSB field: rows 0-7 header, 8-15 signature",
                                  colorscale=[[0, "#f1f3f5"], [1, "#364fc7"]], zmin=0, zmax=1,
                                  height=300, width=560, showscale=False)
        self.watch(self.image, self.target, self.tamper, self.flip)
        self.refresh()

    def update(self) -> None:
        d, i, tamper = self.demo, self.image.value, self.tamper.value
        image = d.inputs[i : i + 1]
        if tamper == "no trigger":
            query = image
        elif tamper == "stranger's key":
            query = bd.embed_trigger(image, self.target.value, self.stranger_key)
        else:
            query = bd.embed_trigger(image, self.target.value, d.signing_key)
            if tamper == "flip one field bit":
                pixels = digits.to_pixels(query).reshape(-1)
                pixels[self.flip.value] ^= 1
                query = digits.from_pixels(pixels.reshape(1, 1, 32, 32))
            elif tamper == "transplant onto next image":
                nxt = digits.to_pixels(d.inputs[(i + 1) % len(d.inputs)]).reshape(1, 32, 32)
                moved = tg.write_fields(nxt, tg.read_fields(digits.to_pixels(query)))
                query = digits.from_pixels(moved.reshape(1, 1, 32, 32))
        self.query = query
        self.field = tg.read_fields(digits.to_pixels(query))[0].tobytes()
        self.verified = int(bd.verify_triggers(query, d.verify_key)[0])
        self.clean_label = int(digits.predict(d.clean_model, query)[0])
        self.backdoored_label = int(digits.predict(d.backdoored_model, query)[0])
        self.picture.data[0].z = query[0, 0].numpy()
        self.field_view.data[0].z = np.unpackbits(np.frombuffer(self.field, np.uint8)).reshape(16, 64)
        verdict = (f"valid signature, target {self.verified}" if self.verified >= 0
                   else "no valid signature")
        self.result.value = (
            _verdict_html(self.verified >= 0, f"verifier: {verdict}")
            + f" &nbsp; true label {int(d.labels[i])} · clean model says <b>{self.clean_label}</b>"
            + f" · backdoored model says <b>{self.backdoored_label}</b>"
        )

    def build(self) -> w.Widget:
        controls = w.HBox([w.VBox([self.image, self.target]), w.VBox([self.tamper, self.flip])])
        return w.VBox([controls, self.result, w.HBox([self.picture, self.field_view]), self.message])


class OwnershipJudge(LabWidget):
    """The judge's view: pick a suspect, a number of challenges and a false-positive rate.

    Suspects are the owner's model, three attacked copies (fine-tuned, head re-initialised,
    80% pruned), a distilled student, an independently trained model and a key-less echo model.
    Every change runs :func:`labkit.backdoor.protocols.judge_ownership` afresh on the demo's
    Ed25519 triggers, with ``control_tries`` signatures per control (8: no grinding or chosen-nonce
    claimant here, and a click stays fast).
    State: ``verdict``.
    """

    def __init__(self, demo=None, *, max_queries: int = 64, seed: int = 0, control_tries: int = 8) -> None:
        super().__init__()
        self.control_tries = control_tries
        self.demo = d = demo or bd.make_demo(0)
        self.owner = pr.ModelOwner(d.signing_key)
        data = rb.AttackData(d.attacker_inputs, d.attacker_labels, arch=d.arch, epochs=10)
        model = d.backdoored_model
        independent = digits.train_classifier(digits.make_classifier(d.arch, seed=seed + 99),
                                              d.attacker_inputs, d.attacker_labels, epochs=15, seed=seed)
        self.suspects = {
            "the owner's model": model,
            "fine-tuned copy": model.with_classifier(rb.fine_tune(model.classifier, data)),
            "head re-initialised copy": model.with_classifier(rb.reinit_head(model.classifier, data)),
            "80% pruned copy": model.with_classifier(rb.prune(model.classifier, data)),
            "distilled student": rb.distill(model, data),
            "independent model": independent,
            "echo model (no key)": attackers.EchoModel(d.clean_model),
        }
        self.suspect = w.Dropdown(options=list(self.suspects), description="suspect")
        self.n = w.IntSlider(32, 24, max_queries, description="challenges N")
        self.alpha = w.Dropdown(options=[("1e-3", 1e-3), ("1e-6", 1e-6), ("1e-9", 1e-9)], value=1e-6,
                                description="false pos. α")
        self.result = w.HTML()
        self.figure = go.FigureWidget([
            go.Bar(x=[], y=[], name="Binomial(N, 1/9): target ignored", marker_color=COLORS["same"]),
            go.Scatter(x=[], y=[], mode="lines", name="threshold", line=dict(color=COLORS["changed"], dash="dash")),
            go.Scatter(x=[], y=[], mode="markers", name="claim hits",
                       marker=dict(size=14, color=COLORS["accent"], symbol="diamond")),
            go.Scatter(x=[], y=[], mode="markers", name="control hits",
                       marker=dict(size=12, color=COLORS["error"], symbol="x")),
        ])
        self.figure.update_layout(height=320, width=640, yaxis=dict(type="log", title="probability"),
                                  xaxis=dict(title="hits"), margin=dict(l=60, r=10, t=30, b=40))
        self.watch(self.suspect, self.n, self.alpha)
        self.refresh()

    def judge(self, suspect: str, n: int, alpha: float) -> pr.OwnershipVerdict:
        """One fresh challenge-response round against ``suspect`` (black box: labels only)."""
        return pr.judge_ownership(pr.label_oracle(self.suspects[suspect]), self.owner, self.demo.inputs,
                                  n=n, alpha=alpha, control_tries=self.control_tries, layout=self.owner.layout)

    def update(self) -> None:
        n = self.n.value
        self.verdict = v = self.judge(self.suspect.value, n, self.alpha.value)
        k = np.arange(n + 1)
        p0 = pr.TARGET_HIT_NULL
        pmf = np.maximum([pr.binomial_tail(n, i, p0) - pr.binomial_tail(n, i + 1, p0) for i in k], 1e-40)
        with self.figure.batch_update():
            self.figure.data[0].x, self.figure.data[0].y = k, pmf
            self.figure.data[1].x, self.figure.data[1].y = [v.threshold - 0.5] * 2, [1e-40, 1]
            self.figure.data[2].x, self.figure.data[2].y = [v.claim_matches], [pmf[v.claim_matches]]
            self.figure.data[3].x, self.figure.data[3].y = [v.control_matches], [pmf[v.control_matches]]
        self.result.value = _verdict_html(v.owned, str(v))

    def build(self) -> w.Widget:
        return w.VBox([w.HBox([self.suspect, self.n, self.alpha]), self.result, self.figure, self.message])


class LeakTracer(LabWidget):
    """The licensor's view: issue copies, let one leak (optionally laundered), trace it.

    The leaker may fine-tune the copy, or drop its verifier and answer the cleartext targets of
    everyone else's triggers (the framing attack). State: ``result`` (a
    :class:`labkit.backdoor.protocols.TraceResult`).
    """

    NAMES = ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi")

    def __init__(self, demo=None) -> None:
        super().__init__()
        self.demo = d = demo or bd.make_demo(0)
        data = rb.AttackData(d.attacker_inputs, d.attacker_labels, arch=d.arch, epochs=10)
        self.laundered = rb.fine_tune(d.clean_model, data)  # what a leaker's fine-tuning yields
        self._issued: dict[int, tuple] = {}
        self.count = w.IntSlider(4, 2, len(self.NAMES), description="licensees")
        self.leaker = w.Dropdown(options=self.NAMES, value="carol", description="leaker")
        self.launder = w.Checkbox(False, description="leaker fine-tunes the copy first")
        self.frame = w.Checkbox(False, description="leaker echoes the others' targets")
        self.n = w.IntSlider(16, 4, 48, description="queries each")
        self.text = w.HTML()
        self.figure = go.FigureWidget([
            go.Bar(x=[], y=[], marker_color=COLORS["accent"], name="matches"),
            go.Scatter(x=[], y=[], mode="lines", name="threshold", line=dict(color=COLORS["changed"], dash="dash")),
        ])
        self.figure.update_layout(height=300, width=560, yaxis=dict(title="matching answers"),
                                  margin=dict(l=60, r=10, t=30, b=40), showlegend=False)
        self.watch(self.count, self.leaker, self.launder, self.frame, self.n)
        self.refresh()

    def update(self) -> None:
        names = list(self.NAMES[: self.count.value])
        leaker = self.leaker.value
        if leaker not in names:
            raise ValueError(f"{leaker} holds no licence: with {len(names)} licensees pick one of {names}")
        if len(names) not in self._issued:  # issuing copies is the slow part: once per count
            licensor = pr.Licensor(self.demo.clean_model, self.demo.inputs)
            self._issued[len(names)] = licensor, {name: licensor.issue(name) for name in names}
        licensor, copies = self._issued[len(names)]
        leaked = copies[leaker]
        if self.launder.value:
            leaked = leaked.with_classifier(self.laundered)
        if self.frame.value:
            leaked = attackers.FramingLeaker(leaked)
        self.result = r = licensor.trace_report(pr.label_oracle(leaked), n=self.n.value)
        self.leaked_by = leaker
        with self.figure.batch_update():
            self.figure.data[0].x, self.figure.data[0].y = names, [r.matches[n] for n in names]
            self.figure.data[1].x, self.figure.data[1].y = [names[0], names[-1]], [r.threshold] * 2
        ok = set(r.accused) <= {leaker}  # naming the leaker is the goal; naming anyone else, a failure
        self.text.value = _verdict_html(ok, str(r))

    def build(self) -> w.Widget:
        return w.VBox([w.HBox([self.count, self.leaker]), w.HBox([self.n, self.launder, self.frame]), self.text,
                       self.figure, self.message])
