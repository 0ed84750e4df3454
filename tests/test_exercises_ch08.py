"""Chapter 08 exercise checks accept the worked solutions and reject near misses."""
import numpy as np
import torch

from labkit import backdoor as bd
from labkit import exercises as ex
from labkit import digits
from labkit.backdoor import trigger as tg


def test_threshold_and_query_count():
    assert ex.check("08.1", 11) and not ex.check("08.1", 10) and not ex.check("08.1", 12)
    assert ex.check("08.2", 7) and not ex.check("08.2", 6) and not ex.check("08.2", 8)


def test_trigger_and_transplant():
    demo = bd.make_demo(0)
    good = bd.embed_trigger(demo.inputs[0], 3, demo.signing_key)
    assert ex.check("08.3", good)
    assert not ex.check("08.3", bd.embed_trigger(demo.inputs[0], 4, demo.signing_key))
    assert not ex.check("08.3", bd.embed_trigger(demo.inputs[1], 3, demo.signing_key))
    assert not ex.check("08.3", bd.embed_trigger(demo.inputs[0], 3, bd.generate_keys()[0]))
    moved = tg.write_fields(digits.to_pixels(demo.inputs[1]), tg.read_fields(digits.to_pixels(good)))
    label = int(digits.predict(demo.backdoored_model, digits.from_pixels(moved).unsqueeze(1))[0])
    assert label != 3 and ex.check("08.4", label) and not ex.check("08.4", 3)
