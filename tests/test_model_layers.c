/* test_model_layers.c: every layer's backward against central finite differences.
 *
 * For a layer y = f(x, params) we draw a random upstream gradient w of y's shape, take the
 * scalar loss l = sum(y * w) (accumulated in double) and compare the backward's gradient of l
 * with (l(x + e) - l(x - e)) / 2e for every input element, in float arithmetic. The comparison
 * is normwise per tensor: |g_fd - g|_2 <= tol * |g|_2, and every element within
 * atol + tol * max|g|, with tolerances far above float rounding but far below the effect of any
 * real mistake (a missing term, a wrong mask, a transposed index). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/fastmath.h"
#include "model/kernels.h"
#include "model/layers.h"
#include "model/model.h"
#include "model/parallel.h"
#include "tests/model_fixtures.h"
#include "tests/test.h"

static float *zeros(long n) { return calloc((size_t)n, sizeof(float)); }

/* ---- linear ---- */
typedef struct {
    int N, C, OC;
    float *x, *w, *b, *res, *out, *up;
} lin_ctx;
static double lin_loss(void *p)
{
    lin_ctx *c = p;
    linear_forward(c->out, c->x, c->w, c->b, c->res, c->N, c->C, c->OC);
    return dot_d(c->out, c->up, (long)c->N * c->OC);
}
static void test_linear(int N, int C, int OC)
{
    lin_ctx c = {.N = N, .C = C, .OC = OC};
    char name[80];
    snprintf(name, sizeof name, "linear %dx%d->%d", N, C, OC);
    printf("  %s\n", name);
    c.x = randv(c.N * c.C, 1);
    c.w = randv(c.OC * c.C, 0.5f);
    c.b = randv(c.OC, 0.5f);
    c.res = randv(c.N * c.OC, 1);
    c.out = zeros(c.N * c.OC);
    c.up = randv(c.N * c.OC, 1);
    float *dx = zeros(c.N * c.C), *dw = zeros(c.OC * c.C), *db = zeros(c.OC);
    lin_loss(&c);
    /* out = res + x W^T + b: check one value by hand */
    double v = c.res[1 * c.OC + 2] + c.b[2];
    for (int k = 0; k < c.C; k++) v += (double)c.x[1 * c.C + k] * c.w[2 * c.C + k];
    CHECK_CLOSE(c.out[1 * c.OC + 2], v, 1e-5);
    linear_backward(dx, dw, db, c.up, c.x, c.w, c.N, c.C, c.OC, 0);
    check_grad("linear d(input)", lin_loss, &c, c.x, dx, c.N * c.C, 1e-2f, 1e-3);
    check_grad("linear d(weight)", lin_loss, &c, c.w, dw, c.OC * c.C, 1e-2f, 1e-3);
    check_grad("linear d(bias)", lin_loss, &c, c.b, db, c.OC, 1e-2f, 1e-3);
    /* accumulate semantics: dinp += and dweight += */
    float *dx2 = malloc(sizeof(float) * c.N * c.C);
    for (int i = 0; i < c.N * c.C; i++) dx2[i] = 1.0f;
    float *dw2 = zeros(c.OC * c.C);
    linear_backward(dx2, dw2, NULL, c.up, c.x, c.w, c.N, c.C, c.OC, 1);
    linear_backward(NULL, dw2, NULL, c.up, c.x, c.w, c.N, c.C, c.OC, 1);
    int ok = 1;
    for (int i = 0; i < c.N * c.C; i++) ok &= fabsf(dx2[i] - 1.0f - dx[i]) < 1e-5f;
    CHECK_MSG(ok, "linear_backward accumulate=1 must add to dinp");
    ok = 1;
    for (int i = 0; i < c.OC * c.C; i++) ok &= fabsf(dw2[i] - 2.0f * dw[i]) < 1e-4f;
    CHECK_MSG(ok, "linear_backward must accumulate dweight");
    /* no bias, no residual */
    lin_ctx c0 = c;
    c0.b = NULL;
    c0.res = NULL;
    memset(dw, 0, sizeof(float) * c.OC * c.C);
    lin_loss(&c0);
    linear_backward(dx, dw, NULL, c0.up, c0.x, c0.w, c0.N, c0.C, c0.OC, 0);
    check_grad("linear (no bias) d(weight)", lin_loss, &c0, c0.w, dw, c.OC * c.C, 1e-2f, 1e-3);
    free(c.x), free(c.w), free(c.b), free(c.res), free(c.out), free(c.up);
    free(dx), free(dw), free(db), free(dx2), free(dw2);
}

/* ---- layernorm ---- */
typedef struct {
    int N, C;
    float *x, *w, *b, *out, *mean, *rstd, *up;
} ln_ctx;
static double ln_loss(void *p)
{
    ln_ctx *c = p;
    layernorm_forward(c->out, c->mean, c->rstd, c->x, c->w, c->b, c->N, c->C);
    return dot_d(c->out, c->up, (long)c->N * c->C);
}
static void test_layernorm(int N, int C)
{
    ln_ctx c = {.N = N, .C = C};
    c.x = randv(c.N * C, 2);
    for (int i = 0; i < c.N * C; i++) c.x[i] += 0.5f; /* a non-zero mean */
    c.w = randv(C, 1);
    c.b = randv(C, 1);
    c.out = zeros(c.N * C);
    c.mean = zeros(c.N);
    c.rstd = zeros(c.N);
    c.up = randv(c.N * C, 1);
    ln_loss(&c);
    /* normalised rows: mean 0 and variance 1 before the affine map */
    double m = 0, v = 0;
    for (int i = 0; i < C; i++) m += (c.out[i] - c.b[i]) / c.w[i];
    m /= C;
    for (int i = 0; i < C; i++) v += pow((c.out[i] - c.b[i]) / c.w[i] - m, 2);
    CHECK(fabs(m) < 1e-4);
    CHECK_CLOSE(v / C, 1.0, 1e-3);
    float *dx = zeros(c.N * C), *dw = zeros(C), *db = zeros(C);
    layernorm_backward(dx, dw, db, c.up, c.x, c.w, c.mean, c.rstd, c.N, C);
    char name[64];
    snprintf(name, sizeof name, "layernorm %dx%d d(input)", N, C);
    check_grad(name, ln_loss, &c, c.x, dx, c.N * C, 1e-2f, 2e-3);
    snprintf(name, sizeof name, "layernorm %dx%d d(weight)", N, C);
    check_grad(name, ln_loss, &c, c.w, dw, C, 1e-2f, 2e-3);
    snprintf(name, sizeof name, "layernorm %dx%d d(bias)", N, C);
    check_grad(name, ln_loss, &c, c.b, db, C, 1e-2f, 2e-3);
    free(c.x), free(c.w), free(c.b), free(c.out), free(c.mean), free(c.rstd), free(c.up);
    free(dx), free(dw), free(db);
}

/* ---- embedding ---- */
typedef struct {
    int B, T, C, V;
    int *tok;
    float *te, *pe, *out, *up;
} emb_ctx;
static double emb_loss(void *p)
{
    emb_ctx *c = p;
    embedding_forward(c->out, c->tok, c->te, c->pe, c->B, c->T, c->C);
    return dot_d(c->out, c->up, (long)c->B * c->T * c->C);
}
static void test_embedding(void)
{
    emb_ctx c = {.B = 3, .T = 4, .C = 5, .V = 6};
    c.tok = malloc(sizeof(int) * c.B * c.T);
    for (int i = 0; i < c.B * c.T; i++) c.tok[i] = (i * 7 + 3) % c.V; /* repeats included */
    c.te = randv(c.V * c.C, 1);
    c.pe = randv(c.T * c.C, 1);
    c.out = zeros(c.B * c.T * c.C);
    c.up = randv(c.B * c.T * c.C, 1);
    float *dte = zeros(c.V * c.C), *dpe = zeros(c.T * c.C);
    emb_loss(&c);
    embedding_backward(dte, dpe, c.up, c.tok, c.B, c.T, c.C);
    check_grad("embedding d(token table)", emb_loss, &c, c.te, dte, c.V * c.C, 1e-2f, 1e-4);
    check_grad("embedding d(position table)", emb_loss, &c, c.pe, dpe, c.T * c.C, 1e-2f, 1e-4);
    free(c.tok), free(c.te), free(c.pe), free(c.out), free(c.up), free(dte), free(dpe);
}

/* ---- relu ---- */
typedef struct {
    long n;
    float *x, *out, *up;
} relu_ctx;
static double relu_loss(void *p)
{
    relu_ctx *c = p;
    relu_forward(c->out, c->x, c->n);
    return dot_d(c->out, c->up, c->n);
}
static void test_relu(long n)
{
    relu_ctx c = {.n = n};
    c.x = randv(c.n, 1);
    for (long i = 0; i < c.n; i++) c.x[i] += c.x[i] > 0 ? 0.1f : -0.1f; /* away from the kink */
    c.out = zeros(c.n);
    c.up = randv(c.n, 1);
    float *dx = zeros(c.n);
    relu_loss(&c);
    relu_backward(dx, c.up, c.out, c.n);
    char name[64];
    snprintf(name, sizeof name, "relu n=%ld d(input)", n);
    check_grad(name, relu_loss, &c, c.x, dx, c.n, 1e-2f, 1e-4);
    free(c.x), free(c.out), free(c.up), free(dx);
}

/* ---- attention ---- */
typedef struct {
    int B, T, S, H, D, causal, interleaved;
    const int *key_len;
    float *q, *kv, *out, *att, *scratch, *up;
    int ldq, ldkv;
    float *k, *v; /* into q (interleaved self-attention) or kv */
} att_ctx;
static double att_loss(void *p)
{
    att_ctx *c = p;
    attention_forward(c->out, c->att, c->scratch, c->q, c->k, c->v, c->ldq, c->ldkv, c->key_len,
                      c->causal, c->B, c->T, c->S, c->H, c->D);
    return dot_d(c->out, c->up, (long)c->B * c->T * c->H * c->D);
}

/* self = 1: one (B, T, 3C) qkv buffer as in the model's self-attention; else q (B, T, C) and
 * kv (B, S, 2C) as in cross-attention. */
static void test_attention(const char *name, int self, int causal, const int *key_len, int B,
                           int T, int S, int H, int D)
{
    const int C = H * D;
    att_ctx c = {.B = B, .T = T, .S = self ? T : S, .H = H, .D = D, .causal = causal,
                 .key_len = key_len};
    S = c.S;
    long nq, nkv = 0;
    if (self) {
        nq = (long)B * T * 3 * C;
        c.q = randv(nq, 1);
        c.ldq = c.ldkv = 3 * C;
        c.k = c.q + C;
        c.v = c.q + 2 * C;
    } else {
        nq = (long)B * T * C;
        nkv = (long)B * S * 2 * C;
        c.q = randv(nq, 1);
        c.kv = randv(nkv, 1);
        c.ldq = C;
        c.ldkv = 2 * C;
        c.k = c.kv;
        c.v = c.kv + C;
    }
    c.out = zeros((long)B * T * C);
    c.att = zeros((long)B * H * T * S);
    c.scratch = zeros(attention_scratch_floats(T, S, D));
    c.up = randv((long)B * T * C, 1);
    att_loss(&c);
    /* the probabilities: rows sum to 1, masked keys exactly 0 */
    int rows_ok = 1, mask_ok = 1;
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            for (int t = 0; t < T; t++) {
                const float *a = c.att + (((long)b * H + h) * T + t) * S;
                double s = 0;
                for (int j = 0; j < S; j++) {
                    s += a[j];
                    int masked = (key_len && j >= key_len[b]) || (causal && j > t);
                    if (masked && a[j] != 0.0f) mask_ok = 0;
                    if (!masked && !(a[j] > 0.0f)) mask_ok = 0;
                }
                if (fabs(s - 1.0) > 1e-5) rows_ok = 0;
            }
    CHECK_MSG(rows_ok, "%s: attention rows must sum to 1", name);
    CHECK_MSG(mask_ok, "%s: masked keys must get exactly 0, the others > 0", name);

    float *dq = zeros(nq), *dkv = self ? NULL : zeros(nkv);
    float *dk = self ? dq + C : dkv, *dv = self ? dq + 2 * C : dkv + C;
    /* poison: backward must overwrite everything it owns */
    for (long i = 0; i < nq; i++) dq[i] = 1e3f;
    for (long i = 0; i < nkv; i++) dkv[i] = 1e3f;
    float *scratch = zeros(attention_scratch_floats(T, S, D));
    attention_backward(dq, dk, dv, scratch, c.up, c.att, c.q, c.k, c.v, c.ldq, c.ldkv, key_len,
                       causal, B, T, S, H, D);
    char buf[96];
    if (self) {
        snprintf(buf, sizeof buf, "%s d(qkv)", name);
        check_grad(buf, att_loss, &c, c.q, dq, nq, 1e-2f, 2e-3);
    } else {
        snprintf(buf, sizeof buf, "%s d(q)", name);
        check_grad(buf, att_loss, &c, c.q, dq, nq, 1e-2f, 2e-3);
        snprintf(buf, sizeof buf, "%s d(kv)", name);
        check_grad(buf, att_loss, &c, c.kv, dkv, nkv, 1e-2f, 2e-3);
    }
    /* masked keys get exactly zero gradient */
    if (key_len) {
        int zero_ok = 1;
        for (int b = 0; b < B; b++)
            for (int j = key_len[b]; j < S; j++)
                for (int i = 0; i < 2 * C; i++) {
                    float g = self ? dq[((long)b * S + j) * 3 * C + C + i]
                                   : dkv[((long)b * S + j) * 2 * C + i];
                    if (g != 0.0f) zero_ok = 0;
                }
        CHECK_MSG(zero_ok, "%s: padded keys/values must get zero gradient", name);
    }
    free(c.q), free(c.kv), free(c.out), free(c.att), free(c.scratch), free(c.up);
    free(dq), free(dkv), free(scratch);
}

/* ---- softmax + cross-entropy ---- */
typedef struct {
    int N, V;
    int *tgt;
    float *logits, *probs;
} ce_ctx;
static double ce_loss(void *p)
{
    ce_ctx *c = p;
    double rl[64];
    return crossentropy_forward(c->probs, rl, c->logits, c->tgt, c->N, c->V);
}
static void test_crossentropy(void)
{
    ce_ctx c = {.N = 5, .V = 11};
    int tgt[5] = {3, -1, 0, 10, 7};
    c.tgt = tgt;
    c.logits = randv(c.N * c.V, 2);
    c.probs = zeros(c.N * c.V);
    double l = ce_loss(&c);
    /* by hand, in double */
    double ref = 0;
    for (int n = 0; n < c.N; n++) {
        if (tgt[n] < 0) continue;
        double s = 0;
        for (int j = 0; j < c.V; j++) s += exp(c.logits[n * c.V + j]);
        ref += log(s) - c.logits[n * c.V + tgt[n]];
    }
    CHECK_CLOSE(l, ref, 1e-5);
    float scale = 0.37f;
    crossentropy_backward(c.probs, c.tgt, scale, c.N, c.V);
    float *g = malloc(sizeof(float) * c.N * c.V);
    for (int i = 0; i < c.N * c.V; i++) g[i] = c.probs[i] / scale;
    int ign = 1;
    for (int j = 0; j < c.V; j++) ign &= c.probs[1 * c.V + j] == 0.0f;
    CHECK_MSG(ign, "ignored rows get zero gradient");
    check_grad("softmax cross-entropy d(logits)", ce_loss, &c, c.logits, g, c.N * c.V, 1e-2f,
               1e-3);
    /* large logits stay finite */
    for (int i = 0; i < c.V; i++) c.logits[i] = 80.0f + (float)i;
    l = ce_loss(&c);
    CHECK(isfinite(l));
    free(c.logits), free(c.probs), free(g);
}

/* ---- the attention micro-kernels against a plain triple loop, edge shapes included ---- */
static void test_small_gemm(void)
{
    const int shapes[][3] = {{1, 1, 1}, {4, 16, 8}, {5, 17, 3}, {3, 7, 31}, {79, 79, 64},
                             {31, 16, 31}, {8, 33, 1}, {2, 40, 9}};
    int ok_all = 1, twin_equal = 1;
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        int M = shapes[i][0], N = shapes[i][1], K = shapes[i][2];
        int lda = K + 3, ldb = N + 2, ldc = N + 5;
        float *A = randv((long)M * lda, 1), *B = randv((long)K * ldb, 1);
        float *C = randv((long)M * ldc, 1), *C0 = malloc(sizeof(float) * M * ldc);
        memcpy(C0, C, sizeof(float) * M * ldc);
        /* A as (M, lda) for small_gemm; as (K, lda') with lda' = M + 3 for small_gemm_tn */
        float *At = randv((long)K * (M + 3), 1);
        for (int acc = 0; acc < 4; acc++) {
            int tn = acc >= 2;
            /* the plain-loop twin first, on a copy: the vectorised kernel must match it bit
             * for bit */
            float *Cref = malloc(sizeof(float) * M * ldc);
            memcpy(Cref, C, sizeof(float) * M * ldc);
            if (tn) {
                small_gemm_tn_ref(M, N, K, At, M + 3, B, ldb, Cref, ldc, acc & 1);
                small_gemm_tn(M, N, K, At, M + 3, B, ldb, C, ldc, acc & 1);
            } else {
                small_gemm_ref(M, N, K, A, lda, B, ldb, Cref, ldc, acc & 1);
                small_gemm(M, N, K, A, lda, B, ldb, C, ldc, acc & 1);
            }
            twin_equal &= memcmp(C, Cref, sizeof(float) * M * ldc) == 0;
            free(Cref);
            for (int r = 0; r < M; r++)
                for (int c = 0; c < ldc; c++) {
                    double ref = C0[r * ldc + c];
                    if (c < N) {
                        double sum = 0;
                        for (int k = 0; k < K; k++)
                            sum += (double)(tn ? At[k * (M + 3) + r] : A[r * lda + k]) *
                                   B[k * ldb + c];
                        ref = (acc & 1) ? ref + sum : sum;
                    }
                    /* columns past N are never written */
                    if (fabs(C[r * ldc + c] - ref) > 1e-4 * (1 + fabs(ref))) ok_all = 0;
                }
            memcpy(C0, C, sizeof(float) * M * ldc);
        }
        free(A), free(At), free(B), free(C), free(C0);
    }
    CHECK_MSG(ok_all, "small_gemm / small_gemm_tn differ from the triple loop");
    CHECK_MSG(twin_equal, "small_gemm / small_gemm_tn differ from their plain twins");
}

/* ---- fastmath.h's lane-parallel helpers against plain loops ---- */
static void test_fastmath(void)
{
    int ok_sum = 1, ok_dev = 1, ok_max = 1, ok_soft = 1;
    for (int n = 1; n <= 300; n += (n < 20 ? 1 : 37)) {
        float *x = randv(n, 3), *p = malloc(sizeof(float) * (size_t)n);
        double sum = 0, mx = x[0], dev = 0, abs_sum = 0;
        for (int i = 0; i < n; i++) {
            sum += x[i];
            abs_sum += fabs(x[i]);
            mx = x[i] > mx ? x[i] : mx;
        }
        float m = (float)(sum / n);
        for (int i = 0; i < n; i++) dev += ((double)x[i] - m) * ((double)x[i] - m);
        /* reorderings of a float sum: within n ulps of the sum of magnitudes */
        ok_sum &= fabs(fm_sum(x, n) - sum) <= n * 6e-8 * abs_sum;
        ok_dev &= fabs(fm_sum_sq_dev(x, m, n) - dev) <= n * 1.2e-7 * dev + 1e-30;
        ok_max &= fm_max(x, n) == (float)mx;
        fm_softmax(p, x, n);
        double z = 0;
        for (int i = 0; i < n; i++) z += exp((double)x[i] - mx);
        for (int i = 0; i < n; i++) {
            double ref = exp((double)x[i] - mx) / z;
            ok_soft &= fabs(p[i] - ref) <= 1e-6 * ref + 1e-9;
        }
        free(x), free(p);
    }
    CHECK_MSG(ok_sum, "fm_sum differs from the plain sum");
    CHECK_MSG(ok_dev, "fm_sum_sq_dev differs from the plain sum of squared deviations");
    CHECK_MSG(ok_max, "fm_max differs from the plain maximum");
    CHECK_MSG(ok_soft, "fm_softmax differs from the plain softmax");
    /* fm_expf against expf over its whole clamped range, and the clamps */
    double worst = 0;
    for (float x = -87.0f; x <= 88.0f; x += 0.0137f) {
        double ref = exp((double)x), e = fabs(fm_expf(x) - ref) / ref;
        worst = e > worst ? e : worst;
    }
    printf("  fm_expf: worst relative error %.2e over [-87, 88]\n", worst);
    CHECK_MSG(worst < 3e-7, "fm_expf: relative error %.3g (documented ~2e-7)", worst);
    CHECK(fm_expf(-1000.0f) == fm_expf(-87.0f) && fm_expf(1000.0f) == fm_expf(88.0f));
}

/* ---- the thread pool: every task exactly once, in the documented chunks ---- */
typedef struct {
    int *visits, *chunk_of;
    int n, chunks;
} pool_ctx;
static void pool_task(void *ctx, int begin, int end, int thread)
{
    pool_ctx *c = ctx;
    (void)thread;
    for (int i = begin; i < end; i++) {
        c->visits[i]++;
        c->chunk_of[i] = begin;
    }
}
static void test_pool(void)
{
    printf("  pool: %d threads\n", par_threads());
    int ok = 1;
    for (int round = 0; round < 2000; round++) {
        int n = 1 + round % 97, chunks = 1 + round % 9;
        int visits[97] = {0}, chunk_of[97];
        pool_ctx c = {visits, chunk_of, n, chunks};
        par_for_chunks(n, chunks, pool_task, &c);
        int nc = chunks > n ? n : chunks;
        for (int i = 0; i < n; i++) {
            ok &= visits[i] == 1;
            /* i lies in chunk k with begin = n k / nc */
            int k = 0;
            while ((long)n * (k + 1) / nc <= i) k++;
            ok &= chunk_of[i] == (int)((long)n * k / nc);
        }
    }
    CHECK_MSG(ok, "par_for_chunks must run every task once, in its chunk");
}

/* ---- the loops of a universal transformer ---- */

/* Copy gate: out = g y + (1 - g) x with g = sigmoid(z); the loss reads out. */
typedef struct {
    long n;
    float *z, *y, *x, *gate, *out, *up;
} gate_ctx;
static double gate_loss(void *p)
{
    gate_ctx *c = p;
    memcpy(c->gate, c->z, (size_t)c->n * sizeof(float));
    copy_gate_forward(c->out, c->gate, c->y, c->x, c->n);
    return dot_d(c->out, c->up, c->n);
}
static void test_copy_gate(long n)
{
    gate_ctx c = {.n = n};
    c.z = randv(n, 1.5f);
    c.y = randv(n, 1);
    c.x = randv(n, 1);
    c.gate = zeros(n);
    c.out = zeros(n);
    c.up = randv(n, 1);
    gate_loss(&c);
    float g = 1.0f / (1.0f + expf(-c.z[3]));
    CHECK_CLOSE(c.gate[3], g, 1e-6);
    CHECK_CLOSE(c.out[3], g * c.y[3] + (1 - g) * c.x[3], 1e-6);
    float *dz = zeros(n), *dy = zeros(n), *dx = zeros(n);
    for (long i = 0; i < n; i++) dx[i] = 0.5f; /* dx accumulates */
    copy_gate_backward(dz, dy, NULL, c.up, c.gate, c.y, c.x, n);
    copy_gate_backward(NULL, NULL, dx, c.up, c.gate, c.y, c.x, n);
    for (long i = 0; i < n; i++) dx[i] -= 0.5f;
    check_grad("copy gate d(z)", gate_loss, &c, c.z, dz, n, 1e-2f, 1e-3);
    check_grad("copy gate d(layer output)", gate_loss, &c, c.y, dy, n, 1e-2f, 1e-3);
    check_grad("copy gate d(input, skip path)", gate_loss, &c, c.x, dx, n, 1e-2f, 1e-3);
    free(c.z), free(c.y), free(c.x), free(c.gate), free(c.out), free(c.up);
    free(dz), free(dy), free(dx);
}

/* ACT: the loss reads the weights (against up, (L,N)) and ponder (against tau * mask). */
typedef struct {
    int L, N;
    float threshold, tau;
    float *z, *halt, *weight, *ponder, *mask, *up;
} act_ctx;
static double act_loss(void *p)
{
    act_ctx *c = p;
    memcpy(c->halt, c->z, (size_t)c->L * c->N * sizeof(float));
    act_halting_forward(c->weight, c->ponder, c->halt, c->threshold, c->L, c->N);
    double l = dot_d(c->weight, c->up, (long)c->L * c->N);
    for (int r = 0; r < c->N; r++) l += (double)c->tau * c->mask[r] * c->ponder[r];
    return l;
}
static void test_act_halting(int L, int N, float bias)
{
    act_ctx c = {.L = L, .N = N, .threshold = 0.99f, .tau = 0.3f};
    const long n = (long)L * N;
    c.z = randv(n, 1.5f);
    for (long i = 0; i < n; i++) c.z[i] += bias;
    c.halt = zeros(n);
    c.weight = zeros(n);
    c.ponder = zeros(N);
    c.mask = zeros(N);
    c.up = randv(n, 1);
    for (int r = 0; r < N; r++) c.mask[r] = r % 3 != 2;
    /* Keep every position's halting decision away from the threshold (a finite difference
     * across it measures a jump): redraw the logits of a row until no partial sum is within
     * 0.05 of it. */
    for (int r = 0; r < N; r++) {
        for (int tries = 0;; tries++) {
            float cum = 0;
            int ok = 1;
            for (int i = 0; i < L - 1; i++) {
                cum += 1.0f / (1.0f + expf(-c.z[(long)i * N + r]));
                if (fabsf(cum - c.threshold) < 0.05f) ok = 0;
                if (cum >= c.threshold) break;
            }
            if (ok) break;
            CHECK_MSG(tries < 1000, "act test: no logits away from the threshold");
            for (int i = 0; i < L; i++) c.z[(long)i * N + r] = bias + 1.5f * nrand();
        }
    }
    act_loss(&c);
    /* by hand: the weights of a row sum to 1, ponder = n + 1 + R */
    int halted_early = 0, ran_out = 0;
    for (int r = 0; r < N; r++) {
        double sum = 0;
        int n_r = -1;
        for (int i = 0; i < L; i++) {
            sum += c.weight[(long)i * N + r];
            if (c.weight[(long)i * N + r] != 0.0f) n_r = i;
        }
        CHECK_CLOSE(sum, 1.0, 1e-5);
        CHECK_CLOSE(c.ponder[r], n_r + 1 + c.weight[(long)n_r * N + r], 1e-5);
        halted_early += n_r < L - 1;
        ran_out += n_r == L - 1;
    }
    CHECK_MSG(halted_early > 0 && ran_out > 0, "act test: rows must both halt early (%d) and "
              "run out of iterations (%d)", halted_early, ran_out);
    float *dz = zeros(n);
    act_halting_backward(dz, c.up, c.halt, c.mask, c.tau, c.threshold, L, N);
    char name[64];
    snprintf(name, sizeof name, "act halting L=%d N=%d d(logits)", L, N);
    check_grad(name, act_loss, &c, c.z, dz, n, 1e-2f, 1e-3);
    free(c.z), free(c.halt), free(c.weight), free(c.ponder), free(c.mask), free(c.up), free(dz);
}

/* Weighted rows: out = w[r] x[r,:]; with and without accumulation. */
typedef struct {
    int N, C;
    float *w, *x, *base, *out, *up;
} wr_ctx;
static double wr_loss(void *p)
{
    wr_ctx *c = p;
    memcpy(c->out, c->base, (size_t)c->N * c->C * sizeof(float));
    weighted_rows_forward(c->out, c->w, c->x, c->N, c->C, 1);
    return dot_d(c->out, c->up, (long)c->N * c->C);
}
static void test_weighted_rows(int N, int C)
{
    wr_ctx c = {.N = N, .C = C};
    const long n = (long)N * C;
    c.w = randv(N, 1);
    c.x = randv(n, 1);
    c.base = randv(n, 1);
    c.out = zeros(n);
    c.up = randv(n, 1);
    wr_loss(&c);
    CHECK_CLOSE(c.out[1 * C + 2], c.base[1 * C + 2] + c.w[1] * c.x[1 * C + 2], 1e-6);
    float *plain = zeros(n);
    weighted_rows_forward(plain, c.w, c.x, N, C, 0);
    CHECK_CLOSE(plain[1 * C + 2], c.w[1] * c.x[1 * C + 2], 1e-6);
    float *dw = zeros(N), *dx = zeros(n);
    weighted_rows_backward(dw, dx, c.up, c.w, c.x, N, C);
    check_grad("weighted rows d(w)", wr_loss, &c, c.w, dw, N, 1e-2f, 1e-3);
    check_grad("weighted rows d(x)", wr_loss, &c, c.x, dx, n, 1e-2f, 1e-3);
    free(c.w), free(c.x), free(c.base), free(c.out), free(c.up), free(plain), free(dw), free(dx);
}

int main(void)
{
    fixture_seed(0x12345678abcdefULL);
    model_set_threads(2);
    CHECK_MSG(par_threads() >= 2, "the pool must have two threads to test split work");
    test_pool();
    test_small_gemm();
    test_fastmath();
    /* Small sizes run on one thread; the larger ones are split among the pool's threads (two
     * at least, model_set_threads below): the products by row blocks and the bias gradient by
     * columns (linear), rows and columns (layer norm), 1024-float blocks (ReLU), (example, head)
     * pairs (attention). */
    test_linear(7, 5, 6);
    test_linear(256, 64, 256);
    test_layernorm(5, 7);
    test_layernorm(5, 24);
    test_layernorm(2800, 24);
    test_embedding();
    test_relu(40);
    test_relu(40000);
    const int key_len[3] = {5, 2, 1};
    test_attention("self-attention", 1, 0, NULL, 2, 5, 0, 2, 3);
    test_attention("self-attention padded", 1, 0, key_len, 3, 5, 0, 2, 4);
    test_attention("causal self-attention", 1, 1, NULL, 2, 6, 0, 3, 2);
    test_attention("cross-attention padded", 0, 0, key_len, 3, 4, 5, 2, 3);
    test_attention("cross-attention T=1", 0, 0, key_len, 3, 1, 5, 2, 8);
    test_attention("causal self-attention 64x2 heads", 1, 1, NULL, 64, 8, 0, 2, 8);
    test_crossentropy();
    test_copy_gate(300);
    test_act_halting(4, 40, 0.0f);
    test_act_halting(8, 40, -2.0f);
    test_weighted_rows(9, 7);
    return test_report("test_model_layers");
}
