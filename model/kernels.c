/* kernels.c: see kernels.h. small_gemm has a plain C definition (the reference) and, when the
 * compiler targets AVX2 + FMA (the project builds with -march=x86-64-v3), a register-blocked
 * version computing 4 x 16 tiles of C with eight accumulators; both sum over k in increasing
 * order with fused multiply-adds. */
#include "model/kernels.h"

#include <stddef.h>
#include <stdint.h>

void transpose_scaled(float *restrict dst, int ldd, const float *restrict src, int lds,
                      int rows, int cols, float scale)
{
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) dst[(size_t)c * ldd + r] = scale * src[(size_t)r * lds + c];
}

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

static inline __m256i lanes_below(int n)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* C[0..rows, 0..w) (+)= A[0..rows, 0..K) B[0..K, 0..w), rows <= 4, w <= 16. Rows past `rows`
 * recompute the last row and are not stored. */
static void tile(int rows, int w, int K, const float *A, int lda, const float *B, int ldb,
                 float *C, int ldc, int accumulate)
{
    const float *a0 = A, *a1 = A + (size_t)(rows > 1 ? 1 : 0) * lda;
    const float *a2 = A + (size_t)(rows > 2 ? 2 : rows - 1) * lda;
    const float *a3 = A + (size_t)(rows > 3 ? 3 : rows - 1) * lda;
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,
           c30 = c00, c31 = c00;
    const __m256i m0 = lanes_below(w), m1 = lanes_below(w - 8);
    if (w == 16) {
        for (int k = 0; k < K; k++) {
            const float *b = B + (size_t)k * ldb;
            __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8), x;
            x = _mm256_broadcast_ss(a0 + k);
            c00 = _mm256_fmadd_ps(x, b0, c00);
            c01 = _mm256_fmadd_ps(x, b1, c01);
            x = _mm256_broadcast_ss(a1 + k);
            c10 = _mm256_fmadd_ps(x, b0, c10);
            c11 = _mm256_fmadd_ps(x, b1, c11);
            x = _mm256_broadcast_ss(a2 + k);
            c20 = _mm256_fmadd_ps(x, b0, c20);
            c21 = _mm256_fmadd_ps(x, b1, c21);
            x = _mm256_broadcast_ss(a3 + k);
            c30 = _mm256_fmadd_ps(x, b0, c30);
            c31 = _mm256_fmadd_ps(x, b1, c31);
        }
    } else {
        for (int k = 0; k < K; k++) {
            const float *b = B + (size_t)k * ldb;
            __m256 b0 = _mm256_maskload_ps(b, m0), b1 = _mm256_setzero_ps(), x;
            if (w > 8) b1 = _mm256_maskload_ps(b + 8, m1);
            x = _mm256_broadcast_ss(a0 + k);
            c00 = _mm256_fmadd_ps(x, b0, c00);
            c01 = _mm256_fmadd_ps(x, b1, c01);
            x = _mm256_broadcast_ss(a1 + k);
            c10 = _mm256_fmadd_ps(x, b0, c10);
            c11 = _mm256_fmadd_ps(x, b1, c11);
            x = _mm256_broadcast_ss(a2 + k);
            c20 = _mm256_fmadd_ps(x, b0, c20);
            c21 = _mm256_fmadd_ps(x, b1, c21);
            x = _mm256_broadcast_ss(a3 + k);
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

void small_gemm(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C,
                int ldc, int accumulate)
{
    for (int i = 0; i < M; i += 4) {
        int rows = M - i < 4 ? M - i : 4;
        for (int j = 0; j < N; j += 16) {
            int w = N - j < 16 ? N - j : 16;
            tile(rows, w, K, A + (size_t)i * lda, lda, B + j, ldb, C + (size_t)i * ldc + j, ldc,
                 accumulate);
        }
    }
}

#else

void small_gemm(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C,
                int ldc, int accumulate)
{
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            float s = 0.0f;
            for (int k = 0; k < K; k++) s += A[(size_t)i * lda + k] * B[(size_t)k * ldb + j];
            float *c = C + (size_t)i * ldc + j;
            *c = accumulate ? *c + s : s;
        }
}

#endif
