/* MaxSim over codes scored through per-query byte lookup tables (binary and residual codecs), for
   colbert/scoring.py and colbert/residual.py; compiled with _maxsim_kernel.c into one shared object by
   colbert/_kernel.py. Portable C with GCC/Clang vector extensions: the compiler picks the instructions for the
   build's -march (AVX-512, AVX2, SSE2). */

#include <stdint.h>
#include <string.h>
#include <math.h>

#define QUERY_BLOCK 32 /* callers pad the query to a multiple of 32 lanes */

#ifndef LUT_LANES
#define LUT_LANES 16 /* query lanes per table block: a row is one 64-byte cache line; a binary block's table is
                        256 KiB, L2-resident (a 32-lane one, 512 KiB, was not on a 512 KiB L2) */
#endif
#ifndef LUT_CHUNK_BYTES
#define LUT_CHUNK_BYTES 65536 /* codes scored for every lane block before the next pages: they stay in L2 */
#endif

int maxsim_lut_lanes(void) { return LUT_LANES; }

/* A token is `nbytes` code bytes (and, for the residual codecs, a centroid id); its similarity with query lane l is
       sim = [ct[id][l]] + sum_i lut[i][byte_i][l]
   added in that order in float32 (the same order for every tile and block size, so the scores do not depend on
   them). The caller's tables, per block of LUT_LANES lanes (maxsim_lut_lanes()):
       lut: (n_lanes / LUT_LANES, nbytes, 256, LUT_LANES) float32, the byte value's share of the query's dot
            product with the decoded token at byte position i;
       ct:  (n_lanes / LUT_LANES, k, LUT_LANES) float32, q_l . centroid (residual codecs), or NULL (binary).
   Binary (numpy.packbits sign bits, tokens ±1/√d): lut[b][i][v][l] = sum over the byte's 8 dims of ±q·/√d.
   Residual (colbert/codebook.py): lut[b][i][v][l] = sum over the byte's dims of q · bucket value of their code.
   Each lookup adds one contiguous table row (a vector register), so the adds vectorise without gathers; the kernel
   never knows what the tables mean. Why lane blocks: a block's table must stay in L2 (a 32-lane binary table is
   512 KiB, a residual2 one 1 MiB + the centroid table), so pages are scored in chunks of about LUT_CHUNK_BYTES of
   codes, every lane block in turn over the chunk (the codes are re-read from L2, the tables stay there).
   ids: (T,) uint16 or NULL with ct; codes: (T, nbytes) uint8. Scores pages [p0, p1) into out (N, n_lanes), lane
   block b of page p at out[p * n_lanes + b * LUT_LANES]; empty pages get 0. */

/* Table rows are added as native vectors (LUT_VEC floats: one register), LUT_LANES / LUT_VEC per row, so the tile's
   accumulators stay in registers (an array of floats was kept on the stack by gcc 12: a load and a store per add). */
#ifndef LUT_VEC
#if defined(__AVX512F__)
#define LUT_VEC 16
#elif defined(__AVX__)
#define LUT_VEC 8
#else
#define LUT_VEC 4
#endif
#endif
#define LUT_SUB (LUT_LANES / LUT_VEC > 0 ? LUT_LANES / LUT_VEC : 1)
#define LUT_W (LUT_LANES < LUT_VEC ? LUT_LANES : LUT_VEC)
_Static_assert(LUT_LANES % LUT_W == 0, "a table row is whole vectors");
_Static_assert(QUERY_BLOCK % LUT_LANES == 0, "a query block is whole table blocks");
typedef float lut_vec __attribute__((vector_size(LUT_W * sizeof(float))));
#ifndef LUT_TILE
#define LUT_TILE (LUT_SUB >= 4 ? 2 : 8 / LUT_SUB) /* tokens per tile: 8 accumulator registers hide the add latency */
#endif

static inline lut_vec lut_load(const float *p) {
    lut_vec v;
    memcpy(&v, p, sizeof v); /* unaligned load */
    return v;
}

static inline void lut_max(float *mx, const lut_vec *v) {
    float a[LUT_LANES];
    memcpy(a, v, sizeof a);
    for (int l = 0; l < LUT_LANES; l++) mx[l] = a[l] > mx[l] ? a[l] : mx[l];
}

static void lut_tile(const float *tab, const float *cb, const uint16_t *ids, const uint8_t *codes, int nbytes,
                     int64_t j, int nt, float *mx) {
    const uint8_t *tok = codes + j * nbytes;
    if (nt == LUT_TILE) { /* fixed trip counts, unrolled: LUT_TILE × LUT_SUB accumulator registers */
        lut_vec acc[LUT_TILE][LUT_SUB];
#pragma GCC unroll 16
        for (int t = 0; t < LUT_TILE; t++)
#pragma GCC unroll 16
            for (int s = 0; s < LUT_SUB; s++)
                acc[t][s] = cb ? lut_load(cb + (int64_t)ids[j + t] * LUT_LANES + s * LUT_W) : (lut_vec){0};
        for (int i = 0; i < nbytes; i++) {
            const float *row = tab + (int64_t)i * 256 * LUT_LANES;
#pragma GCC unroll 16
            for (int t = 0; t < LUT_TILE; t++) {
                const float *e = row + (int64_t)tok[t * nbytes + i] * LUT_LANES;
#pragma GCC unroll 16
                for (int s = 0; s < LUT_SUB; s++) acc[t][s] += lut_load(e + s * LUT_W);
            }
        }
        for (int t = 0; t < LUT_TILE; t++) lut_max(mx, acc[t]);
        return;
    }
    for (int t = 0; t < nt; t++) { /* the page's last, partial tile: one token at a time, same order of adds */
        lut_vec acc[LUT_SUB];
        for (int s = 0; s < LUT_SUB; s++)
            acc[s] = cb ? lut_load(cb + (int64_t)ids[j + t] * LUT_LANES + s * LUT_W) : (lut_vec){0};
        for (int i = 0; i < nbytes; i++) {
            const float *e = tab + ((int64_t)i * 256 + tok[t * nbytes + i]) * LUT_LANES;
            for (int s = 0; s < LUT_SUB; s++) acc[s] += lut_load(e + s * LUT_W);
        }
        lut_max(mx, acc);
    }
}

void maxsim_lut(const float *lut, const float *ct, int k, int n_lanes, int nbytes, const uint16_t *ids,
                const uint8_t *codes, const int64_t *offsets, int64_t p0, int64_t p1, float *out) {
    int64_t chunk_tokens = LUT_CHUNK_BYTES / (nbytes + (ct ? 2 : 0));
    for (int64_t p = p0; p < p1;) {
        int64_t q = p + 1; /* pages [p, q): at least one, about chunk_tokens tokens */
        while (q < p1 && offsets[q + 1] - offsets[p] <= chunk_tokens) q++;
        for (int b = 0; b < n_lanes / LUT_LANES; b++) {
            const float *tab = lut + (int64_t)b * nbytes * 256 * LUT_LANES;
            const float *cb = ct ? ct + (int64_t)b * k * LUT_LANES : NULL;
            for (int64_t r = p; r < q; r++) {
                int64_t t0 = offsets[r], t1 = offsets[r + 1];
                float mx[LUT_LANES];
                for (int l = 0; l < LUT_LANES; l++) mx[l] = t0 == t1 ? 0.0f : -INFINITY;
                for (int64_t j = t0; j < t1; j += LUT_TILE)
                    lut_tile(tab, cb, ids, codes, nbytes, j, (int)(t1 - j < LUT_TILE ? t1 - j : LUT_TILE), mx);
                memcpy(out + r * n_lanes + (int64_t)b * LUT_LANES, mx, sizeof mx);
            }
        }
        p = q;
    }
}
