/* layers_cuda.h: the CUDA twins of model/layers.h. Each function carries the name of its CPU
 * reference with a _cuda suffix and the same arguments in the same order (plus, where a
 * reference has none to hold, a cuBLAS handle first or a scratch buffer last); the math and the
 * conventions are those documented in layers.h:
 *   forward:  outputs are overwritten;
 *   backward: parameter gradients are ACCUMULATED (+=); input gradients are overwritten unless
 *             an `accumulate` flag is set.
 * Every pointer is DEVICE memory unless its comment says host. Everything runs on the legacy
 * default stream (stream 0, which is also the stream of the cuBLAS handles the backend makes),
 * so calls are ordered; nothing here synchronises except where a host result is returned.
 * Reductions never use atomics: every sum has one fixed order, so results are bit-identical
 * from run to run on one GPU and binary. The sums over token rows (layer norm's dweight and
 * dbias, dbias, dpos) run in two stages through one static device buffer per device, so calls
 * for one device must come from one host thread at a time (the backend's own rule).
 * tests/gpu/test_cuda_parity.c holds every pair against its CPU reference on random inputs. */
#ifndef LAWT_MODEL_LAYERS_CUDA_H
#define LAWT_MODEL_LAYERS_CUDA_H

#include <stddef.h>

#include <cublas_v2.h>

#ifdef __cplusplus
extern "C" {
#endif

/* out[b,t,:] = tok_emb[tokens[b,t], :] + pos_emb[t, :]   (tokens on the device) */
void embedding_forward_cuda(float *out, const int *tokens, const float *tok_emb,
                            const float *pos_emb, int B, int T, int C);
/* dtok_emb[tokens[b,t], :] += dout[b,t,:];  dpos_emb[t, :] += dout[b,t,:]
 * Deterministic without atomics: the token rows come grouped by token, an index built on the
 * host by embedding_index_build (token_rows (B*T), token_start (V+1), both on the device); each
 * table row then sums its rows in increasing row order, as the CPU reference does. dpos is a
 * column sum (colsum_plan_cuda) over the B examples. */
void embedding_backward_cuda(float *dtok_emb, float *dpos_emb, const float *dout,
                             const int *token_rows, const int *token_start, int B, int T, int C,
                             int V);
/* Host: token_rows (N) lists the rows n of tokens (N, host) by token, rows of one token in
 * increasing order; token_start (V + 1): token v owns token_rows[token_start[v] ..
 * token_start[v+1]). */
void embedding_index_build(int *token_rows, int *token_start, const int *tokens, int N, int V);

/* As layernorm_forward / layernorm_backward (one warp per row; dweight and dbias are column
 * sums, colsum_plan_cuda). */
void layernorm_forward_cuda(float *out, float *mean, float *rstd, const float *inp,
                            const float *weight, const float *bias, int N, int C);
void layernorm_backward_cuda(float *dinp, float *dweight, float *dbias, const float *dout,
                             const float *inp, const float *weight, const float *mean,
                             const float *rstd, int N, int C);

/* A cuBLAS handle and how its products of fp32 matrices compute: CUBLAS_COMPUTE_32F (fp32),
 * CUBLAS_COMPUTE_32F_FAST_TF32 (tf32) or CUBLAS_COMPUTE_32F_FAST_16BF (bf16: tensor cores round
 * both inputs to bf16 and accumulate in fp32). Operands and results stay fp32 in memory, so
 * the weights the optimizer updates are the fp32 master copy whatever the precision. */
typedef struct {
    cublasHandle_t handle;
    cublasComputeType_t compute;
} blas_cuda;

/* out = residual + inp weight^T + bias: a prefill kernel, then one cublasGemmEx with beta 1.
 * residual may be out itself. */
void linear_forward_cuda(const blas_cuda *blas, float *out, const float *inp, const float *weight,
                         const float *bias, const float *residual, int N, int C, int OC);
/* dinp (=, or += when accumulate) dout weight;  dweight += dout^T inp;  dbias += sum_n dout
 * (a column sum, colsum_plan_cuda). */
void linear_backward_cuda(const blas_cuda *blas, float *dinp, float *dweight, float *dbias,
                          const float *dout, const float *inp, const float *weight, int N, int C,
                          int OC, int accumulate);

void relu_forward_cuda(float *out, const float *inp, long n);
void relu_backward_cuda(float *dinp, const float *dout, const float *out, long n);

/* As attention_forward / attention_backward, same arguments; key_len (B) on the device or NULL.
 * One thread block per (b, h, query t) row for the scores, the masked softmax and att V; the
 * backward runs one block per query row (datt, the softmax backward into scratch, dQ) and one
 * per key row (dK, dV). scratch: attention_scratch_floats_cuda(B, H, T, S) floats. T and S are
 * limited by shared memory (S <= 8192). */
void attention_forward_cuda(float *out, float *att, float *scratch, const float *q,
                            const float *k, const float *v, int ldq, int ldkv,
                            const int *key_len, int causal, int B, int T, int S, int H, int D);
void attention_backward_cuda(float *dq, float *dk, float *dv, float *scratch, const float *dout,
                             const float *att, const float *q, const float *k, const float *v,
                             int ldq, int ldkv, const int *key_len, int causal, int B, int T,
                             int S, int H, int D);
long attention_scratch_floats_cuda(int B, int H, int T, int S);

/* Softmax + cross-entropy, fused (one block per row); targets on the device. The per-row
 * losses (device, N doubles) are copied into host_row_loss (N doubles, host) and summed there
 * in row order, as crossentropy_forward does; the call therefore synchronises. */
double crossentropy_forward_cuda(float *probs, double *row_loss, const float *logits,
                                 const int *targets, int N, int V, double *host_row_loss);
void crossentropy_backward_cuda(float *dlogits_probs, const int *targets, float scale, int N,
                                int V);

/* The Adam update of model_cpu.c on n floats (ib1, ib2: the bias corrections
 * 1 / (1 - beta^step)). */
void adam_update_cuda(float *params, float *m, float *v, const float *grads, size_t n, float lr,
                      float beta1, float beta2, float eps, float ib1, float ib2,
                      float grad_scale);
/* Sum of squares of x (n floats) in double: a fixed tree per block of SUMSQ_BLOCK floats into
 * partials (sumsq_partials_cuda(n) doubles, device), then one block over the partials in a
 * fixed tree: deterministic. Returns the sum on the host (synchronises). */
#define SUMSQ_BLOCK 16384
double sumsq_cuda(const float *x, size_t n, double *partials);
size_t sumsq_partials_cuda(size_t n);

/* How a sum over the rows of a (rows, cols) matrix is split (the gradients above that sum over
 * token rows): blocks of tile columns x lanes threads; block (x, y) sums columns
 * [x tile, (x+1) tile) over the rows [y rows_per_chunk, (y+1) rows_per_chunk) of chunk y, lane l
 * taking every lanes-th row from the chunk's first + l. One chunk: the blocks add into the
 * gradient; more: partial sums (chunks x terms x cols <= partials floats, terms 2 for layer
 * norm, else 1) then one pass adding them in chunk order. A function of the shapes alone, so
 * the order of every sum is fixed; exposed so that a test can check the coverage on the host. */
typedef struct {
    long col_tiles;
    int chunks, rows_per_chunk;
    int tile, lanes, partials;
} colsum_plan;
colsum_plan colsum_plan_cuda(int rows, long cols);

/* dst[r, 0..n) = src[index[r], 0..n) for r < rows, row strides ld (device index (rows)). Used to
 * reorder beams' key/value caches. */
void gather_rows_cuda(float *dst, const float *src, const int *index, int rows, long n, long ld);

/* The loops of a universal transformer, as layers.h's copy_gate_*, act_halting_*,
 * weighted_rows_*: element-wise kernels; ACT's halting runs one thread per row over the
 * iterations (the same float sums, in the same order, as the CPU), and weighted_rows_backward's
 * dw one thread per row summing in column order. */
void copy_gate_forward_cuda(float *out, float *gate, const float *y, const float *x, long n);
void copy_gate_backward_cuda(float *dz, float *dy, float *dx, const float *dout,
                             const float *gate, const float *y, const float *x, long n);
void act_halting_forward_cuda(float *weight, float *ponder, float *halt, float threshold, int L,
                              int N);
void act_halting_backward_cuda(float *dhalt, const float *dweight, const float *halt,
                               const float *mask, float ponder_scale, float threshold, int L,
                               int N);
void weighted_rows_forward_cuda(float *out, const float *w, const float *x, int N, int C,
                                int accumulate);
void weighted_rows_backward_cuda(float *dw, float *dx, const float *dout, const float *w,
                                 const float *x, int N, int C);

#ifdef __cplusplus
}
#endif

#endif
