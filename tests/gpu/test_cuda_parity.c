/* test_cuda_parity.c: the CUDA backend against the CPU reference, on random inputs.
 *
 *   0. (runs without a GPU too) the plan of the two-stage column sums covers every row of every
 *      column exactly once and fits its partials buffer, at the real jobs' shapes and the edges;
 *   1. every layer pair of layers.h against its _cuda twin (layers_cuda.h), at small odd sizes
 *      and at the real jobs' shapes (model dims 512, 516 and 1024, head dims 64 and 43,
 *      vocabularies 1314 and 29128, sequences past 1000 tokens, thousands of rows so that the
 *      column sums run in several chunks); sum of squares over more than 256 partials; the
 *      beams' row gather; a 1024^3 product whose tf32 and bf16 errors must lie between a floor
 *      and a ceiling (a run that silently stays in fp32 fails);
 *   2. the whole model: loss, logits, every gradient tensor, gradient norm, Adam moments and
 *      parameters after a step; a batch smaller than the activations' batch after a full one;
 *      determinism of the CUDA backend (bit-identical gradients on a rerun); TF32 and BF16:
 *      loss and gradients within 1e-2 of the CPU's fp32, logits at least a floor away; the
 *      real jobs' shapes (516/512 dims with 29128 output tokens, 1024 dims, 1202 x 1100 tokens);
 *   3. decoding: cached greedy == no-cache greedy on the GPU, GPU greedy and beam == CPU, also
 *      with an EOS bias that ends some rows (and beam hypotheses) at once and others not;
 *   4. a short training run on both backends from one initialisation, loss curves compared;
 *   5. universal transformers (a looped encoder and decoder, fixed, gated and ACT): the loop
 *      layers' twins above in part 1, then loss, logits, gradients and decoding as in 2 and 3.
 *
 * Stale memory cannot pass: before every layer call each output it overwrites is filled with
 * NaN (on the GPU, and on the CPU too), and each output it accumulates into (parameter
 * gradients, an accumulated dinp, the in-place residual, the probabilities of ignored rows)
 * starts from the same random values on both sides; the whole-model gradients are compared
 * after accumulating onto identical non-zero buffers, and the GPU model's activations hold a
 * larger batch's values before the batch that is compared.
 *
 * Errors are norm-wise relative: ||gpu - cpu||_2 / ||cpu||_2 <= 1e-5 in fp32 (per layer, and
 * for the whole model's loss, logits and gradient buffer; each single gradient tensor is held
 * to 1e-4 and reported above 1e-5). The training curves must agree to 1e-3 relative per step
 * (two fp32 runs drift apart slowly through Adam).
 *
 * Without a usable GPU (no driver, no device) the program runs part 0, prints why it skips the
 * rest and exits 77, which CTest reports as skipped. "--short" runs small sizes only and fewer
 * steps (for compute-sanitizer), still with several column-sum chunks and > 256 partials. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cuda_runtime_api.h>

#include "encoding/encoding.h"
#include "model/cuda/cuda_check.h"
#include "model/cuda/layers_cuda.h"
#include "model/layers.h"
#include "model/model.h"
#include "tests/gpu/cuda_fixtures.h"
#include "tests/test.h"

#define TOL 1e-5

static int short_run;

static double seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static float *hcopy(const float *x, size_t n)
{
    float *y = malloc(n * sizeof(float));
    memcpy(y, x, n * sizeof(float));
    return y;
}

static float *hnan(size_t n)
{
    float *x = malloc(n * sizeof(float));
    memset(x, NAN_BYTE, n * sizeof(float));
    return x;
}

static int *dup_i(const int *h, size_t n) { return dev_up(h, n * sizeof(int)); }

/* device buffers refilled with NaN; refilled from the host */
static void poison(float *d, size_t n) { CUDA_CHECK(cudaMemset(d, NAN_BYTE, n * sizeof(float))); }
static void refill(float *d, const float *h, size_t n)
{
    CUDA_CHECK(cudaMemcpy(d, h, n * sizeof(float), cudaMemcpyHostToDevice));
}

/* ---- 0. the column-sum plan, emulated on the host ---- */

/* Every row of [0, rows) is summed by exactly one (chunk, lane) of colsum_plan_cuda's plan, as
 * the kernel walks it; the grid fits its limits and the partials fit their buffer. */
static void colsum_plan_case(int rows, long cols)
{
    const colsum_plan p = colsum_plan_cuda(rows, cols);
    int ok = p.chunks >= 1 && p.chunks <= 65535 && p.rows_per_chunk >= 1 &&
             p.col_tiles * p.tile >= cols && (p.col_tiles - 1) * p.tile < cols &&
             p.col_tiles <= 2147483647L && (long)(p.chunks - 1) * p.rows_per_chunk < (rows > 0 ? rows : 1);
    /* two terms (layer norm) is the most any caller sums */
    if (p.chunks > 1) ok &= (long)p.chunks * 2 * cols <= p.partials;
    unsigned char *seen = calloc((size_t)(rows > 0 ? rows : 1), 1);
    for (int y = 0; y < p.chunks; y++) {
        const long lo = (long)y * p.rows_per_chunk;
        const long hi = lo + p.rows_per_chunk < rows ? lo + p.rows_per_chunk : rows;
        for (int l = 0; l < p.lanes; l++)
            for (long n = lo + l; n < hi; n += p.lanes) seen[n]++;
    }
    for (int n = 0; n < rows; n++) ok &= seen[n] == 1;
    free(seen);
    CHECK_MSG(ok, "column-sum plan of %d rows x %ld columns: %d chunks of %d rows, %ld tiles",
              rows, cols, p.chunks, p.rows_per_chunk, p.col_tiles);
}

static void test_colsum_plan(void)
{
    /* edges, then the real jobs: B*T rows of dims 512, 516, 1024, 2048 (FFN), the vocabularies,
     * the position embedding (B rows of T*C), a long column */
    static const struct {
        int rows;
        long cols;
    } cases[] = {{0, 5},          {1, 1},          {63, 1},        {64, 1},
                 {65, 1},         {127, 33},       {128, 32},      {129, 31},
                 {3001, 72},      {2001, 43},      {1031, 1024},   {3001, 512},
                 {76800, 512},    {76800, 516},    {76800, 2048},  {131, 2048},
                 {130, 29128},    {76800, 29128},  {67, 1314},     {64, 1202L * 512},
                 {130, 13L * 72}, {1024, 1100L * 256}, {1000003, 1}, {1048583, 3}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        colsum_plan_case(cases[i].rows, cases[i].cols);
    const colsum_plan big = colsum_plan_cuda(76800, 512), one = colsum_plan_cuda(37, 72);
    CHECK_MSG(big.chunks > 1 && one.chunks == 1, "plan: %d chunks for 76800 rows, %d for 37",
              big.chunks, one.chunks);
    printf("column-sum plan: %zu shapes covered exactly once (76800 x 512: %d chunks of %d rows)\n",
           sizeof cases / sizeof cases[0], big.chunks, big.rows_per_chunk);
}

/* ---- 1. layers ---- */

static void test_embedding(int B, int T, int C, int V)
{
    const int N = B * T;
    int *tok = malloc(sizeof(int) * N);
    for (int i = 0; i < N; i++) tok[i] = irand(V - 1); /* token V-1 unused */
    float *te = randv((size_t)V * C, 1), *pe = randv((size_t)T * C, 1);
    float *out = hnan((size_t)N * C);
    embedding_forward(out, tok, te, pe, B, T, C);
    float *d_out = dev_nan((size_t)N * C), *d_te = dup_f(te, (size_t)V * C),
          *d_pe = dup_f(pe, (size_t)T * C);
    int *d_tok = dup_i(tok, N);
    embedding_forward_cuda(d_out, d_tok, d_te, d_pe, B, T, C);
    char what[96];
    snprintf(what, sizeof what, "embedding_forward B%d T%d C%d V%d", B, T, C, V);
    check_dev(what, d_out, out, (size_t)N * C, TOL);

    /* parameter gradients accumulate: the same non-zero start on both sides */
    float *dout = randv((size_t)N * C, 1), *dte = randv((size_t)V * C, 1),
          *dpe = randv((size_t)T * C, 1);
    float *d_dout = dup_f(dout, (size_t)N * C), *d_dte = dup_f(dte, (size_t)V * C),
          *d_dpe = dup_f(dpe, (size_t)T * C);
    embedding_backward(dte, dpe, dout, tok, B, T, C);
    int *rows = malloc(sizeof(int) * N), *start = malloc(sizeof(int) * (V + 1));
    embedding_index_build(rows, start, tok, N, V);
    int *d_rows = dup_i(rows, N), *d_start = dup_i(start, V + 1);
    embedding_backward_cuda(d_dte, d_dpe, d_dout, d_rows, d_start, B, T, C, V);
    snprintf(what, sizeof what, "embedding_backward dtok (B%d T%d C%d)", B, T, C);
    check_dev(what, d_dte, dte, (size_t)V * C, TOL);
    snprintf(what, sizeof what, "embedding_backward dpos (%d x %d column sum)", B, T * C);
    check_dev(what, d_dpe, dpe, (size_t)T * C, TOL);
    cudaFree(d_out), cudaFree(d_te), cudaFree(d_pe), cudaFree(d_tok), cudaFree(d_dout);
    cudaFree(d_dte), cudaFree(d_dpe), cudaFree(d_rows), cudaFree(d_start);
    free(tok), free(te), free(pe), free(out), free(dout), free(dte), free(dpe), free(rows);
    free(start);
}

static void test_layernorm(int N, int C)
{
    float *x = randv((size_t)N * C, 1), *w = randv(C, 1), *b = randv(C, 1);
    for (size_t i = 0; i < (size_t)N * C; i++) x[i] = 3.0f * x[i] + 0.5f;
    float *out = hnan((size_t)N * C), *mean = hnan(N), *rstd = hnan(N);
    layernorm_forward(out, mean, rstd, x, w, b, N, C);
    float *d_x = dup_f(x, (size_t)N * C), *d_w = dup_f(w, C), *d_b = dup_f(b, C);
    float *d_out = dev_nan((size_t)N * C), *d_mean = dev_nan(N), *d_rstd = dev_nan(N);
    layernorm_forward_cuda(d_out, d_mean, d_rstd, d_x, d_w, d_b, N, C);
    char what[96];
    snprintf(what, sizeof what, "layernorm_forward out (N%d C%d)", N, C);
    check_dev(what, d_out, out, (size_t)N * C, TOL);
    check_dev("layernorm_forward mean", d_mean, mean, N, TOL);
    check_dev("layernorm_forward rstd", d_rstd, rstd, N, TOL);

    float *dout = randv((size_t)N * C, 1), *dw = randv(C, 1), *db = randv(C, 1);
    float *dinp = hnan((size_t)N * C);
    float *d_dout = dup_f(dout, (size_t)N * C), *d_dw = dup_f(dw, C), *d_db = dup_f(db, C);
    float *d_dinp = dev_nan((size_t)N * C);
    layernorm_backward(dinp, dw, db, dout, x, w, mean, rstd, N, C);
    layernorm_backward_cuda(d_dinp, d_dw, d_db, d_dout, d_x, d_w, d_mean, d_rstd, N, C);
    const colsum_plan p = colsum_plan_cuda(N, C);
    snprintf(what, sizeof what, "layernorm_backward dinp (N%d C%d)", N, C);
    check_dev(what, d_dinp, dinp, (size_t)N * C, TOL);
    snprintf(what, sizeof what, "layernorm_backward dweight (%d chunks)", p.chunks);
    check_dev(what, d_dw, dw, C, TOL);
    snprintf(what, sizeof what, "layernorm_backward dbias (%d chunks)", p.chunks);
    check_dev(what, d_db, db, C, TOL);
    cudaFree(d_x), cudaFree(d_w), cudaFree(d_b), cudaFree(d_out), cudaFree(d_mean);
    cudaFree(d_rstd), cudaFree(d_dout), cudaFree(d_dw), cudaFree(d_db), cudaFree(d_dinp);
    free(x), free(w), free(b), free(out), free(mean), free(rstd), free(dout), free(dw);
    free(db), free(dinp);
}

/* The three precisions of the linear layers' products, with their relative error bounds. */
#define NPREC 3
static const char *const prec_name[NPREC] = {"fp32", "tf32", "bf16"};
static const cublasComputeType_t prec_compute[NPREC] = {
    CUBLAS_COMPUTE_32F, CUBLAS_COMPUTE_32F_FAST_TF32, CUBLAS_COMPUTE_32F_FAST_16BF};
static const double prec_tol[NPREC] = {TOL, 1e-2, 1e-2};

/* check_dev with the shape and precision after what */
static void check_lin(const char *what, int N, int C, int OC, int prec, const float *d,
                      const float *ref, size_t n)
{
    char name[128];
    snprintf(name, sizeof name, "%s %dx%dx%d %s", what, N, C, OC, prec_name[prec]);
    check_dev(name, d, ref, n, prec_tol[prec]);
}

/* The CPU references once, then each precision on the GPU from the same starting buffers. */
static void test_linear(cublasHandle_t handle, int N, int C, int OC)
{
    const size_t nx = (size_t)N * C, nw = (size_t)OC * C, no = (size_t)N * OC;
    float *x = randv(nx, 1), *w = randv(nw, 1), *b = randv(OC, 1), *res = randv(no, 1);
    float *dout = randv(no, 1), *dw0 = randv(nw, 1), *db0 = randv(OC, 1), *dinp0 = randv(nx, 1);
    /* forward: bias + residual; plain; residual in place (out is the residual), bias */
    float *out_br = hnan(no), *out_plain = hnan(no), *out_inplace = hcopy(res, no);
    linear_forward(out_br, x, w, b, res, N, C, OC);
    linear_forward(out_plain, x, w, NULL, NULL, N, C, OC);
    linear_forward(out_inplace, x, w, b, out_inplace, N, C, OC);
    /* backward: dinp overwritten (poisoned), dinp accumulated, neither dinp nor dbias */
    float *dinp_set = hnan(nx), *dw_set = hcopy(dw0, nw), *db_set = hcopy(db0, OC);
    float *dinp_acc = hcopy(dinp0, nx), *dw_acc = hcopy(dw0, nw), *db_acc = hcopy(db0, OC);
    float *dw_only = hcopy(dw0, nw);
    linear_backward(dinp_set, dw_set, db_set, dout, x, w, N, C, OC, 0);
    linear_backward(dinp_acc, dw_acc, db_acc, dout, x, w, N, C, OC, 1);
    linear_backward(NULL, dw_only, NULL, dout, x, w, N, C, OC, 0);

    float *d_x = dup_f(x, nx), *d_w = dup_f(w, nw), *d_b = dup_f(b, OC), *d_res = dup_f(res, no);
    float *d_out = dev_nan(no), *d_dout = dup_f(dout, no), *d_dw = dev_nan(nw);
    float *d_db = dev_nan(OC), *d_dinp = dev_nan(nx);
    for (int prec = 0; prec < NPREC; prec++) {
        const blas_cuda blas = {.handle = handle, .compute = prec_compute[prec]};
        poison(d_out, no);
        linear_forward_cuda(&blas, d_out, d_x, d_w, d_b, d_res, N, C, OC);
        check_lin("linear_forward bias+residual", N, C, OC, prec, d_out, out_br, no);
        poison(d_out, no);
        linear_forward_cuda(&blas, d_out, d_x, d_w, NULL, NULL, N, C, OC);
        check_lin("linear_forward plain", N, C, OC, prec, d_out, out_plain, no);
        refill(d_out, res, no);
        linear_forward_cuda(&blas, d_out, d_x, d_w, d_b, d_out, N, C, OC);
        check_lin("linear_forward residual in place", N, C, OC, prec, d_out, out_inplace, no);

        poison(d_dinp, nx), refill(d_dw, dw0, nw), refill(d_db, db0, OC);
        linear_backward_cuda(&blas, d_dinp, d_dw, d_db, d_dout, d_x, d_w, N, C, OC, 0);
        check_lin("linear_backward dinp", N, C, OC, prec, d_dinp, dinp_set, nx);
        check_lin("linear_backward dweight", N, C, OC, prec, d_dw, dw_set, nw);
        check_lin("linear_backward dbias", N, C, OC, prec, d_db, db_set, OC);
        refill(d_dinp, dinp0, nx), refill(d_dw, dw0, nw), refill(d_db, db0, OC);
        linear_backward_cuda(&blas, d_dinp, d_dw, d_db, d_dout, d_x, d_w, N, C, OC, 1);
        check_lin("linear_backward dinp (accumulate)", N, C, OC, prec, d_dinp, dinp_acc, nx);
        check_lin("linear_backward dweight (accumulate)", N, C, OC, prec, d_dw, dw_acc, nw);
        check_lin("linear_backward dbias (accumulate)", N, C, OC, prec, d_db, db_acc, OC);
        refill(d_dw, dw0, nw);
        linear_backward_cuda(&blas, NULL, d_dw, NULL, d_dout, d_x, d_w, N, C, OC, 0);
        check_lin("linear_backward dweight only", N, C, OC, prec, d_dw, dw_only, nw);
    }
    cudaFree(d_x), cudaFree(d_w), cudaFree(d_b), cudaFree(d_res), cudaFree(d_out);
    cudaFree(d_dout), cudaFree(d_dw), cudaFree(d_db), cudaFree(d_dinp);
    free(x), free(w), free(b), free(res), free(dout), free(dw0), free(db0), free(dinp0);
    free(out_br), free(out_plain), free(out_inplace), free(dinp_set), free(dw_set), free(db_set);
    free(dinp_acc), free(dw_acc), free(db_acc), free(dw_only);
}

/* A 1024^3 product of N(0, 1) matrices through linear_forward_cuda in each precision, against
 * the GPU's own fp32. Rounding the inputs to tf32 (10 mantissa bits) gives a relative error
 * near 3e-4, to bf16 (7 bits) near 2e-3; fp32 itself is ~1e-6 off the CPU. A floor 5x under
 * the expected error catches a product that stayed in fp32; the ceilings catch garbage. */
static void test_gemm_precision(cublasHandle_t handle)
{
    const int n = 1024;
    const size_t nn = (size_t)n * n;
    static const double floor_[NPREC] = {0.0, 5e-5, 5e-4}, ceil_[NPREC] = {TOL, 2e-3, 1e-2};
    float *a = randv(nn, 1), *w = randv(nn, 1), *ref = hnan(nn);
    linear_forward(ref, a, w, NULL, NULL, n, n, n);
    float *d_a = dup_f(a, nn), *d_w = dup_f(w, nn), *d_out = dev_nan(nn), *f32 = NULL;
    double err[NPREC];
    for (int prec = 0; prec < NPREC; prec++) {
        const blas_cuda blas = {.handle = handle, .compute = prec_compute[prec]};
        poison(d_out, nn);
        linear_forward_cuda(&blas, d_out, d_a, d_w, NULL, NULL, n, n, n);
        float *h = down_f(d_out, nn);
        if (prec == 0) {
            err[0] = rel_err(h, ref, nn);
            f32 = h;
        } else {
            err[prec] = rel_err(h, f32, nn);
            free(h);
        }
        CHECK_MSG(err[prec] >= floor_[prec] && err[prec] <= ceil_[prec],
                  "1024^3 product in %s: relative error %.3g to %s outside [%.1g, %.1g]",
                  prec_name[prec], err[prec], prec ? "the GPU's fp32" : "the CPU",
                  floor_[prec], ceil_[prec]);
    }
    printf("  1024^3 product: fp32 vs CPU %.3g; tf32 vs fp32 %.3g (floor %.0e); bf16 vs fp32 "
           "%.3g (floor %.0e)\n",
           err[0], err[1], floor_[1], err[2], floor_[2]);
    CHECK_MSG(err[2] > err[1], "bf16 (%.3g) not coarser than tf32 (%.3g)", err[2], err[1]);
    cudaFree(d_a), cudaFree(d_w), cudaFree(d_out);
    free(a), free(w), free(ref), free(f32);
}

static void test_relu(long n)
{
    float *x = randv(n, 1), *y = hnan(n), *dy = randv(n, 1), *dx = hnan(n);
    relu_forward(y, x, n);
    relu_backward(dx, dy, y, n);
    float *d_x = dup_f(x, n), *d_y = dev_nan(n), *d_dy = dup_f(dy, n), *d_dx = dev_nan(n);
    relu_forward_cuda(d_y, d_x, n);
    relu_backward_cuda(d_dx, d_dy, d_y, n);
    char what[64];
    snprintf(what, sizeof what, "relu_forward n%ld", n);
    check_dev(what, d_y, y, n, 0.0);
    snprintf(what, sizeof what, "relu_backward n%ld", n);
    check_dev(what, d_dx, dx, n, 0.0);
    cudaFree(d_x), cudaFree(d_y), cudaFree(d_dy), cudaFree(d_dx);
    free(x), free(y), free(dy), free(dx);
}

/* Self-attention in the interleaved qkv layout (causal or padded, S == T), or cross-attention
 * with separate q (ld C) and kv (ld 2C) buffers. Padding: sequence 0 keeps every key, the others
 * fewer and fewer, the last of three or more only two. */
static void attention_case(const char *name, int cross, int causal, int padded, int B, int H,
                           int D, int T, int S)
{
    const int C = H * D, ldq = cross ? C : 3 * C, ldkv = cross ? 2 * C : 3 * C;
    int *key_len = malloc(sizeof(int) * B);
    for (int b = 0; b < B; b++)
        key_len[b] = b == 0 ? S : b == B - 1 && B > 2 ? 2 : S - (int)((long)b * (S - 2) / B) - 1;
    size_t qn = (size_t)B * T * ldq, kvn = (size_t)B * S * ldkv;
    float *qb = randv(qn, 1), *kvb = cross ? randv(kvn, 1) : qb;
    const float *q = qb, *k = cross ? kvb : qb + C, *v = cross ? kvb + C : qb + 2 * C;
    size_t on = (size_t)B * T * C, an = (size_t)B * H * T * S;
    const size_t sn = (size_t)attention_scratch_floats(T, S, D);
    float *out = hnan(on), *att = hnan(an), *scratch = hnan(sn);
    const int *kl = padded ? key_len : NULL;
    attention_forward(out, att, scratch, q, k, v, ldq, ldkv, kl, causal, B, T, S, H, D);

    float *d_qb = dup_f(qb, qn), *d_kvb = cross ? dup_f(kvb, kvn) : d_qb;
    const float *d_q = d_qb, *d_k = cross ? d_kvb : d_qb + C, *d_v = cross ? d_kvb + C : d_qb + 2 * C;
    int *d_kl = padded ? dup_i(key_len, B) : NULL;
    const size_t dsn = (size_t)attention_scratch_floats_cuda(B, H, T, S);
    float *d_out = dev_nan(on), *d_att = dev_nan(an), *d_scr = dev_nan(dsn);
    attention_forward_cuda(d_out, d_att, d_scr, d_q, d_k, d_v, ldq, ldkv, d_kl, causal, B, T, S,
                           H, D);
    char what[128];
    snprintf(what, sizeof what, "attention_forward %s B%d H%d D%d T%d S%d out", name, B, H, D, T, S);
    check_dev(what, d_out, out, on, TOL);
    snprintf(what, sizeof what, "attention_forward %s att", name);
    check_dev(what, d_att, att, an, TOL);

    /* backward: dq, dk, dv interleave like q, k, v; all overwritten */
    float *dout = randv(on, 1), *gq = hnan(qn), *gkv = cross ? hnan(kvn) : gq;
    float *dq = gq, *dk = cross ? gkv : gq + C, *dv = cross ? gkv + C : gq + 2 * C;
    memset(scratch, NAN_BYTE, sn * sizeof(float));
    attention_backward(dq, dk, dv, scratch, dout, att, q, k, v, ldq, ldkv, kl, causal, B, T, S, H,
                       D);
    float *d_dout = dup_f(dout, on), *d_gq = dev_nan(qn), *d_gkv = cross ? dev_nan(kvn) : d_gq;
    float *d_dq = d_gq, *d_dk = cross ? d_gkv : d_gq + C, *d_dv = cross ? d_gkv + C : d_gq + 2 * C;
    poison(d_scr, dsn);
    attention_backward_cuda(d_dq, d_dk, d_dv, d_scr, d_dout, d_att, d_q, d_k, d_v, ldq, ldkv, d_kl,
                            causal, B, T, S, H, D);
    snprintf(what, sizeof what, "attention_backward %s d%s", name, cross ? "q" : "qkv");
    check_dev(what, d_gq, gq, qn, TOL);
    if (cross) {
        snprintf(what, sizeof what, "attention_backward %s dkv", name);
        check_dev(what, d_gkv, gkv, kvn, TOL);
    }
    cudaFree(d_qb), cudaFree(d_out), cudaFree(d_att), cudaFree(d_scr), cudaFree(d_dout);
    cudaFree(d_gq);
    if (cross) cudaFree(d_kvb), cudaFree(d_gkv), free(kvb), free(gkv);
    if (d_kl) cudaFree(d_kl);
    free(qb), free(out), free(att), free(scratch), free(dout), free(gq), free(key_len);
}

static void test_attention(void)
{
    attention_case("self, padding mask", 0, 0, 1, 3, 4, 12, 9, 9);
    attention_case("self, causal", 0, 1, 0, 3, 4, 12, 9, 9);
    attention_case("self, causal + padding", 0, 1, 1, 3, 4, 12, 9, 9);
    attention_case("cross, padding mask", 1, 0, 1, 3, 4, 12, 9, 13);
    attention_case("cross, no mask", 1, 0, 0, 3, 4, 12, 9, 13);
    /* head dims of the real jobs: 64 (512 / 8) and 43 (516 / 12) */
    attention_case("self, padding, D64", 0, 0, 1, 3, 8, 64, 37, 37);
    attention_case("self, causal + padding, D43", 0, 1, 1, 3, 12, 43, 29, 29);
    attention_case("cross, padding, D43 keys", 1, 0, 1, 2, 12, 43, 17, 31);
    if (short_run) return;
    /* 20x20 P1000: 1202 source tokens; 256 dims, 8 heads */
    attention_case("self, causal + padding, long", 0, 1, 1, 2, 8, 32, 1030, 1030);
    attention_case("self, padding, 20x20 source", 0, 0, 1, 2, 8, 32, 1202, 1202);
    attention_case("cross, padding, long", 1, 0, 1, 2, 8, 32, 1100, 1202);
}

static void test_crossentropy(int N, int V)
{
    const size_t nv = (size_t)N * V;
    float *l = randv(nv, 1);
    for (size_t i = 0; i < nv; i++) l[i] *= 4.0f;
    int *tg = malloc(sizeof(int) * N);
    for (int n = 0; n < N; n++) tg[n] = n % 5 == 3 ? -1 : irand(V);
    /* rows of ignored targets keep their probs: the same start on both sides */
    float *p0 = randv(nv, 1), *p = hcopy(p0, nv);
    double *rl = malloc(sizeof(double) * N), *hrl = malloc(sizeof(double) * N);
    double loss = crossentropy_forward(p, rl, l, tg, N, V);
    float *d_l = dup_f(l, nv), *d_p = dup_f(p0, nv);
    int *d_tg = dup_i(tg, N);
    double *d_rl = dev_up(NULL, sizeof(double) * N);
    CUDA_CHECK(cudaMemset(d_rl, NAN_BYTE, sizeof(double) * N));
    double gl = crossentropy_forward_cuda(d_p, d_rl, d_l, d_tg, N, V, hrl);
    CHECK_MSG(fabs(gl - loss) <= TOL * fabs(loss), "crossentropy loss %.10g vs %.10g (N%d V%d)",
              gl, loss, N, V);
    char what[96];
    snprintf(what, sizeof what, "crossentropy_forward loss (N%d V%d)", N, V);
    printf("  %-52s rel err %.3g\n", what, fabs(gl - loss) / fabs(loss));
    snprintf(what, sizeof what, "crossentropy_forward probs (N%d V%d)", N, V);
    check_dev(what, d_p, p, nv, TOL);
    crossentropy_backward(p, tg, 0.37f, N, V);
    crossentropy_backward_cuda(d_p, d_tg, 0.37f, N, V);
    snprintf(what, sizeof what, "crossentropy_backward (N%d V%d)", N, V);
    check_dev(what, d_p, p, nv, TOL);
    cudaFree(d_l), cudaFree(d_p), cudaFree(d_tg), cudaFree(d_rl);
    free(l), free(tg), free(p0), free(p), free(rl), free(hrl);
}

static void test_sumsq(size_t n)
{
    float *x = randv(n, 1);
    double ref = 0.0;
    for (size_t i = 0; i < n; i++) ref += (double)x[i] * x[i];
    float *d_x = dup_f(x, n);
    const size_t np = sumsq_partials_cuda(n);
    double *d_part = dev_up(NULL, np * sizeof(double));
    CUDA_CHECK(cudaMemset(d_part, NAN_BYTE, np * sizeof(double)));
    double s = sumsq_cuda(d_x, n, d_part), s2 = sumsq_cuda(d_x, n, d_part);
    CHECK_MSG(fabs(s - ref) <= 1e-12 * ref, "sumsq of %zu: %.17g vs %.17g", n, s, ref);
    CHECK_MSG(s == s2, "sumsq not deterministic: %.17g vs %.17g", s, s2);
    printf("  %-52s rel err %.3g (%zu partials)\n", "sumsq", fabs(s - ref) / ref, np - 1);
    cudaFree(d_x), cudaFree(d_part);
    free(x);
}

/* dst[r, 0..n) = src[index[r], 0..n), the columns n..ld of dst untouched */
static void test_gather_rows(void)
{
    const int rows = 7, src_rows = 5;
    const long n = 37, ld = 53;
    float *src = randv((size_t)src_rows * ld, 1), *dst = randv((size_t)rows * ld, 1);
    int index[7];
    for (int r = 0; r < rows; r++) index[r] = (3 * r + 1) % src_rows;
    float *d_src = dup_f(src, (size_t)src_rows * ld), *d_dst = dup_f(dst, (size_t)rows * ld);
    int *d_index = dup_i(index, rows);
    for (int r = 0; r < rows; r++)
        for (long j = 0; j < n; j++) dst[r * ld + j] = src[index[r] * ld + j];
    gather_rows_cuda(d_dst, d_src, d_index, rows, n, ld);
    check_dev("gather_rows", d_dst, dst, (size_t)rows * ld, 0.0);
    cudaFree(d_src), cudaFree(d_dst), cudaFree(d_index);
    free(src), free(dst);
}

/* The loops of a universal transformer: the copy gate, ACT's halting, the weighted rows. */
static void test_copy_gate(long n)
{
    float *z = randv(n, 1), *y = randv(n, 1), *x = randv(n, 1), *dout = randv(n, 1),
          *dx0 = randv(n, 1);
    float *gate = hcopy(z, n), *out = hnan(n), *dz = hnan(n), *dy = hnan(n), *dx = hcopy(dx0, n);
    copy_gate_forward(out, gate, y, x, n);
    copy_gate_backward(dz, dy, NULL, dout, gate, y, x, n);
    copy_gate_backward(NULL, NULL, dx, dout, gate, y, x, n);
    float *d_gate = dup_f(z, n), *d_y = dup_f(y, n), *d_x = dup_f(x, n), *d_out = dev_nan(n);
    float *d_dout = dup_f(dout, n), *d_dz = dev_nan(n), *d_dy = dev_nan(n), *d_dx = dup_f(dx0, n);
    copy_gate_forward_cuda(d_out, d_gate, d_y, d_x, n);
    copy_gate_backward_cuda(d_dz, d_dy, NULL, d_dout, d_gate, d_y, d_x, n);
    copy_gate_backward_cuda(NULL, NULL, d_dx, d_dout, d_gate, d_y, d_x, n);
    char what[64];
    snprintf(what, sizeof what, "copy_gate_forward n%ld (gate)", n);
    check_dev(what, d_gate, gate, n, TOL);
    snprintf(what, sizeof what, "copy_gate_forward n%ld (out)", n);
    check_dev(what, d_out, out, n, TOL);
    snprintf(what, sizeof what, "copy_gate_backward n%ld (dz)", n);
    check_dev(what, d_dz, dz, n, TOL);
    snprintf(what, sizeof what, "copy_gate_backward n%ld (dy)", n);
    check_dev(what, d_dy, dy, n, TOL);
    snprintf(what, sizeof what, "copy_gate_backward n%ld (dx accumulated)", n);
    check_dev(what, d_dx, dx, n, TOL);
    cudaFree(d_gate), cudaFree(d_y), cudaFree(d_x), cudaFree(d_out), cudaFree(d_dout);
    cudaFree(d_dz), cudaFree(d_dy), cudaFree(d_dx);
    free(z), free(y), free(x), free(dout), free(dx0), free(gate), free(out), free(dz), free(dy);
    free(dx);
}

static void test_act_halting(int L, int N, float bias)
{
    const size_t n = (size_t)L * N;
    float *z = randv(n, 1), *dweight = randv(n, 1), *mask = malloc(N * sizeof(float));
    for (size_t i = 0; i < n; i++) z[i] += bias;
    for (int r = 0; r < N; r++) mask[r] = r % 4 != 3;
    float *halt = hcopy(z, n), *weight = hnan(n), *ponder = hnan(N), *dhalt = hnan(n);
    act_halting_forward(weight, ponder, halt, 0.99f, L, N);
    act_halting_backward(dhalt, dweight, halt, mask, 0.01f, 0.99f, L, N);
    float *d_halt = dup_f(z, n), *d_weight = dev_nan(n), *d_ponder = dev_nan(N);
    float *d_dhalt = dev_nan(n), *d_dweight = dup_f(dweight, n), *d_mask = dup_f(mask, N);
    act_halting_forward_cuda(d_weight, d_ponder, d_halt, 0.99f, L, N);
    act_halting_backward_cuda(d_dhalt, d_dweight, d_halt, d_mask, 0.01f, 0.99f, L, N);
    char what[64];
    snprintf(what, sizeof what, "act_halting_forward L%d N%d (p)", L, N);
    check_dev(what, d_halt, halt, n, TOL);
    snprintf(what, sizeof what, "act_halting_forward L%d N%d (weights)", L, N);
    check_dev(what, d_weight, weight, n, TOL);
    snprintf(what, sizeof what, "act_halting_forward L%d N%d (ponder)", L, N);
    check_dev(what, d_ponder, ponder, N, TOL);
    snprintf(what, sizeof what, "act_halting_backward L%d N%d", L, N);
    check_dev(what, d_dhalt, dhalt, n, TOL);
    cudaFree(d_halt), cudaFree(d_weight), cudaFree(d_ponder), cudaFree(d_dhalt);
    cudaFree(d_dweight), cudaFree(d_mask);
    free(z), free(dweight), free(mask), free(halt), free(weight), free(ponder), free(dhalt);
}

static void test_weighted_rows(int N, int C)
{
    const size_t n = (size_t)N * C;
    float *w = randv(N, 1), *x = randv(n, 1), *base = randv(n, 1), *dout = randv(n, 1),
          *dx0 = randv(n, 1);
    float *out = hcopy(base, n), *out0 = hnan(n), *dw = hnan(N), *dx = hcopy(dx0, n);
    weighted_rows_forward(out0, w, x, N, C, 0);
    weighted_rows_forward(out, w, x, N, C, 1);
    weighted_rows_backward(dw, dx, dout, w, x, N, C);
    float *d_w = dup_f(w, N), *d_x = dup_f(x, n), *d_out = dup_f(base, n), *d_out0 = dev_nan(n);
    float *d_dout = dup_f(dout, n), *d_dw = dev_nan(N), *d_dx = dup_f(dx0, n);
    weighted_rows_forward_cuda(d_out0, d_w, d_x, N, C, 0);
    weighted_rows_forward_cuda(d_out, d_w, d_x, N, C, 1);
    weighted_rows_backward_cuda(d_dw, d_dx, d_dout, d_w, d_x, N, C);
    char what[64];
    snprintf(what, sizeof what, "weighted_rows_forward %dx%d", N, C);
    check_dev(what, d_out0, out0, n, TOL);
    snprintf(what, sizeof what, "weighted_rows_forward %dx%d (accumulated)", N, C);
    check_dev(what, d_out, out, n, TOL);
    snprintf(what, sizeof what, "weighted_rows_backward %dx%d (dw)", N, C);
    check_dev(what, d_dw, dw, N, TOL);
    snprintf(what, sizeof what, "weighted_rows_backward %dx%d (dx accumulated)", N, C);
    check_dev(what, d_dx, dx, n, TOL);
    cudaFree(d_w), cudaFree(d_x), cudaFree(d_out), cudaFree(d_out0), cudaFree(d_dout);
    cudaFree(d_dw), cudaFree(d_dx);
    free(w), free(x), free(base), free(dout), free(dx0), free(out), free(out0), free(dw), free(dx);
}

static void test_layers(void)
{
    cublasHandle_t handle;
    CUBLAS_CHECK(cublasCreate(&handle));
    test_embedding(3, 7, 40, 11);
    test_embedding(130, 13, 72, 17); /* dpos in several chunks */
    test_layernorm(37, 72);
    test_layernorm(2001, 43); /* odd width, 32 chunks */
    test_linear(handle, 29, 48, 80);
    test_linear(handle, 131, 48, 80); /* dbias in 3 chunks */
    test_relu(5000);
    test_relu(100003);
    test_attention();
    test_crossentropy(23, 37);
    test_sumsq(40000);
    test_sumsq(257L * SUMSQ_BLOCK + 17); /* 258 partials: the final block loops */
    test_gather_rows();
    test_copy_gate(1000);
    test_act_halting(4, 300, 0.0f);
    test_act_halting(8, 300, -2.0f);
    test_weighted_rows(37, 72);
    if (!short_run) {
        test_copy_gate(3001L * 512);
        test_act_halting(8, 3001, -1.0f);
        test_weighted_rows(3001, 512);
        test_embedding(3, 1030, 512, 1314);
        test_layernorm(3001, 512);
        test_layernorm(1031, 1024);
        test_layernorm(2999, 516);
        test_linear(handle, 131, 512, 2048);  /* FFN up */
        test_linear(handle, 300, 2048, 512);  /* FFN down, dbias in 5 chunks */
        test_linear(handle, 67, 1024, 1314);  /* output projection, P1000 vocabulary */
        test_linear(handle, 130, 512, 29128); /* output projection, FP15 vocabulary */
        test_crossentropy(67, 1314);
        test_crossentropy(130, 29128);
        test_sumsq(5000011); /* 306 partials */
        test_gemm_precision(handle);
    }
    CUBLAS_CHECK(cublasDestroy(handle));
}

/* ---- 2-4. the whole model ---- */

static model_config test_config(void)
{
    const int layers = short_run ? 1 : 2;
    return transformer_config(layers, layers, 32, 48, 4, 6, 19, 23, 14);
}

/* Compares a whole buffer of the two models, and each tensor; with base (num_params floats,
 * host), what the call added to base on each side. */
static void compare_buffers(const model *gpu, const model *cpu, model_buffer which,
                            const char *name, double tol, const float *base)
{
    const model_config *c = model_get_config(cpu);
    size_t np = model_num_params(cpu);
    float *g = malloc(np * sizeof(float)), *r = malloc(np * sizeof(float));
    model_copy_out(gpu, which, g);
    model_copy_out(cpu, which, r);
    if (base)
        for (size_t i = 0; i < np; i++) g[i] -= base[i], r[i] -= base[i];
    double e = rel_err(g, r, np);
    CHECK_MSG(e <= tol, "%s: whole buffer relative error %.3g > %.1g", name, e, tol);
    int nt = model_tensors(c, NULL, 0);
    model_tensor *t = malloc(sizeof(model_tensor) * (size_t)nt);
    model_tensors(c, t, nt);
    double worst = 0.0;
    const char *wname = "";
    for (int i = 0; i < nt; i++) {
        size_t n = (size_t)t[i].shape[0] * (size_t)(t[i].ndim == 2 ? t[i].shape[1] : 1);
        double ei = rel_err(g + t[i].offset, r + t[i].offset, n);
        if (!(ei <= worst)) worst = ei, wname = t[i].name;
        CHECK_MSG(ei <= 10 * tol, "%s: tensor %s relative error %.3g", name, t[i].name, ei);
    }
    printf("  %-52s rel err %.3g (worst tensor %s: %.3g)\n", name, e, wname, worst);
    free(t), free(g), free(r);
}

/* Gradients of the batch of the last forward on both models: from zero, then accumulated onto
 * the CPU's gradients loaded into both (so a kernel that overwrites instead of adding, or skips
 * rows, fails). Returns the CPU's gradients from zero (num_params floats, caller frees). */
static float *compare_gradients(model *gpu, model *cpu, const model_batch *b, long ntok,
                                const char *name)
{
    size_t np = model_num_params(cpu);
    char what[96];
    model_zero_grad(cpu);
    model_zero_grad(gpu);
    model_backward(cpu, b, 1.0f / (float)ntok);
    model_backward(gpu, b, 1.0f / (float)ntok);
    snprintf(what, sizeof what, "%s gradients", name);
    compare_buffers(gpu, cpu, BUF_GRADS, what, TOL, NULL);
    double gnc = model_grad_norm(cpu), gng = model_grad_norm(gpu);
    CHECK_MSG(fabs(gng - gnc) <= TOL * gnc, "%s grad norm %.10g vs %.10g", name, gng, gnc);
    float *base = malloc(np * sizeof(float));
    model_copy_out(cpu, BUF_GRADS, base);
    long n = 0;
    model_forward(cpu, b, &n);
    model_forward(gpu, b, &n);
    model_copy_in(cpu, BUF_GRADS, base);
    model_copy_in(gpu, BUF_GRADS, base);
    model_backward(cpu, b, 1.0f / (float)ntok);
    model_backward(gpu, b, 1.0f / (float)ntok);
    snprintf(what, sizeof what, "%s gradients added to non-zero", name);
    compare_buffers(gpu, cpu, BUF_GRADS, what, TOL, base);
    return base;
}

/* Loss and logits of one forward on both models; returns the token count. */
static long compare_forward(model *gpu, model *cpu, const model_batch *b, const char *name)
{
    const model_config *c = model_get_config(cpu);
    long nc = 0, ng = 0;
    double lc = model_forward(cpu, b, &nc), lg = model_forward(gpu, b, &ng);
    CHECK(nc == ng);
    CHECK_MSG(fabs(lg - lc) <= TOL * fabs(lc), "%s loss %.10g (gpu) vs %.10g (cpu)", name, lg, lc);
    char what[96];
    snprintf(what, sizeof what, "%s loss (gpu, cpu)", name);
    printf("  %-52s %.10g vs %.10g\n", what, lg, lc);
    size_t nl = (size_t)b->B * (b->T - 1) * c->vocab_out;
    float *logc = malloc(nl * sizeof(float)), *logg = malloc(nl * sizeof(float));
    model_copy_logits(cpu, logc);
    model_copy_logits(gpu, logg);
    snprintf(what, sizeof what, "%s logits", name);
    double el = rel_err(logg, logc, nl);
    CHECK_MSG(el <= TOL, "%s: relative error %.3g", what, el);
    printf("  %-52s rel err %.3g\n", what, el);
    free(logc), free(logg);
    return nc;
}

/* The GPU model computes a full batch of other lengths first, so that stale activations and
 * gradients are not zero when the compared (smaller) batch runs. */
static void warm_with_full_batch(model *gpu, int max_batch, int S, int T)
{
    const model_config *c = model_get_config(gpu);
    owned_batch full = batch_make_random(max_batch, S, T, c->vocab_in, c->vocab_out);
    long n = 0;
    model_forward(gpu, &full.b, &n);
    model_zero_grad(gpu);
    model_backward(gpu, &full.b, 1.0f / (float)n);
    batch_free(&full);
}

/* TF32 and BF16 models against the CPU's fp32: loss within 1e-2, logits and gradients within
 * ceils[i]; with floors, the logits at least floors[i] away from fp32's (a model that stayed in
 * fp32 fails). */
static void compare_reduced(model *cpu, const model_batch *b, int max_batch, const double *ceils,
                            const double *floors)
{
    static const struct {
        model_precision p;
        const char *name;
    } reduced[] = {{PRECISION_TF32, "tf32"}, {PRECISION_BF16, "bf16"}};
    const model_config *c = model_get_config(cpu);
    size_t np = model_num_params(cpu), nl = (size_t)b->B * (b->T - 1) * c->vocab_out;
    float *p = malloc(np * sizeof(float)), *logc = malloc(nl * sizeof(float)),
          *logl = malloc(nl * sizeof(float));
    model_copy_out(cpu, BUF_PARAMS, p);
    for (int i = 0; i < 2; i++) {
        model_set_cuda_precision(reduced[i].p);
        model *low = model_create(c, BACKEND_CUDA, max_batch);
        model_set_cuda_precision(PRECISION_FP32);
        model_copy_in(low, BUF_PARAMS, p);
        long nc = 0, ng = 0;
        double ll = model_forward(low, b, &ng), lc = model_forward(cpu, b, &nc);
        CHECK_MSG(fabs(ll - lc) <= 1e-2 * fabs(lc), "%s loss %.10g vs cpu fp32 %.10g",
                  reduced[i].name, ll, lc);
        model_copy_logits(cpu, logc);
        model_copy_logits(low, logl);
        double el = rel_err(logl, logc, nl);
        printf("  loss %s vs cpu fp32 %.10g vs %.10g, logits rel err %.3g\n", reduced[i].name,
               ll, lc, el);
        CHECK_MSG(el <= ceils[i], "%s logits relative error %.3g > %.1g", reduced[i].name, el,
                  ceils[i]);
        if (floors)
            CHECK_MSG(el >= floors[i], "%s logits only %.3g from fp32 (floor %.1g): still fp32?",
                      reduced[i].name, el, floors[i]);
        model_zero_grad(low);
        model_zero_grad(cpu);
        model_backward(low, b, 1.0f / (float)nc);
        model_backward(cpu, b, 1.0f / (float)nc);
        char what[64];
        snprintf(what, sizeof what, "model gradients %s", reduced[i].name);
        compare_buffers(low, cpu, BUF_GRADS, what, ceils[i], NULL);
        model_free(low);
    }
    free(p), free(logc), free(logl);
}

static void test_model_step(void)
{
    model_config c = test_config();
    const int max_batch = 8, B = 6, S = 11, T = 13;
    model *cpu = model_create(&c, BACKEND_CPU, max_batch),
          *gpu = model_create(&c, BACKEND_CUDA, max_batch);
    model_init_params(cpu, 42);
    model_init_params(gpu, 42);
    compare_buffers(gpu, cpu, BUF_PARAMS, "init params", 0.0, NULL);
    warm_with_full_batch(gpu, max_batch, S, T);
    owned_batch ob = batch_make_random(B, S, T, c.vocab_in, c.vocab_out);
    long nc = compare_forward(gpu, cpu, &ob.b, "model (batch 6 of 8)");
    float *g1 = compare_gradients(gpu, cpu, &ob.b, nc, "model");

    /* determinism: the same step again gives bit-identical gradients */
    size_t np = model_num_params(gpu);
    float *ga = malloc(np * sizeof(float)), *gb = malloc(np * sizeof(float));
    long ng = 0;
    model_forward(gpu, &ob.b, &ng);
    model_zero_grad(gpu);
    model_backward(gpu, &ob.b, 1.0f / (float)nc);
    model_copy_out(gpu, BUF_GRADS, ga);
    model_forward(gpu, &ob.b, &ng);
    model_zero_grad(gpu);
    model_backward(gpu, &ob.b, 1.0f / (float)nc);
    model_copy_out(gpu, BUF_GRADS, gb);
    CHECK_MSG(memcmp(ga, gb, np * sizeof(float)) == 0, "CUDA gradients differ between reruns");

    /* Adam on identical gradients (the CPU's): some gradients are rounding noise around an
     * exact zero (the attention key biases: softmax ignores a shift of every score), and Adam
     * turns noise into steps of +-lr, so the two backends' own gradients would not do. */
    model_copy_in(cpu, BUF_GRADS, g1);
    model_copy_in(gpu, BUF_GRADS, g1);
    adam_hparams hp = {.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.98f, .eps = 1e-9f};
    for (long step = 1; step <= 2; step++) {
        model_adam_step(cpu, &hp, step, 0.5f);
        model_adam_step(gpu, &hp, step, 0.5f);
    }
    compare_buffers(gpu, cpu, BUF_ADAM_M, "adam m", TOL, NULL);
    compare_buffers(gpu, cpu, BUF_ADAM_V, "adam v", TOL, NULL);
    compare_buffers(gpu, cpu, BUF_PARAMS, "params after 2 adam steps", TOL, NULL);

    /* TF32 and BF16 against the CPU's fp32 (products this small may stay in fp32: no floor) */
    static const double ceils[2] = {1e-2, 1e-2};
    compare_reduced(cpu, &ob.b, max_batch, ceils, NULL);
    free(g1), free(ga), free(gb);
    batch_free(&ob);
    model_free(cpu);
    model_free(gpu);
}

/* One step of a model of a real job's shape: forward, gradients (from zero and accumulated),
 * gradient norm; with floors, tf32 and bf16 too (bf16's error grows with the depth of products:
 * 3e-2 for logits and gradients). */
static void model_shape_case(const char *name, const model_config *c, int max_batch, int B,
                             int S, int T, const double *floors)
{
    double t0 = seconds();
    model *cpu = model_create(c, BACKEND_CPU, max_batch),
          *gpu = model_create(c, BACKEND_CUDA, max_batch);
    model_init_params(cpu, 5);
    size_t np = model_num_params(cpu);
    float *p = malloc(np * sizeof(float));
    model_copy_out(cpu, BUF_PARAMS, p); /* faster than a second init of millions of weights */
    model_copy_in(gpu, BUF_PARAMS, p);
    free(p);
    warm_with_full_batch(gpu, max_batch, S, T);
    owned_batch ob = batch_make_random(B, S, T, c->vocab_in, c->vocab_out);
    long nc = compare_forward(gpu, cpu, &ob.b, name);
    free(compare_gradients(gpu, cpu, &ob.b, nc, name));
    static const double ceils[2] = {1e-2, 3e-2};
    if (floors) compare_reduced(cpu, &ob.b, max_batch, ceils, floors);
    printf("  %s: %zu parameters, batch %d of %d, %d x %d tokens, %.1f s\n", name,
           model_num_params(cpu), B, max_batch, S, T, seconds() - t0);
    batch_free(&ob);
    model_free(cpu);
    model_free(gpu);
}

static void test_model_shapes(void)
{
    /* bf16 logits move ~1e-3 from fp32, tf32 ~1e-4; fp32 itself ~1e-6 */
    static const double floors[2] = {1e-5, 1e-4};
    /* inversion FP15 in / P1000 out: 516 dims, 12 heads of 43 in the encoder, 512 / 8 in the
     * decoder; the FP15 vocabulary on the output side (the tied 29128 x 512 projection) */
    model_config inv = transformer_config(1, 1, 516, 512, 12, 8, 1314, 29128, 40);
    model_shape_case("model 516/512 dims, vocab 29128", &inv, 5, 4, 37, 29, floors);
    model_config wide = transformer_config(1, 1, 1024, 1024, 16, 16, 1314, 1314, 32);
    model_shape_case("model 1024 dims", &wide, 4, 3, 27, 25, floors);
    /* 20x20 transposition in P1000: 1202 tokens each side, 256 dims, 8 heads */
    model_config t20 = transformer_config(1, 1, 256, 256, 8, 8, 1314, 1314, 1202);
    model_shape_case("model 20x20 P1000 (1202 tokens)", &t20, 3, 2, 1202, 1202, NULL);
}

/* The same N(0, 0.3^2) parameters in both models, larger than the init's so that decoding does
 * not stop at once; returns them (malloc'ed). */
static float *random_params(model *cpu, model *gpu)
{
    size_t np = model_num_params(cpu);
    float *p = malloc(np * sizeof(float));
    for (size_t i = 0; i < np; i++) p[i] = 0.3f * nrand();
    model_copy_in(cpu, BUF_PARAMS, p);
    model_copy_in(gpu, BUF_PARAMS, p);
    return p;
}

/* lengths with at least one row ended by EOS before max_out and not all rows alike */
static int mixed_lengths(const int *len, int B, int max_out)
{
    int lo = len[0], hi = len[0];
    for (int b = 1; b < B; b++) lo = len[b] < lo ? len[b] : lo, hi = len[b] > hi ? len[b] : hi;
    return lo < max_out && lo < hi;
}

static void test_decoding(void)
{
    fixture_seed(0x13198a2e03707344ULL); /* the EOS search below, reproducible on its own */
    model_config c = test_config();
    const int B = 8, S = 10, max_out = c.max_len;
    model *cpu = model_create(&c, BACKEND_CPU, B), *gpu = model_create(&c, BACKEND_CUDA, B);
    float *p = random_params(cpu, gpu);
    owned_batch ob = batch_make_random(B, S, 2, c.vocab_in, c.vocab_out);
    int lg[8], lb[8];
    compare_decoding(gpu, cpu, &ob, max_out, 4, "random weights", lg, lb);

    /* Move the EOS logit (dec.out_bias, the last tensor) by bisection until the CPU's greedy
     * rows end at mixed lengths: with these weights a row either ends at its first token or
     * runs to max_out, so some rows (and their beam hypotheses) finish at once while the others
     * go on decoding beside them. */
    int nt = model_tensors(&c, NULL, 0);
    model_tensor *t = malloc(sizeof(model_tensor) * (size_t)nt);
    model_tensors(&c, t, nt);
    CHECK(!strcmp(t[nt - 1].name, "dec.out_bias"));
    const size_t eos = t[nt - 1].offset + TOK_EOS;
    const float base = p[eos];
    float lo = -20.0f, hi = 20.0f, bias = 0.0f;
    int found = 0;
    int *out = malloc(sizeof(int) * B * max_out);
    for (int it = 0; it < 40 && !found; it++) {
        bias = 0.5f * (lo + hi);
        p[eos] = base + bias;
        model_copy_in(cpu, BUF_PARAMS, p);
        model_greedy_decode(cpu, ob.src, ob.src_len, B, S, max_out, out, lg);
        found = mixed_lengths(lg, B, max_out);
        int early = 0;
        for (int b = 0; b < B; b++) early |= lg[b] < max_out;
        if (early) hi = bias;
        else lo = bias;
    }
    free(out);
    CHECK_MSG(found, "no EOS bias in [-20, 20] gives greedy rows of mixed lengths");
    model_copy_in(gpu, BUF_PARAMS, p);
    compare_decoding(gpu, cpu, &ob, max_out, 4, "EOS bias", lg, lb);
    printf("  EOS bias %.2f: greedy lengths", bias);
    for (int b = 0; b < B; b++) printf(" %d", lg[b]);
    printf("; beam lengths");
    for (int b = 0; b < B; b++) printf(" %d", lb[b]);
    printf("\n");
    CHECK_MSG(mixed_lengths(lb, B, max_out), "EOS bias %.2f: beam rows not of mixed lengths", bias);
    free(t), free(p);
    batch_free(&ob);
    model_free(cpu);
    model_free(gpu);
}

static void test_training_curves(void)
{
    model_config c = test_config();
    const int B = 8, S = 12, T = 12, nb = 4, steps = short_run ? 5 : 60;
    model *cpu = model_create(&c, BACKEND_CPU, B), *gpu = model_create(&c, BACKEND_CUDA, B);
    model_init_params(cpu, 7);
    model_init_params(gpu, 7);
    owned_batch ob[4];
    for (int i = 0; i < nb; i++) ob[i] = batch_make_random(B, S, T, c.vocab_in, c.vocab_out);
    adam_hparams hp = {.lr = 3e-3f, .beta1 = 0.9f, .beta2 = 0.98f, .eps = 1e-9f};
    double worst = 0.0, first = 0.0, last = 0.0;
    printf("  step  loss/token cpu  loss/token gpu\n");
    for (int s = 1; s <= steps; s++) {
        const model_batch *b = &ob[s % nb].b;
        long n = 0;
        double lc = model_forward(cpu, b, &n), lg = model_forward(gpu, b, &n);
        model_zero_grad(cpu);
        model_zero_grad(gpu);
        model_backward(cpu, b, 1.0f / (float)n);
        model_backward(gpu, b, 1.0f / (float)n);
        model_adam_step(cpu, &hp, s, 1.0f);
        model_adam_step(gpu, &hp, s, 1.0f);
        double e = fabs(lg - lc) / fabs(lc);
        if (!(e <= worst)) worst = e;
        if (s == 1) first = lc / n;
        last = lc / n;
        if (s == 1 || s % 10 == 0 || s == steps) printf("  %4d  %14.8f  %14.8f\n", s, lc / n, lg / n);
    }
    CHECK_MSG(worst <= 1e-3, "training loss curves differ by %.3g (relative) > 1e-3", worst);
    if (!short_run) CHECK_MSG(last < first, "training did not lower the loss (%.4f -> %.4f)", first, last);
    printf("  training curves: worst relative loss difference %.3g over %d steps\n", worst, steps);
    for (int i = 0; i < nb; i++) batch_free(&ob[i]);
    model_free(cpu);
    model_free(gpu);
}

/* Without a GPU: model_create(BACKEND_CUDA) must die naming the cause. */
static int refusal_ok(void)
{
    model_config c = test_config();
    char msg[512];
    int ok = cuda_refused(&c, msg, sizeof msg) &&
             strstr(msg, "no CUDA device: cudaGetDeviceCount: ") != NULL;
    printf("test_cuda_parity: model_create(BACKEND_CUDA) without a GPU %s: %s",
           ok ? "refuses" : "DOES NOT REFUSE CLEARLY", msg);
    return ok;
}

/* runs one part and prints its time */
/* Universal transformers (issue 17): a looped encoder and decoder in each loop mode, loss,
 * logits and gradients against the CPU, and decoding of the looped decoder. */
static void test_universal(void)
{
    for (int mode = LOOP_FIXED; mode <= LOOP_ACT; mode++) {
        model_config c = universal_config(test_config(), 3, 2, mode, 0.01);
        char name[64];
        snprintf(name, sizeof name, "universal %s", enum_name(&MODEL_LOOP_MODE_TABLE, mode));
        model_shape_case(name, &c, 5, 4, 11, 9, NULL);
        const int B = 6, S = 10, max_out = c.max_len;
        model *cpu = model_create(&c, BACKEND_CPU, B), *gpu = model_create(&c, BACKEND_CUDA, B);
        float *p = random_params(cpu, gpu);
        owned_batch ob = batch_make_random(B, S, 2, c.vocab_in, c.vocab_out);
        int lg[6], lb[6];
        compare_decoding(gpu, cpu, &ob, max_out, 4, name, lg, lb);
        batch_free(&ob);
        free(p);
        model_free(cpu);
        model_free(gpu);
    }
}

static void part(const char *name, void (*fn)(void))
{
    printf("%s:\n", name);
    double t0 = seconds();
    fn();
    printf("  (%s: %.1f s)\n", name, seconds() - t0);
}

int main(int argc, char **argv)
{
    fixture_seed(0x243f6a8885a308d3ULL);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--short")) short_run = 1;
        else if (!strcmp(argv[i], "--help")) {
            printf("usage: %s [--short]\n  the CUDA backend against the CPU reference; --short: "
                   "small sizes only (for compute-sanitizer); exits 77 without a GPU\n",
                   argv[0]);
            return 0;
        } else {
            fprintf(stderr, "usage: %s [--short]\n", argv[0]);
            return 2;
        }
    }
    test_colsum_plan();
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n == 0 || !model_cuda_available()) {
        printf("test_cuda_parity: skipped: no CUDA device (cudaGetDeviceCount: %s, %d devices)\n",
               cudaGetErrorString(e), n);
        return test_failed_count == 0 && refusal_ok() ? 77 : 1;
    }
    struct cudaDeviceProp prop;
    CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
    printf("test_cuda_parity: %s (sm_%d%d)%s\n", prop.name, prop.major, prop.minor,
           short_run ? ", short run" : "");
    const double t0 = seconds();
    part("layers", test_layers);
    part("whole model", test_model_step);
    if (!short_run) part("whole model, real jobs' shapes", test_model_shapes);
    part("decoding", test_decoding);
    part("universal transformers", test_universal);
    part("training", test_training_curves);
    printf("test_cuda_parity: %.1f s\n", seconds() - t0);
    return test_report("test_cuda_parity");
}
