/* The forward pass of a labkit ReluNetwork, fused: every layer of a tile of inputs in one go.
 *
 * labkit/neural/kernel.py compiles this file (once per machine, with the C compiler that
 * TorchInductor also needs) and hands it the network's own weight buffers; nothing here knows
 * about AES or DES. Each input row is one lane of a 512-bit vector (8 doubles or 16 floats), so a tile walks
 * through all layers with its wire values in the L1 cache: per gate, gather its inputs, form the
 * neurons' pre-activations (affine), apply ReLU, and decode (a linear map) into output wires.
 * The arithmetic is the network's: the same weights and biases, only the order of additions
 * differs from torch's matrix products (so real-valued outputs agree up to rounding; on bits,
 * where every value is a small integer, they agree exactly).
 *
 * Compiled twice: -DREAL=double and -DREAL=float -DREAL_IS_FLOAT.
 */
#include <stdint.h>
#include <stdlib.h>
#if defined(__SSE2__)
#include <immintrin.h>
#endif

#ifndef REAL
#define REAL double
#endif
#define LANES (64 / (int)sizeof(REAL)) /* one 512-bit vector: 8 doubles or 16 floats */
#define MAX_K 16    /* inputs per gate */
#define MAX_M 64    /* outputs per gate */
#define MAX_HALF 256 /* (2^hi + 2^lo) partial corner sums of a split lookup */

typedef REAL vec __attribute__((vector_size(LANES * sizeof(REAL))));
#ifdef REAL_IS_FLOAT
typedef int32_t mask __attribute__((vector_size(LANES * sizeof(REAL))));
#else
typedef int64_t mask __attribute__((vector_size(LANES * sizeof(REAL))));
#endif

typedef struct {
    int64_t n_gates, k, n_neurons, m;
    int64_t split;        /* bits in the high half of a one-hot lookup's input, or -1 */
    int64_t out_base;     /* first output row of this group in the layer's output */
    int64_t bias_stride;  /* 1: one bias per neuron shared by all gates; n_gates: one per gate */
    int64_t decode_kind;  /* 0: output = sum of the neurons; 1: shared table; 2: one table per gate */
    int64_t fold_shift;   /* the bias already holds the shift (scale == 1) */
    double scale, shift;
    const int64_t *index; /* k x n_gates: wire read by input i of gate g at [i * n_gates + g] */
    const void *in_sign, *in_offset; /* NULL, or k x n_gates: input = sign * wire + offset */
    const void *weight;   /* split: (2^hi + 2^lo) x k; else n_neurons x k */
    const void *bias;     /* split: 2^hi + 2^lo; else n_neurons x bias_stride */
    const void *decode;   /* kind 1: n_neurons x m; kind 2: n_gates x n_neurons x m */
} group_t;

typedef struct {
    int64_t n_groups;
    const group_t *groups;
} layer_t;

typedef struct {
    int64_t n_layers, n_inputs, n_outputs, width, plain_readout;
    const layer_t *layers;
    const int64_t *out_index;
    const void *out_sign, *out_offset;
} network_t;

static inline vec splat(REAL a) { return (vec){0} + a; }

static inline vec relu(vec v) { /* max(v, 0), keeping NaN as torch.relu does */
    const vec zero = {0};
    return (vec)((mask)v & ~(mask)(v <= zero));
}

/* True unless every lane is <= 0 (a NaN lane counts as positive): ReLU(s) is not +0 in every lane.
 * One vector compare and a mask test on x86 (AVX-512, AVX or SSE2), a plain reduction elsewhere. */
#if defined(__AVX512F__)
static inline int any_positive(vec s) {
#ifdef REAL_IS_FLOAT
    return _mm512_cmp_ps_mask((__m512)s, _mm512_setzero_ps(), _CMP_NLE_UQ) != 0;
#else
    return _mm512_cmp_pd_mask((__m512d)s, _mm512_setzero_pd(), _CMP_NLE_UQ) != 0;
#endif
}
#elif defined(__AVX__) || defined(__SSE2__)
#if defined(__AVX__)
#define PARTS 2
#ifdef REAL_IS_FLOAT
typedef __m256 part_t;
#define PART_POSITIVE(p) _mm256_movemask_ps(_mm256_cmp_ps((p), _mm256_setzero_ps(), _CMP_NLE_UQ))
#else
typedef __m256d part_t;
#define PART_POSITIVE(p) _mm256_movemask_pd(_mm256_cmp_pd((p), _mm256_setzero_pd(), _CMP_NLE_UQ))
#endif
#else
#define PARTS 4
#ifdef REAL_IS_FLOAT
typedef __m128 part_t;
#define PART_POSITIVE(p) _mm_movemask_ps(_mm_cmpnle_ps((p), _mm_setzero_ps()))
#else
typedef __m128d part_t;
#define PART_POSITIVE(p) _mm_movemask_pd(_mm_cmpnle_pd((p), _mm_setzero_pd()))
#endif
#endif
static inline int any_positive(vec s) {
    union { vec v; part_t p[PARTS]; } u = {s};
    int any = 0;
    for (int i = 0; i < PARTS; i++) any |= PART_POSITIVE(u.p[i]);
    return any != 0;
}
#else
static inline int any_positive(vec s) {
    const vec zero = {0};
    const mask le = s <= zero;
    int64_t all = -1;
    for (int l = 0; l < LANES; l++) all &= le[l];
    return all == 0;
}
#endif

/* Lane-wise maximum of m and x; a NaN in either stays NaN (so a bound built from it skips nothing). */
static inline vec max_nan(vec m, vec x) {
    const mask take = ~(m != m) & ((x > m) | (x != x));
    return (vec)(((mask)x & take) | ((mask)m & ~take));
}

static inline void gather(const group_t *gr, int64_t g, const vec *wires, vec *x) {
    const REAL *sign = gr->in_sign, *offset = gr->in_offset;
    for (int64_t i = 0; i < gr->k; i++) {
        int64_t p = i * gr->n_gates + g;
        x[i] = sign ? wires[gr->index[p]] * sign[p] + offset[p] : wires[gr->index[p]];
    }
}

/* Decode of a one-hot lookup: neuron (a, b) = ReLU(half[a] + half[nh + b]); output t collects
 * neuron j = a * nl + b with weight dec[j * m + t]. Inlined with a constant m, the m
 * accumulators live in registers.
 *
 * Sparsity: a neuron whose pre-activation is <= 0 in every lane is +0 after ReLU and adds exactly
 * nothing (acc + 0 * d == acc for the finite decode weights), so its m multiply-adds are skipped;
 * the result is bit for bit the one of the full sum (the neurons that remain are added in the
 * same order). On bits a one-hot lookup has one active neuron per lane, so a tile touches at most
 * LANES of the 2^k neurons. Whole rows a are ruled out first: fl(half[a] + half[nh + b]) <=
 * fl(half[a] + lo_max) for lo_max = max_b half[nh + b], because rounded addition is monotone; a
 * NaN or infinities of opposite signs make the bound NaN (max_nan keeps NaNs), which counts as
 * positive. The tests are collected into bit masks without branches and the set bits visited in
 * order, so a tile mispredicts about once per active row rather than once per test. */
static inline __attribute__((always_inline)) void lookup_decode(const vec *half, int64_t nh, int64_t nl,
                                                                const REAL *dec, int64_t m, vec *acc) {
    for (int64_t t = 0; t < m; t++) acc[t] = splat(0);
    vec lo_max = half[nh];
    for (int64_t b = 1; b < nl; b++) lo_max = max_nan(lo_max, half[nh + b]);
    for (int64_t a0 = 0; a0 < nh; a0 += 64) {
        const int64_t a_end = nh - a0 < 64 ? nh : a0 + 64;
        uint64_t rows = 0;
        for (int64_t a = a0; a < a_end; a++) rows |= (uint64_t)any_positive(half[a] + lo_max) << (a - a0);
        while (rows) {
            const int64_t a = a0 + __builtin_ctzll(rows);
            rows &= rows - 1;
            const vec ha = half[a];
            for (int64_t b0 = 0; b0 < nl; b0 += 64) {
                const int64_t b_end = nl - b0 < 64 ? nl : b0 + 64;
                uint64_t cols = 0;
                for (int64_t b = b0; b < b_end; b++) cols |= (uint64_t)any_positive(ha + half[nh + b]) << (b - b0);
                while (cols) {
                    const int64_t b = b0 + __builtin_ctzll(cols);
                    cols &= cols - 1;
                    const vec h = relu(ha + half[nh + b]);
                    const REAL *d = dec + (a * nl + b) * m;
                    for (int64_t t = 0; t < m; t++) acc[t] += h * d[t];
                }
            }
        }
    }
}

/* One lookup group; inlined with constant k (8: AES bytes, 6: DES S-boxes) and m so the loops
 * unroll and the accumulators stay in registers. */
static inline __attribute__((always_inline)) void split_gates(const group_t *gr, const vec *in, vec *out,
                                                              int64_t k, int64_t m) {
    const int64_t G = gr->n_gates, nh = 1 << gr->split, nl = 1 << (k - gr->split);
    const REAL *w = gr->weight, *bias = gr->bias, *decode = gr->decode;
    const REAL scale = (REAL)gr->scale, shift = (REAL)gr->shift;
    vec x[MAX_K], half[MAX_HALF], acc[MAX_M];
    for (int64_t g = 0; g < G; g++) {
        gather(gr, g, in, x);
        for (int64_t a = 0; a < nh + nl; a++) { /* each half is an affine map of its inputs */
            vec s = splat(0);
            for (int64_t i = 0; i < k; i++) s += x[i] * w[a * k + i];
            half[a] = s + bias[a];
        }
        if (gr->scale != 1.0) { /* scale after the (integer on bits) corner sums; shift once */
            for (int64_t a = 0; a < nh + nl; a++) half[a] *= scale;
            for (int64_t a = 0; a < nh; a++) half[a] += shift;
        }
        const REAL *dec = gr->decode_kind == 2 ? decode + g * gr->n_neurons * m : decode;
        lookup_decode(half, nh, nl, dec, m, acc);
        for (int64_t t = 0; t < m; t++) out[gr->out_base + t * G + g] = acc[t];
    }
}

static void split_group(const group_t *gr, const vec *in, vec *out) {
    if (gr->k == 8 && gr->m == 8) /* AES S-box */
        split_gates(gr, in, out, 8, 8);
    else if (gr->k == 8 && gr->m == 24) /* AES (x, 2x, 3x) and T-table lookups */
        split_gates(gr, in, out, 8, 24);
    else if (gr->k == 6 && gr->m == 4) /* DES S-boxes */
        split_gates(gr, in, out, 6, 4);
    else
        split_gates(gr, in, out, gr->k, gr->m);
}

/* Gates of a dense group; inlined with constant k and N for the AES XOR (k=1, N=2) and XOR4
 * (k=4, N=8) gates whose output is the sum of their neurons, so the loops unroll. */
static inline __attribute__((always_inline)) void dense_gates(const group_t *gr, const vec *in, vec *out,
                                                              int64_t k, int64_t N, int sum_decode) {
    const int64_t G = gr->n_gates, m = gr->m;
    const REAL *w = gr->weight, *bias = gr->bias, *decode = gr->decode;
    const REAL scale = (REAL)gr->scale, shift = (REAL)gr->shift;
    vec x[MAX_K], acc[MAX_M];
    for (int64_t g = 0; g < G; g++) {
        gather(gr, g, in, x);
        const int64_t b = gr->bias_stride == 1 ? 0 : g;
        for (int64_t t = 0; t < m; t++) acc[t] = splat(0);
        const REAL *dec = gr->decode_kind == 2 ? decode + g * N * m : decode;
        for (int64_t j = 0; j < N; j++) {
            vec s = splat(0);
            for (int64_t i = 0; i < k; i++) s += x[i] * w[j * k + i];
            s += bias[j * gr->bias_stride + b];
            if (!gr->fold_shift) s = s * scale + shift;
            const vec h = relu(s);
            if (sum_decode)
                acc[0] += h;
            else
                for (int64_t t = 0; t < m; t++) acc[t] += h * dec[j * m + t];
        }
        for (int64_t t = 0; t < m; t++) out[gr->out_base + t * G + g] = acc[t];
    }
}

static void dense_group(const group_t *gr, const vec *in, vec *out) {
    if (gr->decode_kind == 0 && gr->m == 1 && gr->k == 1 && gr->n_neurons == 2)
        dense_gates(gr, in, out, 1, 2, 1);
    else if (gr->decode_kind == 0 && gr->m == 1 && gr->k == 4 && gr->n_neurons == 8)
        dense_gates(gr, in, out, 4, 8, 1);
    else if (gr->decode_kind == 0)
        dense_gates(gr, in, out, gr->k, gr->n_neurons, 1);
    else
        dense_gates(gr, in, out, gr->k, gr->n_neurons, 0);
}

/* y[n x n_outputs] = network(x[n x n_inputs]), both row-major. Returns 0, or -1 if out of memory. */
int relu_network_forward(const network_t *net, const REAL *x, REAL *y, int64_t n) {
    const size_t bytes = (size_t)(net->width > 0 ? net->width : 1) * sizeof(vec);
    vec *a = aligned_alloc(sizeof(vec), bytes), *b = aligned_alloc(sizeof(vec), bytes);
    if (!a || !b) {
        free(a);
        free(b);
        return -1;
    }
    const REAL *out_sign = net->out_sign, *out_offset = net->out_offset;
    for (int64_t r0 = 0; r0 < n; r0 += LANES) {
        const int64_t lanes = n - r0 < LANES ? n - r0 : LANES;
        for (int64_t i = 0; i < net->n_inputs; i++) {
            vec v;
            for (int64_t l = 0; l < LANES; l++) /* a short tile repeats its last row: no extra active neurons */
                v[l] = x[(r0 + (l < lanes ? l : lanes - 1)) * net->n_inputs + i];
            a[i] = v;
        }
        for (int64_t L = 0; L < net->n_layers; L++) {
            const layer_t *layer = &net->layers[L];
            for (int64_t q = 0; q < layer->n_groups; q++) {
                const group_t *gr = &layer->groups[q];
                if (gr->split >= 0)
                    split_group(gr, a, b);
                else
                    dense_group(gr, a, b);
            }
            vec *t = a;
            a = b;
            b = t;
        }
        for (int64_t j = 0; j < net->n_outputs; j++) {
            vec v = a[net->out_index[j]];
            if (!net->plain_readout) v = v * out_sign[j] + out_offset[j];
            for (int64_t l = 0; l < lanes; l++) y[(r0 + l) * net->n_outputs + j] = v[l];
        }
    }
    free(a);
    free(b);
    return 0;
}
