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

   Layouts: tables (n_lanes, 2 · nbytes, 16) uint8; ctq (k, ct_stride) uint16 with lane l in column l, or NULL (ids
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
        for (int m = 0; m < n_tab; m++) {
            __m256i t = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(tl + 16 * m)));
            __m256i r = _mm256_shuffle_epi8(t, _mm256_loadu_si256((const __m256i *)(nib + (int64_t)m * FS_BLOCK)));
            lo_acc = _mm256_add_epi16(lo_acc, r);                      /* even + 256 · odd, mod 2^16 */
            hi_acc = _mm256_add_epi16(hi_acc, _mm256_srli_epi16(r, 8)); /* odd sums: exact, < 2^16 */
        }
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

void fastscan(const uint8_t *tables, const uint16_t *ctq, int ct_stride, int n_lanes, int nbytes, const uint16_t *ids,
              const uint8_t *codes, const int64_t *offsets, int64_t p0, int64_t p1, uint16_t *out) {
    int n_tab = 2 * nbytes;
    uint8_t *nib = aligned_alloc(32, (size_t)n_tab * FS_BLOCK + 32);
    uint16_t *ctb = ctq ? aligned_alloc(32, (size_t)n_lanes * FS_BLOCK * 2 + 32) : NULL;
    __m256i *mx = aligned_alloc(32, (size_t)(n_lanes + 1) * sizeof(__m256i));
    for (int64_t p = p0; p < p1; p++) {
        int64_t t0 = offsets[p], t1 = offsets[p + 1];
        for (int l = 0; l < n_lanes; l++) mx[l] = _mm256_setzero_si256();
        for (int64_t j = t0; j < t1; j += FS_BLOCK) {
            int nt = (int)(t1 - j < FS_BLOCK ? t1 - j : FS_BLOCK);
            /* transpose the block: nibble m of token t at nib[m · 32 + t] (tokens past nt: 0, masked later) */
            for (int t = 0; t < FS_BLOCK; t++) {
                const uint8_t *tok = codes + (j + t) * nbytes;
                for (int i = 0; i < nbytes; i++) {
                    uint8_t b = t < nt ? tok[i] : 0;
                    nib[(2 * i) * FS_BLOCK + t] = b >> 4;
                    nib[(2 * i + 1) * FS_BLOCK + t] = b & 15;
                }
            }
            if (ctb)
                for (int t = 0; t < FS_BLOCK; t++) {
                    const uint16_t *row = t < nt ? ctq + (int64_t)ids[j + t] * ct_stride : NULL;
                    int slot = (t & 1) * 16 + t / 2; /* even tokens first, then odd */
                    for (int l = 0; l < n_lanes; l++) ctb[l * FS_BLOCK + slot] = row ? row[l] : 0;
                }
            fs_block(tables, n_lanes, n_tab, nib, ctb, nt, mx);
        }
        for (int l = 0; l < n_lanes; l++) out[p * n_lanes + l] = fs_hmax(mx[l]);
    }
    free(nib);
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
