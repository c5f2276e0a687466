/* model_cuda.c: the CUDA backend, model_cpu.c's twin on the GPU. Same structure, same names,
 * same order of operations: the four flat buffers (parameters, gradients, Adam moments) in
 * model_tensors() order live in device memory (one cudaMalloc each, the views of
 * model_internal.h point into them), activations in one device allocation carved exactly as
 * model_cpu.c carves its own, and every layer is the _cuda twin of the CPU call at the same
 * place (model/cuda/layers_cuda.h). Token ids are framed on the host and uploaded per batch.
 *
 * Host synchronisation points: the loss (per-row losses are summed on the host in row order),
 * the gradient norm, copy_out/copy_logits and the decoding logits.
 * Decoding keeps a key/value cache on the device, as the CPU backend does on the host; the
 * beam reorder gathers cache rows on the device.
 * Every CUDA and cuBLAS call is checked (cuda_check.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include "common/common.h"
#include "encoding/encoding.h"
#include "model/cuda/cuda_check.h"
#include "model/cuda/layers_cuda.h"
#include "model/model_internal.h"

typedef struct {
    float *qkv, *att, *atty, *res1, *mean1, *rstd1, *x1, *h, *res2, *mean2, *rstd2, *x2;
} enc_acts;

typedef struct {
    float *qkv, *att, *atty, *res1, *mean1, *rstd1, *y1;
    float *q, *kv, *catt, *catty, *res2, *mean2, *rstd2, *y2;
    float *h, *res3, *mean3, *rstd3, *y3;
} dec_acts;

/* Decoding state for R rows, as in model_cpu.c (all float buffers on the device). */
typedef struct {
    int R_cap, R, rows_per_src, S;
    float *mem;
    float **kc, **vc, **kc2, **vc2, **ckv;
    float *emb, *y, *qkv, *atty, *res, *x, *q, *h, *mean, *rstd, *att, *logits;
    int *ints;                          /* device: tokens, src_len, key_len, index (R each) */
    int *d_tokens, *d_src_len, *d_key_len, *d_index;
    int *key_len, *src_len, *index;     /* host (R each) */
    float *host_logits;                 /* (R, vocab_out) */
} decode_state;

typedef struct {
    model_config cfg;
    int maxB, L;
    size_t np;
    blas_cuda blas;
    float *params, *grads, *adam_m, *adam_v; /* device */
    model_views P, G;

    float *act; /* device */
    float *enc_emb, *enc_emb_mean, *enc_emb_rstd, *enc_x0;
    enc_acts *enc;
    float *dec_emb, *dec_emb_mean, *dec_emb_rstd, *dec_y0;
    dec_acts *dec;
    float *logits, *probs;
    float *g1, *g2, *gh, *gqkv, *gatty, *gq, *gkv, *genc;
    float *scratch;
    double *row_loss, *partials; /* device */

    /* token ids: host copies and their device twins (one device allocation, ints) */
    int *ints;
    int *src, *src_len, *dec_in, *targets;
    int *d_src, *d_src_len, *d_dec_in, *d_targets;
    int *enc_rows, *enc_start, *dec_rows, *dec_start; /* embedding_index_build, host */
    int *d_enc_rows, *d_enc_start, *d_dec_rows, *d_dec_start;
    double *host_row_loss;
    float *host_prefix_logits;
    int B, S, Tq, have_forward;

    decode_state ds;
} cuda_model;

/* ---- device, precision ---- */

static int precision_set = -1;

void model_set_cuda_precision(model_precision p) { precision_set = (int)p; }

static model_precision precision_wanted(void)
{
    if (precision_set >= 0) return (model_precision)precision_set;
    const char *e = getenv("LAWT_CUDA_PRECISION");
    if (!e || !*e || !strcmp(e, "fp32")) return PRECISION_FP32;
    if (!strcmp(e, "tf32")) return PRECISION_TF32;
    if (!strcmp(e, "bf16")) return PRECISION_BF16;
    lawt_die("model: LAWT_CUDA_PRECISION=%s: expected fp32, tf32 or bf16", e);
}

int model_cuda_built(void) { return 1; }

int model_cuda_available(void)
{
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) {
        (void)cudaGetLastError(); /* clear it: later calls must not report it again */
        return 0;
    }
    return 1;
}

static int device_rank = -1;

void model_set_cuda_device_for_rank(int local_rank) { device_rank = local_rank; }

static void select_device(void)
{
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        lawt_die("model: no CUDA device: cudaGetDeviceCount: %s", cudaGetErrorString(e));
    }
    if (n == 0) lawt_die("model: no CUDA device: cudaGetDeviceCount: 0 devices");
    const char *env = getenv("LAWT_CUDA_DEVICE");
    if (env && *env) {
        char *end;
        long d = strtol(env, &end, 10);
        if (*end || d < 0 || d >= n)
            lawt_die("model: LAWT_CUDA_DEVICE=%s: expected a device ordinal in [0, %d)", env, n);
        CUDA_CHECK(cudaSetDevice((int)d));
    } else if (device_rank >= 0) {
        CUDA_CHECK(cudaSetDevice(device_rank % n));
    }
}

/* ---- allocation: the bump allocator of model_cpu.c, over device memory ---- */

typedef struct {
    float *base;
    size_t off;
} bump;

static float *take(bump *b, size_t n)
{
    float *p = b->base ? b->base + b->off : NULL;
    b->off += (n + 63) / 64 * 64; /* 256-byte aligned views */
    return p;
}

static void *dev_alloc(size_t bytes)
{
    void *p = NULL;
    if (bytes == 0) bytes = 256;
    CUDA_CHECK(cudaMalloc(&p, bytes));
    return p;
}

static size_t max_sz(size_t a, size_t b) { return a > b ? a : b; }

static void carve(cuda_model *st, bump *b)
{
    const model_config *c = &st->cfg;
    const size_t L = (size_t)st->L, NB = (size_t)st->maxB * L;
    const size_t de = (size_t)c->enc_dim, dd = (size_t)c->dec_dim, V = (size_t)c->vocab_out;
    const size_t He = (size_t)c->enc_heads, Hd = (size_t)c->dec_heads;
    const size_t B = (size_t)st->maxB;
    st->enc_emb = take(b, NB * de);
    st->enc_emb_mean = take(b, NB);
    st->enc_emb_rstd = take(b, NB);
    st->enc_x0 = take(b, NB * de);
    for (int l = 0; l < c->enc_layers; l++) {
        enc_acts *a = &st->enc[l];
        a->qkv = take(b, NB * 3 * de);
        a->att = take(b, B * He * L * L);
        a->atty = take(b, NB * de);
        a->res1 = take(b, NB * de);
        a->mean1 = take(b, NB);
        a->rstd1 = take(b, NB);
        a->x1 = take(b, NB * de);
        a->h = take(b, NB * 4 * de);
        a->res2 = take(b, NB * de);
        a->mean2 = take(b, NB);
        a->rstd2 = take(b, NB);
        a->x2 = take(b, NB * de);
    }
    st->dec_emb = take(b, NB * dd);
    st->dec_emb_mean = take(b, NB);
    st->dec_emb_rstd = take(b, NB);
    st->dec_y0 = take(b, NB * dd);
    for (int l = 0; l < c->dec_layers; l++) {
        dec_acts *a = &st->dec[l];
        a->qkv = take(b, NB * 3 * dd);
        a->att = take(b, B * Hd * L * L);
        a->atty = take(b, NB * dd);
        a->res1 = take(b, NB * dd);
        a->mean1 = take(b, NB);
        a->rstd1 = take(b, NB);
        a->y1 = take(b, NB * dd);
        a->q = take(b, NB * dd);
        a->kv = take(b, NB * 2 * dd);
        a->catt = take(b, B * Hd * L * L);
        a->catty = take(b, NB * dd);
        a->res2 = take(b, NB * dd);
        a->mean2 = take(b, NB);
        a->rstd2 = take(b, NB);
        a->y2 = take(b, NB * dd);
        a->h = take(b, NB * 4 * dd);
        a->res3 = take(b, NB * dd);
        a->mean3 = take(b, NB);
        a->rstd3 = take(b, NB);
        a->y3 = take(b, NB * dd);
    }
    st->logits = take(b, NB * V);
    st->probs = take(b, NB * V);
    const size_t dmax = max_sz(de, dd);
    st->g1 = take(b, NB * dmax);
    st->g2 = take(b, NB * dmax);
    st->gh = take(b, NB * 4 * dmax);
    st->gqkv = take(b, NB * 3 * dmax);
    st->gatty = take(b, NB * dmax);
    st->gq = take(b, NB * dd);
    st->gkv = take(b, NB * 2 * dd);
    st->genc = take(b, NB * de);
    st->scratch = take(b, (size_t)attention_scratch_floats_cuda(
                              (int)B, (int)max_sz(He, Hd), (int)L, (int)L));
}

/* Page-locked host memory: what crosses to or from the device every step is staged here, so
 * that copies are DMA transfers, not staged again by the driver through a pageable bounce. */
static void *pinned_alloc(size_t bytes)
{
    void *p = NULL;
    CUDA_CHECK(cudaHostAlloc(&p, bytes > 0 ? bytes : 1, cudaHostAllocDefault));
    return p;
}

static void pinned_free(void *p)
{
    if (p) CUDA_CHECK(cudaFreeHost(p));
}

static void *cuda_create(const model_config *cfg, int max_batch, size_t nparams)
{
    select_device();
    model_precision prec = precision_wanted();
    cuda_model *st = lawt_calloc(1, sizeof *st);
    st->cfg = *cfg;
    st->maxB = max_batch;
    st->L = cfg->max_len;
    st->np = nparams;
    CUBLAS_CHECK(cublasCreate(&st->blas.handle));
    st->blas.compute = prec == PRECISION_TF32   ? CUBLAS_COMPUTE_32F_FAST_TF32
                       : prec == PRECISION_BF16 ? CUBLAS_COMPUTE_32F_FAST_16BF
                                                 : CUBLAS_COMPUTE_32F;
    const size_t pb = nparams * sizeof(float);
    st->params = dev_alloc(pb);
    st->grads = dev_alloc(pb);
    st->adam_m = dev_alloc(pb);
    st->adam_v = dev_alloc(pb);
    CUDA_CHECK(cudaMemset(st->params, 0, pb));
    CUDA_CHECK(cudaMemset(st->grads, 0, pb));
    CUDA_CHECK(cudaMemset(st->adam_m, 0, pb));
    CUDA_CHECK(cudaMemset(st->adam_v, 0, pb));
    model_views_bind(&st->P, cfg, st->params);
    model_views_bind(&st->G, cfg, st->grads);
    st->enc = lawt_calloc((size_t)cfg->enc_layers, sizeof *st->enc);
    st->dec = lawt_calloc((size_t)cfg->dec_layers, sizeof *st->dec);
    bump b = {0};
    carve(st, &b);
    st->act = dev_alloc(b.off * sizeof(float));
    b = (bump){st->act, 0};
    carve(st, &b);

    const size_t NB = (size_t)max_batch * (size_t)st->L, mb = (size_t)max_batch;
    const size_t vi = (size_t)cfg->vocab_in + 1, vo = (size_t)cfg->vocab_out + 1;
    const size_t nints = 5 * NB + mb + vi + vo;
    st->ints = dev_alloc(nints * sizeof(int));
    int *p = st->ints;
    st->d_src = p, p += NB;
    st->d_src_len = p, p += mb;
    st->d_dec_in = p, p += NB;
    st->d_targets = p, p += NB;
    st->d_enc_rows = p, p += NB;
    st->d_enc_start = p, p += vi;
    st->d_dec_rows = p, p += NB;
    st->d_dec_start = p;
    st->src = pinned_alloc(NB * sizeof(int));
    st->src_len = pinned_alloc(mb * sizeof(int));
    st->dec_in = pinned_alloc(NB * sizeof(int));
    st->targets = pinned_alloc(NB * sizeof(int));
    st->enc_rows = lawt_malloc(NB * sizeof(int));
    st->enc_start = lawt_malloc(vi * sizeof(int));
    st->dec_rows = lawt_malloc(NB * sizeof(int));
    st->dec_start = lawt_malloc(vo * sizeof(int));
    st->row_loss = dev_alloc(NB * sizeof(double));
    st->host_row_loss = pinned_alloc(NB * sizeof(double));
    st->partials = dev_alloc(sumsq_partials_cuda(nparams) * sizeof(double));
    st->host_prefix_logits = pinned_alloc(mb * (size_t)cfg->vocab_out * sizeof(float));
    return st;
}

static void decode_free(decode_state *ds)
{
    if (ds->mem) CUDA_CHECK(cudaFree(ds->mem));
    if (ds->ints) CUDA_CHECK(cudaFree(ds->ints));
    free(ds->kc);
    free(ds->vc);
    free(ds->kc2);
    free(ds->vc2);
    free(ds->ckv);
    free(ds->key_len);
    free(ds->src_len);
    free(ds->index);
    pinned_free(ds->host_logits);
    memset(ds, 0, sizeof *ds);
}

static void cuda_destroy(void *impl)
{
    cuda_model *st = impl;
    decode_free(&st->ds);
    CUDA_CHECK(cudaFree(st->params));
    CUDA_CHECK(cudaFree(st->grads));
    CUDA_CHECK(cudaFree(st->adam_m));
    CUDA_CHECK(cudaFree(st->adam_v));
    CUDA_CHECK(cudaFree(st->act));
    CUDA_CHECK(cudaFree(st->ints));
    CUDA_CHECK(cudaFree(st->row_loss));
    CUDA_CHECK(cudaFree(st->partials));
    CUBLAS_CHECK(cublasDestroy(st->blas.handle));
    model_views_free(&st->P);
    model_views_free(&st->G);
    free(st->enc);
    free(st->dec);
    pinned_free(st->src);
    pinned_free(st->src_len);
    pinned_free(st->dec_in);
    pinned_free(st->targets);
    free(st->enc_rows);
    free(st->enc_start);
    free(st->dec_rows);
    free(st->dec_start);
    pinned_free(st->host_row_loss);
    pinned_free(st->host_prefix_logits);
    free(st);
}

static float *buffer(const cuda_model *st, model_buffer which)
{
    switch (which) {
    case BUF_PARAMS: return st->params;
    case BUF_GRADS: return st->grads;
    case BUF_ADAM_M: return st->adam_m;
    case BUF_ADAM_V: return st->adam_v;
    }
    lawt_die("model: unknown buffer %d", (int)which);
}

static void cuda_copy_out(const void *impl, model_buffer which, float *dst)
{
    const cuda_model *st = impl;
    CUDA_CHECK(cudaMemcpy(dst, buffer(st, which), st->np * sizeof(float),
                          cudaMemcpyDeviceToHost));
}

static float *cuda_grads(void *impl) { return ((cuda_model *)impl)->grads; }

static void cuda_copy_in(void *impl, model_buffer which, const float *src)
{
    cuda_model *st = impl;
    CUDA_CHECK(cudaMemcpy(buffer(st, which), src, st->np * sizeof(float),
                          cudaMemcpyHostToDevice));
}

static void cuda_zero_grad(void *impl)
{
    cuda_model *st = impl;
    CUDA_CHECK(cudaMemset(st->grads, 0, st->np * sizeof(float)));
}

static void upload_ints(int *dst, const int *src, size_t n)
{
    CUDA_CHECK(cudaMemcpy(dst, src, n * sizeof(int), cudaMemcpyHostToDevice));
}

/* ---- forward ---- */

static const float *enc_out(const cuda_model *st) { return st->enc[st->cfg.enc_layers - 1].x2; }

/* Encoder over d_src (B, S) with d_src_len (B), as uploaded. */
static void encoder_forward(cuda_model *st, int B, int S)
{
    const model_config *c = &st->cfg;
    const int d = c->enc_dim, H = c->enc_heads, N = B * S;
    const blas_cuda *h = &st->blas;
    embedding_forward_cuda(st->enc_emb, st->d_src, st->P.enc_tok, st->P.enc_pos, B, S, d);
    layernorm_forward_cuda(st->enc_x0, st->enc_emb_mean, st->enc_emb_rstd, st->enc_emb,
                           st->P.enc_ln_w, st->P.enc_ln_b, N, d);
    const float *x = st->enc_x0;
    for (int l = 0; l < c->enc_layers; l++) {
        const enc_layer_views *p = &st->P.enc[l];
        enc_acts *a = &st->enc[l];
        linear_forward_cuda(h, a->qkv, x, p->qkv_w, p->qkv_b, NULL, N, d, 3 * d);
        attention_forward_cuda(a->atty, a->att, st->scratch, a->qkv, a->qkv + d, a->qkv + 2 * d,
                               3 * d, 3 * d, st->d_src_len, 0, B, S, S, H, d / H);
        linear_forward_cuda(h, a->res1, a->atty, p->out_w, p->out_b, x, N, d, d);
        layernorm_forward_cuda(a->x1, a->mean1, a->rstd1, a->res1, p->ln1_w, p->ln1_b, N, d);
        linear_forward_cuda(h, a->h, a->x1, p->fc1_w, p->fc1_b, NULL, N, d, 4 * d);
        relu_forward_cuda(a->h, a->h, (long)N * 4 * d);
        linear_forward_cuda(h, a->res2, a->h, p->fc2_w, p->fc2_b, a->x1, N, 4 * d, d);
        layernorm_forward_cuda(a->x2, a->mean2, a->rstd2, a->res2, p->ln2_w, p->ln2_b, N, d);
        x = a->x2;
    }
}

/* Decoder over d_dec_in (B, Tq) against the encoder output (B, S); logits into st->logits. */
static void decoder_forward(cuda_model *st, int B, int Tq, int S)
{
    const model_config *c = &st->cfg;
    const int d = c->dec_dim, de = c->enc_dim, H = c->dec_heads, M = B * Tq, N = B * S;
    const blas_cuda *h = &st->blas;
    embedding_forward_cuda(st->dec_emb, st->d_dec_in, st->P.dec_tok, st->P.dec_pos, B, Tq, d);
    layernorm_forward_cuda(st->dec_y0, st->dec_emb_mean, st->dec_emb_rstd, st->dec_emb,
                           st->P.dec_ln_w, st->P.dec_ln_b, M, d);
    const float *y = st->dec_y0;
    for (int l = 0; l < c->dec_layers; l++) {
        const dec_layer_views *p = &st->P.dec[l];
        dec_acts *a = &st->dec[l];
        /* causal self-attention */
        linear_forward_cuda(h, a->qkv, y, p->qkv_w, p->qkv_b, NULL, M, d, 3 * d);
        attention_forward_cuda(a->atty, a->att, st->scratch, a->qkv, a->qkv + d, a->qkv + 2 * d,
                               3 * d, 3 * d, NULL, 1, B, Tq, Tq, H, d / H);
        linear_forward_cuda(h, a->res1, a->atty, p->out_w, p->out_b, y, M, d, d);
        layernorm_forward_cuda(a->y1, a->mean1, a->rstd1, a->res1, p->ln1_w, p->ln1_b, M, d);
        /* cross-attention over the encoder output, padded source keys masked */
        linear_forward_cuda(h, a->q, a->y1, p->cq_w, p->cq_b, NULL, M, d, d);
        linear_forward_cuda(h, a->kv, enc_out(st), p->ckv_w, p->ckv_b, NULL, N, de, 2 * d);
        attention_forward_cuda(a->catty, a->catt, st->scratch, a->q, a->kv, a->kv + d, d, 2 * d,
                               st->d_src_len, 0, B, Tq, S, H, d / H);
        linear_forward_cuda(h, a->res2, a->catty, p->cout_w, p->cout_b, a->y1, M, d, d);
        layernorm_forward_cuda(a->y2, a->mean2, a->rstd2, a->res2, p->ln2_w, p->ln2_b, M, d);
        /* feed-forward */
        linear_forward_cuda(h, a->h, a->y2, p->fc1_w, p->fc1_b, NULL, M, d, 4 * d);
        relu_forward_cuda(a->h, a->h, (long)M * 4 * d);
        linear_forward_cuda(h, a->res3, a->h, p->fc2_w, p->fc2_b, a->y2, M, 4 * d, d);
        layernorm_forward_cuda(a->y3, a->mean3, a->rstd3, a->res3, p->ln3_w, p->ln3_b, M, d);
        y = a->y3;
    }
    /* tied output projection */
    linear_forward_cuda(h, st->logits, y, st->P.dec_tok, st->P.out_bias, NULL, M, d,
                        c->vocab_out);
}

static double cuda_forward(void *impl, const model_batch *bt, long *ntokens)
{
    cuda_model *st = impl;
    const int B = bt->B, S = bt->S, T = bt->T, Tq = T - 1;
    memcpy(st->src, bt->src, (size_t)B * S * sizeof(int));
    memcpy(st->src_len, bt->src_len, (size_t)B * sizeof(int));
    long nt = 0;
    for (int b = 0; b < B; b++) {
        for (int t = 0; t < Tq; t++) {
            st->dec_in[b * Tq + t] = bt->tgt[(size_t)b * T + t];
            int counted = t + 1 < bt->tgt_len[b];
            st->targets[b * Tq + t] = counted ? bt->tgt[(size_t)b * T + t + 1] : -1;
            nt += counted;
        }
    }
    upload_ints(st->d_src, st->src, (size_t)B * S);
    upload_ints(st->d_src_len, st->src_len, (size_t)B);
    upload_ints(st->d_dec_in, st->dec_in, (size_t)B * Tq);
    upload_ints(st->d_targets, st->targets, (size_t)B * Tq);
    encoder_forward(st, B, S);
    decoder_forward(st, B, Tq, S);
    double loss = crossentropy_forward_cuda(st->probs, st->row_loss, st->logits, st->d_targets,
                                            B * Tq, st->cfg.vocab_out, st->host_row_loss);
    st->B = B;
    st->S = S;
    st->Tq = Tq;
    st->have_forward = 1;
    *ntokens = nt;
    return loss;
}

static void cuda_copy_logits(const void *impl, float *dst)
{
    const cuda_model *st = impl;
    if (!st->have_forward) lawt_die("model: copy_logits before any forward");
    CUDA_CHECK(cudaMemcpy(dst, st->logits,
                          (size_t)st->B * st->Tq * st->cfg.vocab_out * sizeof(float),
                          cudaMemcpyDeviceToHost));
}

/* ---- backward ---- */

static void cuda_backward(void *impl, const model_batch *bt, float loss_scale)
{
    cuda_model *st = impl;
    const model_config *c = &st->cfg;
    if (!st->have_forward || bt->B != st->B || bt->S != st->S || bt->T - 1 != st->Tq)
        lawt_die("model: backward needs the forward of the same batch just before");
    const int B = st->B, S = st->S, Tq = st->Tq, M = B * Tq, N = B * S;
    const int dd = c->dec_dim, de = c->enc_dim, V = c->vocab_out;
    const model_views *P = &st->P, *G = &st->G;
    const blas_cuda *hb = &st->blas;

    /* the embedding gradients' token indexes (host), uploaded while the GPU works */
    embedding_index_build(st->dec_rows, st->dec_start, st->dec_in, M, V);
    embedding_index_build(st->enc_rows, st->enc_start, st->src, N, c->vocab_in);
    upload_ints(st->d_dec_rows, st->dec_rows, (size_t)M);
    upload_ints(st->d_dec_start, st->dec_start, (size_t)V + 1);
    upload_ints(st->d_enc_rows, st->enc_rows, (size_t)N);
    upload_ints(st->d_enc_start, st->enc_start, (size_t)c->vocab_in + 1);

    /* loss and output projection */
    crossentropy_backward_cuda(st->probs, st->d_targets, loss_scale, M, V);
    const float *y_last = st->dec[c->dec_layers - 1].y3;
    float *X = st->g1, *Dt = st->g2;
    linear_backward_cuda(hb, X, G->dec_tok, G->out_bias, st->probs, y_last, P->dec_tok, M, dd,
                         V, 0);

    /* decoder layers, last first; X holds the gradient of the layer output */
    for (int l = c->dec_layers - 1; l >= 0; l--) {
        const dec_layer_views *p = &P->dec[l];
        const dec_layer_views *g = &G->dec[l];
        dec_acts *a = &st->dec[l];
        const float *yin = l > 0 ? st->dec[l - 1].y3 : st->dec_y0;
        const int H = c->dec_heads, D = dd / H;
        /* feed-forward block */
        layernorm_backward_cuda(Dt, g->ln3_w, g->ln3_b, X, a->res3, p->ln3_w, a->mean3,
                                a->rstd3, M, dd);
        linear_backward_cuda(hb, st->gh, g->fc2_w, g->fc2_b, Dt, a->h, p->fc2_w, M, 4 * dd, dd,
                             0);
        relu_backward_cuda(st->gh, st->gh, a->h, (long)M * 4 * dd);
        linear_backward_cuda(hb, Dt, g->fc1_w, g->fc1_b, st->gh, a->y2, p->fc1_w, M, dd, 4 * dd,
                             1);
        /* cross-attention block */
        layernorm_backward_cuda(X, g->ln2_w, g->ln2_b, Dt, a->res2, p->ln2_w, a->mean2,
                                a->rstd2, M, dd);
        linear_backward_cuda(hb, st->gatty, g->cout_w, g->cout_b, X, a->catty, p->cout_w, M, dd,
                             dd, 0);
        attention_backward_cuda(st->gq, st->gkv, st->gkv + dd, st->scratch, st->gatty, a->catt,
                                a->q, a->kv, a->kv + dd, dd, 2 * dd, st->d_src_len, 0, B, Tq,
                                S, H, D);
        linear_backward_cuda(hb, st->genc, g->ckv_w, g->ckv_b, st->gkv, enc_out(st), p->ckv_w,
                             N, de, 2 * dd, l != c->dec_layers - 1);
        linear_backward_cuda(hb, X, g->cq_w, g->cq_b, st->gq, a->y1, p->cq_w, M, dd, dd, 1);
        /* causal self-attention block */
        layernorm_backward_cuda(Dt, g->ln1_w, g->ln1_b, X, a->res1, p->ln1_w, a->mean1,
                                a->rstd1, M, dd);
        linear_backward_cuda(hb, st->gatty, g->out_w, g->out_b, Dt, a->atty, p->out_w, M, dd,
                             dd, 0);
        attention_backward_cuda(st->gqkv, st->gqkv + dd, st->gqkv + 2 * dd, st->scratch,
                                st->gatty, a->att, a->qkv, a->qkv + dd, a->qkv + 2 * dd,
                                3 * dd, 3 * dd, NULL, 1, B, Tq, Tq, H, D);
        linear_backward_cuda(hb, Dt, g->qkv_w, g->qkv_b, st->gqkv, yin, p->qkv_w, M, dd,
                             3 * dd, 1);
        float *sw = X;
        X = Dt;
        Dt = sw;
    }
    /* decoder embeddings (the token table also holds the output projection's gradient) */
    layernorm_backward_cuda(Dt, G->dec_ln_w, G->dec_ln_b, X, st->dec_emb, P->dec_ln_w,
                            st->dec_emb_mean, st->dec_emb_rstd, M, dd);
    embedding_backward_cuda(G->dec_tok, G->dec_pos, Dt, st->d_dec_rows, st->d_dec_start, B, Tq,
                            dd, V);

    /* encoder layers, last first; genc holds the gradient of the layer output throughout */
    X = st->genc;
    Dt = st->g2;
    for (int l = c->enc_layers - 1; l >= 0; l--) {
        const enc_layer_views *p = &P->enc[l];
        const enc_layer_views *g = &G->enc[l];
        enc_acts *a = &st->enc[l];
        const float *xin = l > 0 ? st->enc[l - 1].x2 : st->enc_x0;
        const int H = c->enc_heads, D = de / H;
        layernorm_backward_cuda(Dt, g->ln2_w, g->ln2_b, X, a->res2, p->ln2_w, a->mean2,
                                a->rstd2, N, de);
        linear_backward_cuda(hb, st->gh, g->fc2_w, g->fc2_b, Dt, a->h, p->fc2_w, N, 4 * de, de,
                             0);
        relu_backward_cuda(st->gh, st->gh, a->h, (long)N * 4 * de);
        linear_backward_cuda(hb, Dt, g->fc1_w, g->fc1_b, st->gh, a->x1, p->fc1_w, N, de, 4 * de,
                             1);
        layernorm_backward_cuda(X, g->ln1_w, g->ln1_b, Dt, a->res1, p->ln1_w, a->mean1,
                                a->rstd1, N, de);
        linear_backward_cuda(hb, st->gatty, g->out_w, g->out_b, X, a->atty, p->out_w, N, de, de,
                             0);
        attention_backward_cuda(st->gqkv, st->gqkv + de, st->gqkv + 2 * de, st->scratch,
                                st->gatty, a->att, a->qkv, a->qkv + de, a->qkv + 2 * de, 3 * de,
                                3 * de, st->d_src_len, 0, B, S, S, H, D);
        linear_backward_cuda(hb, X, g->qkv_w, g->qkv_b, st->gqkv, xin, p->qkv_w, N, de, 3 * de,
                             1);
    }
    layernorm_backward_cuda(Dt, G->enc_ln_w, G->enc_ln_b, X, st->enc_emb, P->enc_ln_w,
                            st->enc_emb_mean, st->enc_emb_rstd, N, de);
    embedding_backward_cuda(G->enc_tok, G->enc_pos, Dt, st->d_enc_rows, st->d_enc_start, B, S,
                            de, c->vocab_in);
    st->have_forward = 0; /* probs now hold dlogits */
}

/* ---- optimizer ---- */

static double cuda_grad_norm(const void *impl)
{
    const cuda_model *st = impl;
    return sqrt(sumsq_cuda(st->grads, st->np, st->partials));
}

static void cuda_adam_step(void *impl, const adam_hparams *hp, long step, float grad_scale)
{
    cuda_model *st = impl;
    float ib1 = 1.0f / (float)(1.0 - pow((double)hp->beta1, (double)step));
    float ib2 = 1.0f / (float)(1.0 - pow((double)hp->beta2, (double)step));
    adam_update_cuda(st->params, st->adam_m, st->adam_v, st->grads, st->np, hp->lr, hp->beta1,
                     hp->beta2, hp->eps, ib1, ib2, grad_scale);
}

/* ---- decoding ---- */

static void decode_alloc(cuda_model *st, int R)
{
    decode_state *ds = &st->ds;
    if (R <= ds->R_cap) return;
    decode_free(ds);
    const model_config *c = &st->cfg;
    const size_t L = (size_t)st->L, dd = (size_t)c->dec_dim, nl = (size_t)c->dec_layers;
    const size_t r = (size_t)R;
    ds->kc = lawt_calloc(nl, sizeof(float *));
    ds->vc = lawt_calloc(nl, sizeof(float *));
    ds->kc2 = lawt_calloc(nl, sizeof(float *));
    ds->vc2 = lawt_calloc(nl, sizeof(float *));
    ds->ckv = lawt_calloc(nl, sizeof(float *));
    for (int pass = 0; pass < 2; pass++) {
        bump b = {pass ? ds->mem : NULL, 0};
        for (size_t l = 0; l < nl; l++) {
            ds->kc[l] = take(&b, r * L * dd);
            ds->vc[l] = take(&b, r * L * dd);
            ds->kc2[l] = take(&b, r * L * dd);
            ds->vc2[l] = take(&b, r * L * dd);
            ds->ckv[l] = take(&b, r * L * 2 * dd);
        }
        ds->emb = take(&b, r * dd);
        ds->y = take(&b, r * dd);
        ds->qkv = take(&b, r * 3 * dd);
        ds->atty = take(&b, r * dd);
        ds->res = take(&b, r * dd);
        ds->x = take(&b, r * dd);
        ds->q = take(&b, r * dd);
        ds->h = take(&b, r * 4 * dd);
        ds->mean = take(&b, r);
        ds->rstd = take(&b, r);
        ds->att = take(&b, r * (size_t)c->dec_heads * L);
        ds->logits = take(&b, r * (size_t)c->vocab_out);
        if (!pass) ds->mem = dev_alloc(b.off * sizeof(float));
    }
    ds->ints = dev_alloc(4 * r * sizeof(int));
    ds->d_tokens = ds->ints;
    ds->d_src_len = ds->ints + r;
    ds->d_key_len = ds->ints + 2 * r;
    ds->d_index = ds->ints + 3 * r;
    ds->key_len = lawt_malloc(r * sizeof(int));
    ds->src_len = lawt_malloc(r * sizeof(int));
    ds->index = lawt_malloc(r * sizeof(int));
    ds->host_logits = pinned_alloc(r * (size_t)c->vocab_out * sizeof(float));
    ds->R_cap = R;
}

static void cuda_decode_begin(void *impl, const int *src, const int *src_len, int B, int S,
                              int rows_per_src)
{
    cuda_model *st = impl;
    const model_config *c = &st->cfg;
    const int R = B * rows_per_src, dd = c->dec_dim, de = c->enc_dim;
    decode_alloc(st, R);
    decode_state *ds = &st->ds;
    ds->R = R;
    ds->rows_per_src = rows_per_src;
    ds->S = S;
    memcpy(st->src, src, (size_t)B * S * sizeof(int));
    memcpy(st->src_len, src_len, (size_t)B * sizeof(int));
    upload_ints(st->d_src, st->src, (size_t)B * S);
    upload_ints(st->d_src_len, st->src_len, (size_t)B);
    st->have_forward = 0;
    encoder_forward(st, B, S);
    st->B = B;
    st->S = S;
    for (int r = 0; r < R; r++) {
        ds->src_len[r] = src_len[r / rows_per_src];
        ds->index[r] = r / rows_per_src;
    }
    upload_ints(ds->d_src_len, ds->src_len, (size_t)R);
    upload_ints(ds->d_index, ds->index, (size_t)R);
    for (int l = 0; l < c->dec_layers; l++) {
        const dec_layer_views *p = &st->P.dec[l];
        if (rows_per_src == 1) {
            linear_forward_cuda(&st->blas, ds->ckv[l], enc_out(st), p->ckv_w, p->ckv_b, NULL,
                                B * S, de, 2 * dd);
        } else {
            /* compute into a training buffer, then replicate each source's block */
            float *tmp = st->dec[0].kv; /* (B*S, 2dd), free while decoding */
            linear_forward_cuda(&st->blas, tmp, enc_out(st), p->ckv_w, p->ckv_b, NULL, B * S, de,
                                2 * dd);
            long blk = (long)S * 2 * dd;
            gather_rows_cuda(ds->ckv[l], tmp, ds->d_index, R, blk, blk);
        }
    }
}

static const float *cuda_decode_step(void *impl, const int *tokens, int t)
{
    cuda_model *st = impl;
    const model_config *c = &st->cfg;
    decode_state *ds = &st->ds;
    const int R = ds->R, S = ds->S, d = c->dec_dim, H = c->dec_heads, D = d / H, L = st->L;
    const blas_cuda *h = &st->blas;
    for (int r = 0; r < R; r++) ds->key_len[r] = t + 1;
    upload_ints(ds->d_tokens, tokens, (size_t)R);
    upload_ints(ds->d_key_len, ds->key_len, (size_t)R);
    /* one position: the position table from row t, read as a table of one row */
    embedding_forward_cuda(ds->emb, ds->d_tokens, st->P.dec_tok, st->P.dec_pos + (size_t)t * d,
                           R, 1, d);
    layernorm_forward_cuda(ds->y, ds->mean, ds->rstd, ds->emb, st->P.dec_ln_w, st->P.dec_ln_b,
                           R, d);
    for (int l = 0; l < c->dec_layers; l++) {
        const dec_layer_views *p = &st->P.dec[l];
        /* self-attention: append this position's key and value, attend over positions <= t */
        linear_forward_cuda(h, ds->qkv, ds->y, p->qkv_w, p->qkv_b, NULL, R, d, 3 * d);
        const size_t fs = sizeof(float);
        CUDA_CHECK(cudaMemcpy2D(ds->kc[l] + (size_t)t * d, (size_t)L * d * fs, ds->qkv + d,
                                (size_t)3 * d * fs, (size_t)d * fs, (size_t)R,
                                cudaMemcpyDeviceToDevice));
        CUDA_CHECK(cudaMemcpy2D(ds->vc[l] + (size_t)t * d, (size_t)L * d * fs, ds->qkv + 2 * d,
                                (size_t)3 * d * fs, (size_t)d * fs, (size_t)R,
                                cudaMemcpyDeviceToDevice));
        attention_forward_cuda(ds->atty, ds->att, st->scratch, ds->qkv, ds->kc[l], ds->vc[l],
                               3 * d, d, ds->d_key_len, 0, R, 1, L, H, D);
        linear_forward_cuda(h, ds->res, ds->atty, p->out_w, p->out_b, ds->y, R, d, d);
        layernorm_forward_cuda(ds->x, ds->mean, ds->rstd, ds->res, p->ln1_w, p->ln1_b, R, d);
        /* cross-attention on the cached encoder keys/values */
        linear_forward_cuda(h, ds->q, ds->x, p->cq_w, p->cq_b, NULL, R, d, d);
        attention_forward_cuda(ds->atty, ds->att, st->scratch, ds->q, ds->ckv[l],
                               ds->ckv[l] + d, d, 2 * d, ds->d_src_len, 0, R, 1, S, H, D);
        linear_forward_cuda(h, ds->res, ds->atty, p->cout_w, p->cout_b, ds->x, R, d, d);
        layernorm_forward_cuda(ds->y, ds->mean, ds->rstd, ds->res, p->ln2_w, p->ln2_b, R, d);
        /* feed-forward */
        linear_forward_cuda(h, ds->h, ds->y, p->fc1_w, p->fc1_b, NULL, R, d, 4 * d);
        relu_forward_cuda(ds->h, ds->h, (long)R * 4 * d);
        linear_forward_cuda(h, ds->res, ds->h, p->fc2_w, p->fc2_b, ds->y, R, 4 * d, d);
        layernorm_forward_cuda(ds->y, ds->mean, ds->rstd, ds->res, p->ln3_w, p->ln3_b, R, d);
    }
    linear_forward_cuda(h, ds->logits, ds->y, st->P.dec_tok, st->P.out_bias, NULL, R, d,
                        c->vocab_out);
    CUDA_CHECK(cudaMemcpy(ds->host_logits, ds->logits,
                          (size_t)R * c->vocab_out * sizeof(float), cudaMemcpyDeviceToHost));
    return ds->host_logits;
}

static void cuda_decode_reorder(void *impl, const int *parent, int t)
{
    cuda_model *st = impl;
    decode_state *ds = &st->ds;
    const long d = st->cfg.dec_dim, L = st->L;
    upload_ints(ds->d_index, parent, (size_t)ds->R);
    for (int l = 0; l < st->cfg.dec_layers; l++) {
        gather_rows_cuda(ds->kc2[l], ds->kc[l], ds->d_index, ds->R, (long)(t + 1) * d, L * d);
        gather_rows_cuda(ds->vc2[l], ds->vc[l], ds->d_index, ds->R, (long)(t + 1) * d, L * d);
        float *sw = ds->kc[l];
        ds->kc[l] = ds->kc2[l];
        ds->kc2[l] = sw;
        sw = ds->vc[l];
        ds->vc[l] = ds->vc2[l];
        ds->vc2[l] = sw;
    }
}

static const float *cuda_decode_prefix(void *impl, const int *prefix, int t)
{
    cuda_model *st = impl;
    decode_state *ds = &st->ds;
    if (ds->rows_per_src != 1) lawt_die("model: decode_prefix needs one row per source");
    const int B = ds->R, Tq = t + 1, V = st->cfg.vocab_out;
    memcpy(st->dec_in, prefix, (size_t)B * Tq * sizeof(int));
    upload_ints(st->d_dec_in, st->dec_in, (size_t)B * Tq);
    decoder_forward(st, B, Tq, ds->S);
    const size_t fs = sizeof(float);
    CUDA_CHECK(cudaMemcpy2D(st->host_prefix_logits, (size_t)V * fs,
                            st->logits + (size_t)t * V, (size_t)Tq * V * fs, (size_t)V * fs,
                            (size_t)B, cudaMemcpyDeviceToHost));
    return st->host_prefix_logits;
}

const model_backend_ops model_cuda_ops = {
    .name = "cuda",
    .create = cuda_create,
    .destroy = cuda_destroy,
    .copy_out = cuda_copy_out,
    .copy_in = cuda_copy_in,
    .grads = cuda_grads,
    .zero_grad = cuda_zero_grad,
    .forward = cuda_forward,
    .backward = cuda_backward,
    .copy_logits = cuda_copy_logits,
    .grad_norm = cuda_grad_norm,
    .adam_step = cuda_adam_step,
    .decode_begin = cuda_decode_begin,
    .decode_step = cuda_decode_step,
    .decode_reorder = cuda_decode_reorder,
    .decode_prefix = cuda_decode_prefix,
};
