/*
 * inference/_kernels.c -- the engine's native CPU kernels (fp32 math, AVX-512), each one call per layer for the
 * whole batch, the GIL released:
 *
 * (1) `decode`: fused attention -- RoPE + K/V cache write + attention over each row's exact length.
 * (2) `lora`: batched multi-adapter LoRA for one layer and group of linears -- y[rows] += (x[rows] A[s]) B[s] for
 *     the rows of every slot s, reading each slot's A and B once (no gathered copies, no padded rows, no scatter).
 * (3) `add_rmsnorm`, `silu_mul`: the elementwise rest of a Llama layer.
 *
 * Why: decode on CPU is memory-bound outside the weight GEMMs. torch's SDPA over a batch reads every row up to the
 * batch's (or a row chunk's) longest row; here each row reads exactly its own `pos + 1` keys and values, once per
 * KV head (GQA query heads of a group share the read), and RoPE, the cache write and the softmax run in the same
 * pass. The LoRA kernel streams each slot's weights once. Everything else saves the dozens of small torch ops per
 * layer. The K/V cache and the LoRA stacks may be stored as fp16 (converted on load, math in fp32).
 *
 * Only an AVX-512 (F, BW, VL) x86-64 CPU runs these kernels: `available()` and `simd(head_dim)` tell, and every
 * entry point raises ValueError elsewhere. The engine checks first and otherwise runs the same math in torch (the
 * portable path: other CPUs, CUDA, other dtypes, or no C compiler at install time). The AVX-512 code is compiled
 * with function target attributes, so the build needs no -march flag.
 *
 * Attention layout (what the engine passes): entry b (a decode row, or one packed prefill token) has q at
 * q + b*q_stride (H heads x D) and its new k/v at k + b*k_stride, v + b*v_stride (Hkv x D), cache row row[b] and
 * position pos[b]; the layer's cache kc/vc [rows, Hkv, max_len, D] contiguous; cos/sin [max_len, D]; out [N, H, D]
 * contiguous. Entries lo..hi-1 are processed in order, each writing its K/V then attending over positions
 * 0..pos[b] of its row: packed prompts (a row's tokens in position order) get causal prefill attention from the
 * same loop. RoPE is q*cos + rotate_half(q)*sin (rotate_half(x) = cat(-x[D/2:], x[:D/2])), transformers' formula.
 * The exp is a Cephes-style polynomial (max rel. error ~2e-7).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(LORALEDGER_NO_SIMD)
#define HAVE_AVX512_PATH 1
#endif

/* whether this CPU runs the kernels (AVX-512 F + BW + VL) */
static int simd_ok(void)
{
#ifdef HAVE_AVX512_PATH
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
           && __builtin_cpu_supports("avx512vl");
#else
    return 0;
#endif
}

static int simd_head(int D) { return D % 16 == 0 && D <= 256 && simd_ok(); }

static PyObject *no_simd(const char *what)
{
    PyErr_Format(PyExc_ValueError, "%s: this CPU has no AVX-512 (F, BW, VL): use the torch path", what);
    return NULL;
}

static inline void rope(float *restrict dst, const float *restrict src, const float *restrict c,
                        const float *restrict s, int d_len)
{
    int h = d_len / 2;
    for (int d = 0; d < h; d++)
        dst[d] = src[d] * c[d] + (-src[d + h]) * s[d];
    for (int d = h; d < d_len; d++)
        dst[d] = src[d] * c[d] + src[d - h] * s[d];
}

typedef struct {
    const float *q, *k, *v;
    int64_t q_stride, k_stride, v_stride;
    float *kc, *vc;
    int64_t max_len;
    const float *cos, *sin;
    const int64_t *pos;
    const int64_t *row; /* cache row of each entry (NULL: entry b is row b) */
    float *out;
    int lo, hi, n_heads, n_kv, head_dim, do_rope;
    float scale;
    int kv_half; /* the cache holds fp16 K/V; else fp32 */
} attn_args;

typedef struct {
    const float *x;
    int64_t x_stride, in;
    float *y;
    int64_t y_stride;
    const int64_t *rows, *slots; /* n rows sorted by slot, and the slot of each */
    int64_t n;
    const float *a; /* [cap, in, kr] (A transposed, the group's k modules side by side); uint16_t when half */
    int64_t kr, r;
    int k;
    const float *b[4]; /* per module: [cap, r, out_j] (B transposed, scaling folded in) */
    int64_t out[4], off[4];
    int half; /* A and B stacks hold fp16; x, y and the math stay fp32 */
} lora_args;

#ifdef HAVE_AVX512_PATH
#include <immintrin.h>

#define AVX512 __attribute__((target("avx512f")))
#ifndef PREFETCH_KEYS
#define PREFETCH_KEYS 64
#endif

AVX512 static inline __m512 exp512(__m512 x)
{
    x = _mm512_max_ps(x, _mm512_set1_ps(-87.0f));
    __m512 fn = _mm512_roundscale_ps(_mm512_fmadd_ps(x, _mm512_set1_ps(1.44269504088896341f), _mm512_set1_ps(0.5f)),
                                     _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(fn, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fmadd_ps(fn, _mm512_set1_ps(2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(_mm512_mul_ps(p, r), r, _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(p, fn);
}

/* one (row, kv head): K/V blocks of n keys, gs query heads already rotated in qr; writes gs output heads */
#define DEFINE_HEAD(NAME, KT, LOAD)  \
AVX512 static void NAME(const KT *restrict K, const KT *restrict V, int n, const float *restrict qr,                   \
                               int gs, int D, float scale, float *restrict scores, float *restrict out)                \
{                                                                                                                      \
    const int nc = D / 16;                                                                                             \
    for (int j = 0; j < gs; j++) {                                                                                     \
        const float *q = qr + j * D;                                                                                   \
        __m512 qv[16];                                                                                                 \
        for (int c = 0; c < nc; c++)                                                                                   \
            qv[c] = _mm512_loadu_ps(q + 16 * c);                                                                       \
        /* scores, four keys at a time for instruction-level parallelism */                                            \
        int t = 0;                                                                                                     \
        for (; t + 4 <= n; t += 4) {                                                                                   \
            const KT *k0 = K + (int64_t)t * D;                                                                         \
            __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;                                                \
            for (int c = 0; c < nc; c++) {                                                                             \
                a0 = _mm512_fmadd_ps(qv[c], LOAD(k0 + 16 * c), a0);                                                    \
                a1 = _mm512_fmadd_ps(qv[c], LOAD(k0 + D + 16 * c), a1);                                                \
                a2 = _mm512_fmadd_ps(qv[c], LOAD(k0 + 2 * D + 16 * c), a2);                                            \
                a3 = _mm512_fmadd_ps(qv[c], LOAD(k0 + 3 * D + 16 * c), a3);                                            \
            }                                                                                                          \
            scores[t] = _mm512_reduce_add_ps(a0) * scale;                                                              \
            scores[t + 1] = _mm512_reduce_add_ps(a1) * scale;                                                          \
            scores[t + 2] = _mm512_reduce_add_ps(a2) * scale;                                                          \
            scores[t + 3] = _mm512_reduce_add_ps(a3) * scale;                                                          \
        }                                                                                                              \
        for (; t < n; t++) {                                                                                           \
            __m512 a0 = _mm512_setzero_ps();                                                                           \
            for (int c = 0; c < nc; c++)                                                                               \
                a0 = _mm512_fmadd_ps(qv[c], LOAD(K + (int64_t)t * D + 16 * c), a0);                                    \
            scores[t] = _mm512_reduce_add_ps(a0) * scale;                                                              \
        }                                                                                                              \
        /* softmax */                                                                                                  \
        __m512 mv = _mm512_set1_ps(-3.0e38f);                                                                          \
        for (t = 0; t < n; t += 16) {                                                                                  \
            __mmask16 mk = n - t >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - t)) - 1u);                        \
            mv = _mm512_mask_max_ps(mv, mk, mv, _mm512_maskz_loadu_ps(mk, scores + t));                                \
        }                                                                                                              \
        const __m512 m = _mm512_set1_ps(_mm512_reduce_max_ps(mv));                                                     \
        __m512 sv = _mm512_setzero_ps();                                                                               \
        for (t = 0; t < n; t += 16) {                                                                                  \
            __mmask16 mk = n - t >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - t)) - 1u);                        \
            __m512 e = exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(mk, scores + t), m));                                \
            _mm512_mask_storeu_ps(scores + t, mk, e);                                                                  \
            sv = _mm512_mask_add_ps(sv, mk, sv, e);                                                                    \
        }                                                                                                              \
        const __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(sv));                                            \
        /* weighted values, four 16-float columns per pass */                                                          \
        for (int c = 0; c < nc; c += 4) {                                                                              \
            const int w = nc - c < 4 ? nc - c : 4;                                                                     \
            __m512 o0 = _mm512_setzero_ps(), o1 = o0, o2 = o0, o3 = o0;                                                \
            const KT *vc = V + 16 * c;                                                                                 \
            if (w == 4) {                                                                                              \
                for (t = 0; t < n; t++) {                                                                              \
                    const __m512 pw = _mm512_set1_ps(scores[t]);                                                       \
                    const KT *vt = vc + (int64_t)t * D;                                                                \
                    o0 = _mm512_fmadd_ps(pw, LOAD(vt), o0);                                                            \
                    o1 = _mm512_fmadd_ps(pw, LOAD(vt + 16), o1);                                                       \
                    o2 = _mm512_fmadd_ps(pw, LOAD(vt + 32), o2);                                                       \
                    o3 = _mm512_fmadd_ps(pw, LOAD(vt + 48), o3);                                                       \
                }                                                                                                      \
            } else {                                                                                                   \
                for (t = 0; t < n; t++) {                                                                              \
                    const __m512 pw = _mm512_set1_ps(scores[t]);                                                       \
                    const KT *vt = vc + (int64_t)t * D;                                                                \
                    o0 = _mm512_fmadd_ps(pw, LOAD(vt), o0);                                                            \
                    if (w > 1) o1 = _mm512_fmadd_ps(pw, LOAD(vt + 16), o1);                                            \
                    if (w > 2) o2 = _mm512_fmadd_ps(pw, LOAD(vt + 32), o2);                                            \
                }                                                                                                      \
            }                                                                                                          \
            float *oj = out + j * D + 16 * c;                                                                          \
            _mm512_storeu_ps(oj, _mm512_mul_ps(o0, inv));                                                              \
            if (w > 1) _mm512_storeu_ps(oj + 16, _mm512_mul_ps(o1, inv));                                              \
            if (w > 2) _mm512_storeu_ps(oj + 32, _mm512_mul_ps(o2, inv));                                              \
            if (w > 3) _mm512_storeu_ps(oj + 48, _mm512_mul_ps(o3, inv));                                              \
        }                                                                                                              \
    }                                                                                                                  \
}

AVX512 static inline __m512 load_f32(const float *p) { return _mm512_loadu_ps(p); }
AVX512 static inline __m512 load_f16(const uint16_t *p)
{
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
}
DEFINE_HEAD(head_f32, float, load_f32)
DEFINE_HEAD(head_f16, uint16_t, load_f16)

/* store D floats as fp16 (round to nearest even) */
AVX512 static void store_f16(uint16_t *dst, const float *src, int D)
{
    for (int d = 0; d < D; d += 16)
        _mm256_storeu_si256((__m256i *)(dst + d), _mm512_cvtps_ph(_mm512_loadu_ps(src + d), _MM_FROUND_TO_NEAREST_INT));
}

static int decode_rows_avx512(const attn_args *a)
{
    const int D = a->head_dim, H = a->n_heads, Hkv = a->n_kv, gs = H / Hkv;
    const int64_t L = a->max_len;
    const int64_t esz = a->kv_half ? 2 : 4; /* bytes per cached K/V element */
    float *scores = malloc(sizeof(float) * (size_t)(L + 16));
    float *qr = malloc(sizeof(float) * (size_t)gs * (size_t)D);
    float *kr = malloc(sizeof(float) * (size_t)D);
    if (!scores || !qr || !kr) {
        free(scores); free(qr); free(kr);
        return -1;
    }
    char *kbase = (char *)a->kc, *vbase = (char *)a->vc;
    for (int b = a->lo; b < a->hi; b++) {
        const int64_t p = a->pos[b];
        const float *c = a->cos + p * D, *s = a->sin + p * D;
        for (int g = 0; g < Hkv; g++) {
            const int64_t r = a->row ? a->row[b] : b;
            char *K = kbase + (r * Hkv + g) * L * D * esz;
            char *V = vbase + (r * Hkv + g) * L * D * esz;
            const float *knew = a->k + b * a->k_stride + (int64_t)g * D;
            const float *vnew = a->v + b * a->v_stride + (int64_t)g * D;
            if (a->do_rope)
                rope(kr, knew, c, s, D);
            else
                memcpy(kr, knew, sizeof(float) * D);
            if (a->kv_half) {
                store_f16((uint16_t *)(K + p * D * esz), kr, D);
                store_f16((uint16_t *)(V + p * D * esz), vnew, D);
            } else {
                memcpy(K + p * D * esz, kr, sizeof(float) * D);
                memcpy(V + p * D * esz, vnew, sizeof(float) * D);
            }
            for (int j = 0; j < gs; j++) {
                const float *qh = a->q + b * a->q_stride + (int64_t)(g * gs + j) * D;
                if (a->do_rope)
                    rope(qr + j * D, qh, c, s, D);
                else
                    memcpy(qr + j * D, qh, sizeof(float) * D);
            }
            {   /* start pulling the next head's first keys and values while this one computes: each (row, head)
                 * block is a new memory stream that the hardware prefetcher would only pick up after a few misses */
                const int nb = g + 1 < Hkv ? b : b + 1, ng = g + 1 < Hkv ? g + 1 : 0;
                if (nb < a->hi) {
                    const int64_t nr = a->row ? a->row[nb] : nb;
                    const int64_t nn = a->pos[nb] + 1;
                    const char *nk = kbase + (nr * Hkv + ng) * L * D * esz;
                    const char *nv = vbase + (nr * Hkv + ng) * L * D * esz;
                    const int64_t bytes = (nn < PREFETCH_KEYS ? nn : PREFETCH_KEYS) * D * esz;
                    for (int64_t o = 0; o < bytes; o += 64) {
                        _mm_prefetch(nk + o, _MM_HINT_T0);
                        _mm_prefetch(nv + o, _MM_HINT_T0);
                    }
                }
            }
            float *o = a->out + ((int64_t)b * H + g * gs) * D;
            if (a->kv_half)
                head_f16((const uint16_t *)K, (const uint16_t *)V, (int)(p + 1), qr, gs, D, a->scale, scores, o);
            else
                head_f32((const float *)K, (const float *)V, (int)(p + 1), qr, gs, D, a->scale, scores, o);
        }
    }
    free(scores); free(qr); free(kr);
    return 0;
}

/* ---------------------------------------------------------------------------------------------------------- */
/* (2) batched LoRA                                                                                           */
/* ---------------------------------------------------------------------------------------------------------- */

#define LORA_ROWS 4 /* rows of one slot computed together: each loaded A row serves up to 4 rows */
#ifndef LORA_PF_ROWS
#define LORA_PF_ROWS 16
#endif
#ifndef LORA_PF_B
#define LORA_PF_B 2
#endif


static inline __mmask16 tail_mask(int64_t rem)
{
    return rem <= 0 ? (__mmask16)0 : rem >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << rem) - 1u);
}

#define AVX512BW __attribute__((target("avx512f,avx512bw,avx512vl")))
/* up to 4 rows of one slot (see the comments inside); WT is the stacks' element type, MLOAD its masked load as fp32 */
#define DEFINE_LORA_SLOT(NAME, WT, MLOAD) \
AVX512BW static void NAME(const lora_args *a, const float *const *x, float *const *y, int64_t m, const WT *A,          \
                          int64_t s, float *t, float *dbuf)                                                            \
{                                                                                                                      \
    const int64_t in = a->in, kr = a->kr, r = a->r;                                                                    \
    /* shrink t[4, kr] = x A: one sequential pass over A per 64 columns, 4 rows x up to 4 column blocks held in        \
     * registers (rows beyond m repeat row 0 and are never stored to y) */                                             \
    for (int64_t q0 = 0; q0 < kr; q0 += 64) {                                                                          \
        const int64_t w = kr - q0;                                                                                     \
        const __mmask16 k0 = tail_mask(w), k1 = tail_mask(w - 16), k2 = tail_mask(w - 32), k3 = tail_mask(w - 48);     \
        const __m512 z = _mm512_setzero_ps();                                                                          \
        __m512 c00 = z, c01 = z, c02 = z, c03 = z, c10 = z, c11 = z, c12 = z, c13 = z;                                 \
        __m512 c20 = z, c21 = z, c22 = z, c23 = z, c30 = z, c31 = z, c32 = z, c33 = z;                                 \
        const WT *ap = A + q0;                                                                                         \
        if (w > 32) {                                                                                                  \
            for (int64_t i = 0; i < in; i++, ap += kr) {                                                               \
                for (int64_t o = 0; o < w * (int64_t)sizeof(WT) && w <= 64; o += 64)                                  \
                    _mm_prefetch((const char *)(ap + LORA_PF_ROWS * kr) + o, _MM_HINT_T0);                             \
                const __m512 a0 = MLOAD(k0, ap), a1 = MLOAD(k1, ap + 16), a2 = MLOAD(k2, ap + 32);                     \
                const __m512 a3 = MLOAD(k3, ap + 48);                                                                  \
                const __m512 x0 = _mm512_set1_ps(x[0][i]), x1 = _mm512_set1_ps(x[1][i]);                               \
                const __m512 x2 = _mm512_set1_ps(x[2][i]), x3 = _mm512_set1_ps(x[3][i]);                               \
                c00 = _mm512_fmadd_ps(x0, a0, c00); c01 = _mm512_fmadd_ps(x0, a1, c01);                                \
                c02 = _mm512_fmadd_ps(x0, a2, c02); c03 = _mm512_fmadd_ps(x0, a3, c03);                                \
                c10 = _mm512_fmadd_ps(x1, a0, c10); c11 = _mm512_fmadd_ps(x1, a1, c11);                                \
                c12 = _mm512_fmadd_ps(x1, a2, c12); c13 = _mm512_fmadd_ps(x1, a3, c13);                                \
                c20 = _mm512_fmadd_ps(x2, a0, c20); c21 = _mm512_fmadd_ps(x2, a1, c21);                                \
                c22 = _mm512_fmadd_ps(x2, a2, c22); c23 = _mm512_fmadd_ps(x2, a3, c23);                                \
                c30 = _mm512_fmadd_ps(x3, a0, c30); c31 = _mm512_fmadd_ps(x3, a1, c31);                                \
                c32 = _mm512_fmadd_ps(x3, a2, c32); c33 = _mm512_fmadd_ps(x3, a3, c33);                                \
            }                                                                                                          \
        } else if (w > 16) {                                                                                           \
            for (int64_t i = 0; i < in; i++, ap += kr) {                                                               \
                const __m512 a0 = MLOAD(k0, ap), a1 = MLOAD(k1, ap + 16);                                              \
                const __m512 x0 = _mm512_set1_ps(x[0][i]), x1 = _mm512_set1_ps(x[1][i]);                               \
                const __m512 x2 = _mm512_set1_ps(x[2][i]), x3 = _mm512_set1_ps(x[3][i]);                               \
                c00 = _mm512_fmadd_ps(x0, a0, c00); c01 = _mm512_fmadd_ps(x0, a1, c01);                                \
                c10 = _mm512_fmadd_ps(x1, a0, c10); c11 = _mm512_fmadd_ps(x1, a1, c11);                                \
                c20 = _mm512_fmadd_ps(x2, a0, c20); c21 = _mm512_fmadd_ps(x2, a1, c21);                                \
                c30 = _mm512_fmadd_ps(x3, a0, c30); c31 = _mm512_fmadd_ps(x3, a1, c31);                                \
            }                                                                                                          \
        } else { /* one column block: two independent chains over i (even / odd rows of A) */                          \
            int64_t i = 0;                                                                                             \
            for (; i + 1 < in; i += 2, ap += 2 * kr) {                                                                 \
                const __m512 a0 = MLOAD(k0, ap), a1 = MLOAD(k0, ap + kr);                                              \
                c00 = _mm512_fmadd_ps(_mm512_set1_ps(x[0][i]), a0, c00);                                               \
                c10 = _mm512_fmadd_ps(_mm512_set1_ps(x[1][i]), a0, c10);                                               \
                c20 = _mm512_fmadd_ps(_mm512_set1_ps(x[2][i]), a0, c20);                                               \
                c30 = _mm512_fmadd_ps(_mm512_set1_ps(x[3][i]), a0, c30);                                               \
                c01 = _mm512_fmadd_ps(_mm512_set1_ps(x[0][i + 1]), a1, c01);                                           \
                c11 = _mm512_fmadd_ps(_mm512_set1_ps(x[1][i + 1]), a1, c11);                                           \
                c21 = _mm512_fmadd_ps(_mm512_set1_ps(x[2][i + 1]), a1, c21);                                           \
                c31 = _mm512_fmadd_ps(_mm512_set1_ps(x[3][i + 1]), a1, c31);                                           \
            }                                                                                                          \
            for (; i < in; i++, ap += kr) {                                                                            \
                const __m512 a0 = MLOAD(k0, ap);                                                                       \
                c00 = _mm512_fmadd_ps(_mm512_set1_ps(x[0][i]), a0, c00);                                               \
                c10 = _mm512_fmadd_ps(_mm512_set1_ps(x[1][i]), a0, c10);                                               \
                c20 = _mm512_fmadd_ps(_mm512_set1_ps(x[2][i]), a0, c20);                                               \
                c30 = _mm512_fmadd_ps(_mm512_set1_ps(x[3][i]), a0, c30);                                               \
            }                                                                                                          \
            c00 = _mm512_add_ps(c00, c01); c10 = _mm512_add_ps(c10, c11);                                              \
            c20 = _mm512_add_ps(c20, c21); c30 = _mm512_add_ps(c30, c31);                                              \
            c01 = c11 = c21 = c31 = z;                                                                                 \
        }                                                                                                              \
        const __m512 cs[4][4] = {{c00, c01, c02, c03}, {c10, c11, c12, c13}, {c20, c21, c22, c23},                     \
                                 {c30, c31, c32, c33}};                                                                \
        const __mmask16 ks[4] = {k0, k1, k2, k3};                                                                      \
        for (int c = 0; c < 4; c++)                                                                                    \
            for (int b = 0; b < 4; b++)                                                                                \
                _mm512_mask_storeu_ps(t + c * kr + q0 + 16 * b, ks[b], cs[c][b]);                                      \
    }                                                                                                                  \
    if (m > 2) { /* prefill-like: 4 rows share every loaded B vector; 2 column blocks x 4 rows in registers */         \
        for (int j = 0; j < a->k; j++) {                                                                               \
            const int64_t out = a->out[j];                                                                             \
            const WT *B = (const WT *)a->b[j] + s * r * out;                                                           \
            const float *t0 = t + j * r, *t1 = t0 + kr, *t2 = t1 + kr, *t3 = t2 + kr;                                  \
            for (int64_t o0 = 0; o0 < out; o0 += 32) {                                                                 \
                const __mmask16 mk = tail_mask(out - o0), mk2 = tail_mask(out - o0 - 16);                              \
                __m512 d0 = _mm512_setzero_ps(), d1 = d0, d2 = d0, d3 = d0, e0 = d0, e1 = d0, e2 = d0, e3 = d0;        \
                const WT *bp = B + o0;                                                                                 \
                for (int64_t q = 0; q < r; q++, bp += out) {                                                           \
                    const __m512 bv = MLOAD(mk, bp), bw = MLOAD(mk2, bp + 16);                                         \
                    const __m512 w0 = _mm512_set1_ps(t0[q]), w1 = _mm512_set1_ps(t1[q]);                               \
                    const __m512 w2 = _mm512_set1_ps(t2[q]), w3 = _mm512_set1_ps(t3[q]);                               \
                    d0 = _mm512_fmadd_ps(w0, bv, d0); e0 = _mm512_fmadd_ps(w0, bw, e0);                                \
                    d1 = _mm512_fmadd_ps(w1, bv, d1); e1 = _mm512_fmadd_ps(w1, bw, e1);                                \
                    d2 = _mm512_fmadd_ps(w2, bv, d2); e2 = _mm512_fmadd_ps(w2, bw, e2);                                \
                    d3 = _mm512_fmadd_ps(w3, bv, d3); e3 = _mm512_fmadd_ps(w3, bw, e3);                                \
                }                                                                                                      \
                const __m512 dd[4] = {d0, d1, d2, d3}, ee[4] = {e0, e1, e2, e3};                                       \
                for (int64_t c = 0; c < m; c++) {                                                                      \
                    float *yp = y[c] + a->off[j] + o0;                                                                 \
                    _mm512_mask_storeu_ps(yp, mk, _mm512_add_ps(_mm512_maskz_loadu_ps(mk, yp), dd[c]));                \
                    _mm512_mask_storeu_ps(yp + 16, mk2, _mm512_add_ps(_mm512_maskz_loadu_ps(mk2, yp + 16), ee[c]));    \
                }                                                                                                      \
            }                                                                                                          \
        }                                                                                                              \
        return;                                                                                                        \
    }                                                                                                                  \
    /* decode-like (1-2 rows): B_j read once, row after row (one sequential stream); the m            \
     * partial outputs accumulate in dbuf (L1), then are added to y */                                                 \
    for (int j = 0; j < a->k; j++) {                                                                                   \
        const int64_t out = a->out[j];                                                                                 \
        const WT *B = (const WT *)a->b[j] + s * r * out;                                                               \
        memset(dbuf, 0, sizeof(float) * (size_t)(m * out));                                                            \
        for (int64_t q = 0; q < r; q++) {                                                                              \
            const WT *bq = B + q * out;                                                                                \
            for (int64_t o = 0; o < out * (int64_t)sizeof(WT); o += 64)                                                \
                _mm_prefetch((const char *)(bq + LORA_PF_B * out) + o, _MM_HINT_T0);                                   \
            const __m512 w0 = _mm512_set1_ps(t[j * r + q]), w1 = _mm512_set1_ps(t[kr + j * r + q]);                    \
            const __m512 w2 = _mm512_set1_ps(t[2 * kr + j * r + q]), w3 = _mm512_set1_ps(t[3 * kr + j * r + q]);       \
            for (int64_t o0 = 0; o0 < out; o0 += 16) {                                                                 \
                const __mmask16 mk = tail_mask(out - o0);                                                              \
                const __m512 bv = MLOAD(mk, bq + o0);                                                                  \
                float *d = dbuf + o0;                                                                                  \
                _mm512_mask_storeu_ps(d, mk, _mm512_fmadd_ps(w0, bv, _mm512_maskz_loadu_ps(mk, d)));                   \
                if (m > 1) {                                                                                           \
                    d += out;                                                                                          \
                    _mm512_mask_storeu_ps(d, mk, _mm512_fmadd_ps(w1, bv, _mm512_maskz_loadu_ps(mk, d)));               \
                }                                                                                                      \
                if (m > 2) {                                                                                           \
                    d += out;                                                                                          \
                    _mm512_mask_storeu_ps(d, mk, _mm512_fmadd_ps(w2, bv, _mm512_maskz_loadu_ps(mk, d)));               \
                }                                                                                                      \
                if (m > 3) {                                                                                           \
                    d += out;                                                                                          \
                    _mm512_mask_storeu_ps(d, mk, _mm512_fmadd_ps(w3, bv, _mm512_maskz_loadu_ps(mk, d)));               \
                }                                                                                                      \
            }                                                                                                          \
        }                                                                                                              \
        for (int64_t c = 0; c < m; c++) {                                                                              \
            float *yp = y[c] + a->off[j];                                                                              \
            const float *d = dbuf + c * out;                                                                           \
            for (int64_t o0 = 0; o0 < out; o0 += 16) {                                                                 \
                const __mmask16 mk = tail_mask(out - o0);                                                              \
                _mm512_mask_storeu_ps(yp + o0, mk, _mm512_add_ps(_mm512_maskz_loadu_ps(mk, yp + o0),                   \
                                                                 _mm512_maskz_loadu_ps(mk, d + o0)));                  \
            }                                                                                                          \
        }                                                                                                              \
    }                                                                                                                  \
}

AVX512BW static inline __m512 mload_f32(__mmask16 mk, const float *p) { return _mm512_maskz_loadu_ps(mk, p); }
AVX512BW static inline __m512 mload_f16(__mmask16 mk, const uint16_t *p)
{
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mk, p));
}
DEFINE_LORA_SLOT(lora_slot_f32, float, mload_f32)
DEFINE_LORA_SLOT(lora_slot_f16, uint16_t, mload_f16)

AVX512 static void add_rmsnorm_avx512(float *x, const float *res, const float *w, float *out, int64_t n, int64_t d,
                                      float eps)
{
    for (int64_t i = 0; i < n; i++) {
        float *xi = x + i * d;
        __m512 ss = _mm512_setzero_ps();
        for (int64_t j = 0; j < d; j += 16) {
            const __mmask16 mk = tail_mask(d - j);
            __m512 v = _mm512_maskz_loadu_ps(mk, xi + j);
            if (res) {
                v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mk, res + i * d + j));
                _mm512_mask_storeu_ps(xi + j, mk, v);
            }
            ss = _mm512_fmadd_ps(v, v, ss);
        }
        const __m512 r = _mm512_set1_ps(1.0f / sqrtf(_mm512_reduce_add_ps(ss) / (float)d + eps));
        for (int64_t j = 0; j < d; j += 16) {
            const __mmask16 mk = tail_mask(d - j);
            const __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(mk, xi + j), r);
            _mm512_mask_storeu_ps(out + i * d + j, mk, _mm512_mul_ps(_mm512_maskz_loadu_ps(mk, w + j), v));
        }
    }
}

AVX512 static void silu_mul_avx512(const float *gu, float *out, int64_t n, int64_t inter)
{
    const __m512 one = _mm512_set1_ps(1.0f);
    for (int64_t i = 0; i < n; i++) {
        const float *g = gu + i * 2 * inter, *u = g + inter;
        float *o = out + i * inter;
        for (int64_t j = 0; j < inter; j += 16) {
            const __mmask16 mk = tail_mask(inter - j);
            const __m512 gv = _mm512_maskz_loadu_ps(mk, g + j);
            const __m512 e = exp512(_mm512_sub_ps(_mm512_setzero_ps(), gv));
            const __m512 sv = _mm512_div_ps(gv, _mm512_add_ps(one, e));
            _mm512_mask_storeu_ps(o + j, mk, _mm512_mul_ps(sv, _mm512_maskz_loadu_ps(mk, u + j)));
        }
    }
}


static int lora_rows_avx512(const lora_args *a)
{
    int64_t max_out = 0;
    for (int j = 0; j < a->k; j++)
        max_out = a->out[j] > max_out ? a->out[j] : max_out;
    float *t = malloc(sizeof(float) * (size_t)(LORA_ROWS * a->kr + 64));
    float *dbuf = malloc(sizeof(float) * (size_t)(LORA_ROWS * max_out + 16));
    if (!t || !dbuf) {
        free(t); free(dbuf);
        return -1;
    }
    int64_t i0 = 0;
    while (i0 < a->n) {
        const int64_t s = a->slots[i0];
        int64_t m = 1;
        while (i0 + m < a->n && m < LORA_ROWS && a->slots[i0 + m] == s)
            m++;
        const float *x[LORA_ROWS];
        float *y[LORA_ROWS];
        for (int64_t c = 0; c < LORA_ROWS; c++) {
            const int64_t row = a->rows[i0 + (c < m ? c : 0)];
            x[c] = a->x + row * a->x_stride;
            y[c] = a->y + row * a->y_stride;
        }
        if (a->half)
            lora_slot_f16(a, x, y, m, (const uint16_t *)a->a + s * a->in * a->kr, s, t, dbuf);
        else
            lora_slot_f32(a, x, y, m, a->a + s * a->in * a->kr, s, t, dbuf);
        i0 += m;
    }
    free(t); free(dbuf);
    return 0;
}
#endif /* HAVE_AVX512_PATH */

#ifdef HAVE_AVX512_PATH
static int decode_fn(const void *a) { return decode_rows_avx512(a); }
static int lora_fn(const void *a) { return lora_rows_avx512(a); }
#else
static int decode_fn(const void *a) { (void)a; return -1; }
static int lora_fn(const void *a) { (void)a; return -1; }
#endif

/* fn(args) with the GIL released; a non-zero return means scratch memory could not be allocated */
static PyObject *run_nogil(int (*fn)(const void *), const void *args)
{
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = fn(args);
    Py_END_ALLOW_THREADS
    if (rc != 0)
        return PyErr_NoMemory();
    Py_RETURN_NONE;
}

static PyObject *py_decode(PyObject *self, PyObject *args)
{
    (void)self;
    unsigned long long q, k, v, kc, vc, cs, sn, pos, row, out;
    long long qs, ks, vs, max_len;
    int lo, hi, h, hkv, d, do_rope, kv_half = 0;
    float scale;
    if (!PyArg_ParseTuple(args, "KKKLLLKKLKKKKKiiiiiif|p", &q, &k, &v, &qs, &ks, &vs, &kc, &vc, &max_len, &cs, &sn,
                          &pos, &row, &out, &lo, &hi, &h, &hkv, &d, &do_rope, &scale, &kv_half))
        return NULL;
    if (!simd_head(d))
        return no_simd("decode (or head_dim is not a multiple of 16 up to 256)");
    if (hkv <= 0 || h % hkv != 0 || d <= 0 || lo < 0 || hi < lo || max_len <= 0 || (do_rope && d % 2)) {
        PyErr_SetString(PyExc_ValueError, "decode: bad shape arguments");
        return NULL;
    }
    attn_args a = {
        .q = (const float *)(uintptr_t)q, .k = (const float *)(uintptr_t)k, .v = (const float *)(uintptr_t)v,
        .q_stride = qs, .k_stride = ks, .v_stride = vs,
        .kc = (float *)(uintptr_t)kc, .vc = (float *)(uintptr_t)vc, .max_len = max_len,
        .cos = (const float *)(uintptr_t)cs, .sin = (const float *)(uintptr_t)sn,
        .pos = (const int64_t *)(uintptr_t)pos, .row = (const int64_t *)(uintptr_t)row, .out = (float *)(uintptr_t)out,
        .lo = lo, .hi = hi, .n_heads = h, .n_kv = hkv, .head_dim = d, .do_rope = do_rope, .scale = scale,
        .kv_half = kv_half,
    };
    return run_nogil(decode_fn, &a);
}


static PyObject *py_lora(PyObject *self, PyObject *args)
{
    (void)self;
    unsigned long long x, y, rows, slots, a, b0, b1, b2, b3;
    long long xs, in, ys, n, kr, r, o0, o1, o2, o3;
    int k, half = 0;
    if (!PyArg_ParseTuple(args, "KLLKLKKLKLLiKKKKLLLL|p", &x, &xs, &in, &y, &ys, &rows, &slots, &n, &a, &kr, &r, &k,
                          &b0, &b1, &b2, &b3, &o0, &o1, &o2, &o3, &half))
        return NULL;
    if (!simd_ok())
        return no_simd("lora");
    if (k < 1 || k > 4 || r <= 0 || kr != k * r || in <= 0 || n < 0) {
        PyErr_SetString(PyExc_ValueError, "lora: bad shape arguments");
        return NULL;
    }
    lora_args la = {
        .x = (const float *)(uintptr_t)x, .x_stride = xs, .in = in, .y = (float *)(uintptr_t)y, .y_stride = ys,
        .rows = (const int64_t *)(uintptr_t)rows, .slots = (const int64_t *)(uintptr_t)slots, .n = n,
        .a = (const float *)(uintptr_t)a, .kr = kr, .r = r, .k = k,
        .b = {(const float *)(uintptr_t)b0, (const float *)(uintptr_t)b1, (const float *)(uintptr_t)b2,
              (const float *)(uintptr_t)b3},
        .out = {o0, o1, o2, o3}, .half = half,
    };
    int64_t off = 0;
    for (int j = 0; j < k; j++) {
        if (la.out[j] <= 0) {
            PyErr_SetString(PyExc_ValueError, "lora: bad module width");
            return NULL;
        }
        la.off[j] = off;
        off += la.out[j];
    }
    return run_nogil(lora_fn, &la);
}


/* ---------------------------------------------------------------------------------------------------------- */
/* (3) elementwise: residual add + RMSNorm, SiLU(gate) * up                                                    */
/* ---------------------------------------------------------------------------------------------------------- */

static PyObject *py_add_rmsnorm(PyObject *self, PyObject *args)
{
    (void)self;
    unsigned long long x, res, w, out;
    long long n, d;
    float eps;
    if (!PyArg_ParseTuple(args, "KKKKLLf", &x, &res, &w, &out, &n, &d, &eps))
        return NULL;
    if (n < 0 || d <= 0) {
        PyErr_SetString(PyExc_ValueError, "add_rmsnorm: bad shape arguments");
        return NULL;
    }
    if (!simd_ok())
        return no_simd("add_rmsnorm");
#ifdef HAVE_AVX512_PATH
    Py_BEGIN_ALLOW_THREADS
    add_rmsnorm_avx512((float *)(uintptr_t)x, (const float *)(uintptr_t)res, (const float *)(uintptr_t)w,
                       (float *)(uintptr_t)out, n, d, eps);
    Py_END_ALLOW_THREADS
#endif
    Py_RETURN_NONE;
}

static PyObject *py_silu_mul(PyObject *self, PyObject *args)
{
    (void)self;
    unsigned long long gu, out;
    long long n, inter;
    if (!PyArg_ParseTuple(args, "KKLL", &gu, &out, &n, &inter))
        return NULL;
    if (n < 0 || inter <= 0) {
        PyErr_SetString(PyExc_ValueError, "silu_mul: bad shape arguments");
        return NULL;
    }
    if (!simd_ok())
        return no_simd("silu_mul");
#ifdef HAVE_AVX512_PATH
    Py_BEGIN_ALLOW_THREADS
    silu_mul_avx512((const float *)(uintptr_t)gu, (float *)(uintptr_t)out, n, inter);
    Py_END_ALLOW_THREADS
#endif
    Py_RETURN_NONE;
}

static PyObject *py_available(PyObject *self, PyObject *args)
{
    (void)self;
    (void)args;
    return PyBool_FromLong(simd_ok());
}

static PyObject *py_simd(PyObject *self, PyObject *args)
{
    (void)self;
    int d;
    if (!PyArg_ParseTuple(args, "i", &d))
        return NULL;
    return PyBool_FromLong(simd_head(d));
}

static PyMethodDef methods[] = {
    {"available", py_available, METH_NOARGS,
     "available(): whether this CPU runs the kernels (AVX-512 F, BW, VL); elsewhere every entry point raises."},
    {"add_rmsnorm", py_add_rmsnorm, METH_VARARGS,
     "add_rmsnorm(x, res, w, out, n, d, eps): x += res (res=0: skip) then out = RMSNorm(x) * w, rows of d floats."},
    {"silu_mul", py_silu_mul, METH_VARARGS,
     "silu_mul(gu, out, n, inter): out[n, inter] = silu(gu[:, :inter]) * gu[:, inter:] (gu [n, 2 inter])."},
    {"lora", py_lora, METH_VARARGS,
     "lora(x, x_stride, in, y, y_stride, rows, slots, n, a, kr, r, k, b0, b1, b2, b3, out0, out1, out2, out3): "
     "y[rows[i], off_j:off_j+out_j] += (x[rows[i]] @ a[slots[i]])[j r:(j+1) r] @ b_j[slots[i]] for the n rows "
     "(sorted by slot) and the k modules (pointers as ints, strides in floats, rows/slots int64); half=True: the A/B "
     "stacks hold fp16. Releases the GIL."},
    {"simd", py_simd, METH_VARARGS,
     "simd(head_dim): whether `decode` runs for this head size (available(), head_dim % 16 == 0, <= 256)."},
    {"decode", py_decode, METH_VARARGS,
     "decode(q, k, v, q_stride, k_stride, v_stride, kc, vc, max_len, cos, sin, pos, row, out, lo, hi, n_heads, "
     "n_kv, head_dim, rope, scale, kv_half=False): fused RoPE + K/V write + exact-length causal attention for "
     "entries lo..hi-1 (entry b: cache row row[b] (row=0: b), position pos[b]; entries of one row in increasing "
     "position order, so packed prefill tokens work too); kv_half: the cache holds fp16. Pointers as ints, strides "
     "in floats, pos/row int64. Releases the GIL."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "inference._kernels",
                                    "The engine's native CPU kernels (see inference/_kernels.c).", -1, methods};

PyMODINIT_FUNC PyInit__kernels(void) { return PyModule_Create(&module); }
