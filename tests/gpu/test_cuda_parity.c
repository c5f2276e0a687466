/* test_cuda_parity.c: the CUDA backend against the CPU reference, on random inputs.
 *
 *   1. every layer pair of layers.h against its _cuda twin (layers_cuda.h): forward outputs and
 *      saved statistics, backward input and (accumulated) parameter gradients, with padding and
 *      causal masks for attention, ignored rows for cross-entropy; sum of squares;
 *   2. the whole model: loss, logits, every gradient tensor, gradient norm, Adam moments and
 *      parameters after a step; determinism of the CUDA backend (bit-identical gradients on a
 *      rerun); TF32 and BF16 precision: linear layers, loss and gradients within 1e-2;
 *   3. decoding: cached greedy == no-cache greedy on the GPU, GPU greedy and beam == CPU;
 *   4. a short training run on both backends from one initialisation, loss curves compared.
 *
 * Errors are norm-wise relative: ||gpu - cpu||_2 / ||cpu||_2 <= 1e-5 in fp32 (per layer, and
 * for the whole model's loss, logits and gradient buffer; each single gradient tensor is held
 * to 1e-4 and reported above 1e-5). The training curves must agree to 1e-3 relative per step
 * (two fp32 runs drift apart slowly through Adam).
 *
 * Without a usable GPU (no driver, no device) the program prints why and exits 77, which CTest
 * reports as skipped. "--short" runs smaller sizes and fewer steps (for compute-sanitizer). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cuda_runtime_api.h>

#include "encoding/encoding.h"
#include "model/cuda/cuda_check.h"
#include "model/cuda/layers_cuda.h"
#include "model/layers.h"
#include "model/model.h"
#include "tests/test.h"

#define TOL 1e-5

static int short_run;

static uint64_t rng_state = 0x243f6a8885a308d3ULL;
static double urand(void)
{
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(rng_state >> 11) / 9007199254740992.0;
}
static int irand(int n) { return (int)(urand() * n); }
static float nrand(void)
{
    double u1 = urand() + 1e-12, u2 = urand();
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

static float *hrand(size_t n)
{
    float *x = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = nrand();
    return x;
}

static float *hcopy(const float *x, size_t n)
{
    float *y = malloc(n * sizeof(float));
    memcpy(y, x, n * sizeof(float));
    return y;
}

static void *dev_up(const void *h, size_t bytes)
{
    void *d = NULL;
    CUDA_CHECK(cudaMalloc(&d, bytes ? bytes : 4));
    if (h && bytes) CUDA_CHECK(cudaMemcpy(d, h, bytes, cudaMemcpyHostToDevice));
    return d;
}
static float *dup_f(const float *h, size_t n) { return dev_up(h, n * sizeof(float)); }
static int *dup_i(const int *h, size_t n) { return dev_up(h, n * sizeof(int)); }

static float *down_f(const float *d, size_t n)
{
    float *h = malloc(n * sizeof(float));
    CUDA_CHECK(cudaMemcpy(h, d, n * sizeof(float), cudaMemcpyDeviceToHost));
    return h;
}

/* ||a - b|| / ||b||  (||a|| when b is zero) */
static double rel_err(const float *a, const float *b, size_t n)
{
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - (double)b[i];
        num += d * d;
        den += (double)b[i] * (double)b[i];
    }
    return den > 0.0 ? sqrt(num / den) : sqrt(num);
}

/* compares the device buffer d (n floats) with the host reference ref and frees d's copy */
static double check_dev(const char *what, const float *d, const float *ref, size_t n, double tol)
{
    float *h = down_f(d, n);
    double e = rel_err(h, ref, n);
    CHECK_MSG(e <= tol, "%s: relative error %.3g > %.1g", what, e, tol);
    printf("  %-40s rel err %.3g\n", what, e);
    free(h);
    return e;
}

/* ---- 1. layers ---- */

static void test_embedding(void)
{
    const int B = 3, T = 7, C = 40, V = 11, N = B * T;
    int *tok = malloc(sizeof(int) * N);
    for (int i = 0; i < N; i++) tok[i] = irand(V - 1); /* token V-1 unused */
    float *te = hrand((size_t)V * C), *pe = hrand((size_t)T * C);
    float *out = malloc(sizeof(float) * N * C);
    embedding_forward(out, tok, te, pe, B, T, C);
    float *d_out = dup_f(NULL, (size_t)N * C), *d_te = dup_f(te, (size_t)V * C),
          *d_pe = dup_f(pe, (size_t)T * C);
    int *d_tok = dup_i(tok, N);
    embedding_forward_cuda(d_out, d_tok, d_te, d_pe, B, T, C);
    check_dev("embedding_forward", d_out, out, (size_t)N * C, TOL);

    float *dout = hrand((size_t)N * C), *dte = hrand((size_t)V * C), *dpe = hrand((size_t)T * C);
    float *d_dout = dup_f(dout, (size_t)N * C), *d_dte = dup_f(dte, (size_t)V * C),
          *d_dpe = dup_f(dpe, (size_t)T * C);
    embedding_backward(dte, dpe, dout, tok, B, T, C);
    int *rows = malloc(sizeof(int) * N), *start = malloc(sizeof(int) * (V + 1));
    embedding_index_build(rows, start, tok, N, V);
    int *d_rows = dup_i(rows, N), *d_start = dup_i(start, V + 1);
    embedding_backward_cuda(d_dte, d_dpe, d_dout, d_rows, d_start, B, T, C, V);
    check_dev("embedding_backward dtok", d_dte, dte, (size_t)V * C, TOL);
    check_dev("embedding_backward dpos", d_dpe, dpe, (size_t)T * C, TOL);
    cudaFree(d_out), cudaFree(d_te), cudaFree(d_pe), cudaFree(d_tok), cudaFree(d_dout);
    cudaFree(d_dte), cudaFree(d_dpe), cudaFree(d_rows), cudaFree(d_start);
    free(tok), free(te), free(pe), free(out), free(dout), free(dte), free(dpe), free(rows);
    free(start);
}

static void test_layernorm(void)
{
    const int N = 37, C = 72;
    float *x = hrand((size_t)N * C), *w = hrand(C), *b = hrand(C);
    for (int i = 0; i < N * C; i++) x[i] = 3.0f * x[i] + 0.5f;
    float *out = malloc(sizeof(float) * N * C), *mean = malloc(sizeof(float) * N),
          *rstd = malloc(sizeof(float) * N);
    layernorm_forward(out, mean, rstd, x, w, b, N, C);
    float *d_x = dup_f(x, (size_t)N * C), *d_w = dup_f(w, C), *d_b = dup_f(b, C);
    float *d_out = dup_f(NULL, (size_t)N * C), *d_mean = dup_f(NULL, N), *d_rstd = dup_f(NULL, N);
    layernorm_forward_cuda(d_out, d_mean, d_rstd, d_x, d_w, d_b, N, C);
    check_dev("layernorm_forward out", d_out, out, (size_t)N * C, TOL);
    check_dev("layernorm_forward mean", d_mean, mean, N, TOL);
    check_dev("layernorm_forward rstd", d_rstd, rstd, N, TOL);

    float *dout = hrand((size_t)N * C), *dw = hrand(C), *db = hrand(C);
    float *dinp = malloc(sizeof(float) * N * C);
    float *d_dout = dup_f(dout, (size_t)N * C), *d_dw = dup_f(dw, C), *d_db = dup_f(db, C);
    float *d_dinp = dup_f(NULL, (size_t)N * C);
    layernorm_backward(dinp, dw, db, dout, x, w, mean, rstd, N, C);
    layernorm_backward_cuda(d_dinp, d_dw, d_db, d_dout, d_x, d_w, d_mean, d_rstd, N, C);
    check_dev("layernorm_backward dinp", d_dinp, dinp, (size_t)N * C, TOL);
    check_dev("layernorm_backward dweight", d_dw, dw, C, TOL);
    check_dev("layernorm_backward dbias", d_db, db, C, TOL);
    cudaFree(d_x), cudaFree(d_w), cudaFree(d_b), cudaFree(d_out), cudaFree(d_mean);
    cudaFree(d_rstd), cudaFree(d_dout), cudaFree(d_dw), cudaFree(d_db), cudaFree(d_dinp);
    free(x), free(w), free(b), free(out), free(mean), free(rstd), free(dout), free(dw);
    free(db), free(dinp);
}

/* check_dev with the precision's name after what */
static void check_prec(const char *what, const char *prec, const float *d, const float *ref,
                       size_t n, double tol)
{
    char name[96];
    snprintf(name, sizeof name, "%s %s", what, prec);
    check_dev(name, d, ref, n, tol);
}

/* prec names the precision of blas in the report; tol is its relative error bound */
static void test_linear(const blas_cuda *blas, const char *prec, double tol)
{
    const int N = 29, C = 48, OC = 80;
    float *x = hrand((size_t)N * C), *w = hrand((size_t)OC * C), *b = hrand(OC);
    float *res = hrand((size_t)N * OC);
    float *d_x = dup_f(x, (size_t)N * C), *d_w = dup_f(w, (size_t)OC * C), *d_b = dup_f(b, OC);
    float *d_res = dup_f(res, (size_t)N * OC), *d_out = dup_f(NULL, (size_t)N * OC);
    float *out = malloc(sizeof(float) * N * OC);
    /* bias + residual */
    linear_forward(out, x, w, b, res, N, C, OC);
    linear_forward_cuda(blas, d_out, d_x, d_w, d_b, d_res, N, C, OC);
    check_prec("linear_forward bias+residual", prec, d_out, out, (size_t)N * OC, tol);
    /* no bias, no residual */
    linear_forward(out, x, w, NULL, NULL, N, C, OC);
    linear_forward_cuda(blas, d_out, d_x, d_w, NULL, NULL, N, C, OC);
    check_prec("linear_forward plain", prec, d_out, out, (size_t)N * OC, tol);
    /* residual in place (out is the residual), bias */
    float *acc = hcopy(res, (size_t)N * OC);
    linear_forward(acc, x, w, b, acc, N, C, OC);
    linear_forward_cuda(blas, d_res, d_x, d_w, d_b, d_res, N, C, OC);
    check_prec("linear_forward residual in place", prec, d_res, acc, (size_t)N * OC, tol);

    float *dout = hrand((size_t)N * OC), *dw = hrand((size_t)OC * C), *db = hrand(OC);
    float *dinp = hrand((size_t)N * C);
    float *d_dout = dup_f(dout, (size_t)N * OC), *d_dw = dup_f(dw, (size_t)OC * C);
    float *d_db = dup_f(db, OC), *d_dinp = dup_f(dinp, (size_t)N * C);
    for (int accumulate = 0; accumulate <= 1; accumulate++) {
        linear_backward(dinp, dw, db, dout, x, w, N, C, OC, accumulate);
        linear_backward_cuda(blas, d_dinp, d_dw, d_db, d_dout, d_x, d_w, N, C, OC, accumulate);
        check_prec(accumulate ? "linear_backward dinp (accumulate)" : "linear_backward dinp", prec,
                   d_dinp, dinp, (size_t)N * C, tol);
        check_prec("linear_backward dweight", prec, d_dw, dw, (size_t)OC * C, tol);
        check_prec("linear_backward dbias", prec, d_db, db, OC, tol);
    }
    linear_backward(NULL, dw, NULL, dout, x, w, N, C, OC, 0);
    linear_backward_cuda(blas, NULL, d_dw, NULL, d_dout, d_x, d_w, N, C, OC, 0);
    check_prec("linear_backward no dinp, no dbias", prec, d_dw, dw, (size_t)OC * C, tol);
    cudaFree(d_x), cudaFree(d_w), cudaFree(d_b), cudaFree(d_res), cudaFree(d_out);
    cudaFree(d_dout), cudaFree(d_dw), cudaFree(d_db), cudaFree(d_dinp);
    free(x), free(w), free(b), free(res), free(out), free(acc), free(dout), free(dw), free(db);
    free(dinp);
}

static void test_relu(void)
{
    const long n = 5000;
    float *x = hrand(n), *y = malloc(sizeof(float) * n), *dy = hrand(n),
          *dx = malloc(sizeof(float) * n);
    relu_forward(y, x, n);
    relu_backward(dx, dy, y, n);
    float *d_x = dup_f(x, n), *d_y = dup_f(NULL, n), *d_dy = dup_f(dy, n), *d_dx = dup_f(NULL, n);
    relu_forward_cuda(d_y, d_x, n);
    relu_backward_cuda(d_dx, d_dy, d_y, n);
    check_dev("relu_forward", d_y, y, n, 0.0);
    check_dev("relu_backward", d_dx, dx, n, 0.0);
    cudaFree(d_x), cudaFree(d_y), cudaFree(d_dy), cudaFree(d_dx);
    free(x), free(y), free(dy), free(dx);
}

/* Self-attention in the interleaved qkv layout (causal or padded), or cross-attention with
 * separate q (ld C) and kv (ld 2C) buffers and S != T. */
static void attention_case(const char *name, int cross, int causal, int padded)
{
    const int B = 3, H = 4, D = 12, C = H * D, T = 9, S = cross ? 13 : T;
    const int ldq = cross ? C : 3 * C, ldkv = cross ? 2 * C : 3 * C;
    int key_len[3] = {S, S - 4, 2};
    size_t qn = (size_t)B * T * ldq, kvn = (size_t)B * S * ldkv;
    float *qb = hrand(qn), *kvb = cross ? hrand(kvn) : qb;
    const float *q = qb, *k = cross ? kvb : qb + C, *v = cross ? kvb + C : qb + 2 * C;
    size_t on = (size_t)B * T * C, an = (size_t)B * H * T * S;
    float *out = malloc(sizeof(float) * on), *att = malloc(sizeof(float) * an);
    float *scratch = malloc(sizeof(float) * (size_t)attention_scratch_floats(T, S, D));
    const int *kl = padded ? key_len : NULL;
    attention_forward(out, att, scratch, q, k, v, ldq, ldkv, kl, causal, B, T, S, H, D);

    float *d_qb = dup_f(qb, qn), *d_kvb = cross ? dup_f(kvb, kvn) : d_qb;
    const float *d_q = d_qb, *d_k = cross ? d_kvb : d_qb + C, *d_v = cross ? d_kvb + C : d_qb + 2 * C;
    int *d_kl = padded ? dup_i(key_len, B) : NULL;
    float *d_out = dup_f(NULL, on), *d_att = dup_f(NULL, an);
    float *d_scr = dup_f(NULL, (size_t)attention_scratch_floats_cuda(B, H, T, S));
    attention_forward_cuda(d_out, d_att, d_scr, d_q, d_k, d_v, ldq, ldkv, d_kl, causal, B, T, S,
                           H, D);
    char what[96];
    snprintf(what, sizeof what, "attention_forward %s out", name);
    check_dev(what, d_out, out, on, TOL);
    snprintf(what, sizeof what, "attention_forward %s att", name);
    check_dev(what, d_att, att, an, TOL);

    /* backward: dq, dk, dv interleave like q, k, v (poisoned first: all must be written) */
    float *dout = hrand(on), *gq = malloc(sizeof(float) * qn), *gkv = cross ? malloc(sizeof(float) * kvn) : gq;
    for (size_t i = 0; i < qn; i++) gq[i] = 1e30f;
    if (cross)
        for (size_t i = 0; i < kvn; i++) gkv[i] = 1e30f;
    float *dq = gq, *dk = cross ? gkv : gq + C, *dv = cross ? gkv + C : gq + 2 * C;
    attention_backward(dq, dk, dv, scratch, dout, att, q, k, v, ldq, ldkv, kl, causal, B, T, S, H,
                       D);
    float *d_dout = dup_f(dout, on), *d_gq = dup_f(NULL, qn), *d_gkv = cross ? dup_f(NULL, kvn) : d_gq;
    CUDA_CHECK(cudaMemset(d_gq, 0x7f, qn * sizeof(float))); /* ~3.4e38: poison */
    if (cross) CUDA_CHECK(cudaMemset(d_gkv, 0x7f, kvn * sizeof(float)));
    float *d_dq = d_gq, *d_dk = cross ? d_gkv : d_gq + C, *d_dv = cross ? d_gkv + C : d_gq + 2 * C;
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
    free(qb), free(out), free(att), free(scratch), free(dout), free(gq);
}

static void test_attention(void)
{
    attention_case("self, padding mask", 0, 0, 1);
    attention_case("self, causal", 0, 1, 0);
    attention_case("self, causal + padding", 0, 1, 1);
    attention_case("cross, padding mask", 1, 0, 1);
    attention_case("cross, no mask", 1, 0, 0);
}

static void test_crossentropy(void)
{
    const int N = 23, V = 37;
    float *l = hrand((size_t)N * V);
    for (int i = 0; i < N * V; i++) l[i] *= 4.0f;
    int *tg = malloc(sizeof(int) * N);
    for (int n = 0; n < N; n++) tg[n] = n % 5 == 3 ? -1 : irand(V);
    float *p = calloc((size_t)N * V, sizeof(float));
    double *rl = malloc(sizeof(double) * N), *hrl = malloc(sizeof(double) * N);
    double loss = crossentropy_forward(p, rl, l, tg, N, V);
    float *d_l = dup_f(l, (size_t)N * V), *d_p = dup_f(NULL, (size_t)N * V);
    CUDA_CHECK(cudaMemset(d_p, 0, sizeof(float) * N * V));
    int *d_tg = dup_i(tg, N);
    double *d_rl = dev_up(NULL, sizeof(double) * N);
    double gl = crossentropy_forward_cuda(d_p, d_rl, d_l, d_tg, N, V, hrl);
    CHECK_MSG(fabs(gl - loss) <= TOL * fabs(loss), "crossentropy loss %.10g vs %.10g", gl, loss);
    printf("  %-40s rel err %.3g\n", "crossentropy_forward loss", fabs(gl - loss) / fabs(loss));
    check_dev("crossentropy_forward probs", d_p, p, (size_t)N * V, TOL);
    crossentropy_backward(p, tg, 0.37f, N, V);
    crossentropy_backward_cuda(d_p, d_tg, 0.37f, N, V);
    check_dev("crossentropy_backward", d_p, p, (size_t)N * V, TOL);
    cudaFree(d_l), cudaFree(d_p), cudaFree(d_tg), cudaFree(d_rl);
    free(l), free(tg), free(p), free(rl), free(hrl);
}

static void test_sumsq(void)
{
    const size_t n = short_run ? 40000 : 1000003;
    float *x = hrand(n);
    double ref = 0.0;
    for (size_t i = 0; i < n; i++) ref += (double)x[i] * x[i];
    float *d_x = dup_f(x, n);
    double *d_part = dev_up(NULL, sumsq_partials_cuda(n) * sizeof(double));
    double s = sumsq_cuda(d_x, n, d_part), s2 = sumsq_cuda(d_x, n, d_part);
    CHECK_MSG(fabs(s - ref) <= 1e-12 * ref, "sumsq %.17g vs %.17g", s, ref);
    CHECK_MSG(s == s2, "sumsq not deterministic: %.17g vs %.17g", s, s2);
    cudaFree(d_x), cudaFree(d_part);
    free(x);
}

/* ---- 2-4. the whole model ---- */

typedef struct {
    model_batch b;
    int *src, *src_len, *tgt, *tgt_len;
} owned_batch;

static owned_batch batch_make(int B, int S, int T, int vocab_in, int vocab_out)
{
    owned_batch o;
    o.src = calloc((size_t)B * S, sizeof(int));
    o.tgt = calloc((size_t)B * T, sizeof(int));
    o.src_len = malloc(sizeof(int) * B);
    o.tgt_len = malloc(sizeof(int) * B);
    for (int b = 0; b < B; b++) {
        o.src_len[b] = b == 0 ? S : 2 + irand(S - 1);
        o.tgt_len[b] = b == 1 ? T : 2 + irand(T - 1);
        for (int s = 0; s < S; s++) {
            int v = TOK_PAD;
            if (s == 0 || s == o.src_len[b] - 1) v = TOK_EOS;
            else if (s < o.src_len[b]) v = 2 + irand(vocab_in - 2);
            o.src[b * S + s] = v;
        }
        for (int t = 0; t < T; t++) {
            int v = TOK_PAD;
            if (t == 0 || t == o.tgt_len[b] - 1) v = TOK_EOS;
            else if (t < o.tgt_len[b]) v = 2 + irand(vocab_out - 2);
            o.tgt[b * T + t] = v;
        }
    }
    o.b = (model_batch){B, S, T, o.src, o.src_len, o.tgt, o.tgt_len};
    return o;
}

static void batch_free(owned_batch *o)
{
    free(o->src), free(o->tgt), free(o->src_len), free(o->tgt_len);
}

static model_config test_config(void)
{
    model_config c = {.enc_layers = 2, .dec_layers = 2, .enc_dim = 32, .dec_dim = 48,
                      .enc_heads = 4, .dec_heads = 6, .vocab_in = 19, .vocab_out = 23,
                      .max_len = 14};
    if (short_run) c.enc_layers = c.dec_layers = 1;
    return c;
}

static void compare_buffers(const model *gpu, const model *cpu, model_buffer which,
                            const char *name, double tol)
{
    const model_config *c = model_get_config(cpu);
    size_t np = model_num_params(cpu);
    float *g = malloc(np * sizeof(float)), *r = malloc(np * sizeof(float));
    model_copy_out(gpu, which, g);
    model_copy_out(cpu, which, r);
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
        if (ei > worst) worst = ei, wname = t[i].name;
        CHECK_MSG(ei <= 10 * tol, "%s: tensor %s relative error %.3g", name, t[i].name, ei);
    }
    printf("  %-40s rel err %.3g (worst tensor %s: %.3g)\n", name, e, wname, worst);
    free(t), free(g), free(r);
}

static void test_model_step(void)
{
    model_config c = test_config();
    const int B = 6, S = 11, T = 13;
    model *cpu = model_create(&c, BACKEND_CPU, B), *gpu = model_create(&c, BACKEND_CUDA, B);
    model_init_params(cpu, 42);
    model_init_params(gpu, 42);
    compare_buffers(gpu, cpu, BUF_PARAMS, "init params", 0.0);
    owned_batch ob = batch_make(B, S, T, c.vocab_in, c.vocab_out);
    long nc = 0, ng = 0;
    double lc = model_forward(cpu, &ob.b, &nc), lg = model_forward(gpu, &ob.b, &ng);
    CHECK(nc == ng);
    CHECK_MSG(fabs(lg - lc) <= TOL * fabs(lc), "loss %.10g (gpu) vs %.10g (cpu)", lg, lc);
    printf("  %-40s %.10g vs %.10g\n", "model loss (gpu, cpu)", lg, lc);
    size_t nl = (size_t)B * (T - 1) * c.vocab_out;
    float *logc = malloc(nl * sizeof(float)), *logg = malloc(nl * sizeof(float));
    model_copy_logits(cpu, logc);
    model_copy_logits(gpu, logg);
    double el = rel_err(logg, logc, nl);
    CHECK_MSG(el <= TOL, "logits relative error %.3g", el);
    printf("  %-40s rel err %.3g\n", "model logits", el);

    model_zero_grad(cpu);
    model_zero_grad(gpu);
    model_backward(cpu, &ob.b, 1.0f / (float)nc);
    model_backward(gpu, &ob.b, 1.0f / (float)nc);
    compare_buffers(gpu, cpu, BUF_GRADS, "model gradients", TOL);
    double gnc = model_grad_norm(cpu), gng = model_grad_norm(gpu);
    CHECK_MSG(fabs(gng - gnc) <= TOL * gnc, "grad norm %.10g vs %.10g", gng, gnc);

    /* determinism: the same step again gives bit-identical gradients */
    size_t np = model_num_params(gpu);
    float *g1 = malloc(np * sizeof(float)), *g2 = malloc(np * sizeof(float));
    model_copy_out(gpu, BUF_GRADS, g1);
    model_forward(gpu, &ob.b, &ng);
    model_zero_grad(gpu);
    model_backward(gpu, &ob.b, 1.0f / (float)nc);
    model_copy_out(gpu, BUF_GRADS, g2);
    CHECK_MSG(memcmp(g1, g2, np * sizeof(float)) == 0, "CUDA gradients differ between reruns");

    /* Adam on identical gradients (the CPU's): some gradients are rounding noise around an
     * exact zero (the attention key biases: softmax ignores a shift of every score), and Adam
     * turns noise into steps of +-lr, so the two backends' own gradients would not do. */
    model_copy_out(cpu, BUF_GRADS, g1);
    model_copy_in(gpu, BUF_GRADS, g1);
    adam_hparams hp = {.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.98f, .eps = 1e-9f};
    for (long step = 1; step <= 2; step++) {
        model_adam_step(cpu, &hp, step, 0.5f);
        model_adam_step(gpu, &hp, step, 0.5f);
    }
    compare_buffers(gpu, cpu, BUF_ADAM_M, "adam m", TOL);
    compare_buffers(gpu, cpu, BUF_ADAM_V, "adam v", TOL);
    compare_buffers(gpu, cpu, BUF_PARAMS, "params after 2 adam steps", TOL);

    /* TF32 and BF16 against the CPU's fp32: loss and gradients within 1e-2 */
    float *p = malloc(np * sizeof(float));
    model_copy_out(cpu, BUF_PARAMS, p);
    static const struct {
        model_precision p;
        const char *name;
    } reduced[] = {{PRECISION_TF32, "tf32"}, {PRECISION_BF16, "bf16"}};
    for (int i = 0; i < 2; i++) {
        model_set_cuda_precision(reduced[i].p);
        model *low = model_create(&c, BACKEND_CUDA, B);
        model_set_cuda_precision(PRECISION_FP32);
        model_copy_in(low, BUF_PARAMS, p);
        double ll = model_forward(low, &ob.b, &ng);
        lc = model_forward(cpu, &ob.b, &nc);
        CHECK_MSG(fabs(ll - lc) <= 1e-2 * fabs(lc), "%s loss %.10g vs cpu fp32 %.10g",
                  reduced[i].name, ll, lc);
        printf("  loss %s vs cpu fp32                   %.10g vs %.10g\n", reduced[i].name, ll, lc);
        model_zero_grad(low);
        model_zero_grad(cpu);
        model_backward(low, &ob.b, 1.0f / (float)nc);
        model_backward(cpu, &ob.b, 1.0f / (float)nc);
        char what[64];
        snprintf(what, sizeof what, "model gradients %s", reduced[i].name);
        compare_buffers(low, cpu, BUF_GRADS, what, 1e-2);
        model_free(low);
    }
    free(p), free(g1), free(g2), free(logc), free(logg);
    batch_free(&ob);
    model_free(cpu);
    model_free(gpu);
}

static void test_decoding(void)
{
    model_config c = test_config();
    const int B = 5, S = 10, max_out = c.max_len;
    model *cpu = model_create(&c, BACKEND_CPU, B), *gpu = model_create(&c, BACKEND_CUDA, B);
    /* larger weights than the init so that decoding does not stop at once */
    size_t np = model_num_params(cpu);
    float *p = malloc(np * sizeof(float));
    for (size_t i = 0; i < np; i++) p[i] = 0.3f * nrand();
    model_copy_in(cpu, BUF_PARAMS, p);
    model_copy_in(gpu, BUF_PARAMS, p);
    owned_batch ob = batch_make(B, S, 2, c.vocab_in, c.vocab_out);
    int *oc = malloc(sizeof(int) * B * max_out), *og = malloc(sizeof(int) * B * max_out),
        *on = malloc(sizeof(int) * B * max_out);
    int lc[8], lg[8], ln[8];
    model_greedy_decode(cpu, ob.src, ob.src_len, B, S, max_out, oc, lc);
    model_greedy_decode(gpu, ob.src, ob.src_len, B, S, max_out, og, lg);
    model_greedy_decode_nocache(gpu, ob.src, ob.src_len, B, S, max_out, on, ln);
    int same_cpu = 1, same_nc = 1, total = 0;
    for (int b = 0; b < B; b++) {
        total += lg[b];
        same_cpu &= lc[b] == lg[b] && !memcmp(oc + b * max_out, og + b * max_out, sizeof(int) * lg[b]);
        same_nc &= ln[b] == lg[b] && !memcmp(on + b * max_out, og + b * max_out, sizeof(int) * lg[b]);
    }
    CHECK_MSG(same_cpu, "greedy decoding: GPU differs from CPU");
    CHECK_MSG(same_nc, "greedy decoding: GPU KV cache differs from GPU no-cache");
    printf("  greedy decoding: %d tokens, GPU == CPU %d, cache == no-cache %d\n", total, same_cpu,
           same_nc);
    model_beam_decode(cpu, ob.src, ob.src_len, B, S, 4, max_out, oc, lc);
    model_beam_decode(gpu, ob.src, ob.src_len, B, S, 4, max_out, og, lg);
    int same_beam = 1;
    for (int b = 0; b < B; b++)
        same_beam &= lc[b] == lg[b] && !memcmp(oc + b * max_out, og + b * max_out, sizeof(int) * lg[b]);
    CHECK_MSG(same_beam, "beam decoding (width 4): GPU differs from CPU");
    model_beam_decode(gpu, ob.src, ob.src_len, B, S, 1, max_out, on, ln);
    model_greedy_decode(gpu, ob.src, ob.src_len, B, S, max_out, og, lg);
    int beam1 = 1;
    for (int b = 0; b < B; b++)
        beam1 &= ln[b] == lg[b] && !memcmp(on + b * max_out, og + b * max_out, sizeof(int) * lg[b]);
    CHECK_MSG(beam1, "beam width 1 differs from greedy on the GPU");
    free(p), free(oc), free(og), free(on);
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
    for (int i = 0; i < nb; i++) ob[i] = batch_make(B, S, T, c.vocab_in, c.vocab_out);
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
        if (e > worst) worst = e;
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
    int fds[2];
    if (pipe(fds)) return 0;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 2);
        close(fds[0]);
        model_config c = test_config();
        model_create(&c, BACKEND_CUDA, 1);
        _exit(0); /* not reached when it refuses */
    }
    close(fds[1]);
    char msg[512] = "";
    ssize_t got, total = 0;
    while ((got = read(fds[0], msg + total, sizeof msg - 1 - (size_t)total)) > 0) total += got;
    msg[total] = '\0';
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    int ok = WIFEXITED(status) && WEXITSTATUS(status) != 0 &&
             strstr(msg, "no CUDA device: cudaGetDeviceCount: ") != NULL;
    printf("test_cuda_parity: model_create(BACKEND_CUDA) without a GPU %s: %s",
           ok ? "refuses" : "DOES NOT REFUSE CLEARLY", msg);
    return ok;
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--short")) short_run = 1;
        else {
            fprintf(stderr, "usage: %s [--short]\n", argv[0]);
            return 2;
        }
    }
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n == 0 || !model_cuda_available()) {
        printf("test_cuda_parity: skipped: no CUDA device (cudaGetDeviceCount: %s, %d devices)\n",
               cudaGetErrorString(e), n);
        return refusal_ok() ? 77 : 1;
    }
    struct cudaDeviceProp prop;
    CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
    printf("test_cuda_parity: %s (sm_%d%d)%s\n", prop.name, prop.major, prop.minor,
           short_run ? ", short run" : "");
    blas_cuda blas = {.compute = CUBLAS_COMPUTE_32F};
    CUBLAS_CHECK(cublasCreate(&blas.handle));
    printf("layers:\n");
    test_embedding();
    test_layernorm();
    test_linear(&blas, "fp32", TOL);
    blas.compute = CUBLAS_COMPUTE_32F_FAST_TF32;
    test_linear(&blas, "tf32", 1e-2);
    blas.compute = CUBLAS_COMPUTE_32F_FAST_16BF;
    test_linear(&blas, "bf16", 1e-2);
    test_relu();
    test_attention();
    test_crossentropy();
    test_sumsq();
    CUBLAS_CHECK(cublasDestroy(blas.handle));
    printf("whole model:\n");
    test_model_step();
    printf("decoding:\n");
    test_decoding();
    printf("training:\n");
    test_training_curves();
    return test_report("test_cuda_parity");
}
