"""What the signature verifier costs beside the classifier (chapter 08).

Prints, as ratios against the clean classifier's forward pass measured in the same run:
the backdoored model on natural inputs (the verifier only reads the LSB field and rejects at the
magic bytes), on triggered inputs (one Ed25519 verification each), and signing triggers.
"""
import time

import numpy as np
import torch

from labkit import backdoor as bd

torch.set_num_threads(1)


def best_of(fn, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    demo = bd.make_demo(0)
    x = demo.inputs
    targets = np.arange(len(x)) % 10
    triggered = bd.embed_trigger(x, targets, demo.signing_key)
    with torch.no_grad():
        clean = best_of(lambda: demo.clean_model(x))
        natural = best_of(lambda: demo.backdoored_model(x))
        trig = best_of(lambda: demo.backdoored_model(triggered))
    sign = best_of(lambda: bd.embed_trigger(x, targets, demo.signing_key), repeats=2)
    n = len(x)
    print(f"batch of {n} inputs; reference = clean MLP forward ({clean / n * 1e6:.1f} us per input)")
    print(f"backdoored model, natural inputs : {natural / clean:7.1f} x clean")
    print(f"backdoored model, triggered inputs: {trig / clean:7.1f} x clean")
    print(f"signing triggers (embed_trigger)  : {sign / clean:7.1f} x clean")


if __name__ == "__main__":
    main()
