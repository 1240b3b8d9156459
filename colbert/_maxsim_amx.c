/* The AMX path of maxsim_int (_maxsim_kernel.c; compiled into the same shared object by colbert/_kernel.py).

   Same inputs, same arithmetic, same answers: the exact int32 dot products of the document bytes with the three
   limbs (hi, mid, lo) of the caller's 24-bit fixed-point query, combined per token and lane as in the VNNI path
   (65536 · H + (256 · M + L) rounded once to float32, times the token scale, then the running max over the page's
   tokens in token order), so the scores are bit for bit those of the VNNI path. Only the engine of the dot
   products changes: TDPBSSD multiplies a 16 × 64-byte tile of documents (16 tokens, 64 dimensions) by a 16 × 64-byte
   tile of one query limb in VNNI layout (16 dimension quads × 16 lanes × 4 bytes) into 16 × 16 int32 sums, 16,384
   multiply-adds per instruction, about 8× what VPDPBUSD does per cycle.

   int8 codes enter signed (TDPBSSD, signed × signed): no +128 offset and no correction, whereas the VNNI path adds
   128 to the codes and subtracts the caller's corr = 128 · sum(limb); both give the same int32 (equal modulo 2^32,
   both wrapping alike). Binary bits are expanded to bytes 0/1, signed or not alike, and corr is subtracted as in
   VNNI (the scorer sends binary codes to maxsim_lut, so this kind only keeps maxsim_int's contract; it is measured
   in the notes).

   Tiles (palette 1, all 16 rows × 64 bytes): tmm0..5 accumulate H, M, L for lanes 0-15 and 16-31 of one 32-lane
   query block, tmm6 holds the documents, tmm7 one query limb. Dimensions are blocked by 64 (K blocks); the query
   is repacked per call into zero-padded K blocks, so dimensions past d multiply by 0. A group of 16 full tokens
   with d a multiple of 64 is read straight from the codes; a shorter group (the page's tail) or another d is copied
   into a zero-padded buffer first (what the tile reads past the page's or row's end must be in bounds). A group's
   sums go to memory (tiles have no path to vector registers) and their max is taken while the next group's tile
   instructions run (software-pipelined by one group), with the prefetches of the codes two groups ahead spread in
   between. Measured on one Sapphire Rapids core (d = 128, 32 lanes): about 27 cycles a token from L2, 45 from
   memory, against about 190 for VNNI; tile loads (14 per group of 16 tokens), stores (6) and the max's reads
   share the load and store ports, which bound it rather than the 12 TDPBSSD (see docs/notes/2026-12-07f/amx.md).

   Used only when compiled with AMX (gcc/clang define __AMX_TILE__ and __AMX_INT8__ under -march=native on Sapphire
   Rapids and later) and when Linux grants the process the tile data state (arch_prctl ARCH_REQ_XCOMP_PERM, asked
   once in maxsim_amx_request); otherwise maxsim_int keeps its VNNI / portable path. Each call loads the tile
   configuration in its own thread (tile state is per thread; the callers are a thread pool) and releases it. */

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__AMX_TILE__) && defined(__AMX_INT8__) && defined(__AVX512F__) && defined(__AVX512BW__) && \
    defined(__linux__) && defined(__x86_64__)
#define MAXSIM_AMX 1
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>
#else
#define MAXSIM_AMX 0
#endif

enum { AMX_KIND_INT8 = 0, AMX_KIND_BIN = 1 }; /* maxsim_int's kinds */

static int amx_granted = 0; /* the OS gave this process the tile data state */
static int amx_on = 0;      /* maxsim_int takes the AMX path (maxsim_use_amx can turn it off, e.g. to compare) */

/* Ask Linux for the AMX tile data state (XFEATURE_XTILEDATA, 18) for the whole process; 1 when granted. */
int maxsim_amx_request(void) {
#if MAXSIM_AMX
    if (!amx_granted) {
        unsigned long features = 0;
        if (syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18) == 0 &&
            syscall(SYS_arch_prctl, 0x1022 /* ARCH_GET_XCOMP_PERM */, &features) == 0 && (features >> 18 & 1))
            amx_granted = amx_on = 1;
    }
#endif
    return amx_granted;
}

int maxsim_has_amx(void) { return amx_on; }

/* Turn the AMX path on (where granted) or off; returns whether it is on. The answers are the same either way. */
int maxsim_use_amx(int want) {
    amx_on = want && amx_granted;
    return amx_on;
}

#if MAXSIM_AMX

#define AMX_ROWS 16  /* document tokens per tile */
#define AMX_KB 64    /* dimensions (bytes) per tile row: one K block */
#define AMX_TILE 1024 /* bytes of one 16 × 64 tile */

typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} amx_config_t;

/* A constant, not a local filled at run time: gcc 12 does not see that _tile_loadconfig reads its operand and moved
   the filling of a local after the ldtilecfg (which then faulted on the uninitialised reserved bytes). */
static const amx_config_t amx_config_all = {
    .palette = 1,
    .colsb = {AMX_KB, AMX_KB, AMX_KB, AMX_KB, AMX_KB, AMX_KB, AMX_KB, AMX_KB},
    .rows = {AMX_ROWS, AMX_ROWS, AMX_ROWS, AMX_ROWS, AMX_ROWS, AMX_ROWS, AMX_ROWS, AMX_ROWS},
};

/* qi (blocks, d4, 3 limbs, 32 lanes, 4 bytes) -> qpad (blocks, nkb, 3 limbs × 2 halves, 16 quads, 64 bytes): one
   B tile per (K block, limb, half of the lanes); dimensions from d on are 0 (the VNNI path ignores the query there:
   the int8 offset's share is in corr, binary padding bits are cleared), so the document bytes there add nothing. */
static void repack_query(const int8_t *qi, int blocks, int d, int nkb, int8_t *qpad) {
    int d4 = (d + 3) / 4;
    memset(qpad, 0, (size_t)blocks * nkb * 6 * AMX_TILE);
    for (int b = 0; b < blocks; b++)
        for (int g = 0; g < d4; g++)
            for (int part = 0; part < 6; part++) { /* part = limb · 2 + half */
                const int8_t *src = qi + (((int64_t)b * d4 + g) * 3 + part / 2) * 128 + (part % 2) * 64;
                int8_t *dst = qpad + (((int64_t)b * nkb + g / 16) * 6 + part) * AMX_TILE + (g % 16) * 64;
                memcpy(dst, src, 64);
                for (int lane = 0; lane < 16 && 4 * g + 4 > d; lane++)
                    for (int k = d - 4 * g; k < 4; k++) dst[4 * lane + k] = 0;
            }
}

/* One token's sign bits (numpy.packbits order: most significant bit first) as bytes 0/1 in dst (64 bytes per 8 bytes
   of bits, whole chunks: dst has room to kd; bits past d are the packing's zero padding, and the query is 0 there).
   GFNI reverses the bits of each byte so that bit i of a 64-bit word is dimension i, then a masked move spreads
   them; without GFNI a byte at a time. */
static void expand_bits(const uint8_t *src, int nbytes, uint8_t *dst) {
#if defined(__GFNI__)
    const __m512i one = _mm512_set1_epi8(1);
    for (int i = 0; i < nbytes; i += 8) {
        uint64_t w = 0;
        memcpy(&w, src + i, nbytes - i < 8 ? (size_t)(nbytes - i) : 8);
        const __m128i reverse = _mm_set1_epi64x(0x8040201008040201LL); /* the bit-reversal matrix of each byte */
        __m128i r = _mm_gf2p8affine_epi64_epi8(_mm_cvtsi64_si128((long long)w), reverse, 0);
        _mm512_storeu_si512(dst + 8 * i, _mm512_maskz_mov_epi8((__mmask64)_mm_cvtsi128_si64(r), one));
    }
#else
    for (int k = 0; k < 8 * nbytes; k++) dst[k] = (uint8_t)(src[k >> 3] >> (7 - (k & 7)) & 1);
    for (int k = 8 * nbytes; k < 64 * ((nbytes + 7) / 8); k++) dst[k] = 0; /* as whole chunks: up to kd */
#endif
}

/* The A operand of tokens [j, j + nt): straight from the codes where a full tile of whole rows is there, else
   copied (int8 codes as they are, zero-padded to kd bytes per row and 16 rows; binary bits as bytes 0/1, see
   expand_bits) into abuf. Sets *stride to the row stride. */
static const uint8_t *a_rows(const uint8_t *docs, int kind, int d, int64_t j, int nt, int kd, uint8_t *abuf,
                             int64_t *stride) {
    if (kind == AMX_KIND_INT8 && nt == AMX_ROWS && d == kd) {
        *stride = d;
        return docs + j * d;
    }
    int nbytes = (d + 7) / 8;
    if (kind == AMX_KIND_INT8 || nt < AMX_ROWS) memset(abuf, 0, (size_t)AMX_ROWS * kd);
    for (int t = 0; t < nt; t++) {
        if (kind == AMX_KIND_INT8)
            memcpy(abuf + (int64_t)t * kd, docs + (j + t) * d, d);
        else
            expand_bits(docs + (j + t) * nbytes, nbytes, abuf + (int64_t)t * kd);
    }
    *stride = kd;
    return abuf;
}

#ifndef AMX_PREFETCH
#define AMX_PREFETCH 2 /* groups of tokens ahead (1-2 best of 1, 2, 3, 4, 8, 16 with T0; T1, T2 slower: measured) */
#endif

/* The cache lines still to prefetch of a later group's codes (addresses: prefetches do not fault past the end).
   Tile loads from memory were not prefetched by the hardware well enough (3.4 GB/s on one core without this), and
   a group's 32 lines asked at once left the core waiting (more than its line fill buffers): 3 lines per tile
   instruction step reads 7.6 GB/s on one core, 32 at once 6.5 (measured). */
typedef struct {
    uintptr_t at, end;
} prefetch_t;

#define PREFETCH_LINES 3 /* per step; 6 · nkb steps cover the 16 rows of up to 64 · nkb bytes */

/* A group whose sums are stored and wait for their max (see group_max): the sums c, [limb · 2 + half][token][lane];
   its tokens' scales (NULL: 1); corr (NULL: 0); the running max of its 32 lanes (mx, held in m0, m1 meanwhile);
   the tokens done (t) of nt. */
typedef struct {
    const int32_t *c;
    const float *scale;
    const int32_t *corr;
    float *mx;
    int t, nt;
    __m512 m0, m1;
} pending_t;

#define INLINE static inline __attribute__((always_inline))

/* Tokens [w->t, end) of a pending group into its running max, with the VNNI path's operations in its order:
   hi = H − cH, low = ((M − cM) << 8) + (L − cL) in int32, f = fma(hi, 65536, low) · scale, max. Without corr
   (int8 codes entered signed: nothing to remove) the subtractions are left out. */
INLINE void group_max(pending_t *w, int end) {
    const __m512 k65536 = _mm512_set1_ps(65536.0f);
    for (; w->t < end; w->t++) {
        const int32_t *c = w->c + w->t * 16;
        __m512 s = _mm512_set1_ps(w->scale ? w->scale[w->t] : 1.0f);
        for (int half = 0; half < 2; half++) {
            __m512i hi = _mm512_load_si512(c + half * 256);
            __m512i md = _mm512_load_si512(c + (2 + half) * 256);
            __m512i lo = _mm512_load_si512(c + (4 + half) * 256);
            if (w->corr) {
                hi = _mm512_sub_epi32(hi, _mm512_loadu_si512(w->corr + 16 * half));
                md = _mm512_sub_epi32(md, _mm512_loadu_si512(w->corr + 32 + 16 * half));
                lo = _mm512_sub_epi32(lo, _mm512_loadu_si512(w->corr + 64 + 16 * half));
            }
            __m512i low = _mm512_add_epi32(_mm512_slli_epi32(md, 8), lo);
            __m512 f = _mm512_mul_ps(_mm512_fmadd_ps(_mm512_cvtepi32_ps(hi), k65536, _mm512_cvtepi32_ps(low)), s);
            if (half == 0)
                w->m0 = _mm512_max_ps(w->m0, f);
            else
                w->m1 = _mm512_max_ps(w->m1, f);
        }
    }
}

/* One step of a group's dot products: the B tile of part i (limb · 2 + half) into tmm7, its TDPBSSD into tmm<i>,
   a few lines of the codes ahead, then the pending group's next `chunk` tokens: the vector work spread between the
   tile instructions (as fast as doing it after them, measured; it keeps the prefetches spread too). */
#define PART(i)                                                      \
    do {                                                             \
        _tile_loadd(7, q + (i) * AMX_TILE, 64);                      \
        _tile_dpbssd(i, 6, 7);                                       \
        for (int u = 0; u < PREFETCH_LINES && pf->at < pf->end; u++, pf->at += 64) \
            _mm_prefetch((const char *)pf->at, _MM_HINT_T0);         \
        group_max(w, w->nt < chunk * ++step ? w->nt : chunk * step); \
    } while (0)

/* The six 16 × 16 int32 sums (H, M, L × two lane halves) of 16 tokens (A rows a) with one 32-lane query block (its
   B tiles qb), stored to c, with the max of the pending group w interleaved; w becomes this group. */
INLINE void amx_group(const uint8_t *a, int64_t stride, const int8_t *qb, int nkb, int32_t *c, pending_t *w,
                      prefetch_t *pf) {
    int step = 0, chunk = (w->nt + 6 * nkb - 1) / (6 * nkb); /* tokens of w per step */
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    _tile_zero(4);
    _tile_zero(5);
    for (int kb = 0; kb < nkb; kb++) {
        const int8_t *q = qb + (int64_t)kb * 6 * AMX_TILE;
        _tile_loadd(6, a + kb * AMX_KB, stride);
        PART(0);
        PART(1);
        PART(2);
        PART(3);
        PART(4);
        PART(5);
    }
    if (w->nt) {
        _mm512_storeu_ps(w->mx, w->m0);
        _mm512_storeu_ps(w->mx + 16, w->m1);
    }
    _tile_stored(0, c, 64);
    _tile_stored(1, c + 256, 64);
    _tile_stored(2, c + 512, 64);
    _tile_stored(3, c + 768, 64);
    _tile_stored(4, c + 1024, 64);
    _tile_stored(5, c + 1280, 64);
}

/* Start the max of the group just stored (its lanes' running max read from mx). */
INLINE void pend(pending_t *w, const int32_t *c, int nt, const float *scale, const int32_t *corr, float *mx) {
    *w = (pending_t){c, scale, corr, mx, 0, nt, _mm512_loadu_ps(mx), _mm512_loadu_ps(mx + 16)};
}

/* maxsim_int's contract (see _maxsim_kernel.c) on AMX; 0 (nothing written) when its buffers cannot be allocated.
   Software-pipelined by one group: the tile unit computes a group's sums while the vector units take the max of
   the group before (its sums stored to the other half of cbuf). */
int maxsim_int_amx(const int8_t *qi, int n_lanes, int d, const uint8_t *docs, const float *scales, int kind,
                   const int32_t *corr, const int64_t *offsets, int64_t p0, int64_t p1, float *out) {
    int row_bytes = kind == AMX_KIND_INT8 ? d : (d + 7) / 8, blocks = n_lanes / 32;
    int nkb = (d + AMX_KB - 1) / AMX_KB, kd = nkb * AMX_KB;
    size_t qbytes = (size_t)blocks * nkb * 6 * AMX_TILE, abytes = (size_t)AMX_ROWS * kd;
    uint8_t *mem = aligned_alloc(64, qbytes + abytes + 12 * AMX_TILE);
    if (mem == NULL) return 0;
    int8_t *qpad = (int8_t *)mem;
    uint8_t *abuf = mem + qbytes;
    int32_t *cbuf = (int32_t *)(mem + qbytes + abytes); /* two groups' sums: 2 × 6 × 256 int32 */
    repack_query(qi, blocks, d, nkb, qpad);
    _tile_loadconfig(&amx_config_all);
    pending_t w = {NULL, NULL, NULL, NULL, 0, 0, _mm512_setzero_ps(), _mm512_setzero_ps()};
    int half = 0;
    for (int64_t p = p0; p < p1; p++) {
        int64_t t0 = offsets[p], t1 = offsets[p + 1];
        float *o = out + p * n_lanes;
        for (int l = 0; l < n_lanes; l++) o[l] = t0 == t1 ? 0.0f : -INFINITY;
        for (int64_t j = t0; j < t1; j += AMX_ROWS) {
            int nt = (int)(t1 - j < AMX_ROWS ? t1 - j : AMX_ROWS);
            int64_t stride;
            const uint8_t *a = a_rows(docs, kind, d, j, nt, kd, abuf, &stride);
            uintptr_t ahead = (uintptr_t)docs + (uintptr_t)(j + AMX_PREFETCH * AMX_ROWS) * row_bytes;
            prefetch_t pf = {ahead, ahead + AMX_ROWS * row_bytes};
            for (int b = 0; b < blocks; b++) {
                int32_t *c = cbuf + half * 6 * 256;
                half ^= 1;
                amx_group(a, stride, qpad + (int64_t)b * nkb * 6 * AMX_TILE, nkb, c, &w, &pf);
                pend(&w, c, nt, kind == AMX_KIND_INT8 && scales ? scales + j : NULL,
                     kind == AMX_KIND_INT8 ? NULL : corr + (int64_t)b * 96, o + (int64_t)b * 32);
            }
        }
    }
    group_max(&w, w.nt);
    if (w.nt) {
        _mm512_storeu_ps(w.mx, w.m0);
        _mm512_storeu_ps(w.mx + 16, w.m1);
    }
    _tile_release();
    free(mem);
    return 1;
}

#else

int maxsim_int_amx(const int8_t *qi, int n_lanes, int d, const uint8_t *docs, const float *scales, int kind,
                   const int32_t *corr, const int64_t *offsets, int64_t p0, int64_t p1, float *out) {
    (void)qi, (void)n_lanes, (void)d, (void)docs, (void)scales, (void)kind, (void)corr, (void)offsets, (void)p0,
        (void)p1, (void)out;
    return 0; /* not compiled with AMX: maxsim_int_amx is never called (amx_on stays 0) */
}

#endif
