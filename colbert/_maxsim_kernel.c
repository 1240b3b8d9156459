/* Fused MaxSim kernels for colbert/scoring.py (built on first use by colbert/_kernel.py, loaded with ctypes).

   Every kernel computes, for each page p in [p0, p1) and each query lane l (query tokens, padded to blocks of 32):
       out[p * n_lanes + l] = max over the page's tokens j of  sim(q_l, doc_j)
   without materialising the similarities. Empty pages get 0 (the caller treats them as scoring 0).

   Float storage (float32, float16, bfloat16): the stored values are widened to float32 exactly and multiplied
   with the float32 query with float32 FMA accumulation, so the result equals float32 scoring of the stored values
   up to float32 summation order. Query layout ``qt``: (n_lanes / 32, d, 32) float32 (per block, dimension-major).

   Binary and residual storage are scored by maxsim_lut (byte lookup tables, in _maxsim_lut.c, compiled into the
   same shared object); maxsim_int still takes kind KIND_BIN (bits expanded to bytes) but the caller no longer
   uses it.

   Integer storage (int8 codes with a per-token float32 scale; binary sign bits): the query is given in 24-bit
   fixed point Q = 65536 * hi + 256 * mid + lo with hi, mid, lo signed bytes (the caller picks the per-query-token
   scale). The document bytes are the unsigned operand: int8 codes are offset by +128 (x ^ 0x80) and the offset is
   removed with the caller's per-limb, per-lane correction ``corr`` = 128 * sum(limb); binary bits are expanded to
   bytes 0/1 (corr = 0). Each limb's dot product with the codes is exact (int32); the limbs are combined in
   float32 and int8 multiplies by the token scale before the max (the query scale is applied by the caller, it
   is positive and commutes with the max).
   Query layout ``qi``: (n_lanes / 32, ceil(d / 4), 3 limbs [hi, mid, lo], 32 lanes, 4 bytes) int8;
   ``corr``: (n_lanes / 32, 3 limbs, 32 lanes) int32.

   With AMX (_maxsim_amx.c, where compiled in and granted by the OS) the integer kernel's dot products are
   TDPBSSD tiles, with the same answers bit for bit.
   With AVX-512 (F, BW, VNNI, F16C) the kernels use 512-bit FMAs / VPDPBUSD; with AVX2 + FMA + F16C the float
   kernel uses 256-bit FMAs; otherwise portable C of the same arithmetic (exact likewise, slower). */

#include <stdint.h>
#include <string.h>
#include <math.h>

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VNNI__) && defined(__F16C__)
#define MAXSIM_AVX512 1
#include <immintrin.h>
#else
#define MAXSIM_AVX512 0
#endif
/* AVX2 + FMA + F16C without AVX-512 (e.g. AMD Zen 2/3, older Intel): the float kernel uses 256-bit FMAs and
   hardware half-to-float conversion; the integer and lookup-table kernels stay portable C. */
#if !MAXSIM_AVX512 && defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#define MAXSIM_AVX2 1
#include <immintrin.h>
#else
#define MAXSIM_AVX2 0
#endif

#define LANES 32
#ifndef TILE
#define TILE 8 /* document tokens per register tile (float kernel): 16 accumulators + 2 query vectors */
#endif
#ifndef ITILE
#define ITILE 3 /* document tokens per register tile (integer kernel): 18 accumulators + 6 query limbs */
#endif

/* the caller's scratch buffers hold 16 float rows / 4 byte rows (+ slack) */
_Static_assert(TILE <= 16, "float scratch holds 16 rows");
_Static_assert(ITILE <= 4, "integer scratch holds 4 rows");

enum { KIND_F32 = 0, KIND_F16 = 1, KIND_BF16 = 2, KIND_I8 = 3 };
enum { KIND_INT8 = 0, KIND_BIN = 1 };

int maxsim_has_avx512(void) { return MAXSIM_AVX512; }
int maxsim_has_avx2(void) { return MAXSIM_AVX2; }

/* ---------- widening of stored float rows to float32 ---------- */

static float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu, man = h & 0x3ffu;
    float v;
    if (exp == 0) {
        v = ldexpf((float)man, -24); /* subnormal (or zero): exact */
    } else if (exp == 31) {
        uint32_t bits = 0x7f800000u | (man << 13);
        memcpy(&v, &bits, 4);
    } else {
        uint32_t bits = ((exp + 112u) << 23) | (man << 13);
        memcpy(&v, &bits, 4);
    }
    uint32_t b;
    memcpy(&b, &v, 4);
    b |= sign;
    memcpy(&v, &b, 4);
    return v;
}

/* int8 codes (KIND_I8) become code · scale rounded to float32: exactly the values colbert.quantize.decode gives. */
static void widen_row(const void *src, int kind, const float *scales, int64_t row, int d, float *dst) {
    if (kind == KIND_I8) {
        const int8_t *s = (const int8_t *)src + row * d;
        float scale = scales[row];
        int k = 0;
#if MAXSIM_AVX2
        __m256 sv = _mm256_set1_ps(scale);
        for (; k + 8 <= d; k += 8) {
            __m256i w = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(s + k)));
            _mm256_storeu_ps(dst + k, _mm256_mul_ps(_mm256_cvtepi32_ps(w), sv));
        }
#endif
        for (; k < d; k++) dst[k] = (float)s[k] * scale;
    } else if (kind == KIND_F16) {
        const uint16_t *s = (const uint16_t *)src + row * d;
        int k = 0;
#if MAXSIM_AVX512
        for (; k + 16 <= d; k += 16)
            _mm512_storeu_ps(dst + k, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(s + k))));
#elif MAXSIM_AVX2
        for (; k + 8 <= d; k += 8)
            _mm256_storeu_ps(dst + k, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(s + k))));
#endif
        for (; k < d; k++) dst[k] = half_to_float(s[k]);
    } else { /* bfloat16: the high half of a float32 */
        const uint16_t *s = (const uint16_t *)src + row * d;
        int k = 0;
#if MAXSIM_AVX512
        for (; k + 16 <= d; k += 16) {
            __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(s + k)));
            _mm512_storeu_ps(dst + k, _mm512_castsi512_ps(_mm512_slli_epi32(w, 16)));
        }
#elif MAXSIM_AVX2
        for (; k + 8 <= d; k += 8) {
            __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(s + k)));
            _mm256_storeu_ps(dst + k, _mm256_castsi256_ps(_mm256_slli_epi32(w, 16)));
        }
#endif
        for (; k < d; k++) {
            uint32_t bits = (uint32_t)s[k] << 16;
            memcpy(dst + k, &bits, 4);
        }
    }
}

/* ---------- float kernel ---------- */

/* rows: pointers to `nt` float32 rows (nt <= TILE); mx: running max per lane (LANES floats). */
static void float_tile(const float *qt, int d, const float *const *rows, int nt, float *mx) {
#if MAXSIM_AVX512
    __m512 m0 = _mm512_loadu_ps(mx), m1 = _mm512_loadu_ps(mx + 16);
    if (nt == TILE) {
        __m512 a[TILE][2];
        for (int t = 0; t < TILE; t++) a[t][0] = a[t][1] = _mm512_setzero_ps();
        for (int k = 0; k < d; k++) {
            __m512 q0 = _mm512_loadu_ps(qt + (int64_t)k * LANES), q1 = _mm512_loadu_ps(qt + (int64_t)k * LANES + 16);
            for (int t = 0; t < TILE; t++) {
                __m512 v = _mm512_set1_ps(rows[t][k]);
                a[t][0] = _mm512_fmadd_ps(q0, v, a[t][0]);
                a[t][1] = _mm512_fmadd_ps(q1, v, a[t][1]);
            }
        }
        for (int t = 0; t < TILE; t++) {
            m0 = _mm512_max_ps(m0, a[t][0]);
            m1 = _mm512_max_ps(m1, a[t][1]);
        }
    } else {
        for (int t = 0; t < nt; t++) {
            __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
            for (int k = 0; k < d; k++) {
                __m512 v = _mm512_set1_ps(rows[t][k]);
                a0 = _mm512_fmadd_ps(_mm512_loadu_ps(qt + (int64_t)k * LANES), v, a0);
                a1 = _mm512_fmadd_ps(_mm512_loadu_ps(qt + (int64_t)k * LANES + 16), v, a1);
            }
            m0 = _mm512_max_ps(m0, a0);
            m1 = _mm512_max_ps(m1, a1);
        }
    }
    _mm512_storeu_ps(mx, m0);
    _mm512_storeu_ps(mx + 16, m1);
#elif MAXSIM_AVX2
    /* 32 lanes are 4 registers: 3 tokens at a time (12 accumulators; the query rows come from L1 as FMA operands) */
    __m256 m[4];
    for (int s = 0; s < 4; s++) m[s] = _mm256_loadu_ps(mx + 8 * s);
    int t = 0;
    for (; t + 3 <= nt; t += 3) {
        __m256 a[3][4];
        for (int u = 0; u < 3; u++)
            for (int s = 0; s < 4; s++) a[u][s] = _mm256_setzero_ps();
        for (int k = 0; k < d; k++) {
            const float *q = qt + (int64_t)k * LANES;
            for (int u = 0; u < 3; u++) {
                __m256 v = _mm256_broadcast_ss(rows[t + u] + k);
                for (int s = 0; s < 4; s++) a[u][s] = _mm256_fmadd_ps(_mm256_loadu_ps(q + 8 * s), v, a[u][s]);
            }
        }
        for (int u = 0; u < 3; u++)
            for (int s = 0; s < 4; s++) m[s] = _mm256_max_ps(a[u][s], m[s]);
    }
    for (; t < nt; t++) {
        __m256 a[4];
        for (int s = 0; s < 4; s++) a[s] = _mm256_setzero_ps();
        for (int k = 0; k < d; k++) {
            const float *q = qt + (int64_t)k * LANES;
            __m256 v = _mm256_broadcast_ss(rows[t] + k);
            for (int s = 0; s < 4; s++) a[s] = _mm256_fmadd_ps(_mm256_loadu_ps(q + 8 * s), v, a[s]);
        }
        for (int s = 0; s < 4; s++) m[s] = _mm256_max_ps(a[s], m[s]);
    }
    for (int s = 0; s < 4; s++) _mm256_storeu_ps(mx + 8 * s, m[s]);
#else
    for (int t = 0; t < nt; t++) {
        float acc[LANES];
        for (int l = 0; l < LANES; l++) acc[l] = 0.0f;
        for (int k = 0; k < d; k++) {
            float v = rows[t][k];
            const float *q = qt + (int64_t)k * LANES;
            for (int l = 0; l < LANES; l++) acc[l] = fmaf(q[l], v, acc[l]);
        }
        for (int l = 0; l < LANES; l++) mx[l] = acc[l] > mx[l] ? acc[l] : mx[l];
    }
#endif
}

/* docs: (T, d) float32 / float16 / bfloat16 (as uint16) / int8 codes with scales (T,) (NULL otherwise; the
   caller's choice where the integer kernel has no VNNI); offsets: (N + 1,); scratch: TILE * d floats.
   Scores pages [p0, p1) into out (N, n_lanes). */
void maxsim_float(const float *qt, int n_lanes, int d, const void *docs, const float *scales, int kind,
                  const int64_t *offsets, int64_t p0, int64_t p1, float *out, float *scratch) {
    const float *rows[TILE];
    for (int64_t p = p0; p < p1; p++) {
        int64_t t0 = offsets[p], t1 = offsets[p + 1];
        float *o = out + p * n_lanes;
        if (t0 == t1) {
            for (int l = 0; l < n_lanes; l++) o[l] = 0.0f;
            continue;
        }
        for (int b = 0; b < n_lanes / LANES; b++) {
            const float *q = qt + (int64_t)b * d * LANES;
            float mx[LANES];
            for (int l = 0; l < LANES; l++) mx[l] = -INFINITY;
            for (int64_t j = t0; j < t1; j += TILE) {
                int nt = (int)(t1 - j < TILE ? t1 - j : TILE);
                for (int t = 0; t < nt; t++) {
                    if (kind == KIND_F32) {
                        rows[t] = (const float *)docs + (j + t) * d;
                    } else {
                        widen_row(docs, kind, scales, j + t, d, scratch + (int64_t)t * d);
                        rows[t] = scratch + (int64_t)t * d;
                    }
                }
                float_tile(q, d, rows, nt, mx);
            }
            memcpy(o + (int64_t)b * LANES, mx, sizeof mx);
        }
    }
}

/* ---------- integer kernel ---------- */

/* rows: pointers to `nt` rows of d4 * 4 unsigned bytes (nt <= ITILE); corr: (3 limbs, LANES) int32;
   mx: running max per lane. The limbs' exact int32 dot products H, M, L combine as 65536 H + (256 M + L): the
   parenthesis is exact in int32, the sum is rounded once to float32. */
static void int_tile(const int8_t *qi, int d4, const uint8_t *const *rows, int nt, const float *scale,
                     const int32_t *corr, float *mx) {
#if MAXSIM_AVX512
    __m512 m0 = _mm512_loadu_ps(mx), m1 = _mm512_loadu_ps(mx + 16);
    __m512i a[ITILE][6];
    for (int t = 0; t < ITILE; t++)
        for (int i = 0; i < 6; i++) a[t][i] = _mm512_setzero_si512();
    for (int g = 0; g < d4; g++) {
        const int8_t *qg = qi + (int64_t)g * 3 * 128;
        __m512i h0 = _mm512_loadu_si512(qg), h1 = _mm512_loadu_si512(qg + 64);
        __m512i md0 = _mm512_loadu_si512(qg + 128), md1 = _mm512_loadu_si512(qg + 192);
        __m512i l0 = _mm512_loadu_si512(qg + 256), l1 = _mm512_loadu_si512(qg + 320);
        for (int t = 0; t < nt; t++) {
            int32_t w;
            memcpy(&w, rows[t] + 4 * g, 4);
            __m512i v = _mm512_set1_epi32(w);
            a[t][0] = _mm512_dpbusd_epi32(a[t][0], v, h0);
            a[t][1] = _mm512_dpbusd_epi32(a[t][1], v, h1);
            a[t][2] = _mm512_dpbusd_epi32(a[t][2], v, md0);
            a[t][3] = _mm512_dpbusd_epi32(a[t][3], v, md1);
            a[t][4] = _mm512_dpbusd_epi32(a[t][4], v, l0);
            a[t][5] = _mm512_dpbusd_epi32(a[t][5], v, l1);
        }
    }
    const __m512 k65536 = _mm512_set1_ps(65536.0f);
    for (int t = 0; t < nt; t++) {
        __m512 s = _mm512_set1_ps(scale ? scale[t] : 1.0f);
        for (int half = 0; half < 2; half++) {
            __m512i hi = _mm512_sub_epi32(a[t][half], _mm512_loadu_si512(corr + 16 * half));
            __m512i md = _mm512_sub_epi32(a[t][2 + half], _mm512_loadu_si512(corr + LANES + 16 * half));
            __m512i lo = _mm512_sub_epi32(a[t][4 + half], _mm512_loadu_si512(corr + 2 * LANES + 16 * half));
            __m512i low = _mm512_add_epi32(_mm512_slli_epi32(md, 8), lo);
            __m512 f = _mm512_fmadd_ps(_mm512_cvtepi32_ps(hi), k65536, _mm512_cvtepi32_ps(low));
            f = _mm512_mul_ps(f, s);
            if (half == 0)
                m0 = _mm512_max_ps(m0, f);
            else
                m1 = _mm512_max_ps(m1, f);
        }
    }
    _mm512_storeu_ps(mx, m0);
    _mm512_storeu_ps(mx + 16, m1);
#else
    for (int t = 0; t < nt; t++) {
        for (int l = 0; l < LANES; l++) {
            int32_t acc[3] = {0, 0, 0};
            for (int g = 0; g < d4; g++) {
                const int8_t *qg = qi + (int64_t)g * 3 * 128;
                for (int c = 0; c < 4; c++) {
                    int32_t v = rows[t][4 * g + c];
                    for (int limb = 0; limb < 3; limb++) acc[limb] += v * qg[limb * 128 + l * 4 + c];
                }
            }
            int32_t hi = acc[0] - corr[l], md = acc[1] - corr[LANES + l], lo = acc[2] - corr[2 * LANES + l];
            float f = fmaf((float)hi, 65536.0f, (float)(md * 256 + lo)) * (scale ? scale[t] : 1.0f);
            mx[l] = f > mx[l] ? f : mx[l];
        }
    }
#endif
}

/* 256 entries of 8 bytes: the bits of a byte, most significant first, as bytes 0/1 (numpy.packbits order). */
static uint64_t bit_lut[256];
static int bit_lut_ready = 0;

static void init_bit_lut(void) {
    for (int v = 0; v < 256; v++) {
        uint8_t bytes[8];
        for (int i = 0; i < 8; i++) bytes[i] = (uint8_t)((v >> (7 - i)) & 1);
        memcpy(&bit_lut[v], bytes, 8);
    }
    bit_lut_ready = 1;
}

/* _maxsim_amx.c: the AMX path of maxsim_int (same answers), where compiled in and granted by the OS */
int maxsim_amx_request(void);
int maxsim_has_amx(void);
int maxsim_int_amx(const int8_t *qi, int n_lanes, int d, const uint8_t *docs, const float *scales, int kind,
                   const int32_t *corr, const int64_t *offsets, int64_t p0, int64_t p1, float *out);

void maxsim_init(void) {
    if (!bit_lut_ready) init_bit_lut();
    maxsim_amx_request();
}

/* docs: int8 (T, d) codes with scales (T,) float32, or binary (T, ceil(d / 8)) packed bits (scales unused).
   scratch: ITILE * d4 * 4 bytes (+ 8 slack). Scores pages [p0, p1) into out (N, n_lanes). */
void maxsim_int(const int8_t *qi, int n_lanes, int d, const uint8_t *docs, const float *scales, int kind,
                const int32_t *corr, const int64_t *offsets, int64_t p0, int64_t p1, float *out,
                uint8_t *scratch) {
    if (maxsim_has_amx() && maxsim_int_amx(qi, n_lanes, d, docs, scales, kind, corr, offsets, p0, p1, out)) return;
    int d4 = (d + 3) / 4, row_bytes = kind == KIND_INT8 ? d : (d + 7) / 8, stride = d4 * 4;
    const uint8_t *rows[ITILE];
    for (int64_t p = p0; p < p1; p++) {
        int64_t t0 = offsets[p], t1 = offsets[p + 1];
        float *o = out + p * n_lanes;
        if (t0 == t1) {
            for (int l = 0; l < n_lanes; l++) o[l] = 0.0f;
            continue;
        }
        for (int b = 0; b < n_lanes / LANES; b++) {
            const int8_t *q = qi + (int64_t)b * d4 * 3 * 128;
            float mx[LANES];
            for (int l = 0; l < LANES; l++) mx[l] = -INFINITY;
            for (int64_t j = t0; j < t1; j += ITILE) {
                int nt = (int)(t1 - j < ITILE ? t1 - j : ITILE);
                for (int t = 0; t < nt; t++) {
                    const uint8_t *src = docs + (j + t) * row_bytes;
                    uint8_t *dst = scratch + (int64_t)t * stride;
                    if (kind == KIND_INT8) {
                        for (int k = 0; k < d; k++) dst[k] = (uint8_t)(src[k] ^ 0x80u);
                        for (int k = d; k < stride; k++) dst[k] = 0x80u; /* code 0; the query is 0 there */
                    } else {
                        for (int i = 0; i < row_bytes; i++) memcpy(dst + 8 * i, &bit_lut[src[i]], 8);
                        for (int k = d; k < stride; k++) dst[k] = 0;
                    }
                    rows[t] = dst;
                }
                int_tile(q, d4, rows, nt, kind == KIND_INT8 ? scales + j : NULL, corr + (int64_t)b * 3 * LANES, mx);
            }
            memcpy(o + (int64_t)b * LANES, mx, sizeof mx);
        }
    }
}
