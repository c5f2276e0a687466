/* kernels.c: see kernels.h. small_gemm has a plain C definition (small_gemm_ref, the
 * reference) and, when the compiler targets AVX2 + FMA (the project builds with
 * -march=x86-64-v3), a register-blocked version computing 4 x 16 tiles of C with eight
 * accumulators; both sum over k in increasing order with fused multiply-adds. */
#include "model/kernels.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>

void transpose_scaled(float *restrict dst, int ldd, const float *restrict src, int lds,
                      int rows, int cols, float scale)
{
    /* 8 x 8 blocks: both sides stay within a few cache lines */
    for (int r0 = 0; r0 < rows; r0 += 8)
        for (int c0 = 0; c0 < cols; c0 += 8) {
            int r1 = r0 + 8 < rows ? r0 + 8 : rows, c1 = c0 + 8 < cols ? c0 + 8 : cols;
            for (int c = c0; c < c1; c++)
                for (int r = r0; r < r1; r++)
                    dst[(size_t)c * ldd + r] = scale * src[(size_t)r * lds + c];
        }
}

/* The plain loops, A[i][k] at A + i * ars + k * aks (ars = lda, aks = 1 for A; ars = 1,
 * aks = lda for A^T): the definition of both products, the fallback without AVX2 + FMA, and the
 * twin the tests hold the vectorised version to, bit for bit: the same fused multiply-adds in
 * the same order (fmaf, not s += a * b, which a vectorising compiler may split into a rounded
 * product and a sum). */
static void gemm_plain(int M, int N, int K, const float *A, size_t ars, size_t aks,
                       const float *B, int ldb, float *C, int ldc, int accumulate)
{
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            float s = 0.0f;
            for (int k = 0; k < K; k++)
                s = fmaf(A[(size_t)i * ars + (size_t)k * aks], B[(size_t)k * ldb + j], s);
            float *c = C + (size_t)i * ldc + j;
            *c = accumulate ? *c + s : s;
        }
}

void small_gemm_ref(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                    float *C, int ldc, int accumulate)
{
    gemm_plain(M, N, K, A, (size_t)lda, 1, B, ldb, C, ldc, accumulate);
}

void small_gemm_tn_ref(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                       float *C, int ldc, int accumulate)
{
    gemm_plain(M, N, K, A, 1, (size_t)lda, B, ldb, C, ldc, accumulate);
}

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

static inline __m256i lanes_below(int n)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* C[0..rows, 0..w) (+)= A B[0..K, 0..w), rows <= 4, w <= 16, where A[r][k] is at
 * A + r * ars + k * aks (as in gemm_plain). Rows past
 * `rows` recompute the last row and are not stored. */
static void tile(int rows, int w, int K, const float *A, size_t ars, size_t aks, const float *B,
                 int ldb, float *C, int ldc, int accumulate)
{
    const float *a0 = A, *a1 = A + (size_t)(rows > 1 ? 1 : 0) * ars;
    const float *a2 = A + (size_t)(rows > 2 ? 2 : rows - 1) * ars;
    const float *a3 = A + (size_t)(rows > 3 ? 3 : rows - 1) * ars;
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,
           c30 = c00, c31 = c00;
    const __m256i m0 = lanes_below(w), m1 = lanes_below(w - 8);
    if (w == 16) {
        for (int k = 0; k < K; k++) {
            const float *b = B + (size_t)k * ldb;
            __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8), x;
            x = _mm256_broadcast_ss(a0 + k * aks);
            c00 = _mm256_fmadd_ps(x, b0, c00);
            c01 = _mm256_fmadd_ps(x, b1, c01);
            x = _mm256_broadcast_ss(a1 + k * aks);
            c10 = _mm256_fmadd_ps(x, b0, c10);
            c11 = _mm256_fmadd_ps(x, b1, c11);
            x = _mm256_broadcast_ss(a2 + k * aks);
            c20 = _mm256_fmadd_ps(x, b0, c20);
            c21 = _mm256_fmadd_ps(x, b1, c21);
            x = _mm256_broadcast_ss(a3 + k * aks);
            c30 = _mm256_fmadd_ps(x, b0, c30);
            c31 = _mm256_fmadd_ps(x, b1, c31);
        }
    } else {
        for (int k = 0; k < K; k++) {
            const float *b = B + (size_t)k * ldb;
            __m256 b0 = _mm256_maskload_ps(b, m0), b1 = _mm256_setzero_ps(), x;
            if (w > 8) b1 = _mm256_maskload_ps(b + 8, m1);
            x = _mm256_broadcast_ss(a0 + k * aks);
            c00 = _mm256_fmadd_ps(x, b0, c00);
            c01 = _mm256_fmadd_ps(x, b1, c01);
            x = _mm256_broadcast_ss(a1 + k * aks);
            c10 = _mm256_fmadd_ps(x, b0, c10);
            c11 = _mm256_fmadd_ps(x, b1, c11);
            x = _mm256_broadcast_ss(a2 + k * aks);
            c20 = _mm256_fmadd_ps(x, b0, c20);
            c21 = _mm256_fmadd_ps(x, b1, c21);
            x = _mm256_broadcast_ss(a3 + k * aks);
            c30 = _mm256_fmadd_ps(x, b0, c30);
            c31 = _mm256_fmadd_ps(x, b1, c31);
        }
    }
    __m256 out[4][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}};
    for (int r = 0; r < rows; r++) {
        float *c = C + (size_t)r * ldc;
        if (w == 16) {
            if (accumulate) {
                out[r][0] = _mm256_add_ps(_mm256_loadu_ps(c), out[r][0]);
                out[r][1] = _mm256_add_ps(_mm256_loadu_ps(c + 8), out[r][1]);
            }
            _mm256_storeu_ps(c, out[r][0]);
            _mm256_storeu_ps(c + 8, out[r][1]);
        } else {
            if (accumulate) out[r][0] = _mm256_add_ps(_mm256_maskload_ps(c, m0), out[r][0]);
            _mm256_maskstore_ps(c, m0, out[r][0]);
            if (w > 8) {
                if (accumulate)
                    out[r][1] = _mm256_add_ps(_mm256_maskload_ps(c + 8, m1), out[r][1]);
                _mm256_maskstore_ps(c + 8, m1, out[r][1]);
            }
        }
    }
}

static void gemm_tiles(int M, int N, int K, const float *A, size_t ars, size_t aks,
                       const float *B, int ldb, float *C, int ldc, int accumulate)
{
    for (int i = 0; i < M; i += 4) {
        int rows = M - i < 4 ? M - i : 4;
        for (int j = 0; j < N; j += 16) {
            int w = N - j < 16 ? N - j : 16;
            tile(rows, w, K, A + (size_t)i * ars, ars, aks, B + j, ldb, C + (size_t)i * ldc + j,
                 ldc, accumulate);
        }
    }
}

void small_gemm(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C,
                int ldc, int accumulate)
{
    gemm_tiles(M, N, K, A, (size_t)lda, 1, B, ldb, C, ldc, accumulate);
}

void small_gemm_tn(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                   float *C, int ldc, int accumulate)
{
    gemm_tiles(M, N, K, A, 1, (size_t)lda, B, ldb, C, ldc, accumulate);
}

#else

void small_gemm(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C,
                int ldc, int accumulate)
{
    small_gemm_ref(M, N, K, A, lda, B, ldb, C, ldc, accumulate);
}

void small_gemm_tn(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                   float *C, int ldc, int accumulate)
{
    small_gemm_tn_ref(M, N, K, A, lda, B, ldb, C, ldc, accumulate);
}

#endif
