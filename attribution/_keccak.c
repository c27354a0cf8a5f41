/*
 * attribution/_keccak.c -- batch Keccak-256 for the attribution Merkle trees (OpenZeppelin StandardMerkleTree).
 *
 * Why: a tree over 1,000,000 records needs ~6 million Keccak-f[1600] permutations (record leaves are 4-5 blocks
 * plus the second hash, plus one per internal node). One call per hash from Python costs more than the hash, and
 * one permutation at a time leaves most of a modern core idle. Here every batch entry point takes one contiguous
 * buffer, returns one, runs with the GIL released, and hashes independent messages side by side: 8 at a time
 * with AVX-512, 4 with AVX2, 1 otherwise (chosen at run time, so the build needs no -march flag).
 *
 * Keccak-f[1600] follows the structure of the Keccak team's public-domain "Keccak-readable-and-compact.c"
 * (XKCP, CC0) and Markku-Juhani O. Saarinen's tiny_sha3 (MIT): theta, rho+pi, chi, iota over 25 64-bit lanes,
 * lane (x, y) at index x + 5y. The round is written once as a macro over the lane type, and instantiated for
 * uint64_t and for GCC vector types of 4 and 8 lanes, each vector element being the same lane of another state.
 * Keccak-256 here is Ethereum's (original Keccak padding 0x01 ... 0x80, rate 136 bytes), not FIPS SHA3-256.
 *
 * Entry points (see _keccak.pyi): keccak256, hash_rows, record_leaves, sort_order, build_tree, all_proofs,
 * check_tree, lanes, set_lanes.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define RATE 136     /* bytes absorbed per permutation for Keccak-256 */
#define MAX_LANES 8

/* ---------------------------------------------------------------------------------------------------------- */
/* Keccak-f[1600]                                                                                              */
/* ---------------------------------------------------------------------------------------------------------- */

static const uint64_t ROUND_CONSTANTS[24] = {
    0x0000000000000001ULL, 0x0000000000008082ULL, 0x800000000000808AULL, 0x8000000080008000ULL,
    0x000000000000808BULL, 0x0000000080000001ULL, 0x8000000080008081ULL, 0x8000000000008009ULL,
    0x000000000000008AULL, 0x0000000000000088ULL, 0x0000000080008009ULL, 0x000000008000000AULL,
    0x000000008000808BULL, 0x800000000000008BULL, 0x8000000000008089ULL, 0x8000000000008003ULL,
    0x8000000000008002ULL, 0x8000000000000080ULL, 0x000000000000800AULL, 0x800000008000000AULL,
    0x8000000080008081ULL, 0x8000000000008080ULL, 0x0000000080000001ULL, 0x8000000080008008ULL,
};

#define ROL(v, n) (((v) << (n)) | ((v) >> (64 - (n))))

/* rho and pi in one step: lane (x, y), xored with theta's D[x] and rotated by r, moves to (y, 2x + 3y). */
#define RHO_PI(x, y, r) B[(y) + 5 * ((2 * (x) + 3 * (y)) % 5)] = ROL(A[(x) + 5 * (y)] ^ D[x], r)
/* chi on one lane: the only non-linear step. */
#define CHI(x, y) A[(x) + 5 * (y)] = B[(x) + 5 * (y)] ^ (~B[((x) + 1) % 5 + 5 * (y)] & B[((x) + 2) % 5 + 5 * (y)])
#define CHI_ROW(y) CHI(0, y); CHI(1, y); CHI(2, y); CHI(3, y); CHI(4, y)

/* Defines `static void NAME(uint64_t *state)`: the permutation of 25 lanes of type T (state[i] = lane i, each
 * sizeof(T) / 8 states side by side). ATTR carries the target attribute of the SIMD versions. */
#define DEFINE_KECCAK_F1600(NAME, T, ATTR)                                                               \
    ATTR static void NAME(uint64_t *state)                                                               \
    {                                                                                                    \
        T A[25], B[25], C[5], D[5];                                                                      \
        memcpy(A, state, sizeof A);                                                                      \
        for (int round = 0; round < 24; round++) {                                                       \
            for (int x = 0; x < 5; x++)                                                                  \
                C[x] = A[x] ^ A[x + 5] ^ A[x + 10] ^ A[x + 15] ^ A[x + 20];                              \
            for (int x = 0; x < 5; x++)                                                                  \
                D[x] = C[(x + 4) % 5] ^ ROL(C[(x + 1) % 5], 1);                                          \
            B[0] = A[0] ^ D[0];                                                                          \
            RHO_PI(1, 0, 1);   RHO_PI(2, 0, 62);  RHO_PI(3, 0, 28);  RHO_PI(4, 0, 27);                   \
            RHO_PI(0, 1, 36);  RHO_PI(1, 1, 44);  RHO_PI(2, 1, 6);   RHO_PI(3, 1, 55);  RHO_PI(4, 1, 20); \
            RHO_PI(0, 2, 3);   RHO_PI(1, 2, 10);  RHO_PI(2, 2, 43);  RHO_PI(3, 2, 25);  RHO_PI(4, 2, 39); \
            RHO_PI(0, 3, 41);  RHO_PI(1, 3, 45);  RHO_PI(2, 3, 15);  RHO_PI(3, 3, 21);  RHO_PI(4, 3, 8);  \
            RHO_PI(0, 4, 18);  RHO_PI(1, 4, 2);   RHO_PI(2, 4, 61);  RHO_PI(3, 4, 56);  RHO_PI(4, 4, 14); \
            CHI_ROW(0); CHI_ROW(1); CHI_ROW(2); CHI_ROW(3); CHI_ROW(4);                                  \
            A[0] ^= ROUND_CONSTANTS[round];                                                              \
        }                                                                                                \
        memcpy(state, A, sizeof A);                                                                      \
    }

DEFINE_KECCAK_F1600(keccak_f1600_x1, uint64_t, )

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define HAVE_X86_SIMD 1
/* aligned(8): states live in plain uint64_t arrays; the compiler then uses unaligned vector moves. */
typedef uint64_t u64x4 __attribute__((vector_size(32), aligned(8)));
typedef uint64_t u64x8 __attribute__((vector_size(64), aligned(8)));
DEFINE_KECCAK_F1600(keccak_f1600_x4, u64x4, __attribute__((target("avx2"))))
DEFINE_KECCAK_F1600(keccak_f1600_x8, u64x8, __attribute__((target("avx512f"))))
#endif

typedef struct {
    int lanes;                        /* states permuted together */
    void (*permute)(uint64_t *state); /* state[25 * lanes]: lane i of message l at state[i * lanes + l] */
} engine_t;

static const engine_t ENGINE_X1 = {1, keccak_f1600_x1};
#ifdef HAVE_X86_SIMD
static const engine_t ENGINE_X4 = {4, keccak_f1600_x4};
static const engine_t ENGINE_X8 = {8, keccak_f1600_x8};
#endif
static const engine_t *engine = &ENGINE_X1; /* the best this CPU runs, set at import */

static inline uint64_t load64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

static inline void store64(uint8_t *p, uint64_t v)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    memcpy(p, &v, 8);
}

/* Keccak-256 of e->lanes messages of the same length: msgs[l] (len bytes) -> out[l] (32 bytes). */
static void keccak256_lanes(const engine_t *e, const uint8_t *const *msgs, size_t len, uint8_t *const *out)
{
    const int w = e->lanes;
    uint64_t st[25 * MAX_LANES] __attribute__((aligned(64)));
    uint8_t last[RATE];
    size_t off = 0;

    memset(st, 0, sizeof(uint64_t) * 25 * w);
    for (; len - off >= RATE; off += RATE) {
        for (int i = 0; i < RATE / 8; i++)
            for (int l = 0; l < w; l++)
                st[i * w + l] ^= load64(msgs[l] + off + 8 * i);
        e->permute(st);
    }
    size_t rest = len - off;
    for (int l = 0; l < w; l++) {
        memcpy(last, msgs[l] + off, rest);
        memset(last + rest, 0, RATE - rest);
        last[rest] ^= 0x01;
        last[RATE - 1] ^= 0x80;
        for (int i = 0; i < RATE / 8; i++)
            st[i * w + l] ^= load64(last + 8 * i);
    }
    e->permute(st);
    for (int l = 0; l < w; l++)
        for (int i = 0; i < 4; i++)
            store64(out[l] + 8 * i, st[i * w + l]);
}

/* Sorted-pair node hashes: out[k] = keccak256(min(a, b) || max(a, b)) with a = left[k], b = right[k], up to
 * e->lanes pairs (count). */
static void node_hashes(const engine_t *e, const uint8_t *const *left, const uint8_t *const *right, int count,
                        uint8_t *const *out)
{
    uint8_t pairs[MAX_LANES][64];
    uint8_t scratch[32];
    const uint8_t *msgs[MAX_LANES];
    uint8_t *outs[MAX_LANES];
    for (int l = 0; l < e->lanes; l++) {
        if (l < count) {
            int swap = memcmp(left[l], right[l], 32) > 0;
            memcpy(pairs[l], swap ? right[l] : left[l], 32);
            memcpy(pairs[l] + 32, swap ? left[l] : right[l], 32);
            outs[l] = out[l];
        } else {
            memcpy(pairs[l], pairs[0], 64);
            outs[l] = scratch;
        }
        msgs[l] = pairs[l];
    }
    keccak256_lanes(e, msgs, 64, outs);
}

/* ---------------------------------------------------------------------------------------------------------- */
/* Buffer helpers                                                                                              */
/* ---------------------------------------------------------------------------------------------------------- */

/* Parses a buffer argument (bytes-like, C-contiguous) into view; 0 on success, -1 with a Python error. */
static int get_buffer(PyObject *obj, Py_buffer *view, const char *what)
{
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS) < 0) {
        PyErr_Format(PyExc_TypeError, "%s must be a contiguous bytes-like object", what);
        return -1;
    }
    return 0;
}

static void release_all(Py_buffer *views, int n)
{
    for (int i = 0; i < n; i++)
        if (views[i].obj != NULL)
            PyBuffer_Release(&views[i]);
}

/* ---------------------------------------------------------------------------------------------------------- */
/* keccak256, hash_rows                                                                                        */
/* ---------------------------------------------------------------------------------------------------------- */

static PyObject *py_keccak256(PyObject *self, PyObject *arg)
{
    Py_buffer data;
    uint8_t digest[32];
    uint8_t *out[1] = {digest};
    if (get_buffer(arg, &data, "data") < 0)
        return NULL;
    const uint8_t *msgs[1] = {data.buf};
    Py_BEGIN_ALLOW_THREADS
    keccak256_lanes(&ENGINE_X1, msgs, (size_t)data.len, out);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&data);
    return PyBytes_FromStringAndSize((const char *)digest, 32);
}

static PyObject *py_hash_rows(PyObject *self, PyObject *args)
{
    PyObject *obj;
    Py_ssize_t width;
    Py_buffer data;
    if (!PyArg_ParseTuple(args, "On:hash_rows", &obj, &width))
        return NULL;
    if (width <= 0)
        return PyErr_Format(PyExc_ValueError, "width must be positive, got %zd", width);
    if (get_buffer(obj, &data, "data") < 0)
        return NULL;
    if (data.len % width != 0) {
        PyBuffer_Release(&data);
        return PyErr_Format(PyExc_ValueError, "data is %zd bytes, not a whole number of %zd-byte rows", data.len,
                            width);
    }
    Py_ssize_t n = data.len / width;
    PyObject *result = PyBytes_FromStringAndSize(NULL, 32 * n);
    if (result == NULL) {
        PyBuffer_Release(&data);
        return NULL;
    }
    uint8_t *dst = (uint8_t *)PyBytes_AS_STRING(result);
    const uint8_t *src = data.buf;
    Py_BEGIN_ALLOW_THREADS
    const engine_t *e = engine;
    uint8_t scratch[32];
    for (Py_ssize_t i = 0; i < n; i += e->lanes) {
        const uint8_t *msgs[MAX_LANES];
        uint8_t *outs[MAX_LANES];
        for (int l = 0; l < e->lanes; l++) {
            int ok = i + l < n;
            msgs[l] = src + width * (ok ? i + l : i);
            outs[l] = ok ? dst + 32 * (i + l) : scratch;
        }
        keccak256_lanes(e, msgs, (size_t)width, outs);
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&data);
    return result;
}

/* ---------------------------------------------------------------------------------------------------------- */
/* record_leaves                                                                                               */
/* ---------------------------------------------------------------------------------------------------------- */

/* Byte offsets inside abi.encode(chainId, ledger, node, seq, modelId, adapterId, datasetIds, weightsBps,
 * promptTokens, completionTokens, timestamp, ioHash): the big-endian tail of each per-record word. */
#define HEAD_BYTES 384
#define OFF_SEQ 120        /* word 3, uint64 */
#define OFF_MID 128        /* words 4..7: modelId, adapterId, the two array offsets (per profile) */
#define OFF_PROMPT 284     /* word 8, uint32 */
#define OFF_COMPLETION 316 /* word 9, uint32 */
#define OFF_TIMESTAMP 344  /* word 10, uint64 */
#define OFF_IO 352         /* word 11, bytes32 */

static inline void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static inline void put_be32(uint8_t *p, uint32_t v)
{
    for (int i = 3; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static PyObject *py_record_leaves(PyObject *self, PyObject *args)
{
    enum { HEAD, PROFILES, OFFSETS, PIDX, SEQS, PROMPT, COMPLETION, TIMESTAMPS, IO, NBUF };
    static const char *names[NBUF] = {"head", "profiles", "profile_offsets", "profile_idx", "seqs",
                                      "prompt_tokens", "completion_tokens", "timestamps", "io_hashes"};
    PyObject *objs[NBUF];
    Py_buffer v[NBUF];
    memset(v, 0, sizeof v);
    if (!PyArg_ParseTuple(args, "OOOOOOOOO:record_leaves", &objs[0], &objs[1], &objs[2], &objs[3], &objs[4],
                          &objs[5], &objs[6], &objs[7], &objs[8]))
        return NULL;
    for (int i = 0; i < NBUF; i++) {
        if (get_buffer(objs[i], &v[i], names[i]) < 0) {
            release_all(v, i);
            return NULL;
        }
    }
    PyObject *result = NULL;
    uint8_t *lanebuf = NULL, *inner = NULL;
    uint32_t *order = NULL;
    Py_ssize_t *start = NULL;
    Py_ssize_t m = v[SEQS].len / 8;
    Py_ssize_t n_prof = v[OFFSETS].len / 8 - 1;
    const int64_t *poff = v[OFFSETS].buf;
    const int64_t *pidx = v[PIDX].buf;

    if (v[HEAD].len != 96) {
        PyErr_Format(PyExc_ValueError, "head must be 96 bytes (chainId, ledger, node words), got %zd", v[HEAD].len);
        goto done;
    }
    if (v[SEQS].len != 8 * m || v[PIDX].len != 8 * m || v[PROMPT].len != 4 * m || v[COMPLETION].len != 4 * m ||
        v[TIMESTAMPS].len != 8 * m || v[IO].len != 32 * m) {
        PyErr_SetString(PyExc_ValueError, "record columns differ in length (expected int64 profile_idx, uint64 "
                                          "seqs and timestamps, uint32 token counts, 32-byte io_hashes)");
        goto done;
    }
    if (m > 0xFFFFFFFFLL) {
        PyErr_SetString(PyExc_ValueError, "at most 2**32 - 1 records per call");
        goto done;
    }
    if (v[OFFSETS].len % 8 != 0 || n_prof < 1 || poff[0] != 0 || poff[n_prof] != v[PROFILES].len) {
        PyErr_SetString(PyExc_ValueError, "profile_offsets must be int64 [0, ..., len(profiles)] with at least "
                                          "one profile");
        goto done;
    }
    Py_ssize_t max_tail = 0;
    for (Py_ssize_t p = 0; p < n_prof; p++) {
        Py_ssize_t size = poff[p + 1] - poff[p];
        if (size < 128 || (size - 128) % 32 != 0) {
            PyErr_Format(PyExc_ValueError, "profile %zd is %zd bytes; expected 128 + a multiple of 32", p, size);
            goto done;
        }
        if (size - 128 > max_tail)
            max_tail = size - 128;
    }
    for (Py_ssize_t i = 0; i < m; i++) {
        if (pidx[i] < 0 || pidx[i] >= n_prof) {
            PyErr_Format(PyExc_ValueError, "profile_idx[%zd] = %lld is out of range [0, %zd)", i,
                         (long long)pidx[i], n_prof);
            goto done;
        }
    }
    result = PyBytes_FromStringAndSize(NULL, 32 * m);
    size_t stride = HEAD_BYTES + (size_t)max_tail;
    lanebuf = malloc(stride * MAX_LANES);
    inner = malloc(32 * MAX_LANES);
    order = malloc(sizeof(uint32_t) * (m ? m : 1));
    start = calloc((size_t)n_prof + 1, sizeof(Py_ssize_t));
    if (result == NULL || lanebuf == NULL || inner == NULL || order == NULL || start == NULL) {
        Py_CLEAR(result);
        PyErr_NoMemory();
        goto done;
    }

    uint8_t *dst = (uint8_t *)PyBytes_AS_STRING(result);
    const uint8_t *head = v[HEAD].buf, *profiles = v[PROFILES].buf, *io = v[IO].buf;
    const uint64_t *seqs = v[SEQS].buf, *ts = v[TIMESTAMPS].buf;
    const uint32_t *prompt = v[PROMPT].buf, *completion = v[COMPLETION].buf;
    Py_BEGIN_ALLOW_THREADS
    const engine_t *e = engine;
    /* counting sort by profile: records of one profile have one ABI layout and length, so they share lanes */
    for (Py_ssize_t i = 0; i < m; i++)
        start[pidx[i] + 1]++;
    for (Py_ssize_t p = 0; p < n_prof; p++)
        start[p + 1] += start[p];
    {
        Py_ssize_t *fill = malloc(sizeof(Py_ssize_t) * (size_t)n_prof);
        if (fill != NULL) {
            memcpy(fill, start, sizeof(Py_ssize_t) * (size_t)n_prof);
            for (Py_ssize_t i = 0; i < m; i++)
                order[fill[pidx[i]]++] = (uint32_t)i;
            free(fill);
        } else { /* out of memory for a tiny array: sort in place of the counts, one profile at a time */
            Py_ssize_t k = 0;
            for (Py_ssize_t p = 0; p < n_prof; p++)
                for (Py_ssize_t i = 0; i < m; i++)
                    if (pidx[i] == p)
                        order[k++] = (uint32_t)i;
        }
    }
    for (Py_ssize_t p = 0; p < n_prof; p++) {
        if (start[p] == start[p + 1])
            continue;
        const uint8_t *prof = profiles + poff[p];
        size_t tail = (size_t)(poff[p + 1] - poff[p]) - 128;
        size_t len = HEAD_BYTES + tail;
        for (int l = 0; l < e->lanes; l++) { /* the constant parts of this profile's preimages */
            uint8_t *b = lanebuf + stride * l;
            memset(b, 0, HEAD_BYTES);
            memcpy(b, head, 96);
            memcpy(b + OFF_MID, prof, 128);
            memcpy(b + HEAD_BYTES, prof + 128, tail);
        }
        for (Py_ssize_t k = start[p]; k < start[p + 1]; k += e->lanes) {
            const uint8_t *msgs[MAX_LANES];
            uint8_t *outs[MAX_LANES];
            uint8_t *leaf_outs[MAX_LANES];
            uint8_t scratch[32];
            for (int l = 0; l < e->lanes; l++) {
                msgs[l] = lanebuf + stride * l;
                outs[l] = inner + 32 * l;
                if (k + l < start[p + 1]) {
                    uint32_t r = order[k + l];
                    uint8_t *b = lanebuf + stride * l;
                    put_be64(b + OFF_SEQ, seqs[r]);
                    put_be32(b + OFF_PROMPT, prompt[r]);
                    put_be32(b + OFF_COMPLETION, completion[r]);
                    put_be64(b + OFF_TIMESTAMP, ts[r]);
                    memcpy(b + OFF_IO, io + 32 * (size_t)r, 32);
                    leaf_outs[l] = dst + 32 * (size_t)r;
                } else {
                    leaf_outs[l] = scratch; /* idle lane: hashes stale data, result dropped */
                }
            }
            keccak256_lanes(e, msgs, len, outs);
            keccak256_lanes(e, (const uint8_t *const *)outs, 32, leaf_outs);
        }
    }
    Py_END_ALLOW_THREADS

done:
    free(lanebuf);
    free(inner);
    free(order);
    free(start);
    release_all(v, NBUF);
    return result;
}

/* ---------------------------------------------------------------------------------------------------------- */
/* Trees: OZ layout tree[i] = H(tree[2i+1], tree[2i+2]), sorted leaf k at tree[len - 1 - k]                    */
/* ---------------------------------------------------------------------------------------------------------- */

typedef struct {
    const uint8_t *leaf;
    uint32_t index;
} sort_item;

static int sort_item_cmp(const void *pa, const void *pb)
{
    const sort_item *a = pa, *b = pb;
    int c = memcmp(a->leaf, b->leaf, 32);
    if (c != 0)
        return c;
    return (a->index > b->index) - (a->index < b->index);
}

/* order[k] = index of the k-th smallest leaf; ties keep input order (a stable byte sort, as OZ's). Leaf hashes
 * are uniform, so a bucket pass on the first two bytes leaves ~n/65536 per bucket for an insertion sort; a bucket
 * that is large anyway (many equal leaves) goes to qsort. Returns -1 when out of memory. */
static int sort_leaves(const uint8_t *leaves, size_t n, uint32_t *order)
{
    enum { BUCKETS = 1 << 16 };
    size_t *start = calloc(BUCKETS + 1, sizeof(size_t));
    sort_item *items = malloc(sizeof(sort_item) * (n ? n : 1));
    if (start == NULL || items == NULL) {
        free(start);
        free(items);
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        start[((size_t)leaves[32 * i] << 8 | leaves[32 * i + 1]) + 1]++;
    for (size_t b = 0; b < BUCKETS; b++)
        start[b + 1] += start[b];
    for (size_t i = 0; i < n; i++) {
        size_t b = (size_t)leaves[32 * i] << 8 | leaves[32 * i + 1];
        items[start[b]].leaf = leaves + 32 * i;
        items[start[b]++].index = (uint32_t)i;
    }
    /* start[b] is now the end of bucket b */
    for (size_t b = 0, lo = 0; b < BUCKETS; lo = start[b++]) {
        size_t hi = start[b];
        if (hi - lo > 32) {
            qsort(items + lo, hi - lo, sizeof(sort_item), sort_item_cmp);
            continue;
        }
        for (size_t i = lo + 1; i < hi; i++) {
            sort_item x = items[i];
            size_t j = i;
            while (j > lo && sort_item_cmp(&items[j - 1], &x) > 0) {
                items[j] = items[j - 1];
                j--;
            }
            items[j] = x;
        }
    }
    for (size_t k = 0; k < n; k++)
        order[k] = items[k].index;
    free(start);
    free(items);
    return 0;
}

/* Fills the internal nodes tree[0 .. n-2] of a tree of 2n - 1 nodes whose leaves are in place. Nodes are done
 * e->lanes at a time from the bottom: a chunk ending at i only reads children > i once i >= 2 * lanes. */
static void fill_internal_nodes(const engine_t *e, uint8_t *tree, size_t n)
{
    if (n < 2)
        return;
    Py_ssize_t i = (Py_ssize_t)n - 2;
    for (; i >= 2 * e->lanes; i -= e->lanes) {
        const uint8_t *left[MAX_LANES], *right[MAX_LANES];
        uint8_t *outs[MAX_LANES];
        for (int l = 0; l < e->lanes; l++) {
            Py_ssize_t j = i - l;
            left[l] = tree + 32 * (2 * j + 1);
            right[l] = tree + 32 * (2 * j + 2);
            outs[l] = tree + 32 * j;
        }
        node_hashes(e, left, right, e->lanes, outs);
    }
    for (; i >= 0; i--) {
        const uint8_t *left[1] = {tree + 32 * (2 * i + 1)}, *right[1] = {tree + 32 * (2 * i + 2)};
        uint8_t *outs[1] = {tree + 32 * i};
        node_hashes(&ENGINE_X1, left, right, 1, outs);
    }
}

static PyObject *py_sort_order(PyObject *self, PyObject *arg)
{
    Py_buffer leaves;
    if (get_buffer(arg, &leaves, "leaves") < 0)
        return NULL;
    if (leaves.len % 32 != 0 || leaves.len / 32 > 0xFFFFFFFFLL) {
        PyBuffer_Release(&leaves);
        return PyErr_Format(PyExc_ValueError, "leaves must be n * 32 bytes (n < 2**32), got %zd", leaves.len);
    }
    size_t n = (size_t)leaves.len / 32;
    PyObject *result = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(8 * n));
    uint32_t *order = malloc(sizeof(uint32_t) * (n ? n : 1));
    int rc = -1;
    if (result != NULL && order != NULL) {
        int64_t *out = (int64_t *)PyBytes_AS_STRING(result);
        Py_BEGIN_ALLOW_THREADS
        rc = sort_leaves(leaves.buf, n, order);
        for (size_t k = 0; rc == 0 && k < n; k++)
            out[k] = order[k];
        Py_END_ALLOW_THREADS
    }
    free(order);
    PyBuffer_Release(&leaves);
    if (rc != 0) {
        Py_XDECREF(result);
        return PyErr_NoMemory();
    }
    return result;
}

static PyObject *py_build_tree(PyObject *self, PyObject *args)
{
    PyObject *obj;
    int sort = 1;
    Py_buffer leaves;
    if (!PyArg_ParseTuple(args, "O|p:build_tree", &obj, &sort))
        return NULL;
    if (get_buffer(obj, &leaves, "leaves") < 0)
        return NULL;
    if (leaves.len == 0 || leaves.len % 32 != 0 || leaves.len / 32 > 0x7FFFFFFFLL) {
        PyBuffer_Release(&leaves);
        return PyErr_Format(PyExc_ValueError, "leaves must be n * 32 bytes with 0 < n < 2**31, got %zd bytes",
                            leaves.len);
    }
    size_t n = (size_t)leaves.len / 32, size = 2 * n - 1;
    PyObject *tree = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(32 * size));
    PyObject *indices = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(8 * n));
    uint32_t *order = malloc(sizeof(uint32_t) * n);
    int rc = -1;
    if (tree != NULL && indices != NULL && order != NULL) {
        uint8_t *t = (uint8_t *)PyBytes_AS_STRING(tree);
        int64_t *idx = (int64_t *)PyBytes_AS_STRING(indices);
        const uint8_t *src = leaves.buf;
        Py_BEGIN_ALLOW_THREADS
        if (sort) {
            rc = sort_leaves(src, n, order);
        } else {
            for (size_t k = 0; k < n; k++)
                order[k] = (uint32_t)k;
            rc = 0;
        }
        if (rc == 0) {
            for (size_t k = 0; k < n; k++) {
                memcpy(t + 32 * (size - 1 - k), src + 32 * (size_t)order[k], 32);
                idx[order[k]] = (int64_t)(size - 1 - k);
            }
            fill_internal_nodes(engine, t, n);
        }
        Py_END_ALLOW_THREADS
    }
    free(order);
    PyBuffer_Release(&leaves);
    if (rc != 0) {
        Py_XDECREF(tree);
        Py_XDECREF(indices);
        return PyErr_Occurred() ? NULL : PyErr_NoMemory();
    }
    PyObject *result = PyTuple_Pack(2, tree, indices);
    Py_DECREF(tree);
    Py_DECREF(indices);
    return result;
}

static inline int depth_of(uint64_t i) /* heap depth of tree index i: floor(log2(i + 1)) */
{
    return 63 - __builtin_clzll(i + 1);
}

static PyObject *py_all_proofs(PyObject *self, PyObject *args)
{
    PyObject *tobj, *iobj;
    Py_buffer tv, iv;
    if (!PyArg_ParseTuple(args, "OO:all_proofs", &tobj, &iobj))
        return NULL;
    if (get_buffer(tobj, &tv, "tree") < 0)
        return NULL;
    if (get_buffer(iobj, &iv, "tree_indices") < 0) {
        PyBuffer_Release(&tv);
        return NULL;
    }
    PyObject *flat = NULL, *offsets = NULL, *result = NULL;
    Py_ssize_t size = tv.len / 32, n = iv.len / 8;
    const int64_t *idx = iv.buf;
    if (tv.len % 32 != 0 || iv.len % 8 != 0) {
        PyErr_SetString(PyExc_ValueError, "tree must be 32-byte nodes and tree_indices int64");
        goto done;
    }
    Py_ssize_t total = 0;
    for (Py_ssize_t v = 0; v < n; v++) {
        if (idx[v] < 0 || idx[v] >= size) {
            PyErr_Format(PyExc_ValueError, "tree_indices[%zd] = %lld is outside the tree of %zd nodes", v,
                         (long long)idx[v], size);
            goto done;
        }
        total += depth_of((uint64_t)idx[v]);
    }
    flat = PyBytes_FromStringAndSize(NULL, 32 * total);
    offsets = PyBytes_FromStringAndSize(NULL, 8 * (n + 1));
    if (flat == NULL || offsets == NULL)
        goto done;
    uint8_t *out = (uint8_t *)PyBytes_AS_STRING(flat);
    int64_t *off = (int64_t *)PyBytes_AS_STRING(offsets);
    const uint8_t *tree = tv.buf;
    Py_BEGIN_ALLOW_THREADS
    int64_t pos = 0;
    for (Py_ssize_t v = 0; v < n; v++) {
        off[v] = pos;
        for (uint64_t i = (uint64_t)idx[v]; i > 0; i = (i - 1) / 2) {
            memcpy(out + 32 * pos, tree + 32 * (i % 2 ? i + 1 : i - 1), 32);
            pos++;
        }
    }
    off[n] = pos;
    Py_END_ALLOW_THREADS
    result = PyTuple_Pack(2, flat, offsets);
done:
    Py_XDECREF(flat);
    Py_XDECREF(offsets);
    PyBuffer_Release(&tv);
    PyBuffer_Release(&iv);
    return result;
}

static PyObject *py_check_tree(PyObject *self, PyObject *arg)
{
    Py_buffer tv;
    if (get_buffer(arg, &tv, "tree") < 0)
        return NULL;
    if (tv.len % 32 != 0) {
        PyBuffer_Release(&tv);
        return PyErr_Format(PyExc_ValueError, "tree must be 32-byte nodes, got %zd bytes", tv.len);
    }
    Py_ssize_t size = tv.len / 32, bad = -1;
    const uint8_t *tree = tv.buf;
    Py_BEGIN_ALLOW_THREADS
    const engine_t *e = engine;
    Py_ssize_t internal = size / 2; /* nodes i with 2i + 2 < size when size is odd */
    for (Py_ssize_t i = 0; i < internal && bad < 0; i += e->lanes) {
        const uint8_t *left[MAX_LANES], *right[MAX_LANES];
        uint8_t hashes[MAX_LANES][32];
        uint8_t *outs[MAX_LANES];
        int count = 0;
        for (int l = 0; l < e->lanes && i + l < internal && 2 * (i + l) + 2 < size; l++, count++) {
            left[l] = tree + 32 * (2 * (i + l) + 1);
            right[l] = tree + 32 * (2 * (i + l) + 2);
            outs[l] = hashes[l];
        }
        if (count == 0)
            break;
        node_hashes(e, left, right, count, outs);
        for (int l = 0; l < count; l++) {
            if (memcmp(hashes[l], tree + 32 * (i + l), 32) != 0) {
                bad = i + l;
                break;
            }
        }
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&tv);
    return PyLong_FromSsize_t(bad);
}

/* ---------------------------------------------------------------------------------------------------------- */
/* Engine selection                                                                                            */
/* ---------------------------------------------------------------------------------------------------------- */

static const engine_t *engine_for(int lanes)
{
    if (lanes == 1)
        return &ENGINE_X1;
#ifdef HAVE_X86_SIMD
    __builtin_cpu_init();
    if (lanes == 4 && __builtin_cpu_supports("avx2"))
        return &ENGINE_X4;
    if (lanes == 8 && __builtin_cpu_supports("avx512f"))
        return &ENGINE_X8;
#endif
    return NULL;
}

static PyObject *py_lanes(PyObject *self, PyObject *noargs)
{
    return PyLong_FromLong(engine->lanes);
}

static PyObject *py_set_lanes(PyObject *self, PyObject *arg)
{
    long lanes = PyLong_AsLong(arg);
    if (lanes == -1 && PyErr_Occurred())
        return NULL;
    const engine_t *e = engine_for((int)lanes);
    if (e == NULL)
        return PyErr_Format(PyExc_ValueError, "this CPU cannot hash %ld messages at a time (1 always works; 4 "
                            "needs AVX2, 8 needs AVX-512)", lanes);
    int previous = engine->lanes;
    engine = e;
    return PyLong_FromLong(previous);
}

static PyMethodDef methods[] = {
    {"keccak256", py_keccak256, METH_O, "keccak256(data) -> 32-byte digest (Ethereum's Keccak-256)."},
    {"hash_rows", py_hash_rows, METH_VARARGS, "hash_rows(data, width) -> digests of each width-byte row, joined."},
    {"record_leaves", py_record_leaves, METH_VARARGS,
     "record_leaves(head, profiles, profile_offsets, profile_idx, seqs, prompt_tokens, completion_tokens, "
     "timestamps, io_hashes) -> StandardMerkleTree leaves of attribution records, joined."},
    {"sort_order", py_sort_order, METH_O, "sort_order(leaves) -> int64 order of a stable byte sort of the leaves."},
    {"build_tree", py_build_tree, METH_VARARGS,
     "build_tree(leaves, sort=True) -> (tree, tree_indices): OZ tree array (joined nodes), int64 value -> node."},
    {"all_proofs", py_all_proofs, METH_VARARGS,
     "all_proofs(tree, tree_indices) -> (nodes, offsets): every value's proof joined; int64 offsets in nodes."},
    {"check_tree", py_check_tree, METH_O, "check_tree(tree) -> first node that is not the hash of its children, or -1."},
    {"lanes", py_lanes, METH_NOARGS, "lanes() -> messages hashed side by side (8: AVX-512, 4: AVX2, 1)."},
    {"set_lanes", py_set_lanes, METH_O, "set_lanes(n) -> previous; for tests and benchmarks."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "attribution._keccak",
    "Batch Keccak-256 and OpenZeppelin StandardMerkleTree kernels for attribution records (GIL released).", -1,
    methods,
};

PyMODINIT_FUNC PyInit__keccak(void)
{
    engine = engine_for(8);
    if (engine == NULL)
        engine = engine_for(4);
    if (engine == NULL)
        engine = &ENGINE_X1;
    return PyModule_Create(&module);
}
