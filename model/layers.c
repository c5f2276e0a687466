/* layers.c: the CPU reference layers (see layers.h for the math of each pair).
 * Matrix products go through cblas_sgemm; the loops are written so that the compiler can
 * vectorise them without reassociating floating-point sums (every sum has one fixed order,
 * so results are deterministic). */
#include "model/layers.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

#include "model/fastmath.h"
#include "model/kernels.h"
#include "model/parallel.h"

void embedding_forward(float *restrict out, const int *restrict tokens,
                       const float *restrict tok_emb, const float *restrict pos_emb, int B, int T,
                       int C)
{
    for (int b = 0; b < B; b++) {
        for (int t = 0; t < T; t++) {
            float *o = out + ((size_t)b * T + t) * C;
            const float *te = tok_emb + (size_t)tokens[b * T + t] * C;
            const float *pe = pos_emb + (size_t)t * C;
            for (int c = 0; c < C; c++) o[c] = te[c] + pe[c];
        }
    }
}

void embedding_backward(float *restrict dtok_emb, float *restrict dpos_emb,
                        const float *restrict dout, const int *restrict tokens, int B, int T,
                        int C)
{
    for (int b = 0; b < B; b++) {
        for (int t = 0; t < T; t++) {
            const float *d = dout + ((size_t)b * T + t) * C;
            float *dte = dtok_emb + (size_t)tokens[b * T + t] * C;
            float *dpe = dpos_emb + (size_t)t * C;
            for (int c = 0; c < C; c++) {
                dte[c] += d[c];
                dpe[c] += d[c];
            }
        }
    }
}

/* Parallel loops take chunks of at least PAR_MIN_WORK elements of work: smaller ones are
 * not worth waking a thread for. */
#define PAR_MIN_WORK 32768
static int min_rows(long work_per_row)
{
    long r = PAR_MIN_WORK / (work_per_row > 0 ? work_per_row : 1);
    return r < 1 ? 1 : (int)r;
}

typedef struct {
    float *out, *mean, *rstd, *dinp, *dweight, *dbias;
    const float *inp, *weight, *bias, *dout, *cmean, *crstd;
    int N, C;
} ln_args;

static void ln_forward_task(void *ctx, int begin, int end, int thread)
{
    (void)thread;
    const ln_args *a = ctx;
    const int C = a->C;
    for (int n = begin; n < end; n++) {
        const float *restrict x = a->inp + (size_t)n * C;
        float *restrict o = a->out + (size_t)n * C;
        const float *restrict w = a->weight, *restrict bias = a->bias;
        float m = fm_sum(x, C) / (float)C;
        float var = fm_sum_sq_dev(x, m, C) / (float)C;
        float s = 1.0f / sqrtf(var + LAYERNORM_EPS);
        for (int c = 0; c < C; c++) o[c] = (x[c] - m) * s * w[c] + bias[c];
        a->mean[n] = m;
        a->rstd[n] = s;
    }
}

void layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                       const float *weight, const float *bias, int N, int C)
{
    ln_args a = {.out = out, .mean = mean, .rstd = rstd, .inp = inp, .weight = weight,
                 .bias = bias, .N = N, .C = C};
    par_for(N, min_rows(C), ln_forward_task, &a);
}

/* rows [begin, end): dinp */
static void ln_backward_rows(void *ctx, int begin, int end, int thread)
{
    (void)thread;
    const ln_args *a = ctx;
    const int C = a->C;
    const float *restrict weight = a->weight;
    for (int n = begin; n < end; n++) {
        const float *restrict x = a->inp + (size_t)n * C;
        const float *restrict d = a->dout + (size_t)n * C;
        float *restrict di = a->dinp + (size_t)n * C;
        const float m = a->cmean[n], s = a->crstd[n];
        /* two reductions: mean(g) and mean(g * xhat), with g = dout * weight */
        float acc_g[FM_LANES] = {0}, acc_gx[FM_LANES] = {0};
        int c = 0;
        for (; c + FM_LANES <= C; c += FM_LANES) {
            for (int l = 0; l < FM_LANES; l++) {
                float g = d[c + l] * weight[c + l];
                acc_g[l] += g;
                acc_gx[l] += g * ((x[c + l] - m) * s);
            }
        }
        float sg = fm_hsum(acc_g), sgx = fm_hsum(acc_gx);
        for (; c < C; c++) {
            float g = d[c] * weight[c];
            sg += g;
            sgx += g * ((x[c] - m) * s);
        }
        const float mg = sg / (float)C, mgx = sgx / (float)C;
        for (c = 0; c < C; c++) {
            float xhat = (x[c] - m) * s;
            di[c] = s * (d[c] * weight[c] - mg - xhat * mgx);
        }
    }
}

/* columns [begin, end): dweight, dbias summed over the rows in order */
static void ln_backward_cols(void *ctx, int begin, int end, int thread)
{
    (void)thread;
    const ln_args *a = ctx;
    const int C = a->C;
    float *restrict dw = a->dweight, *restrict db = a->dbias;
    for (int n = 0; n < a->N; n++) {
        const float *restrict x = a->inp + (size_t)n * C;
        const float *restrict d = a->dout + (size_t)n * C;
        const float m = a->cmean[n], s = a->crstd[n];
        for (int c = begin; c < end; c++) {
            dw[c] += d[c] * ((x[c] - m) * s);
            db[c] += d[c];
        }
    }
}

void layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                        const float *inp, const float *weight, const float *mean,
                        const float *rstd, int N, int C)
{
    ln_args a = {.dinp = dinp, .dweight = dweight, .dbias = dbias, .dout = dout, .inp = inp,
                 .weight = weight, .cmean = mean, .crstd = rstd, .N = N, .C = C};
    par_for(N, min_rows(C), ln_backward_rows, &a);
    par_for(C, min_rows(N), ln_backward_cols, &a);
}

/* ---- matrix products: cblas_sgemm on row blocks of C, one block per thread ----
 * OpenBLAS itself runs single-threaded (parallel.c); each thread multiplies whole rows of C
 * (blocks of GEMM_ROW_UNIT rows, a fixed split for a given thread count: deterministic). */
typedef struct {
    CBLAS_TRANSPOSE ta, tb;
    int M, N, K, lda, ldb, ldc;
    const float *A, *B;
    float *C, beta;
} gemm_args;

#define GEMM_ROW_UNIT 16

static void gemm_task(void *ctx, int begin, int end, int thread)
{
    (void)thread;
    const gemm_args *g = ctx;
    int m0 = begin * GEMM_ROW_UNIT, m1 = end * GEMM_ROW_UNIT;
    if (m1 > g->M) m1 = g->M;
    const float *A = g->ta == CblasNoTrans ? g->A + (size_t)m0 * g->lda : g->A + m0;
    cblas_sgemm(CblasRowMajor, g->ta, g->tb, m1 - m0, g->N, g->K, 1.0f, A, g->lda, g->B, g->ldb,
                g->beta, g->C + (size_t)m0 * g->ldc, g->ldc);
}

/* C (M, N) = op(A) op(B) + beta C, row-major. */
static void gemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int M, int N, int K, const float *A,
                 int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
    gemm_args g = {ta, tb, M, N, K, lda, ldb, ldc, A, B, C, beta};
    /* one block per thread (each block packs all of B), of at least ~2 MFLOP */
    long per_unit = 2L * GEMM_ROW_UNIT * N * K;
    int units = (M + GEMM_ROW_UNIT - 1) / GEMM_ROW_UNIT;
    int blocks = (int)(units * per_unit / 2000000), threads = par_threads();
    par_for_chunks(units, blocks < threads ? blocks : threads, gemm_task, &g);
}

typedef struct {
    float *out;
    const float *bias, *residual, *dout;
    int N, OC;
} bias_args;

static void prefill_task(void *ctx, int begin, int end, int thread)
{
    (void)thread;
    const bias_args *a = ctx;
    const int OC = a->OC;
    for (int n = begin; n < end; n++) {
        float *restrict o = a->out + (size_t)n * OC;
        const float *r = a->residual ? a->residual + (size_t)n * OC : NULL;
        const float *restrict bias = a->bias;
        if (r && bias) {
            for (int j = 0; j < OC; j++) o[j] = r[j] + bias[j];
        } else if (r) {
            if (r != o) memcpy(o, r, (size_t)OC * sizeof(float));
        } else {
            memcpy(o, bias, (size_t)OC * sizeof(float));
        }
    }
}

void linear_forward(float *out, const float *inp, const float *weight, const float *bias,
                    const float *residual, int N, int C, int OC)
{
    float beta = 0.0f;
    if (bias || residual) {
        /* out = residual + bias first, then the product is accumulated by sgemm (beta 1). */
        bias_args a = {.out = out, .bias = bias, .residual = residual, .N = N, .OC = OC};
        par_for(N, min_rows(OC), prefill_task, &a);
        beta = 1.0f;
    }
    gemm(CblasNoTrans, CblasTrans, N, OC, C, inp, C, weight, C, beta, out, OC);
}

/* columns [begin, end) of dbias += sum over rows, in row order */
static void bias_grad_task(void *ctx, int begin, int end, int thread)
{
    (void)thread;
    const bias_args *a = ctx;
    float *restrict db = a->out;
    for (int n = 0; n < a->N; n++) {
        const float *restrict d = a->dout + (size_t)n * a->OC;
        for (int j = begin; j < end; j++) db[j] += d[j];
    }
}

void linear_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                     const float *inp, const float *weight, int N, int C, int OC, int accumulate)
{
    if (dinp)
        gemm(CblasNoTrans, CblasNoTrans, N, C, OC, dout, OC, weight, C, accumulate ? 1.0f : 0.0f,
             dinp, C);
    gemm(CblasTrans, CblasNoTrans, OC, C, N, dout, OC, inp, C, 1.0f, dweight, C);
    if (dbias) {
        bias_args a = {.out = dbias, .dout = dout, .N = N, .OC = OC};
        par_for(OC, min_rows(N), bias_grad_task, &a);
    }
}

typedef struct {
    float *out;
    const float *inp, *dout;
} relu_args;

static void relu_forward_task(void *ctx, int begin, int end, int thread)
{
    (void)thread;
    const relu_args *a = ctx;
    const long lo = (long)begin * 1024, hi = (long)end * 1024;
    float *o = a->out;
    const float *x = a->inp;
    if (o == x) { /* in place: one pointer, so the loop vectorises without alias checks */
        for (long i = lo; i < hi; i++) o[i] = o[i] > 0.0f ? o[i] : 0.0f;
    } else {
        for (long i = lo; i < hi; i++) o[i] = x[i] > 0.0f ? x[i] : 0.0f;
    }
}

static void relu_backward_task(void *ctx, int begin, int end, int thread)
{
    (void)thread;
    const relu_args *a = ctx; /* out: dinp, inp: the forward output */
    const long lo = (long)begin * 1024, hi = (long)end * 1024;
    float *di = a->out;
    const float *y = a->inp, *d = a->dout;
    if (di == d) {
        for (long i = lo; i < hi; i++) di[i] = y[i] > 0.0f ? di[i] : 0.0f;
    } else {
        for (long i = lo; i < hi; i++) di[i] = y[i] > 0.0f ? d[i] : 0.0f;
    }
}

void relu_forward(float *out, const float *inp, long n)
{
    relu_args a = {.out = out, .inp = inp};
    long blocks = n / 1024;
    par_for((int)blocks, 16, relu_forward_task, &a);
    for (long i = blocks * 1024; i < n; i++) out[i] = inp[i] > 0.0f ? inp[i] : 0.0f;
}

void relu_backward(float *dinp, const float *dout, const float *out, long n)
{
    relu_args a = {.out = dinp, .inp = out, .dout = dout};
    long blocks = n / 1024;
    par_for((int)blocks, 16, relu_backward_task, &a);
    for (long i = blocks * 1024; i < n; i++) dinp[i] = out[i] > 0.0f ? dout[i] : 0.0f;
}

/* Per-thread scratch of attention, with Sp = S rounded up to 16 (so that products over keys
 * use whole register tiles): a (D, Sp) transposed key or value block and a (T, Sp) block of
 * scores or their gradient. */
static int pad16(int n) { return (n + 15) / 16 * 16; }

static long att_thread_floats(int T, int S, int D)
{
    long Sp = pad16(S);
    return ((long)D * Sp + (long)T * Sp + 15) / 16 * 16;
}

long attention_scratch_floats(int T, int S, int D)
{
    return att_thread_floats(T, S, D) * par_threads();
}

static int key_count(const int *key_len, int b, int S)
{
    int n = key_len ? key_len[b] : S;
    if (n > S) n = S;
    return n < 1 ? 1 : n;
}

/* dst (cols, ldd) = scale * src (rows, cols)^T, and zero in columns [rows, ldd). */
static void transpose_padded(float *dst, int ldd, const float *src, int lds, int rows, int cols,
                             float scale)
{
    transpose_scaled(dst, ldd, src, lds, rows, cols, scale);
    for (int c = 0; c < cols; c++)
        for (int r = rows; r < ldd; r++) dst[(size_t)c * ldd + r] = 0.0f;
}

typedef struct {
    float *out, *att, *scratch;
    const float *q, *k, *v, *dout;
    float *dq, *dk, *dv;
    int ldq, ldkv, causal, B, T, S, H, D;
    const int *key_len;
} att_args;

/* One (b, h) pair per task:  scores = Q (K scale)^T (small_gemm over whole 16-key tiles, into
 * scratch), softmax of each row over its visible keys into att, out = att V. */
static void att_forward_task(void *ctx, int begin, int end, int thread)
{
    const att_args *a = ctx;
    const int T = a->T, S = a->S, D = a->D, H = a->H, C = H * D;
    const float scale = 1.0f / sqrtf((float)D);
    float *kt = a->scratch + att_thread_floats(T, S, D) * thread;
    for (int bh = begin; bh < end; bh++) {
        const int b = bh / H, h = bh % H, nk = key_count(a->key_len, b, S), np = pad16(nk);
        float *sc = kt + (size_t)D * np; /* (T, np) scores */
        const float *qb = a->q + (size_t)b * T * a->ldq + h * D;
        const float *kb = a->k + (size_t)b * S * a->ldkv + h * D;
        const float *vb = a->v + (size_t)b * S * a->ldkv + h * D;
        float *ab = a->att + (size_t)bh * T * S;
        float *ob = a->out + (size_t)b * T * C + h * D;
        transpose_padded(kt, np, kb, a->ldkv, nk, D, scale);
        small_gemm(T, np, D, qb, a->ldq, kt, np, sc, np, 0);
        for (int t = 0; t < T; t++) {
            int n = a->causal && t + 1 < nk ? t + 1 : nk;
            float *row = ab + (size_t)t * S;
            fm_softmax(row, sc + (size_t)t * np, n);
            for (int s = n; s < S; s++) row[s] = 0.0f;
        }
        small_gemm(T, D, nk, ab, S, vb, a->ldkv, ob, C, 0);
    }
}

void attention_forward(float *out, float *att, float *scratch, const float *q, const float *k,
                       const float *v, int ldq, int ldkv, const int *key_len, int causal, int B,
                       int T, int S, int H, int D)
{
    att_args a = {.out = out, .att = att, .scratch = scratch, .q = q, .k = k, .v = v,
                  .ldq = ldq, .ldkv = ldkv, .causal = causal, .B = B, .T = T, .S = S, .H = H,
                  .D = D, .key_len = key_len};
    par_for(B * H, min_rows((long)T * S * D), att_forward_task, &a);
}

/* One (b, h) pair per task, with dl = att * (datt - rowsum(att * datt)) * scale:
 *   dV = att^T dO,  datt = dO V^T,  dQ = dl K,  dK = dl^T Q  (A^T B products without
 *   transposing: small_gemm_tn). */
static void att_backward_task(void *ctx, int begin, int end, int thread)
{
    const att_args *a = ctx;
    const int T = a->T, S = a->S, D = a->D, H = a->H, C = H * D;
    const float scale = 1.0f / sqrtf((float)D);
    float *vt = a->scratch + att_thread_floats(T, S, D) * thread;
    for (int bh = begin; bh < end; bh++) {
        const int b = bh / H, h = bh % H, nk = key_count(a->key_len, b, S), np = pad16(nk);
        float *dl = vt + (size_t)D * np; /* (T, np) */
        const float *qb = a->q + (size_t)b * T * a->ldq + h * D;
        const float *kb = a->k + (size_t)b * S * a->ldkv + h * D;
        const float *vb = a->v + (size_t)b * S * a->ldkv + h * D;
        const float *ab = a->att + (size_t)bh * T * S;
        const float *dob = a->dout + (size_t)b * T * C + h * D;
        float *dqb = a->dq + (size_t)b * T * a->ldq + h * D;
        float *dkb = a->dk + (size_t)b * S * a->ldkv + h * D;
        float *dvb = a->dv + (size_t)b * S * a->ldkv + h * D;
        for (int s = nk; s < S; s++) {
            memset(dkb + (size_t)s * a->ldkv, 0, (size_t)D * sizeof(float));
            memset(dvb + (size_t)s * a->ldkv, 0, (size_t)D * sizeof(float));
        }
        /* dV = att^T dO */
        small_gemm_tn(nk, D, T, ab, S, dob, C, dvb, a->ldkv, 0);
        /* datt = dO V^T, then the softmax backward */
        transpose_padded(vt, np, vb, a->ldkv, nk, D, 1.0f);
        small_gemm(T, np, D, dob, C, vt, np, dl, np, 0);
        for (int t = 0; t < T; t++) {
            int n = a->causal && t + 1 < nk ? t + 1 : nk;
            const float *p = ab + (size_t)t * S;
            float *d = dl + (size_t)t * np;
            float dsum = 0.0f;
            for (int s = 0; s < n; s++) dsum += p[s] * d[s];
            for (int s = 0; s < n; s++) d[s] = p[s] * (d[s] - dsum) * scale;
            for (int s = n; s < nk; s++) d[s] = 0.0f;
        }
        /* dQ = dl K;  dK = dl^T Q */
        small_gemm(T, D, nk, dl, np, kb, a->ldkv, dqb, a->ldq, 0);
        small_gemm_tn(nk, D, T, dl, np, qb, a->ldq, dkb, a->ldkv, 0);
    }
}

void attention_backward(float *dq, float *dk, float *dv, float *scratch, const float *dout,
                        const float *att, const float *q, const float *k, const float *v,
                        int ldq, int ldkv, const int *key_len, int causal, int B, int T, int S,
                        int H, int D)
{
    att_args a = {.dout = dout, .att = (float *)att, .scratch = scratch, .q = q, .k = k,
                  .v = v, .dq = dq, .dk = dk, .dv = dv, .ldq = ldq, .ldkv = ldkv,
                  .causal = causal, .B = B, .T = T, .S = S, .H = H, .D = D, .key_len = key_len};
    par_for(B * H, min_rows((long)T * S * D), att_backward_task, &a);
}

typedef struct {
    float *probs;
    double *row_loss;
    const float *logits;
    const int *targets;
    float scale;
    int V;
} ce_args;

static void ce_forward_task(void *ctx, int begin, int end, int thread)
{
    (void)thread;
    const ce_args *a = ctx;
    const int V = a->V;
    for (int n = begin; n < end; n++) {
        a->row_loss[n] = 0.0;
        if (a->targets[n] < 0) continue;
        const float *l = a->logits + (size_t)n * V;
        float *p = a->probs + (size_t)n * V;
        float mx = fm_max(l, V);
        float sum = fm_exp_sub(p, l, mx, V); /* p = exp(l - mx), returns the sum */
        float inv = 1.0f / sum;
        for (int j = 0; j < V; j++) p[j] *= inv;
        a->row_loss[n] = -((double)l[a->targets[n]] - (double)mx - log((double)sum));
    }
}

double crossentropy_forward(float *probs, double *row_loss, const float *logits,
                            const int *targets, int N, int V)
{
    ce_args a = {.probs = probs, .row_loss = row_loss, .logits = logits, .targets = targets,
                 .V = V};
    par_for(N, min_rows(V), ce_forward_task, &a);
    double loss = 0.0;
    for (int n = 0; n < N; n++) loss += row_loss[n];
    return loss;
}

static void ce_backward_task(void *ctx, int begin, int end, int thread)
{
    (void)thread;
    const ce_args *a = ctx;
    const int V = a->V;
    const float scale = a->scale;
    for (int n = begin; n < end; n++) {
        float *p = a->probs + (size_t)n * V;
        if (a->targets[n] < 0) {
            memset(p, 0, (size_t)V * sizeof(float));
            continue;
        }
        for (int j = 0; j < V; j++) p[j] *= scale;
        p[a->targets[n]] -= scale;
    }
}

void crossentropy_backward(float *dlogits_probs, const int *targets, float scale, int N, int V)
{
    ce_args a = {.probs = dlogits_probs, .targets = targets, .scale = scale, .V = V};
    par_for(N, min_rows(V), ce_backward_task, &a);
}

/* ---- the loops of a universal transformer ---- */

static float sigmoidf(float z) { return 1.0f / (1.0f + expf(-z)); }

void copy_gate_forward(float *out, float *gate, const float *y, const float *x, long n)
{
    for (long i = 0; i < n; i++) {
        float g = sigmoidf(gate[i]);
        gate[i] = g;
        out[i] = g * y[i] + (1.0f - g) * x[i];
    }
}

void copy_gate_backward(float *dz, float *dy, float *dx, const float *dout, const float *gate,
                        const float *y, const float *x, long n)
{
    if (dy)
        for (long i = 0; i < n; i++) dy[i] = gate[i] * dout[i];
    if (dz)
        for (long i = 0; i < n; i++)
            dz[i] = dout[i] * (y[i] - x[i]) * gate[i] * (1.0f - gate[i]);
    if (dx)
        for (long i = 0; i < n; i++) dx[i] += (1.0f - gate[i]) * dout[i];
}

/* The iteration at which position r halts, from the probabilities p (L, N). */
static int act_halt_step(const float *p, float threshold, int L, int N, int r)
{
    float cum = 0.0f;
    for (int i = 0; i < L - 1; i++) {
        cum += p[(size_t)i * N + r];
        if (cum >= threshold) return i;
    }
    return L - 1;
}

void act_halting_forward(float *weight, float *ponder, float *halt, float threshold, int L,
                         int N)
{
    for (long i = 0; i < (long)L * N; i++) halt[i] = sigmoidf(halt[i]);
    for (int r = 0; r < N; r++) {
        int n = act_halt_step(halt, threshold, L, N, r);
        float cum = 0.0f;
        for (int i = 0; i < n; i++) {
            weight[(size_t)i * N + r] = halt[(size_t)i * N + r];
            cum += halt[(size_t)i * N + r];
        }
        float R = 1.0f - cum;
        weight[(size_t)n * N + r] = R;
        for (int i = n + 1; i < L; i++) weight[(size_t)i * N + r] = 0.0f;
        ponder[r] = (float)(n + 1) + R;
    }
}

void act_halting_backward(float *dhalt, const float *dweight, const float *halt,
                          const float *mask, float ponder_scale, float threshold, int L, int N)
{
    for (int r = 0; r < N; r++) {
        int n = act_halt_step(halt, threshold, L, N, r);
        float dR = dweight[(size_t)n * N + r], dponder = ponder_scale * mask[r];
        for (int i = 0; i < L; i++) {
            size_t j = (size_t)i * N + r;
            float dp = i < n ? dweight[j] - dR - dponder : 0.0f;
            dhalt[j] = dp * halt[j] * (1.0f - halt[j]);
        }
    }
}

void weighted_rows_forward(float *out, const float *w, const float *x, int N, int C,
                           int accumulate)
{
    for (int r = 0; r < N; r++) {
        float *o = out + (size_t)r * C;
        const float *xr = x + (size_t)r * C;
        if (accumulate)
            for (int c = 0; c < C; c++) o[c] += w[r] * xr[c];
        else
            for (int c = 0; c < C; c++) o[c] = w[r] * xr[c];
    }
}

void weighted_rows_backward(float *dw, float *dx, const float *dout, const float *w,
                            const float *x, int N, int C)
{
    for (int r = 0; r < N; r++) {
        const float *d = dout + (size_t)r * C, *xr = x + (size_t)r * C;
        if (dw) {
            float s = 0.0f;
            for (int c = 0; c < C; c++) s += d[c] * xr[c];
            dw[r] = s;
        }
        if (dx)
            for (int c = 0; c < C; c++) dx[(size_t)r * C + c] += w[r] * d[c];
    }
}
