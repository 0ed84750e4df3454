"""ReLU layers with shared per-gate weights, and the network that chains them.

A compiled network is a plain feed-forward ReLU network. Layer ``L`` reads the vector of wire
values left by layer ``L-1`` (the plaintext bits for the first layer), computes the
pre-activations of its neurons with an affine map, applies ReLU, and maps the neurons back to wire
values with a 0/1 linear map (the "decode"). Decode and the next layer's pre-activation are two
affine maps in a row, so between two ReLU layers there is exactly one affine map, as in any MLP.

For speed the neurons of identical gates (the 16 S-boxes of a round, the 128 XORs of
AddRoundKey) form a :class:`NeuronGroup` that shares one sign matrix and one decode table, so a
layer costs a few batched matrix products instead of one huge sparse dense matrix;
:meth:`ReluNetwork.to_dense` rebuilds the same network from ordinary ``nn.Linear`` layers.

:meth:`ReluNetwork.reference_forward` is the plain torch definition of the network, the reference
semantics (:meth:`ReluNetwork.graph` traces it, :func:`labkit.neural.verify.check_affine_relu`
proves it affine maps and ReLU). How fast ``net(x)`` runs is not decided here: the builders attach
an evaluator as ``net.evaluator`` (:func:`labkit.neural.engine.attach`: the fused C kernel, or
torch chunks over the threads); this module imports neither the engine nor the kernel. A network
built by hand evaluates the reference until ``engine.attach(net)``.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

__all__ = ["NeuronGroup", "ReluLayer", "ReluNetwork"]


class NeuronGroup(nn.Module):
    """G identical gates in one layer: ``h = ReLU((S x + B) * scale + shift)``, ``out = D h``.

    ``x`` holds each gate's k variable inputs, gathered from the previous wire vector (optionally
    negated: ``sign * v + offset`` for NOT-ed wires); constant inputs (key bits) are folded into
    the per-gate bias ``B``. With ``split`` the one-hot corner pre-activations are computed as
    ``P[hi] + Q[lo]`` from the two halves of the input (the same affine map: 16+16 sums and one
    broadcast addition instead of a 256-wide product per byte).

    Layout: activations are feature-major, ``(features, batch)``, so every elementwise operation
    runs over long contiguous rows and every product is one large matrix product. Gate g's output
    t sits at row ``t * G + g`` of the group's output.
    """

    def __init__(self, *, index, signs, bias, decode, scale=1.0, shift=0.0, in_sign=None, in_offset=None,
                 split: int | None = None, n_in: int | None = None, name: str = "", dtype=torch.float64):
        super().__init__()
        index = np.asarray(index, dtype=np.int64)
        self.n_gates, self.k = index.shape
        signs = np.asarray(signs, dtype=np.float64).reshape(self.k, -1)
        self.n_per_gate = signs.shape[1]
        decode = np.asarray(decode, dtype=np.float64)
        if decode.ndim == 3 and np.all(decode == decode[:1]):
            decode = decode[0]
        self.shared_decode = decode.ndim == 2  # else one table per gate: (G, N, m)
        if decode.shape[-2] != self.n_per_gate or (not self.shared_decode and decode.shape[0] != self.n_gates):
            raise ValueError(f"decode must have shape ({self.n_per_gate}, m) or ({self.n_gates}, {self.n_per_gate}, m)")
        self.m = decode.shape[-1]
        bias = np.broadcast_to(np.asarray(bias, dtype=np.float64), (self.n_gates, self.n_per_gate))
        self.scale, self.shift, self.name = float(scale), float(shift), name
        self._index_np = index
        index_t = index.T.reshape(-1)  # input-major: row i * G + g of the gathered inputs
        # reading the whole previous vector in order needs no gather
        self.identity_index = n_in == index.size and bool(np.array_equal(index_t, np.arange(n_in)))
        self.register_buffer("index", torch.from_numpy(index_t.copy()))
        if in_sign is not None and not (np.all(np.asarray(in_sign) == 1) and not np.any(in_offset)):
            as_kg1 = lambda a: torch.tensor(np.asarray(a, dtype=np.float64).T[:, :, None], dtype=dtype)  # noqa: E731
            self.register_buffer("in_sign", as_kg1(in_sign))
            self.register_buffer("in_offset", as_kg1(in_offset))
        else:
            self.in_sign = self.in_offset = None
        self.split = split
        self.fold_shift = False
        shared_bias = bool(np.all(bias == bias[0]))
        if split is not None:
            if not shared_bias or self.n_per_gate != 1 << self.k:
                raise ValueError("the split form needs one-hot corners without per-gate constants")
            hi, lo = split, self.k - split
            # a one-hot corner's pre-activation is (hi part) + (lo part), each an affine map of its
            # half of the input: one ((2^hi + 2^lo) x k) product gives both halves
            halves = np.zeros(((1 << hi) + (1 << lo), self.k))
            halves[: 1 << hi, :hi] = signs[:hi, :: 1 << lo].T
            halves[1 << hi :, hi:] = signs[hi:, : 1 << lo].T
            pop = lambda n: -np.array([bin(v).count("1") for v in range(1 << n)], dtype=np.float64)  # noqa: E731
            if not np.allclose(bias[0], (pop(hi)[:, None] + pop(lo)[None, :]).reshape(-1)):
                raise ValueError("the split form needs corner biases (-popcount)")
            half_bias = np.concatenate([pop(hi), pop(lo)])
            if self.scale == 1.0:  # fold the shift into the hi half: still integers, still exact
                half_bias[: 1 << hi] += self.shift
            self.register_buffer("halves", torch.tensor(halves, dtype=dtype))
            self.register_buffer("half_bias", torch.tensor(half_bias[:, None], dtype=dtype))
        else:
            self.register_buffer("signs_t", torch.tensor(signs.T.copy(), dtype=dtype))  # (N, k)
            b = bias[:1] if shared_bias else bias
            self.fold_shift = self.scale == 1.0  # integer bias + shift stays exact: one pass fewer
            if self.fold_shift:
                b = b + self.shift
            self.register_buffer("bias", torch.tensor(b.T[:, :, None].copy(), dtype=dtype))  # (N, G|1, 1)
        # a gate whose single output is the plain sum of its neurons (XOR, AND, ...) needs no product
        self.sum_decode = self.shared_decode and self.m == 1 and bool(np.all(decode == 1))
        dec_t = decode.T if self.shared_decode else decode  # (m, N) shared, or (G, N, m)
        self.register_buffer("decode", torch.tensor(np.ascontiguousarray(dec_t), dtype=dtype))
        self._signs_np, self._bias_np, self._decode_np = signs, np.array(bias), decode

    @property
    def n_neurons(self) -> int:
        return self.n_gates * self.n_per_gate

    @property
    def n_out(self) -> int:
        return self.n_gates * self.m

    def gather(self, v: torch.Tensor) -> torch.Tensor:
        """Each gate's variable inputs as a (k, G * batch) matrix."""
        x = v if self.identity_index else v.index_select(0, self.index)
        if self.in_sign is not None:
            x = x.view(self.k, self.n_gates, -1) * self.in_sign + self.in_offset
        return x.reshape(self.k, -1)

    def hidden(self, v: torch.Tensor) -> torch.Tensor:
        """The ReLU outputs as a (neurons per gate, G * batch) matrix."""
        x = self.gather(v)
        if self.split is not None:
            hi_size = 1 << self.split
            halves = torch.addmm(self.half_bias, self.halves, x)  # integer-valued on bits
            if self.scale != 1.0:  # scale after the exact integer part: a matched corner stays 1
                halves = halves * self.scale
                hi = halves[:hi_size] + self.shift
            else:
                hi = halves[:hi_size]
            pre = hi.unsqueeze(1) + halves[hi_size:].unsqueeze(0)
            return torch.relu_(pre).view(self.n_per_gate, -1)
        pre = self.signs_t * x if self.k == 1 else self.signs_t @ x
        pre = pre.view(self.n_per_gate, self.n_gates, -1) + self.bias
        if not self.fold_shift:
            pre = pre * self.scale + self.shift
        return torch.relu_(pre).view(self.n_per_gate, -1)

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        h = self.hidden(v)
        if self.sum_decode:
            return h.view(self.n_per_gate, self.n_out, -1).sum(0)
        if self.shared_decode:
            return (self.decode @ h).view(self.n_out, -1)
        h = h.view(self.n_per_gate, self.n_gates, -1)
        return torch.einsum("jgb,gjt->tgb", h, self.decode).reshape(self.n_out, -1)

    def hidden_by_row(self, v: torch.Tensor) -> torch.Tensor:
        """The ReLU outputs as (batch, G * neurons per gate), each gate's neurons together."""
        h = self.hidden(v).view(self.n_per_gate, self.n_gates, -1)
        return h.permute(2, 1, 0).reshape(-1, self.n_neurons)

    def dense_parts(self, n_in: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """This group as dense matrices: pre = W v + b (W: neurons x n_in) and out = D h."""
        idx = self._index_np
        sign = np.ones((self.n_gates, self.k)) if self.in_sign is None else self.in_sign.double().numpy()[:, :, 0].T
        off = np.zeros((self.n_gates, self.k)) if self.in_offset is None else self.in_offset.double().numpy()[:, :, 0].T
        N, G, m = self.n_per_gate, self.n_gates, self.m
        W = np.zeros((G * N, n_in))
        b = np.zeros(G * N)
        D = np.zeros((G * m, G * N))
        for g in range(G):
            dec = (self._decode_np if self.shared_decode else self._decode_np[g]).T  # (m, N)
            rows = slice(g * N, (g + 1) * N)
            for i in range(self.k):
                W[rows, idx[g, i]] += self.scale * self._signs_np[i] * sign[g, i]
            b[rows] = self.scale * (self._bias_np[g] + self._signs_np.T @ off[g]) + self.shift
            D[np.arange(m) * G + g, rows] = dec
        return W, b, D

    def extra_repr(self) -> str:
        return f"{self.name!r}: {self.n_gates} gates x {self.n_per_gate} neurons, k={self.k}, m={self.m}"


class ReluLayer(nn.Module):
    """One ReLU layer: several neuron groups reading the same (feature-major) wire vector."""

    def __init__(self, groups: Sequence[NeuronGroup], n_in: int, name: str = ""):
        super().__init__()
        self.groups = nn.ModuleList(groups)
        self.n_in, self.name = n_in, name

    @property
    def n_neurons(self) -> int:
        return sum(g.n_neurons for g in self.groups)

    @property
    def n_out(self) -> int:
        return sum(g.n_out for g in self.groups)

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        if len(self.groups) == 1:
            return self.groups[0](v)
        return torch.cat([g(v) for g in self.groups], dim=0)

    def hidden(self, v: torch.Tensor) -> torch.Tensor:
        """All ReLU outputs of the layer, shape (batch, neurons)."""
        return torch.cat([g.hidden_by_row(v) for g in self.groups], dim=1)

    def extra_repr(self) -> str:
        return f"{self.name!r}: {self.n_neurons} neurons"


class _Chunk(nn.Module):
    """The network on one batch with no chunking or validation: the graph ``check_affine_relu`` traces."""

    def __init__(self, net: "ReluNetwork"):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net.evaluate_chunk(x)


class ReluNetwork(nn.Module):
    """A feed-forward ReLU network mapping (n, n_inputs) bits to (n, n_outputs) bits.

    Built only from affine maps and ReLU. ``forward`` accepts a tensor or array of any real
    values (that is the point of the attacks in chapter 06), evaluates it in cache-sized chunks
    (through ``evaluator`` when one is attached) and returns a tensor in the network's dtype.
    """

    def __init__(self, layers: Sequence[ReluLayer], *, n_inputs: int, out_index, out_sign, out_offset,
                 c: float = 1.0, name: str = "network", dtype=torch.float64, chunk_size: int | None = None):
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.n_inputs, self.n_outputs = int(n_inputs), len(out_index)
        self.c, self.name = float(c), name
        self.register_buffer("out_index", torch.as_tensor(np.asarray(out_index, dtype=np.int64)))
        out_sign = np.asarray(out_sign, dtype=np.float64)
        out_offset = np.asarray(out_offset, dtype=np.float64)
        self.plain_readout = bool(np.all(out_sign == 1) and not np.any(out_offset))
        self.register_buffer("out_sign", torch.tensor(out_sign, dtype=dtype))
        self.register_buffer("out_offset", torch.tensor(out_offset, dtype=dtype))
        self.chunk_size = chunk_size
        #: how ``net(x)`` is evaluated: ``evaluator(net, x)`` for a validated input, attached by the
        #: builders (:func:`labkit.neural.engine.attach`); None evaluates :meth:`reference_forward`
        self.evaluator: Callable[["ReluNetwork", torch.Tensor], torch.Tensor] | None = None
        #: evaluation settings the attached evaluator reads: use the fused C kernel when it is
        #: available (False: torch operations), and how many threads (None: torch's count)
        self.kernel = True
        self.threads: int | None = None

    # -- evaluation -------------------------------------------------------------------------------
    @property
    def dtype(self) -> torch.dtype:
        return self.out_sign.dtype

    def evaluate_chunk(self, x: torch.Tensor) -> torch.Tensor:
        """The network itself: affine maps and ReLU, nothing else."""
        v = x.t().contiguous()  # feature-major inside: (features, batch)
        for layer in self.layers:
            v = layer(v)
        out = v.index_select(0, self.out_index).t()
        if not self.plain_readout:
            out = out * self.out_sign + self.out_offset
        return out

    def _as_input(self, x) -> torch.Tensor:
        if isinstance(x, np.ndarray):
            x = torch.from_numpy(x)
        if not isinstance(x, torch.Tensor):
            try:
                x = torch.as_tensor(np.asarray(x, dtype=np.float64))
            except (TypeError, ValueError) as err:
                raise TypeError(f"expected a tensor or array of shape (n, {self.n_inputs}), got {type(x).__name__}") from err
        if x.ndim != 2 or x.shape[1] != self.n_inputs:
            raise ValueError(f"expected input of shape (n, {self.n_inputs}), got {tuple(x.shape)}")
        if x.is_complex():
            raise TypeError("inputs must be real numbers")
        return x.to(self.dtype)

    def default_chunk_size(self) -> int:
        """Rows per chunk so the widest layer's activations stay within ~1 MiB (the L2 cache)."""
        widest = max([layer.n_neurons for layer in self.layers] + [1])
        size = (1 << 20) // (widest * self.dtype.itemsize) if self.layers else 4096
        return int(max(8, min(4096, 1 << max(3, int(math.log2(max(size, 1)))))))

    def forward(self, x) -> torch.Tensor:
        """Evaluate on (n, n_inputs) real inputs: through the attached evaluator (fast), else
        :meth:`reference_forward`. Both compute the same network (equal on bits, equal up to float
        rounding on other inputs)."""
        x = self._as_input(x).contiguous()
        if self.evaluator is not None:
            return self.evaluator(self, x)
        return self.reference_forward(x)

    @torch.inference_mode()
    def reference_forward(self, x: torch.Tensor) -> torch.Tensor:
        """The network in plain torch operations, chunk after chunk (the reference semantics)."""
        chunk = self.chunk_size or self.default_chunk_size()
        out = torch.empty((x.shape[0], self.n_outputs), dtype=self.dtype)
        for start in range(0, x.shape[0], chunk):
            out[start : start + chunk] = self.evaluate_chunk(x[start : start + chunk])
        return out

    @torch.inference_mode()
    def activations(self, x) -> list[torch.Tensor]:
        """The ReLU outputs of every layer, one (n, neurons) tensor per layer (for inspection)."""
        v = self._as_input(x).t().contiguous()
        acts = []
        for layer in self.layers:
            acts.append(layer.hidden(v))
            v = layer(v)
        return acts

    # -- size and structure -----------------------------------------------------------------------
    def layer_sizes(self) -> list[int]:
        """Neurons in each ReLU layer."""
        return [layer.n_neurons for layer in self.layers]

    def layer_names(self) -> list[str]:
        return [layer.name for layer in self.layers]

    @property
    def n_relu_layers(self) -> int:
        return len(self.layers)

    @property
    def n_neurons(self) -> int:
        return sum(self.layer_sizes())

    def parameter_counts(self) -> dict[str, int]:
        """Sizes: ReLU layers, neurons, and weights+biases of the equivalent dense network.

        ``dense`` counts :meth:`to_dense`'s ``nn.Linear`` parameters (pre-activation and decode
        maps of every layer), ``nonzero`` the non-zero ones, ``stored`` what this structured
        network keeps (weights shared by identical gates are stored once).
        """
        dense = nonzero = 0
        n_in = self.n_inputs
        for layer in self.layers:
            N, W = layer.n_neurons, layer.n_out
            dense += n_in * N + N + N * W
            for g in layer.groups:
                per_gate_inputs = int(np.count_nonzero(g._signs_np))
                nonzero += g.n_gates * (per_gate_inputs + g.n_per_gate)
                nonzero += (g.n_gates if g.shared_decode else 1) * int(np.count_nonzero(g._decode_np))
            n_in = W
        dense += n_in * self.n_outputs + self.n_outputs  # the read-out
        stored = sum(b.numel() for name, b in self.named_buffers() if not name.endswith("index"))
        return {"relu_layers": self.n_relu_layers, "neurons": self.n_neurons, "dense": dense,
                "nonzero": nonzero, "stored": stored}

    def to_dense(self) -> nn.Sequential:
        """The same network as ``nn.Linear`` / ``nn.ReLU`` layers (a naive reference; large for AES)."""
        mods: list[nn.Module] = []
        n_in = self.n_inputs
        for layer in self.layers:
            Ws, bs, Ds = [], [], []
            for g in layer.groups:
                W, b, D = g.dense_parts(n_in)
                Ws.append(W), bs.append(b), Ds.append(D)
            pre = nn.Linear(n_in, layer.n_neurons, dtype=self.dtype)
            post = nn.Linear(layer.n_neurons, layer.n_out, bias=False, dtype=self.dtype)
            with torch.no_grad():
                pre.weight.copy_(torch.from_numpy(np.concatenate(Ws)))
                pre.bias.copy_(torch.from_numpy(np.concatenate(bs)))
                full = np.zeros((layer.n_out, layer.n_neurons))
                r = c = 0
                for D in Ds:
                    full[r : r + D.shape[0], c : c + D.shape[1]] = D
                    r, c = r + D.shape[0], c + D.shape[1]
                post.weight.copy_(torch.from_numpy(full))
            mods += [pre, nn.ReLU(), post]
            n_in = layer.n_out
        readout = nn.Linear(n_in, self.n_outputs, dtype=self.dtype)
        with torch.no_grad():
            R = torch.zeros(self.n_outputs, n_in, dtype=self.dtype)
            R[torch.arange(self.n_outputs), self.out_index] = self.out_sign
            readout.weight.copy_(R)
            readout.bias.copy_(self.out_offset)
        mods.append(readout)
        return nn.Sequential(*mods).requires_grad_(False)

    def graph(self) -> torch.fx.GraphModule:
        """The traced computation graph of one batch (``torch.fx``): proof of what it computes."""
        return torch.fx.symbolic_trace(_Chunk(self))

    def describe(self) -> list[dict]:
        """One row per ReLU layer: its name, neurons, and gates by kind (for tables)."""
        rows = []
        for i, layer in enumerate(self.layers, 1):
            rows.append({"layer": i, "name": layer.name, "neurons": layer.n_neurons,
                         "gates": ", ".join(f"{g.n_gates} x {g.name}" for g in layer.groups)})
        return rows

    def extra_repr(self) -> str:
        return (f"{self.name!r}: {self.n_inputs} -> {self.n_outputs}, {self.n_relu_layers} ReLU layers, "
                f"{self.n_neurons} neurons, c={self.c}, dtype={self.dtype}")
