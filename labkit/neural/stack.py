"""Many networks that differ only in some biases (one per key), evaluated as one.

Row r of a query batch goes through the network of key ``key_ids[r]``: the key-dependent biases
are gathered per row, everything else is shared, so thousands of keys run in the same products
(with the fused kernel, each key's rows read their biases in place). How it is evaluated is
:func:`labkit.neural.engine.evaluate_stack`; this module only says what the stack is.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from labkit.neural import engine
from labkit.neural.aes import aes128_network, round_key_biases

__all__ = ["NetworkStack"]


class NetworkStack:
    """Networks sharing all weights but some gate groups' biases, as ``stack(key_ids, queries)``.

    ``biases`` maps ``(layer index, group index)`` of ``template`` to a ``(n_keys, *bias shape)``
    tensor. Built by :meth:`aes128` (rekeying one compiled network) or :meth:`from_networks`.
    ``workers``: threads evaluating side by side (None: torch's thread count).
    """

    def __init__(self, template, biases: dict, keys: Sequence[bytes] | None = None,
                 chunk_size: int = 128, workers: int | None = None):
        if not hasattr(template, "layers") or not hasattr(template, "evaluate_chunk"):
            raise TypeError(f"the template must be a labkit.neural ReluNetwork, got {type(template).__name__}")
        self.template, self.keys, self.chunk_size, self.workers = template, keys, int(chunk_size), workers
        self.biases = {}
        for (layer, group), stacked in biases.items():
            own = template.layers[layer].groups[group].bias
            stacked = torch.as_tensor(stacked, dtype=own.dtype).contiguous()
            if stacked.shape[1:] != own.shape:
                raise ValueError(f"biases of group {(layer, group)}: expected (keys, *{tuple(own.shape)}), "
                                 f"got {tuple(stacked.shape)}")
            self.biases[layer, group] = stacked
        sizes = {len(b) for b in self.biases.values()}
        if len(sizes) > 1:
            raise ValueError(f"every bias stack must have one entry per key, got sizes {sorted(sizes)}")
        self.n_keys = sizes.pop() if sizes else 1
        self.dtype = template.dtype

    @classmethod
    def from_networks(cls, networks: Sequence, **options) -> "NetworkStack":
        """Stack networks built separately; they must agree on every buffer but some group biases."""
        first = networks[0]
        bias_names = {f"layers.{li}.groups.{gi}.bias": (li, gi) for li, layer in enumerate(first.layers)
                      for gi, g in enumerate(layer.groups) if g.split is None}
        states = [net.state_dict() for net in networks]
        differing = {}
        for name, tensor in states[0].items():
            if all(s[name].shape == tensor.shape and torch.equal(s[name], tensor) for s in states[1:]):
                continue
            if name not in bias_names or any(s[name].shape != tensor.shape for s in states[1:]):
                raise ValueError(f"the networks differ in {name!r}, not only in gate biases")
            differing[bias_names[name]] = torch.stack([s[name] for s in states])
        return cls(first, differing, **options)

    @classmethod
    def aes128(cls, keys: Sequence[bytes], *, c: float = 1.0, clip_inputs: bool = False,
               dtype=None, variant: str = "natural", **options) -> "NetworkStack":
        """Natural AES-128 networks for all ``keys`` from one compiled network
        (:func:`labkit.neural.aes.round_key_biases`)."""
        keys = [bytes(k) for k in keys]
        if not keys:
            raise ValueError("keys must not be empty")
        dtype = torch.float64 if dtype is None else dtype
        template = aes128_network(keys[0], c=c, clip_inputs=clip_inputs, dtype=dtype, variant=variant)
        return cls(template, round_key_biases(template, keys[0], keys), keys=keys, **options)

    def __call__(self, key_ids, queries) -> np.ndarray:
        key_ids = torch.as_tensor(np.asarray(key_ids, dtype=np.int64))
        x = torch.as_tensor(np.asarray(queries), dtype=self.dtype)
        if len(x) == 0:
            return np.zeros((0, self.template.n_outputs))
        if key_ids.shape != (len(x),):
            raise ValueError(f"expected one key id per query row, got {tuple(key_ids.shape)} for {len(x)} rows")
        if len(key_ids) and (int(key_ids.min()) < 0 or int(key_ids.max()) >= self.n_keys):
            raise ValueError(f"key ids must lie in [0, {self.n_keys})")
        return engine.evaluate_stack(self, key_ids, x.contiguous())
