/* kernels.h: single-threaded building blocks for the per-(example, head) products of
 * attention, too small for a BLAS call to pay off (T x S x D with T, S ~ 20-80, D ~ 16-64).
 * Results do not depend on how the caller splits its work among threads. */
#ifndef LAWT_MODEL_KERNELS_H
#define LAWT_MODEL_KERNELS_H

/* C (M, N) = A (M, K) B (K, N), or C += A B when accumulate; row-major with leading dimensions
 * lda, ldb, ldc. Each C element is a sum over k in increasing order. */
void small_gemm(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C,
                int ldc, int accumulate);

/* C (M, N) = A^T B with A (K, M), or C += A^T B when accumulate. */
void small_gemm_tn(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                   float *C, int ldc, int accumulate);

/* The plain-loop twins of the two above (what they compute, element for element). */
void small_gemm_ref(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                    float *C, int ldc, int accumulate);
void small_gemm_tn_ref(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                       float *C, int ldc, int accumulate);

/* dst (cols, rows) = scale * src (rows, cols)^T; leading dimensions lds and ldd. */
void transpose_scaled(float *dst, int ldd, const float *src, int lds, int rows, int cols,
                      float scale);

#endif
