"""labkit.memory: freed memory goes back to the OS, and the per-cell hook registers once."""
from __future__ import annotations

import subprocess
import sys

import pytest

from labkit import memory

# A process that frees 64 MiB held in the middle of its C heap (a small block kept after every
# 1 MiB, so free() alone cannot shrink the heap's top), then calls release(): it prints its RSS
# (MiB, /proc/self/statm) at the start, after the free, and after release().
_FRAGMENTED = """
import gc, os, sys
from labkit import memory

def rss():
    return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

start = rss()
chunks, keep = [], []
for i in range(1024):
    chunks.append(bytearray(65536))  # 64 KiB, zero-filled (resident): below the mmap threshold, from the heap
    if i % 16 == 15:
        keep.append(bytearray(1024))  # pins the heap above the chunks before it
del chunks
gc.collect()
freed = rss()
returned = memory.release()
print(start, freed, rss(), returned)
"""


@pytest.mark.skipif(memory._malloc_trim() is None, reason="needs glibc's malloc_trim (Linux with glibc)")
def test_release_returns_a_fragmented_heaps_free_pages():
    done = subprocess.run([sys.executable, "-c", _FRAGMENTED], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    start, freed, after, returned = done.stdout.split()
    start, freed, after = float(start), float(freed), float(after)
    assert freed - start >= 50, "free() alone keeps the freed chunks resident (the reason for release)"
    assert freed - after >= 45 and returned == "True", (start, freed, after)


@pytest.mark.skipif(memory._malloc_trim() is None, reason="needs glibc's malloc_trim (Linux with glibc)")
def test_trim_returns_a_fragmented_heaps_free_pages_without_collecting():
    """memory.trim() (a loop's step, no gc.collect): the same heap as above, the same pages back."""
    script = _FRAGMENTED.replace("returned = memory.release()", "returned = memory.trim()")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    start, freed, after, returned = done.stdout.split()
    assert float(freed) - float(start) >= 50 and float(freed) - float(after) >= 45 and returned == "True"


def test_trim_without_glibc_does_nothing(monkeypatch):
    monkeypatch.setattr(memory, "_malloc_trim", lambda: None)
    assert memory.trim() is False


@pytest.mark.skipif(memory._malloc_trim() is None, reason="needs glibc's mallopt (Linux with glibc)")
def test_a_tuned_server_heap_returns_freed_blocks_without_a_trim():
    """The same 64 MiB in 96 KiB blocks: by default they come from the heap and stay resident when
    freed; after tune_server_heap() each is its own mapping, gone when freed."""
    script = _FRAGMENTED.replace("65536", str(96 * 1024)).replace("start = rss()", "TUNE\nstart = rss()")
    for tune, stays in (("pass", True), ("assert memory.tune_server_heap()", False)):
        done = subprocess.run([sys.executable, "-c", script.replace("TUNE", tune)], capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 0, done.stderr
        start, freed, _after, _ = done.stdout.split()
        assert (float(freed) - float(start) >= 50) is stays, (tune, start, freed)


def test_release_without_glibc_collects_garbage_only(monkeypatch):
    monkeypatch.setattr(memory, "_malloc_trim", lambda: None)
    assert memory.release() is False
    assert memory.tune_server_heap() is False, "a server without glibc keeps its allocator as it is"


class _Events:
    """The part of IPython's EventManager the hook uses."""

    def __init__(self):
        self.callbacks = {"post_run_cell": []}

    def register(self, event, function):
        self.callbacks[event].append(function)

    def trigger(self, event, *args):
        for function in self.callbacks[event]:
            function(*args)


def test_the_cell_hook_registers_once_and_releases_after_each_cell(monkeypatch):
    from types import SimpleNamespace

    calls = []
    monkeypatch.setattr(memory, "release", lambda: calls.append(1) or True)
    shell = SimpleNamespace(events=_Events())
    assert memory.release_after_each_cell(shell) and memory.release_after_each_cell(shell)
    assert len(shell.events.callbacks["post_run_cell"]) == 1, "a unit run twice must not trim twice per cell"
    shell.events.trigger("post_run_cell", SimpleNamespace(success=True))
    shell.events.trigger("post_run_cell", SimpleNamespace(success=False))
    assert calls == [1, 1]


def test_the_cell_hook_outside_a_kernel_does_nothing(monkeypatch):
    monkeypatch.delitem(sys.modules, "IPython", raising=False)
    assert memory.release_after_each_cell() is False


# -- the bounded evaluations give what the whole batch gives ------------------------------------------
def test_predict_and_logits_in_bounded_batches_match_the_whole_batch():
    import numpy as np
    import torch

    from labkit import digits

    model = digits.make_classifier("cnn", seed=3).eval()
    x = torch.rand(150, 1, 32, 32, generator=torch.Generator().manual_seed(5))
    parts = list(digits.batches(x))
    assert [len(p) for p in parts] == [64, 64, 22] and torch.equal(torch.cat(parts), x)
    big = torch.zeros(20, 1, 96, 96)
    assert all(p[0].numel() * len(p) <= digits.PREDICT_ELEMENTS for p in digits.batches(big))
    with torch.no_grad():
        whole = model(x)
    got = digits.logits(model, x)
    # the same per-image arithmetic; a convolution's algorithm may depend on the batch size, so
    # compare to float32 rounding of logits of size ~10
    assert got.shape == whole.shape and torch.allclose(got, whole, rtol=0, atol=1e-4)
    assert np.array_equal(digits.predict(model, x), digits.predict(model, x, batch_size=len(x)))
    assert digits.logits(model, x[:0]).shape == (0, 10) and digits.predict(model, x[:0]).shape == (0,)


def test_trigger_fields_in_blocks_match_image_by_image():
    import numpy as np

    from labkit.backdoor import schemes

    layout = schemes.TriggerLayout(96, 3, schemes.ML_DSA_44)
    per_block = schemes.BLOCK_BITS // layout.capacity_bits
    n = 2 * per_block + 3  # three blocks, the last one short
    rng = np.random.default_rng(7)
    pixels = rng.integers(0, 256, (n, 96, 96), dtype=np.uint8)
    fields = rng.integers(0, 256, (n, layout.field_bytes), dtype=np.uint8)
    written = layout.write_fields(pixels, fields)
    one_by_one = np.concatenate([layout.write_fields(pixels[i : i + 1], fields[i : i + 1]) for i in range(n)])
    assert np.array_equal(written, one_by_one)
    got, padded = layout.split(written)
    assert np.array_equal(got, fields) and padded.all()
    written[-1, -1, -1] |= 1  # a set bit after the field, in the last block only
    assert layout.padding_is_zero(written).tolist() == [True] * (n - 1) + [False]


def test_the_notebook_memory_sampler_gives_each_cell_its_own_peak():
    """labkit-notebook-memory --cells: a cell's peak is what was resident while it ran, not before.
    The "kernel" is a fresh process that holds 64 MiB during one step and frees it in the next."""
    from labkit_tools import notebook_memory

    step = ("import sys\nfor line in sys.stdin:\n    held = b'\\x01' * (64 << 20) if line.strip() == 'hold' else None\n"
            "    print('done', flush=True)\n")
    kernel = subprocess.Popen([sys.executable, "-c", step], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    sampler = notebook_memory.Sampler(kernel.pid, interval=0.02)
    sampler.start()

    def cell(command: str) -> dict:
        kernel.stdin.write(command + "\n")
        kernel.stdin.flush()
        assert kernel.stdout.readline() == "done\n"
        return sampler.cell_done()

    try:
        before = cell("free")
        held = cell("hold")
        cell("free")  # it starts with the 64 MiB still held: its peak includes them
        after = cell("free")
    finally:
        sampler.stop.set()
        sampler.join()
        kernel.kill()
        kernel.wait()
    for other in (before, after):
        assert held["rss_mib"] - other["rss_mib"] >= 50 and held["pss_mib"] - other["pss_mib"] >= 50, (held, other)
    assert sampler.peak["rss"] / 2**20 >= held["rss_mib"] - 1


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/PID/status and clear_refs (Linux)")
def test_the_high_water_mark_is_reset_before_a_cell_and_catches_a_spike_no_sampler_sees():
    """labkit-notebook-memory's exact per-cell peak: a fresh process holds 64 MiB for a moment and
    frees them; its high-water mark keeps them until reset, then starts from the current RSS and
    catches the next spike, however short."""
    from labkit_tools import notebook_memory

    step = ("import sys\nfor line in sys.stdin:\n    if line.strip() == 'spike':\n        b'\\x01' * (64 << 20)\n"
            "    print('done', flush=True)\n")
    kernel = subprocess.Popen([sys.executable, "-c", step], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def run(command: str) -> int:
        kernel.stdin.write(command + "\n")
        kernel.stdin.flush()
        assert kernel.stdout.readline() == "done\n"
        return notebook_memory.high_water_mark(kernel.pid)

    try:
        quiet = run("nothing")
        spiked = run("spike")  # the 64 MiB are already freed when the step answers
        if not notebook_memory.reset_high_water_mark(kernel.pid):
            pytest.skip("this kernel does not allow resetting the high-water mark")
        after_reset = notebook_memory.high_water_mark(kernel.pid)
        quiet_again = run("nothing")
        spiked_again = run("spike")
    finally:
        kernel.kill()
        kernel.wait()
    mib = 2**20
    assert spiked - quiet >= 60 * mib, (quiet, spiked)
    assert spiked - after_reset >= 60 * mib and quiet_again - after_reset < 8 * mib, (spiked, after_reset, quiet_again)
    assert spiked_again - quiet_again >= 60 * mib
    assert notebook_memory.high_water_mark(-1) is None and not notebook_memory.reset_high_water_mark(-1)


def test_the_digits_are_kept_as_pixel_bytes_and_every_part_is_a_fresh_tensor():
    """labkit.digits keeps one uint8 copy of the upsampled digits (a quarter of the float32 images)
    and makes each requested part into model inputs: the same values, and never shared."""
    import numpy as np
    import torch

    from labkit import digits

    pixels, labels = digits._digits(32)
    images, all_labels = digits.load_digits_images(32)
    assert pixels.dtype == np.uint8 and torch.equal(digits.from_pixels(pixels), images)
    assert np.array_equal(labels, all_labels.numpy())
    native, _ = digits.load_digits_images(8)
    assert native.dtype == torch.float32 and float(native.max()) == 1.0  # pixels / 16, 16 the largest
    splits = digits.digit_splits(0)
    train, rest = digits.stratified_split(labels, 0.5, 0)
    test = rest[digits.stratified_split(labels[rest], 0.5, 0)[1]]
    assert torch.equal(splits.test_x, images[np.sort(test)]) and torch.equal(splits.train_x, images[np.sort(train)])
    for part in (splits.train_x, splits.test_x, splits.test_y, images):
        part.zero_()  # a caller's in-place change stays in its own tensors
    again = digits.digit_splits(0)
    assert float(again.test_x.sum()) > 0 and int(again.test_y.sum()) > 0
    assert torch.equal(digits.load_digits_images(32)[0], digits.from_pixels(pixels))


def test_a_demos_splits_are_its_own_tensors_and_the_seeds_split(demo):
    """Demo.splits hands the baselines the demo's data without a second copy of the digits."""
    import torch

    from labkit import digits

    splits, fresh = demo.splits, digits.digit_splits(demo.seed)
    assert splits.train_x is demo.train_inputs and splits.attacker_y is demo.attacker_labels
    assert splits.test_x is demo.inputs and splits.test_y is demo.labels
    for name in ("train_x", "train_y", "attacker_x", "attacker_y", "test_x", "test_y"):
        assert torch.equal(getattr(splits, name), getattr(fresh, name)), name
