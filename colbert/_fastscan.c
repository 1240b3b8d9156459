/* Fast-scan MaxSim bounds over binary and residual codes (FAISS "fast scan" idea): per query lane, 4-bit nibble
   tables quantised to uint8, looked up 32 tokens at a time with one byte shuffle (AVX2 `vpshufb`), summed in uint16
   lanes. colbert/fastscan.py builds the tables, turns the integer maxima into score bounds and prunes with them;
   compiled with the other kernels into one shared object by colbert/_kernel.py.

   A token is `nbytes` code bytes and, with a centroid table, a uint16 centroid id. Nibble table m is the high
   nibble of byte m / 2 for even m, its low nibble for odd m. For query lane l its quantised similarity is
       Q = ctq[id][l] + sum_m tables[l][m][nibble_m]        (integers; no rounding anywhere)
   and out[p][l] = max of Q over page p's tokens (0 for an empty page). A nibble term is at most 255 and the
   caller keeps ctq <= 65,535 − 255 · 2 · nbytes (FASTSCAN_MAX_TERMS = 257 nibble tables at most), so Q <= 65,535:
   uint16 sums never wrap.

   Layouts: tables (n_lanes, 2 · nbytes, 16) uint8; ctq (k, ct_stride) uint16 with lane l in column l (ct_stride a multiple of 8, >= n_lanes), or NULL (ids
   then NULL too); ids (T,) uint16; codes (T, nbytes) uint8; offsets (N + 1,) int64; out (N, n_lanes) uint16, pages
   [p0, p1) written. The AVX2 path and the portable one compute the same integers. */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef __AVX2__
#include <immintrin.h>
#endif

#define FASTSCAN_MAX_TERMS 257
#define FS_BLOCK 32 /* tokens per shuffle: one byte per token in a 256-bit register */

int fastscan_max_terms(void) { return FASTSCAN_MAX_TERMS; }

int fastscan_has_avx2(void) {
#ifdef __AVX2__
    return 1;
#else
    return 0;
#endif
}

#ifdef __AVX2__
/* One block of nt <= 32 tokens, all lanes: mx[l] (16 uint16: even tokens' and odd tokens' sums folded by max)
   takes the max with this block's sums. nib: (2 · nbytes, 32) nibble indices; ctb: (n_lanes, 2, 16) uint16
   centroid terms of the even then the odd tokens; both transposed (token-minor) by the caller. */
static void fs_block(const uint8_t *tables, int n_lanes, int n_tab, const uint8_t *nib, const uint16_t *ctb, int nt,
                     __m256i *mx) {
    /* uint16 element e holds token 2e (low byte) and token 2e + 1 (high byte) */
    __m256i e_idx = _mm256_setr_epi16(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    __m256i limit = _mm256_set1_epi16((short)nt);
    __m256i keep_even = _mm256_cmpgt_epi16(limit, e_idx); /* token 2e < nt */
    __m256i keep_odd = _mm256_cmpgt_epi16(limit, _mm256_add_epi16(e_idx, _mm256_set1_epi16(1)));
    for (int l = 0; l < n_lanes; l++) {
        const uint8_t *tl = tables + (int64_t)l * n_tab * 16;
        __m256i lo_acc = _mm256_setzero_si256(), hi_acc = _mm256_setzero_si256();
        if (ctb) {
            __m256i ce = _mm256_loadu_si256((const __m256i *)(ctb + (int64_t)l * FS_BLOCK));
            __m256i co = _mm256_loadu_si256((const __m256i *)(ctb + (int64_t)l * FS_BLOCK + 16));
            lo_acc = _mm256_add_epi16(ce, _mm256_slli_epi16(co, 8)); /* even + 256 · odd, mod 2^16 */
            hi_acc = co;                                              /* odd */
        }
        __m256i lo2 = _mm256_setzero_si256(), hi2 = _mm256_setzero_si256(); /* two chains: n_tab is even */
        for (int m = 0; m < n_tab; m += 2) {
            __m256i t = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(tl + 16 * m)));
            __m256i r = _mm256_shuffle_epi8(t, _mm256_load_si256((const __m256i *)(nib + (int64_t)m * FS_BLOCK)));
            __m256i t2 = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(tl + 16 * m + 16)));
            __m256i r2 = _mm256_shuffle_epi8(t2, _mm256_load_si256((const __m256i *)(nib + (int64_t)(m + 1) * FS_BLOCK)));
            lo_acc = _mm256_add_epi16(lo_acc, r);                      /* even + 256 · odd, mod 2^16 */
            hi_acc = _mm256_add_epi16(hi_acc, _mm256_srli_epi16(r, 8)); /* odd sums: exact, < 2^16 */
            lo2 = _mm256_add_epi16(lo2, r2);
            hi2 = _mm256_add_epi16(hi2, _mm256_srli_epi16(r2, 8));
        }
        lo_acc = _mm256_add_epi16(lo_acc, lo2);
        hi_acc = _mm256_add_epi16(hi_acc, hi2);
        /* even sums = lo_acc − 256 · odd sums (mod 2^16, exact because the even sums are < 2^16) */
        __m256i even = _mm256_sub_epi16(lo_acc, _mm256_slli_epi16(hi_acc, 8));
        even = _mm256_and_si256(even, keep_even);
        __m256i odd = _mm256_and_si256(hi_acc, keep_odd); /* masked tokens give 0 <= any real sum */
        mx[l] = _mm256_max_epu16(mx[l], _mm256_max_epu16(even, odd));
    }
}

static uint16_t fs_hmax(__m256i v) {
    __m128i m = _mm_max_epu16(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    m = _mm_max_epu16(m, _mm_srli_si128(m, 8));
    m = _mm_max_epu16(m, _mm_srli_si128(m, 4));
    m = _mm_max_epu16(m, _mm_srli_si128(m, 2));
    return (uint16_t)_mm_extract_epi16(m, 0);
}

static inline __m256i fs_pair128(const void *lo, const void *hi) { /* two unaligned 16-byte rows, one register */
    return _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)lo)),
                                   _mm_loadu_si128((const __m128i *)hi), 1);
}

/* Bytes c0 .. c0 + 15 of 32 tokens (rows of `stride` bytes) transposed: out column c = byte c0 + c of tokens 0..31,
   split into its high and low nibbles at nib[2 (c0 + c)] and nib[2 (c0 + c) + 1]. A 16 × 16 byte transpose in each
   128-bit half (tokens 0..15 low, 16..31 high): interleave bytes, then 16-, 32- and 64-bit units of row pairs. */
static void fs_transpose16(const uint8_t *rows, int stride, int c0, uint8_t *nib) {
    __m256i r[16], a[16], b[16], c[16];
    for (int i = 0; i < 16; i++) r[i] = fs_pair128(rows + i * stride + c0, rows + (16 + i) * stride + c0);
    for (int k = 0; k < 8; k++) { /* rows 2k, 2k+1: columns 0..7, 8..15 */
        a[2 * k] = _mm256_unpacklo_epi8(r[2 * k], r[2 * k + 1]);
        a[2 * k + 1] = _mm256_unpackhi_epi8(r[2 * k], r[2 * k + 1]);
    }
    for (int q = 0; q < 4; q++) { /* rows 4q..4q+3: columns 0-3, 4-7, 8-11, 12-15 */
        b[4 * q] = _mm256_unpacklo_epi16(a[4 * q], a[4 * q + 2]);
        b[4 * q + 1] = _mm256_unpackhi_epi16(a[4 * q], a[4 * q + 2]);
        b[4 * q + 2] = _mm256_unpacklo_epi16(a[4 * q + 1], a[4 * q + 3]);
        b[4 * q + 3] = _mm256_unpackhi_epi16(a[4 * q + 1], a[4 * q + 3]);
    }
    for (int o = 0; o < 2; o++) /* rows 8o..8o+7: c[8o + m] holds columns 2m, 2m+1 */
        for (int j = 0; j < 4; j++) {
            c[8 * o + 2 * j] = _mm256_unpacklo_epi32(b[8 * o + j], b[8 * o + 4 + j]);
            c[8 * o + 2 * j + 1] = _mm256_unpackhi_epi32(b[8 * o + j], b[8 * o + 4 + j]);
        }
    __m256i low4 = _mm256_set1_epi8(15);
    for (int m = 0; m < 8; m++) {
        __m256i col[2] = {_mm256_unpacklo_epi64(c[m], c[8 + m]), _mm256_unpackhi_epi64(c[m], c[8 + m])};
        for (int h = 0; h < 2; h++) {
            uint8_t *dst = nib + (int64_t)2 * (c0 + 2 * m + h) * FS_BLOCK;
            _mm256_store_si256((__m256i *)dst, _mm256_and_si256(_mm256_srli_epi16(col[h], 4), low4));
            _mm256_store_si256((__m256i *)(dst + FS_BLOCK), _mm256_and_si256(col[h], low4));
        }
    }
}

/* The centroid terms of 32 tokens (ids) for all lanes, transposed: ctb[l · 32 + 0..15] = lane l of the even tokens,
   ctb[l · 32 + 16..31] of the odd ones. Rows of ctq are `stride` (a multiple of 8) uint16; 8 × 8 transposes of
   16-bit units, two at a time (tokens 0..7 of the half in the low 128 bits, 8..15 in the high). */
static void fs_centroids(const uint16_t *ctq, int stride, const uint16_t *ids, uint16_t *ctb) {
    for (int parity = 0; parity < 2; parity++)
        for (int g = 0; g < stride; g += 8) {
            __m256i a[8], b[8], c[8];
            for (int i = 0; i < 8; i++) /* half-token i (token 2i + parity) and half-token 8 + i */
                a[i] = fs_pair128(ctq + (int64_t)ids[2 * i + parity] * stride + g,
                                  ctq + (int64_t)ids[2 * (8 + i) + parity] * stride + g);
            for (int k = 0; k < 4; k++) {
                b[2 * k] = _mm256_unpacklo_epi16(a[2 * k], a[2 * k + 1]);
                b[2 * k + 1] = _mm256_unpackhi_epi16(a[2 * k], a[2 * k + 1]);
            }
            for (int k = 0; k < 2; k++) {
                c[4 * k] = _mm256_unpacklo_epi32(b[4 * k], b[4 * k + 2]);
                c[4 * k + 1] = _mm256_unpackhi_epi32(b[4 * k], b[4 * k + 2]);
                c[4 * k + 2] = _mm256_unpacklo_epi32(b[4 * k + 1], b[4 * k + 3]);
                c[4 * k + 3] = _mm256_unpackhi_epi32(b[4 * k + 1], b[4 * k + 3]);
            }
            for (int m = 0; m < 4; m++) { /* lanes g + 2m, g + 2m + 1 */
                _mm256_store_si256((__m256i *)(ctb + (int64_t)(g + 2 * m) * FS_BLOCK + parity * 16),
                                   _mm256_unpacklo_epi64(c[m], c[4 + m]));
                _mm256_store_si256((__m256i *)(ctb + (int64_t)(g + 2 * m + 1) * FS_BLOCK + parity * 16),
                                   _mm256_unpackhi_epi64(c[m], c[4 + m]));
            }
        }
}

void fastscan(const uint8_t *tables, const uint16_t *ctq, int ct_stride, int n_lanes, int nbytes, const uint16_t *ids,
              const uint8_t *codes, const int64_t *offsets, int64_t p0, int64_t p1, uint16_t *out) {
    int n_tab = 2 * nbytes;
    uint8_t *nib = aligned_alloc(32, (size_t)n_tab * FS_BLOCK + 32);
    uint8_t *tail = aligned_alloc(32, (size_t)nbytes * FS_BLOCK + 32); /* a partial block, zero-padded */
    uint16_t *ctb = ctq ? aligned_alloc(32, (size_t)ct_stride * FS_BLOCK * 2 + 32) : NULL;
    __m256i *mx = aligned_alloc(32, (size_t)(n_lanes + 1) * sizeof(__m256i));
    uint16_t block_ids[FS_BLOCK];
    for (int64_t p = p0; p < p1; p++) {
        int64_t t0 = offsets[p], t1 = offsets[p + 1];
        for (int l = 0; l < n_lanes; l++) mx[l] = _mm256_setzero_si256();
        for (int64_t j = t0; j < t1; j += FS_BLOCK) {
            int nt = (int)(t1 - j < FS_BLOCK ? t1 - j : FS_BLOCK);
            const uint8_t *rows = codes + j * nbytes;
            if (nt < FS_BLOCK) { /* tokens past nt: zero codes, centroid 0; their sums are masked in fs_block */
                memset(tail, 0, (size_t)nbytes * FS_BLOCK);
                memcpy(tail, rows, (size_t)nt * nbytes);
                rows = tail;
            }
            if (nbytes % 16 == 0)
                for (int c0 = 0; c0 < nbytes; c0 += 16) fs_transpose16(rows, nbytes, c0, nib);
            else
                for (int t = 0; t < FS_BLOCK; t++)
                    for (int i = 0; i < nbytes; i++) {
                        nib[(2 * i) * FS_BLOCK + t] = rows[t * nbytes + i] >> 4;
                        nib[(2 * i + 1) * FS_BLOCK + t] = rows[t * nbytes + i] & 15;
                    }
            if (ctb) {
                for (int t = 0; t < FS_BLOCK; t++) block_ids[t] = t < nt ? ids[j + t] : 0;
                fs_centroids(ctq, ct_stride, block_ids, ctb);
            }
            fs_block(tables, n_lanes, n_tab, nib, ctb, nt, mx);
        }
        for (int l = 0; l < n_lanes; l++) out[p * n_lanes + l] = fs_hmax(mx[l]);
    }
    free(nib);
    free(tail);
    free(ctb);
    free(mx);
}

#else /* portable: the same integer sums, one token and lane at a time */

void fastscan(const uint8_t *tables, const uint16_t *ctq, int ct_stride, int n_lanes, int nbytes, const uint16_t *ids,
              const uint8_t *codes, const int64_t *offsets, int64_t p0, int64_t p1, uint16_t *out) {
    int n_tab = 2 * nbytes;
    for (int64_t p = p0; p < p1; p++) {
        int64_t t0 = offsets[p], t1 = offsets[p + 1];
        for (int l = 0; l < n_lanes; l++) {
            const uint8_t *tl = tables + (int64_t)l * n_tab * 16;
            uint32_t best = 0;
            for (int64_t j = t0; j < t1; j++) {
                const uint8_t *tok = codes + j * nbytes;
                uint32_t s = ctq ? ctq[(int64_t)ids[j] * ct_stride + l] : 0;
                for (int i = 0; i < nbytes; i++) s += tl[(2 * i) * 16 + (tok[i] >> 4)] + tl[(2 * i + 1) * 16 + (tok[i] & 15)];
                best = s > best ? s : best;
            }
            out[p * n_lanes + l] = (uint16_t)best;
        }
    }
}

#endif
