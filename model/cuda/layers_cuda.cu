/* layers_cuda.cu: the CUDA twins of model/layers.c (see layers_cuda.h; the math is documented
 * in layers.h). Straightforward kernels written for correctness first: one thread per element
 * for elementwise work, one warp per row for layer norm, one block per row for softmaxes, a
 * two-stage column sum for the sums over token rows (parameter gradients), cuBLAS for the linear
 * layers. No atomics anywhere: every reduction has one fixed order, so results are
 * deterministic. */
#include "model/cuda/layers_cuda.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "model/cuda/cuda_check.h"

extern "C" {
#include "common/common.h"
#include "model/layers.h" /* LAYERNORM_EPS */
}

extern "C" const char *lawt_cublas_status_name(cublasStatus_t s)
{
    return cublasGetStatusName(s);
}

/* ---- launch helpers ---- */

#define ELEM_THREADS 256
#define ROW_THREADS 128

/* Blocks for n elements with grid-stride loops (capped: the loops cover the rest). */
static unsigned grid_for(long n, int threads)
{
    long g = (n + threads - 1) / threads;
    if (g < 1) g = 1;
    if (g > (1L << 20)) g = 1L << 20;
    return (unsigned)g;
}

#define GRID_STRIDE(i, n)                                                                \
    for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < (long)(n);            \
         i += (long)gridDim.x * blockDim.x)

__device__ __forceinline__ float warp_sum(float x)
{
    for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
    return x;
}

__device__ __forceinline__ float warp_max(float x)
{
    for (int o = 16; o > 0; o >>= 1) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, o));
    return x;
}

/* Sum (or max) over the block; red holds 32 floats of shared memory. Every thread gets the
 * result. Fixed order: lanes by xor-shuffle, then warps by xor-shuffle in warp 0. */
__device__ float block_sum(float x, float *red)
{
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
    x = warp_sum(x);
    __syncthreads(); /* red may still be read from a previous call */
    if (lane == 0) red[warp] = x;
    __syncthreads();
    if (warp == 0) {
        float y = lane < nw ? red[lane] : 0.0f;
        y = warp_sum(y);
        if (lane == 0) red[0] = y;
    }
    __syncthreads();
    return red[0];
}

__device__ float block_max(float x, float *red)
{
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
    x = warp_max(x);
    __syncthreads();
    if (lane == 0) red[warp] = x;
    __syncthreads();
    if (warp == 0) {
        float y = lane < nw ? red[lane] : -INFINITY;
        y = warp_max(y);
        if (lane == 0) red[0] = y;
    }
    __syncthreads();
    return red[0];
}

/* ---- column sums over token rows: out[j] += sum_n term(n, j), in two stages ----
 * Layer norm's dweight and dbias, a linear layer's dbias and the position embedding's dpos all
 * sum a (rows, cols) matrix over its rows. Block (x, y) of COLSUM_TILE x COLSUM_LANES threads
 * sums the columns of tile x over the rows of chunk y: thread (tx, ty) takes rows
 * lo + ty, lo + ty + COLSUM_LANES, ... of the chunk in order, then a fixed tree adds the lanes.
 * With one chunk the block adds its sums into out itself; with several, stage 1 writes one
 * partial per (chunk, term, column) into colsum_partials and stage 2 adds them into out in
 * chunk order. The plan depends on the shapes only, so every sum has one fixed order.
 *
 * Why colsum_partials is big enough: with two chunks or more, chunks <= ceil(TARGET / tiles)
 * >= 2 means tiles < TARGET, so chunks * tiles <= TARGET + tiles - 1 < 2 TARGET and
 * chunks * terms * cols <= 2 TARGET * COLSUM_TILE * COLSUM_MAX_TERMS. It is a static device
 * array: one per device, no allocation, nothing to free; calls on one device are ordered on
 * the legacy default stream (see layers_cuda.h). */

#define COLSUM_TILE 32
#define COLSUM_LANES 8
#define COLSUM_TARGET_BLOCKS 1024
#define COLSUM_MIN_ROWS 64
#define COLSUM_MAX_TERMS 2
#define COLSUM_PARTIALS (2 * COLSUM_TARGET_BLOCKS * COLSUM_TILE * COLSUM_MAX_TERMS)

__device__ float colsum_partials[COLSUM_PARTIALS];

extern "C" colsum_plan colsum_plan_cuda(int rows, long cols)
{
    colsum_plan p;
    p.col_tiles = (cols + COLSUM_TILE - 1) / COLSUM_TILE;
    long chunks = p.col_tiles > 0 ? (COLSUM_TARGET_BLOCKS + p.col_tiles - 1) / p.col_tiles : 1;
    const long most = ((long)rows + COLSUM_MIN_ROWS - 1) / COLSUM_MIN_ROWS;
    if (chunks > most) chunks = most;
    if (chunks < 1) chunks = 1;
    long per = ((long)rows + chunks - 1) / chunks;
    p.rows_per_chunk = per < 1 ? 1 : (int)per;
    chunks = ((long)rows + p.rows_per_chunk - 1) / p.rows_per_chunk;
    p.chunks = chunks < 1 ? 1 : (int)chunks;
    p.tile = COLSUM_TILE;
    p.lanes = COLSUM_LANES;
    p.partials = COLSUM_PARTIALS;
    return p;
}

/* The K terms of row n, column j: K = 1, a linear layer's dbias or dpos: dout[n, j];
 * K = 2, layer norm: dout[n, j] * xhat[n, j] (dweight) and dout[n, j] (dbias). */
template <int K>
__device__ __forceinline__ void colsum_terms(float t[K], const float *dout, const float *inp,
                                             const float *mean, const float *rstd, long n,
                                             long ld, long j)
{
    const float d = dout[n * ld + j];
    if constexpr (K == 2) {
        t[0] = d * ((inp[n * ld + j] - mean[n]) * rstd[n]);
        t[1] = d;
    } else {
        t[0] = d;
    }
}

/* Stage 1 (see above); direct: one chunk, add into out0 (and out1) */
template <int K>
__global__ void colsum_chunk_kernel(float *out0, float *out1, const float *dout,
                                    const float *inp, const float *mean, const float *rstd,
                                    int rows, long cols, long ld, int rows_per_chunk, int direct)
{
    __shared__ float lanes[K][COLSUM_LANES][COLSUM_TILE];
    const int tx = threadIdx.x, ty = threadIdx.y;
    const long j = (long)blockIdx.x * COLSUM_TILE + tx;
    const long lo = (long)blockIdx.y * rows_per_chunk;
    const long hi = lo + rows_per_chunk < rows ? lo + rows_per_chunk : rows;
    float acc[K];
    for (int k = 0; k < K; k++) acc[k] = 0.0f;
    if (j < cols)
        for (long n = lo + ty; n < hi; n += COLSUM_LANES) {
            float t[K];
            colsum_terms<K>(t, dout, inp, mean, rstd, n, ld, j);
            for (int k = 0; k < K; k++) acc[k] += t[k];
        }
    for (int k = 0; k < K; k++) lanes[k][ty][tx] = acc[k];
    __syncthreads();
    for (int s = COLSUM_LANES / 2; s > 0; s >>= 1) {
        if (ty < s)
            for (int k = 0; k < K; k++) lanes[k][ty][tx] += lanes[k][ty + s][tx];
        __syncthreads();
    }
    if (ty != 0 || j >= cols) return;
    for (int k = 0; k < K; k++) {
        float *out = k == 0 ? out0 : out1;
        if (direct) out[j] += lanes[k][0][tx];
        else colsum_partials[((long)blockIdx.y * K + k) * cols + j] = lanes[k][0][tx];
    }
}

/* Stage 2: out_k[j] += the chunks' partials of (k, j), in chunk order */
template <int K>
__global__ void colsum_add_chunks_kernel(float *out0, float *out1, long cols, int chunks)
{
    GRID_STRIDE(i, K * cols)
    {
        const int k = (int)(i / cols);
        const long j = i % cols;
        float s = 0.0f;
        for (int c = 0; c < chunks; c++) s += colsum_partials[((long)c * K + k) * cols + j];
        float *out = k == 0 ? out0 : out1;
        out[j] += s;
    }
}

/* out0 (and out1 when K = 2) [j] += sum over the rows of colsum_terms, for j < cols; the
 * (rows, cols) matrices have row stride ld. */
template <int K>
static void colsum(float *out0, float *out1, const float *dout, const float *inp,
                   const float *mean, const float *rstd, int rows, long cols, long ld)
{
    if (cols <= 0) return;
    const colsum_plan p = colsum_plan_cuda(rows, cols);
    if (p.chunks > 1 && (long)p.chunks * K * cols > COLSUM_PARTIALS)
        lawt_die("model: column sum of %d x %ld needs %ld partials (> %d)", rows, cols,
                 (long)p.chunks * K * cols, COLSUM_PARTIALS);
    const dim3 grid((unsigned)p.col_tiles, (unsigned)p.chunks), block(COLSUM_TILE, COLSUM_LANES);
    colsum_chunk_kernel<K><<<grid, block>>>(out0, out1, dout, inp, mean, rstd, rows, cols, ld,
                                            p.rows_per_chunk, p.chunks == 1);
    CUDA_CHECK_LAUNCH();
    if (p.chunks == 1) return;
    colsum_add_chunks_kernel<K><<<grid_for(K * cols, ELEM_THREADS), ELEM_THREADS>>>(
        out0, out1, cols, p.chunks);
    CUDA_CHECK_LAUNCH();
}

/* ---- embedding ---- */

__global__ void embedding_forward_kernel(float *out, const int *tokens, const float *tok_emb,
                                         const float *pos_emb, int T, int C, long total)
{
    GRID_STRIDE(i, total)
    {
        long n = i / C;
        int c = (int)(i % C), t = (int)(n % T);
        out[i] = tok_emb[(long)tokens[n] * C + c] + pos_emb[(long)t * C + c];
    }
}

extern "C" void embedding_forward_cuda(float *out, const int *tokens, const float *tok_emb,
                                       const float *pos_emb, int B, int T, int C)
{
    long total = (long)B * T * C;
    embedding_forward_kernel<<<grid_for(total, ELEM_THREADS), ELEM_THREADS>>>(
        out, tokens, tok_emb, pos_emb, T, C, total);
    CUDA_CHECK_LAUNCH();
}

/* One block per vocabulary row: dtok[v, c] += dout[n, c] over the rows n of token v, in order */
__global__ void embedding_backward_tok_kernel(float *dtok_emb, const float *dout,
                                              const int *token_rows, const int *token_start,
                                              int C)
{
    const int v = blockIdx.x, lo = token_start[v], hi = token_start[v + 1];
    if (lo == hi) return;
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        float acc = dtok_emb[(long)v * C + c];
        for (int i = lo; i < hi; i++) acc += dout[(long)token_rows[i] * C + c];
        dtok_emb[(long)v * C + c] = acc;
    }
}

extern "C" void embedding_backward_cuda(float *dtok_emb, float *dpos_emb, const float *dout,
                                        const int *token_rows, const int *token_start, int B,
                                        int T, int C, int V)
{
    /* dpos (T*C) is the column sum of dout seen as B rows of T*C */
    const long tc = (long)T * C;
    colsum<1>(dpos_emb, NULL, dout, NULL, NULL, NULL, B, tc, tc);
    embedding_backward_tok_kernel<<<V, ROW_THREADS>>>(dtok_emb, dout, token_rows, token_start,
                                                      C);
    CUDA_CHECK_LAUNCH();
}

extern "C" void embedding_index_build(int *token_rows, int *token_start, const int *tokens,
                                      int N, int V)
{
    memset(token_start, 0, (size_t)(V + 1) * sizeof(int));
    for (int n = 0; n < N; n++) {
        if (tokens[n] < 0 || tokens[n] >= V)
            lawt_die("model: token %d out of the vocabulary (%d)", tokens[n], V);
        token_start[tokens[n] + 1]++;
    }
    for (int v = 0; v < V; v++) token_start[v + 1] += token_start[v];
    /* stable counting sort: a running cursor per token, reusing token_start shifted */
    int *cursor = (int *)lawt_malloc((size_t)(V + 1) * sizeof(int));
    memcpy(cursor, token_start, (size_t)(V + 1) * sizeof(int));
    for (int n = 0; n < N; n++) token_rows[cursor[tokens[n]]++] = n;
    free(cursor);
}

/* ---- layer norm ---- */

#define LN_WARPS 8

__global__ void layernorm_forward_kernel(float *out, float *mean, float *rstd, const float *inp,
                                         const float *weight, const float *bias, int N, int C)
{
    const int lane = threadIdx.x & 31;
    const long n = (long)blockIdx.x * LN_WARPS + (threadIdx.x >> 5);
    if (n >= N) return;
    const float *x = inp + n * C;
    float s = 0.0f;
    for (int c = lane; c < C; c += 32) s += x[c];
    const float m = warp_sum(s) / (float)C;
    float v = 0.0f;
    for (int c = lane; c < C; c += 32) {
        float d = x[c] - m;
        v += d * d;
    }
    const float var = warp_sum(v) / (float)C;
    const float r = 1.0f / sqrtf(var + LAYERNORM_EPS);
    float *o = out + n * C;
    for (int c = lane; c < C; c += 32) o[c] = (x[c] - m) * r * weight[c] + bias[c];
    if (lane == 0) {
        mean[n] = m;
        rstd[n] = r;
    }
}

extern "C" void layernorm_forward_cuda(float *out, float *mean, float *rstd, const float *inp,
                                       const float *weight, const float *bias, int N, int C)
{
    unsigned blocks = (unsigned)((N + LN_WARPS - 1) / LN_WARPS);
    layernorm_forward_kernel<<<blocks, 32 * LN_WARPS>>>(out, mean, rstd, inp, weight, bias, N, C);
    CUDA_CHECK_LAUNCH();
}

__global__ void layernorm_backward_rows_kernel(float *dinp, const float *dout, const float *inp,
                                               const float *weight, const float *mean,
                                               const float *rstd, int N, int C)
{
    const int lane = threadIdx.x & 31;
    const long n = (long)blockIdx.x * LN_WARPS + (threadIdx.x >> 5);
    if (n >= N) return;
    const float *x = inp + n * C, *d = dout + n * C;
    const float m = mean[n], s = rstd[n];
    float sg = 0.0f, sgx = 0.0f;
    for (int c = lane; c < C; c += 32) {
        float g = d[c] * weight[c];
        sg += g;
        sgx += g * ((x[c] - m) * s);
    }
    const float mg = warp_sum(sg) / (float)C, mgx = warp_sum(sgx) / (float)C;
    float *di = dinp + n * C;
    for (int c = lane; c < C; c += 32) {
        float xhat = (x[c] - m) * s;
        di[c] = s * (d[c] * weight[c] - mg - xhat * mgx);
    }
}

extern "C" void layernorm_backward_cuda(float *dinp, float *dweight, float *dbias,
                                        const float *dout, const float *inp, const float *weight,
                                        const float *mean, const float *rstd, int N, int C)
{
    unsigned blocks = (unsigned)((N + LN_WARPS - 1) / LN_WARPS);
    layernorm_backward_rows_kernel<<<blocks, 32 * LN_WARPS>>>(dinp, dout, inp, weight, mean,
                                                              rstd, N, C);
    CUDA_CHECK_LAUNCH();
    colsum<2>(dweight, dbias, dout, inp, mean, rstd, N, C, C);
}

/* ---- linear layers (cuBLAS is column-major: a row-major (R, C) matrix is its transpose) ---- */

/* C (m, n) = alpha op(A) op(B) + beta C, column-major fp32, in the handle's precision */
static void gemm_f32(const blas_cuda *blas, cublasOperation_t ta, cublasOperation_t tb, int m,
                     int n, int k, float alpha, const float *A, int lda, const float *B, int ldb,
                     float beta, float *C, int ldc)
{
    CUBLAS_CHECK(cublasGemmEx(blas->handle, ta, tb, m, n, k, &alpha, A, CUDA_R_32F, lda, B,
                              CUDA_R_32F, ldb, &beta, C, CUDA_R_32F, ldc, blas->compute,
                              CUBLAS_GEMM_DEFAULT));
}

__global__ void prefill_kernel(float *out, const float *bias, const float *residual, int OC,
                               long total)
{
    GRID_STRIDE(i, total)
    {
        float r = residual ? residual[i] : 0.0f;
        out[i] = bias ? r + bias[i % OC] : r;
    }
}

extern "C" void linear_forward_cuda(const blas_cuda *blas, float *out, const float *inp,
                                    const float *weight, const float *bias,
                                    const float *residual, int N, int C, int OC)
{
    float alpha = 1.0f, beta = 0.0f;
    if (bias || residual) {
        if (bias || residual != out) {
            long total = (long)N * OC;
            prefill_kernel<<<grid_for(total, ELEM_THREADS), ELEM_THREADS>>>(out, bias, residual,
                                                                            OC, total);
            CUDA_CHECK_LAUNCH();
        }
        beta = 1.0f;
    }
    /* out^T (OC, N) = W (OC, C) inp^T (C, N): W is stored as col-major (C, OC), so op T */
    gemm_f32(blas, CUBLAS_OP_T, CUBLAS_OP_N, OC, N, C, alpha, weight, C, inp, C, beta, out, OC);
}

extern "C" void linear_backward_cuda(const blas_cuda *blas, float *dinp, float *dweight,
                                     float *dbias, const float *dout, const float *inp,
                                     const float *weight, int N, int C, int OC, int accumulate)
{
    const float one = 1.0f, beta_in = accumulate ? 1.0f : 0.0f;
    if (dinp) /* dinp^T (C, N) = W^T (C, OC) dout^T (OC, N) */
        gemm_f32(blas, CUBLAS_OP_N, CUBLAS_OP_N, C, N, OC, one, weight, C, dout, OC, beta_in, dinp,
                 C);
    /* dW^T (C, OC) += inp^T (C, N) dout (N, OC) */
    gemm_f32(blas, CUBLAS_OP_N, CUBLAS_OP_T, C, OC, N, one, inp, C, dout, OC, one, dweight, C);
    if (dbias) colsum<1>(dbias, NULL, dout, NULL, NULL, NULL, N, OC, OC);
}

/* ---- ReLU ---- */

__global__ void relu_forward_kernel(float *out, const float *inp, long n)
{
    GRID_STRIDE(i, n) out[i] = inp[i] > 0.0f ? inp[i] : 0.0f;
}

__global__ void relu_backward_kernel(float *dinp, const float *dout, const float *out, long n)
{
    GRID_STRIDE(i, n) dinp[i] = out[i] > 0.0f ? dout[i] : 0.0f;
}

extern "C" void relu_forward_cuda(float *out, const float *inp, long n)
{
    relu_forward_kernel<<<grid_for(n, ELEM_THREADS), ELEM_THREADS>>>(out, inp, n);
    CUDA_CHECK_LAUNCH();
}

extern "C" void relu_backward_cuda(float *dinp, const float *dout, const float *out, long n)
{
    relu_backward_kernel<<<grid_for(n, ELEM_THREADS), ELEM_THREADS>>>(dinp, dout, out, n);
    CUDA_CHECK_LAUNCH();
}

/* ---- attention ---- */

#define ATT_MAX_S 8192

__device__ __forceinline__ int key_count(const int *key_len, int b, int S)
{
    int n = key_len ? key_len[b] : S;
    if (n > S) n = S;
    return n < 1 ? 1 : n;
}

/* Block (bh, t): scores of query t against its visible keys, softmax, att row, out row. */
__global__ void attention_forward_kernel(float *out, float *att, const float *q, const float *k,
                                         const float *v, int ldq, int ldkv, const int *key_len,
                                         int causal, int T, int S, int H, int D, float scale)
{
    extern __shared__ float sm[];
    const int bh = blockIdx.x, t = blockIdx.y, b = bh / H, h = bh % H, C = H * D;
    const int nk = key_count(key_len, b, S), n = causal && t + 1 < nk ? t + 1 : nk;
    float *qs = sm, *p = sm + D, *red = p + S;
    const float *qrow = q + ((long)b * T + t) * ldq + (long)h * D;
    for (int c = threadIdx.x; c < D; c += blockDim.x) qs[c] = qrow[c];
    __syncthreads();
    float mx = -INFINITY;
    for (int s = threadIdx.x; s < n; s += blockDim.x) {
        const float *kr = k + ((long)b * S + s) * ldkv + (long)h * D;
        float dot = 0.0f;
        for (int c = 0; c < D; c++) dot += qs[c] * kr[c];
        p[s] = dot * scale;
        mx = fmaxf(mx, p[s]);
    }
    mx = block_max(mx, red);
    float sum = 0.0f;
    for (int s = threadIdx.x; s < n; s += blockDim.x) {
        float e = expf(p[s] - mx);
        p[s] = e;
        sum += e;
    }
    sum = block_sum(sum, red);
    const float inv = 1.0f / sum;
    float *arow = att + ((long)bh * T + t) * S;
    for (int s = threadIdx.x; s < S; s += blockDim.x) {
        float a = s < n ? p[s] * inv : 0.0f;
        if (s < n) p[s] = a;
        arow[s] = a;
    }
    __syncthreads();
    float *orow = out + ((long)b * T + t) * C + (long)h * D;
    for (int c = threadIdx.x; c < D; c += blockDim.x) {
        float acc = 0.0f;
        for (int s = 0; s < n; s++) acc += p[s] * v[((long)b * S + s) * ldkv + (long)h * D + c];
        orow[c] = acc;
    }
}

extern "C" void attention_forward_cuda(float *out, float *att, float *scratch, const float *q,
                                       const float *k, const float *v, int ldq, int ldkv,
                                       const int *key_len, int causal, int B, int T, int S,
                                       int H, int D)
{
    (void)scratch; /* the forward keeps its scores in shared memory */
    if (S > ATT_MAX_S || T > 65535)
        lawt_die("model: CUDA attention supports up to %d keys and 65535 queries (got %d, %d)",
                 ATT_MAX_S, S, T);
    dim3 grid((unsigned)(B * H), (unsigned)T);
    size_t shm = (size_t)(D + S + 32) * sizeof(float);
    attention_forward_kernel<<<grid, ROW_THREADS, shm>>>(out, att, q, k, v, ldq, ldkv, key_len,
                                                         causal, T, S, H, D,
                                                         1.0f / sqrtf((float)D));
    CUDA_CHECK_LAUNCH();
}

/* Block (bh, t): datt = dO[t] . V[s], the softmax backward dl[t, :] (into scratch, 0 for masked
 * keys), dQ[t] = sum_s dl[t, s] K[s]. */
__global__ void attention_backward_query_kernel(float *dq, float *dl_all, const float *dout,
                                                const float *att, const float *k,
                                                const float *v, int ldq, int ldkv,
                                                const int *key_len, int causal, int T, int S,
                                                int H, int D, float scale)
{
    extern __shared__ float sm[];
    const int bh = blockIdx.x, t = blockIdx.y, b = bh / H, h = bh % H, C = H * D;
    const int nk = key_count(key_len, b, S), n = causal && t + 1 < nk ? t + 1 : nk;
    float *dos = sm, *dl = sm + D, *red = dl + S;
    const float *dorow = dout + ((long)b * T + t) * C + (long)h * D;
    const float *arow = att + ((long)bh * T + t) * S;
    for (int c = threadIdx.x; c < D; c += blockDim.x) dos[c] = dorow[c];
    __syncthreads();
    float dsum = 0.0f;
    for (int s = threadIdx.x; s < n; s += blockDim.x) {
        const float *vr = v + ((long)b * S + s) * ldkv + (long)h * D;
        float dot = 0.0f;
        for (int c = 0; c < D; c++) dot += dos[c] * vr[c];
        dl[s] = dot;
        dsum += arow[s] * dot;
    }
    dsum = block_sum(dsum, red);
    float *drow = dl_all + ((long)bh * T + t) * S;
    for (int s = threadIdx.x; s < S; s += blockDim.x) {
        float g = s < n ? arow[s] * (dl[s] - dsum) * scale : 0.0f;
        if (s < n) dl[s] = g;
        drow[s] = g;
    }
    __syncthreads();
    float *dqrow = dq + ((long)b * T + t) * ldq + (long)h * D;
    for (int c = threadIdx.x; c < D; c += blockDim.x) {
        float acc = 0.0f;
        for (int s = 0; s < n; s++) acc += dl[s] * k[((long)b * S + s) * ldkv + (long)h * D + c];
        dqrow[c] = acc;
    }
}

/* Block (bh, s): dV[s] = sum_t att[t, s] dO[t];  dK[s] = sum_t dl[t, s] Q[t]; 0 for masked s. */
__global__ void attention_backward_key_kernel(float *dk, float *dv, const float *dl_all,
                                              const float *dout, const float *att,
                                              const float *q, int ldq, int ldkv,
                                              const int *key_len, int causal, int T, int S,
                                              int H, int D)
{
    const int bh = blockIdx.x, s = blockIdx.y, b = bh / H, h = bh % H, C = H * D;
    const int nk = key_count(key_len, b, S);
    float *dkrow = dk + ((long)b * S + s) * ldkv + (long)h * D;
    float *dvrow = dv + ((long)b * S + s) * ldkv + (long)h * D;
    if (s >= nk) {
        for (int c = threadIdx.x; c < D; c += blockDim.x) {
            dkrow[c] = 0.0f;
            dvrow[c] = 0.0f;
        }
        return;
    }
    const int t0 = causal ? (s < T ? s : T) : 0; /* earlier queries do not see key s */
    for (int c = threadIdx.x; c < D; c += blockDim.x) {
        float accv = 0.0f, acck = 0.0f;
        for (int t = t0; t < T; t++) {
            long r = ((long)bh * T + t) * S + s;
            accv += att[r] * dout[((long)b * T + t) * C + (long)h * D + c];
            acck += dl_all[r] * q[((long)b * T + t) * ldq + (long)h * D + c];
        }
        dvrow[c] = accv;
        dkrow[c] = acck;
    }
}

extern "C" void attention_backward_cuda(float *dq, float *dk, float *dv, float *scratch,
                                        const float *dout, const float *att, const float *q,
                                        const float *k, const float *v, int ldq, int ldkv,
                                        const int *key_len, int causal, int B, int T, int S,
                                        int H, int D)
{
    if (S > ATT_MAX_S || T > 65535 || S > 65535)
        lawt_die("model: CUDA attention supports up to %d keys and 65535 queries (got %d, %d)",
                 ATT_MAX_S, S, T);
    size_t shm = (size_t)(D + S + 32) * sizeof(float);
    attention_backward_query_kernel<<<dim3((unsigned)(B * H), (unsigned)T), ROW_THREADS, shm>>>(
        dq, scratch, dout, att, k, v, ldq, ldkv, key_len, causal, T, S, H, D,
        1.0f / sqrtf((float)D));
    CUDA_CHECK_LAUNCH();
    int kt = D < 32 ? 32 : (D < ROW_THREADS ? D : ROW_THREADS);
    attention_backward_key_kernel<<<dim3((unsigned)(B * H), (unsigned)S), kt>>>(
        dk, dv, scratch, dout, att, q, ldq, ldkv, key_len, causal, T, S, H, D);
    CUDA_CHECK_LAUNCH();
}

extern "C" long attention_scratch_floats_cuda(int B, int H, int T, int S)
{
    return (long)B * H * T * S;
}

/* ---- cross-entropy ---- */

#define CE_THREADS 256

__global__ void crossentropy_forward_kernel(float *probs, double *row_loss, const float *logits,
                                            const int *targets, int V)
{
    __shared__ float red[32];
    const long n = blockIdx.x;
    const int tgt = targets[n];
    if (tgt < 0) {
        if (threadIdx.x == 0) row_loss[n] = 0.0;
        return;
    }
    const float *l = logits + n * V;
    float *p = probs + n * V;
    float mx = -INFINITY;
    for (int j = threadIdx.x; j < V; j += blockDim.x) mx = fmaxf(mx, l[j]);
    mx = block_max(mx, red);
    float sum = 0.0f;
    for (int j = threadIdx.x; j < V; j += blockDim.x) {
        float e = expf(l[j] - mx);
        p[j] = e;
        sum += e;
    }
    sum = block_sum(sum, red);
    const float inv = 1.0f / sum;
    for (int j = threadIdx.x; j < V; j += blockDim.x) p[j] *= inv;
    if (threadIdx.x == 0) row_loss[n] = -((double)l[tgt] - (double)mx - log((double)sum));
}

extern "C" double crossentropy_forward_cuda(float *probs, double *row_loss, const float *logits,
                                            const int *targets, int N, int V,
                                            double *host_row_loss)
{
    crossentropy_forward_kernel<<<(unsigned)N, CE_THREADS>>>(probs, row_loss, logits, targets,
                                                             V);
    CUDA_CHECK_LAUNCH();
    CUDA_CHECK(cudaMemcpy(host_row_loss, row_loss, (size_t)N * sizeof(double),
                          cudaMemcpyDeviceToHost));
    double loss = 0.0;
    for (int n = 0; n < N; n++) loss += host_row_loss[n];
    return loss;
}

__global__ void crossentropy_backward_kernel(float *p_all, const int *targets, float scale,
                                             int V)
{
    const long n = blockIdx.x;
    const int tgt = targets[n];
    float *p = p_all + n * V;
    for (int j = threadIdx.x; j < V; j += blockDim.x)
        p[j] = tgt < 0 ? 0.0f : p[j] * scale - (j == tgt ? scale : 0.0f);
}

extern "C" void crossentropy_backward_cuda(float *dlogits_probs, const int *targets, float scale,
                                           int N, int V)
{
    crossentropy_backward_kernel<<<(unsigned)N, CE_THREADS>>>(dlogits_probs, targets, scale, V);
    CUDA_CHECK_LAUNCH();
}

/* ---- optimizer ---- */

__global__ void adam_kernel(float *p, float *m, float *v, const float *g, long n, float lr,
                            float b1, float b2, float eps, float ib1, float ib2, float gs)
{
    GRID_STRIDE(i, n)
    {
        float gi = gs * g[i];
        float mi = b1 * m[i] + (1.0f - b1) * gi;
        float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        p[i] -= lr * (mi * ib1) / (sqrtf(vi * ib2) + eps);
    }
}

extern "C" void adam_update_cuda(float *params, float *m, float *v, const float *grads, size_t n,
                                 float lr, float beta1, float beta2, float eps, float ib1,
                                 float ib2, float grad_scale)
{
    adam_kernel<<<grid_for((long)n, ELEM_THREADS), ELEM_THREADS>>>(
        params, m, v, grads, (long)n, lr, beta1, beta2, eps, ib1, ib2, grad_scale);
    CUDA_CHECK_LAUNCH();
}

#define SUMSQ_THREADS 256

__device__ double block_tree_sum_double(double x, double *red)
{
    red[threadIdx.x] = x;
    __syncthreads();
    for (int s = SUMSQ_THREADS / 2; s > 0; s >>= 1) {
        if ((int)threadIdx.x < s) red[threadIdx.x] += red[threadIdx.x + s];
        __syncthreads();
    }
    return red[0];
}

__global__ void sumsq_blocks_kernel(double *partials, const float *x, long n)
{
    __shared__ double red[SUMSQ_THREADS];
    const long lo = (long)blockIdx.x * SUMSQ_BLOCK;
    const long hi = lo + SUMSQ_BLOCK < n ? lo + SUMSQ_BLOCK : n;
    double acc = 0.0;
    for (long i = lo + threadIdx.x; i < hi; i += SUMSQ_THREADS) acc += (double)x[i] * (double)x[i];
    double s = block_tree_sum_double(acc, red);
    if (threadIdx.x == 0) partials[blockIdx.x] = s;
}

__global__ void sumsq_final_kernel(double *partials, int nb)
{
    __shared__ double red[SUMSQ_THREADS];
    double acc = 0.0;
    for (int i = threadIdx.x; i < nb; i += SUMSQ_THREADS) acc += partials[i];
    double s = block_tree_sum_double(acc, red);
    if (threadIdx.x == 0) partials[nb] = s;
}

extern "C" size_t sumsq_partials_cuda(size_t n) { return (n + SUMSQ_BLOCK - 1) / SUMSQ_BLOCK + 1; }

extern "C" double sumsq_cuda(const float *x, size_t n, double *partials)
{
    int nb = (int)(sumsq_partials_cuda(n) - 1);
    if (nb == 0) return 0.0;
    sumsq_blocks_kernel<<<(unsigned)nb, SUMSQ_THREADS>>>(partials, x, (long)n);
    CUDA_CHECK_LAUNCH();
    sumsq_final_kernel<<<1, SUMSQ_THREADS>>>(partials, nb);
    CUDA_CHECK_LAUNCH();
    double s = 0.0;
    CUDA_CHECK(cudaMemcpy(&s, partials + nb, sizeof s, cudaMemcpyDeviceToHost));
    return s;
}

/* ---- beams ---- */

__global__ void gather_rows_kernel(float *dst, const float *src, const int *index, long n,
                                   long ld, long total)
{
    GRID_STRIDE(i, total)
    {
        long r = i / n, j = i % n;
        dst[r * ld + j] = src[(long)index[r] * ld + j];
    }
}

extern "C" void gather_rows_cuda(float *dst, const float *src, const int *index, int rows, long n,
                                 long ld)
{
    long total = (long)rows * n;
    if (total == 0) return;
    gather_rows_kernel<<<grid_for(total, ELEM_THREADS), ELEM_THREADS>>>(dst, src, index, n, ld,
                                                                        total);
    CUDA_CHECK_LAUNCH();
}

/* ---- the loops of a universal transformer ---- */

__device__ __forceinline__ float sigmoid_dev(float z) { return 1.0f / (1.0f + expf(-z)); }

__global__ void copy_gate_forward_kernel(float *out, float *gate, const float *y, const float *x,
                                         long n)
{
    GRID_STRIDE(i, n)
    {
        float g = sigmoid_dev(gate[i]);
        gate[i] = g;
        out[i] = g * y[i] + (1.0f - g) * x[i];
    }
}

extern "C" void copy_gate_forward_cuda(float *out, float *gate, const float *y, const float *x,
                                       long n)
{
    if (n == 0) return;
    copy_gate_forward_kernel<<<grid_for(n, ELEM_THREADS), ELEM_THREADS>>>(out, gate, y, x, n);
    CUDA_CHECK_LAUNCH();
}

__global__ void copy_gate_backward_kernel(float *dz, float *dy, float *dx, const float *dout,
                                          const float *gate, const float *y, const float *x,
                                          long n)
{
    GRID_STRIDE(i, n)
    {
        const float g = gate[i], d = dout[i];
        if (dy) dy[i] = g * d;
        if (dz) dz[i] = d * (y[i] - x[i]) * g * (1.0f - g);
        if (dx) dx[i] += (1.0f - g) * d;
    }
}

extern "C" void copy_gate_backward_cuda(float *dz, float *dy, float *dx, const float *dout,
                                        const float *gate, const float *y, const float *x, long n)
{
    if (n == 0) return;
    copy_gate_backward_kernel<<<grid_for(n, ELEM_THREADS), ELEM_THREADS>>>(dz, dy, dx, dout, gate,
                                                                           y, x, n);
    CUDA_CHECK_LAUNCH();
}

/* The iteration at which row r halts (act_halt_step of layers.c, the same float sums). */
__device__ int act_halt_step_dev(const float *p, float threshold, int L, int N, int r)
{
    float cum = 0.0f;
    for (int i = 0; i < L - 1; i++) {
        cum += p[(long)i * N + r];
        if (cum >= threshold) return i;
    }
    return L - 1;
}

/* One thread per row: the probabilities, then the weights and N + R. */
__global__ void act_halting_forward_kernel(float *weight, float *ponder, float *halt,
                                           float threshold, int L, int N)
{
    const int r = blockIdx.x * blockDim.x + threadIdx.x;
    if (r >= N) return;
    for (int i = 0; i < L; i++) halt[(long)i * N + r] = sigmoid_dev(halt[(long)i * N + r]);
    const int n = act_halt_step_dev(halt, threshold, L, N, r);
    float cum = 0.0f;
    for (int i = 0; i < n; i++) {
        weight[(long)i * N + r] = halt[(long)i * N + r];
        cum += halt[(long)i * N + r];
    }
    const float R = 1.0f - cum;
    weight[(long)n * N + r] = R;
    for (int i = n + 1; i < L; i++) weight[(long)i * N + r] = 0.0f;
    ponder[r] = (float)(n + 1) + R;
}

extern "C" void act_halting_forward_cuda(float *weight, float *ponder, float *halt,
                                         float threshold, int L, int N)
{
    if (N == 0) return;
    act_halting_forward_kernel<<<grid_for(N, ROW_THREADS), ROW_THREADS>>>(weight, ponder, halt,
                                                                         threshold, L, N);
    CUDA_CHECK_LAUNCH();
}

__global__ void act_halting_backward_kernel(float *dhalt, const float *dweight,
                                            const float *halt, const float *mask,
                                            float ponder_scale, float threshold, int L, int N)
{
    const int r = blockIdx.x * blockDim.x + threadIdx.x;
    if (r >= N) return;
    const int n = act_halt_step_dev(halt, threshold, L, N, r);
    const float dR = dweight[(long)n * N + r], dponder = ponder_scale * mask[r];
    for (int i = 0; i < L; i++) {
        const long j = (long)i * N + r;
        const float dp = i < n ? dweight[j] - dR - dponder : 0.0f;
        dhalt[j] = dp * halt[j] * (1.0f - halt[j]);
    }
}

extern "C" void act_halting_backward_cuda(float *dhalt, const float *dweight, const float *halt,
                                          const float *mask, float ponder_scale, float threshold,
                                          int L, int N)
{
    if (N == 0) return;
    act_halting_backward_kernel<<<grid_for(N, ROW_THREADS), ROW_THREADS>>>(
        dhalt, dweight, halt, mask, ponder_scale, threshold, L, N);
    CUDA_CHECK_LAUNCH();
}

__global__ void weighted_rows_forward_kernel(float *out, const float *w, const float *x, int C,
                                             long total, int accumulate)
{
    GRID_STRIDE(i, total)
    {
        const float v = w[i / C] * x[i];
        out[i] = accumulate ? out[i] + v : v;
    }
}

extern "C" void weighted_rows_forward_cuda(float *out, const float *w, const float *x, int N,
                                           int C, int accumulate)
{
    const long total = (long)N * C;
    if (total == 0) return;
    weighted_rows_forward_kernel<<<grid_for(total, ELEM_THREADS), ELEM_THREADS>>>(
        out, w, x, C, total, accumulate);
    CUDA_CHECK_LAUNCH();
}

/* dw: one thread per row, the sum in column order as on the CPU; dx: element by element. */
__global__ void weighted_rows_dw_kernel(float *dw, const float *dout, const float *x, int N, int C)
{
    const int r = blockIdx.x * blockDim.x + threadIdx.x;
    if (r >= N) return;
    const float *d = dout + (long)r * C, *xr = x + (long)r * C;
    float s = 0.0f;
    for (int c = 0; c < C; c++) s += d[c] * xr[c];
    dw[r] = s;
}

__global__ void weighted_rows_dx_kernel(float *dx, const float *dout, const float *w, int C,
                                        long total)
{
    GRID_STRIDE(i, total) dx[i] += w[i / C] * dout[i];
}

extern "C" void weighted_rows_backward_cuda(float *dw, float *dx, const float *dout,
                                            const float *w, const float *x, int N, int C)
{
    const long total = (long)N * C;
    if (total == 0) return;
    if (dw) {
        weighted_rows_dw_kernel<<<grid_for(N, ROW_THREADS), ROW_THREADS>>>(dw, dout, x, N, C);
        CUDA_CHECK_LAUNCH();
    }
    if (dx) {
        weighted_rows_dx_kernel<<<grid_for(total, ELEM_THREADS), ELEM_THREADS>>>(dx, dout, w, C,
                                                                                 total);
        CUDA_CHECK_LAUNCH();
    }
}
