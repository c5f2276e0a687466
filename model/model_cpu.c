/* model_cpu.c: the CPU reference backend (BLAS). It owns the four flat buffers (parameters,
 * gradients, Adam moments), the activations kept for backward, and the decoding state.
 *
 * Activations (all in one allocation, named below), for a batch of B examples padded to S
 * source and T target positions; the decoder reads Tq = T - 1 positions; N = B*S, M = B*Tq:
 *   encoder:  emb (N,de) -> x0 = LN(emb); per layer  qkv (N,3de), att (B,He,S,S), atty (N,de),
 *             res1 = x + atty Wo^T + bo, x1 = LN1(res1), h = ReLU(x1 W1^T + b1) (N,4de),
 *             res2 = x1 + h W2^T + b2, x2 = LN2(res2)  (LN means/rstds (N) kept)
 *   decoder:  emb (M,dd) -> y0; per layer  self-attention as above (causal), then
 *             q (M,dd) = y1 Wq^T, kv (N,2dd) = enc_out Wkv^T, catt (B,Hd,Tq,S), catty (M,dd),
 *             res2, y2, then the FFN: h (M,4dd), res3, y3
 *   output:   logits (M,V) = y_last E_dec^T + out_bias; probs (M,V) the softmax, turned into
 *             dlogits in place by backward.
 * Backward reuses a few gradient buffers: two (rows, d) buffers that alternate as the gradient
 * of a layer's output and a temporary, and one each for d(h), d(qkv), d(atty), d(q), d(kv), and
 * d(enc_out), which the decoder layers' cross-attention keys/values accumulate into. */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "encoding/encoding.h"
#include "model/layers.h"
#include "model/model_internal.h"
#include "model/parallel.h"

typedef struct {
    float *qkv, *att, *atty, *res1, *mean1, *rstd1, *x1, *h, *res2, *mean2, *rstd2, *x2;
} enc_acts;

typedef struct {
    float *qkv, *att, *atty, *res1, *mean1, *rstd1, *y1;
    float *q, *kv, *catt, *catty, *res2, *mean2, *rstd2, *y2;
    float *h, *res3, *mean3, *rstd3, *y3;
} dec_acts;

/* Decoding state for R rows: per decoder layer a key/value cache of the self-attention,
 * (R, L, dd) each (plus a second copy to reorder beams into), and the cross-attention keys and
 * values of the encoder output (R, S, 2dd); buffers for one step of R rows. */
typedef struct {
    int R_cap, R, rows_per_src, S;
    float *mem;
    float **kc, **vc, **kc2, **vc2, **ckv;
    float *emb, *y, *qkv, *atty, *res, *x, *q, *h, *mean, *rstd, *att, *logits;
    int *src_len, *key_len;
} decode_state;

typedef struct {
    model_config cfg;
    int maxB, L;
    size_t np;
    float *params, *grads, *adam_m, *adam_v;
    model_views P, G;

    float *act;
    float *enc_emb, *enc_emb_mean, *enc_emb_rstd, *enc_x0;
    enc_acts *enc;
    float *dec_emb, *dec_emb_mean, *dec_emb_rstd, *dec_y0;
    dec_acts *dec;
    float *logits, *probs, *prefix_logits;
    float *g1, *g2, *gh, *gqkv, *gatty, *gq, *gkv, *genc;
    float *scratch;
    int *src, *src_len, *dec_in, *targets;
    double *row_loss, *block_sums;
    int B, S, Tq, have_forward;

    decode_state ds;
} cpu_model;

/* Flat-buffer loops run in parallel over fixed blocks of FLAT_BLOCK floats. */
#define FLAT_BLOCK 16384

static int flat_blocks(size_t n) { return (int)((n + FLAT_BLOCK - 1) / FLAT_BLOCK); }

/* ---- allocation: a bump allocator run twice (size, then carve) ---- */

typedef struct {
    float *base;
    size_t off;
} bump;

static float *take(bump *b, size_t n)
{
    float *p = b->base ? b->base + b->off : NULL;
    b->off += (n + 15) / 16 * 16; /* 64-byte aligned views */
    return p;
}

static float *alloc_floats(size_t n)
{
    void *p = NULL;
    if (n == 0) n = 16;
    if (posix_memalign(&p, 64, n * sizeof(float)))
        lawt_die("model: cannot allocate %zu bytes", n * sizeof(float));
    return p;
}

static size_t max_sz(size_t a, size_t b) { return a > b ? a : b; }

static void carve(cpu_model *st, bump *b)
{
    const model_config *c = &st->cfg;
    const size_t L = (size_t)st->L, NB = (size_t)st->maxB * L; /* rows of either side */
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
    st->prefix_logits = take(b, B * V);
    const size_t dmax = max_sz(de, dd);
    st->g1 = take(b, NB * dmax);
    st->g2 = take(b, NB * dmax);
    st->gh = take(b, NB * 4 * dmax);
    st->gqkv = take(b, NB * 3 * dmax);
    st->gatty = take(b, NB * dmax);
    st->gq = take(b, NB * dd);
    st->gkv = take(b, NB * 2 * dd);
    st->genc = take(b, NB * de);
    st->scratch = take(b, (size_t)attention_scratch_floats((int)L, (int)L, (int)dmax));
}

static void *cpu_create(const model_config *cfg, int max_batch, size_t nparams)
{
    cpu_model *st = lawt_calloc(1, sizeof *st);
    st->cfg = *cfg;
    st->maxB = max_batch;
    st->L = cfg->max_len;
    st->np = nparams;
    st->params = alloc_floats(nparams);
    st->grads = alloc_floats(nparams);
    st->adam_m = alloc_floats(nparams);
    st->adam_v = alloc_floats(nparams);
    memset(st->params, 0, nparams * sizeof(float));
    memset(st->grads, 0, nparams * sizeof(float));
    memset(st->adam_m, 0, nparams * sizeof(float));
    memset(st->adam_v, 0, nparams * sizeof(float));
    model_views_bind(&st->P, cfg, st->params);
    model_views_bind(&st->G, cfg, st->grads);
    st->enc = lawt_calloc((size_t)cfg->enc_layers, sizeof *st->enc);
    st->dec = lawt_calloc((size_t)cfg->dec_layers, sizeof *st->dec);
    bump b = {0};
    carve(st, &b);
    st->act = alloc_floats(b.off);
    b = (bump){st->act, 0};
    carve(st, &b);
    size_t NB = (size_t)max_batch * (size_t)st->L;
    st->src = lawt_malloc(NB * sizeof(int));
    st->src_len = lawt_malloc((size_t)max_batch * sizeof(int));
    st->dec_in = lawt_malloc(NB * sizeof(int));
    st->targets = lawt_malloc(NB * sizeof(int));
    st->row_loss = lawt_malloc(NB * sizeof(double));
    st->block_sums = lawt_malloc((size_t)flat_blocks(nparams) * sizeof(double));
    return st;
}

static void decode_free(decode_state *ds)
{
    free(ds->mem);
    free(ds->kc);
    free(ds->vc);
    free(ds->kc2);
    free(ds->vc2);
    free(ds->ckv);
    free(ds->src_len);
    free(ds->key_len);
    memset(ds, 0, sizeof *ds);
}

static void cpu_destroy(void *impl)
{
    cpu_model *st = impl;
    decode_free(&st->ds);
    free(st->params);
    free(st->grads);
    free(st->adam_m);
    free(st->adam_v);
    model_views_free(&st->P);
    model_views_free(&st->G);
    free(st->enc);
    free(st->dec);
    free(st->act);
    free(st->src);
    free(st->src_len);
    free(st->dec_in);
    free(st->targets);
    free(st->row_loss);
    free(st->block_sums);
    free(st);
}

static float *buffer(const cpu_model *st, model_buffer which)
{
    switch (which) {
    case BUF_PARAMS: return st->params;
    case BUF_GRADS: return st->grads;
    case BUF_ADAM_M: return st->adam_m;
    case BUF_ADAM_V: return st->adam_v;
    }
    lawt_die("model: unknown buffer %d", (int)which);
}

static void cpu_copy_out(const void *impl, model_buffer which, float *dst)
{
    const cpu_model *st = impl;
    memcpy(dst, buffer(st, which), st->np * sizeof(float));
}

static float *cpu_grads(void *impl) { return ((cpu_model *)impl)->grads; }

static void cpu_copy_in(void *impl, model_buffer which, const float *src)
{
    cpu_model *st = impl;
    memcpy(buffer(st, which), src, st->np * sizeof(float));
}

static void zero_task(void *ctx, int begin, int end, int thread)
{
    (void)thread;
    cpu_model *st = ctx;
    size_t lo = (size_t)begin * FLAT_BLOCK, hi = (size_t)end * FLAT_BLOCK;
    if (hi > st->np) hi = st->np;
    memset(st->grads + lo, 0, (hi - lo) * sizeof(float));
}

static void cpu_zero_grad(void *impl)
{
    cpu_model *st = impl;
    par_for(flat_blocks(st->np), 8, zero_task, st);
}

/* ---- forward ---- */

static const float *enc_out(const cpu_model *st) { return st->enc[st->cfg.enc_layers - 1].x2; }

/* Encoder over src (B, S) with src_len (B), as stored in st. */
static void encoder_forward(cpu_model *st, int B, int S)
{
    const model_config *c = &st->cfg;
    const int d = c->enc_dim, H = c->enc_heads, N = B * S;
    embedding_forward(st->enc_emb, st->src, st->P.enc_tok, st->P.enc_pos, B, S, d);
    layernorm_forward(st->enc_x0, st->enc_emb_mean, st->enc_emb_rstd, st->enc_emb,
                      st->P.enc_ln_w, st->P.enc_ln_b, N, d);
    const float *x = st->enc_x0;
    for (int l = 0; l < c->enc_layers; l++) {
        const enc_layer_views *p = &st->P.enc[l];
        enc_acts *a = &st->enc[l];
        linear_forward(a->qkv, x, p->qkv_w, p->qkv_b, NULL, N, d, 3 * d);
        attention_forward(a->atty, a->att, st->scratch, a->qkv, a->qkv + d, a->qkv + 2 * d,
                          3 * d, 3 * d, st->src_len, 0, B, S, S, H, d / H);
        linear_forward(a->res1, a->atty, p->out_w, p->out_b, x, N, d, d);
        layernorm_forward(a->x1, a->mean1, a->rstd1, a->res1, p->ln1_w, p->ln1_b, N, d);
        linear_forward(a->h, a->x1, p->fc1_w, p->fc1_b, NULL, N, d, 4 * d);
        relu_forward(a->h, a->h, (long)N * 4 * d);
        linear_forward(a->res2, a->h, p->fc2_w, p->fc2_b, a->x1, N, 4 * d, d);
        layernorm_forward(a->x2, a->mean2, a->rstd2, a->res2, p->ln2_w, p->ln2_b, N, d);
        x = a->x2;
    }
}

/* Decoder over tokens (B, Tq) = st->dec_in against the encoder output of the last
 * encoder_forward (B, S); logits (B*Tq, V) into st->logits. */
static void decoder_forward(cpu_model *st, int B, int Tq, int S)
{
    const model_config *c = &st->cfg;
    const int d = c->dec_dim, de = c->enc_dim, H = c->dec_heads, M = B * Tq, N = B * S;
    embedding_forward(st->dec_emb, st->dec_in, st->P.dec_tok, st->P.dec_pos, B, Tq, d);
    layernorm_forward(st->dec_y0, st->dec_emb_mean, st->dec_emb_rstd, st->dec_emb,
                      st->P.dec_ln_w, st->P.dec_ln_b, M, d);
    const float *y = st->dec_y0;
    for (int l = 0; l < c->dec_layers; l++) {
        const dec_layer_views *p = &st->P.dec[l];
        dec_acts *a = &st->dec[l];
        /* causal self-attention */
        linear_forward(a->qkv, y, p->qkv_w, p->qkv_b, NULL, M, d, 3 * d);
        attention_forward(a->atty, a->att, st->scratch, a->qkv, a->qkv + d, a->qkv + 2 * d,
                          3 * d, 3 * d, NULL, 1, B, Tq, Tq, H, d / H);
        linear_forward(a->res1, a->atty, p->out_w, p->out_b, y, M, d, d);
        layernorm_forward(a->y1, a->mean1, a->rstd1, a->res1, p->ln1_w, p->ln1_b, M, d);
        /* cross-attention over the encoder output, padded source keys masked */
        linear_forward(a->q, a->y1, p->cq_w, p->cq_b, NULL, M, d, d);
        linear_forward(a->kv, enc_out(st), p->ckv_w, p->ckv_b, NULL, N, de, 2 * d);
        attention_forward(a->catty, a->catt, st->scratch, a->q, a->kv, a->kv + d, d, 2 * d,
                          st->src_len, 0, B, Tq, S, H, d / H);
        linear_forward(a->res2, a->catty, p->cout_w, p->cout_b, a->y1, M, d, d);
        layernorm_forward(a->y2, a->mean2, a->rstd2, a->res2, p->ln2_w, p->ln2_b, M, d);
        /* feed-forward */
        linear_forward(a->h, a->y2, p->fc1_w, p->fc1_b, NULL, M, d, 4 * d);
        relu_forward(a->h, a->h, (long)M * 4 * d);
        linear_forward(a->res3, a->h, p->fc2_w, p->fc2_b, a->y2, M, 4 * d, d);
        layernorm_forward(a->y3, a->mean3, a->rstd3, a->res3, p->ln3_w, p->ln3_b, M, d);
        y = a->y3;
    }
    /* tied output projection */
    linear_forward(st->logits, y, st->P.dec_tok, st->P.out_bias, NULL, M, d, c->vocab_out);
}

static double cpu_forward(void *impl, const model_batch *bt, long *ntokens)
{
    cpu_model *st = impl;
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
    encoder_forward(st, B, S);
    decoder_forward(st, B, Tq, S);
    double loss =
        crossentropy_forward(st->probs, st->row_loss, st->logits, st->targets, B * Tq,
                             st->cfg.vocab_out);
    st->B = B;
    st->S = S;
    st->Tq = Tq;
    st->have_forward = 1;
    *ntokens = nt;
    return loss;
}

static void cpu_copy_logits(const void *impl, float *dst)
{
    const cpu_model *st = impl;
    if (!st->have_forward) lawt_die("model: copy_logits before any forward");
    memcpy(dst, st->logits, (size_t)st->B * st->Tq * st->cfg.vocab_out * sizeof(float));
}

/* ---- backward ---- */

static void cpu_backward(void *impl, const model_batch *bt, float loss_scale)
{
    cpu_model *st = impl;
    const model_config *c = &st->cfg;
    if (!st->have_forward || bt->B != st->B || bt->S != st->S || bt->T - 1 != st->Tq)
        lawt_die("model: backward needs the forward of the same batch just before");
    const int B = st->B, S = st->S, Tq = st->Tq, M = B * Tq, N = B * S;
    const int dd = c->dec_dim, de = c->enc_dim, V = c->vocab_out;
    const model_views *P = &st->P, *G = &st->G;

    /* loss and output projection */
    crossentropy_backward(st->probs, st->targets, loss_scale, M, V);
    const float *y_last = st->dec[c->dec_layers - 1].y3;
    float *X = st->g1, *Dt = st->g2;
    linear_backward(X, G->dec_tok, G->out_bias, st->probs, y_last, P->dec_tok, M, dd, V, 0);

    /* decoder layers, last first; X holds the gradient of the layer output */
    for (int l = c->dec_layers - 1; l >= 0; l--) {
        const dec_layer_views *p = &P->dec[l];
        const dec_layer_views *g = &G->dec[l];
        dec_acts *a = &st->dec[l];
        const float *yin = l > 0 ? st->dec[l - 1].y3 : st->dec_y0;
        const int H = c->dec_heads, D = dd / H;
        /* feed-forward block */
        layernorm_backward(Dt, g->ln3_w, g->ln3_b, X, a->res3, p->ln3_w, a->mean3, a->rstd3, M,
                           dd);
        linear_backward(st->gh, g->fc2_w, g->fc2_b, Dt, a->h, p->fc2_w, M, 4 * dd, dd, 0);
        relu_backward(st->gh, st->gh, a->h, (long)M * 4 * dd);
        linear_backward(Dt, g->fc1_w, g->fc1_b, st->gh, a->y2, p->fc1_w, M, dd, 4 * dd, 1);
        /* cross-attention block */
        layernorm_backward(X, g->ln2_w, g->ln2_b, Dt, a->res2, p->ln2_w, a->mean2, a->rstd2, M,
                           dd);
        linear_backward(st->gatty, g->cout_w, g->cout_b, X, a->catty, p->cout_w, M, dd, dd, 0);
        attention_backward(st->gq, st->gkv, st->gkv + dd, st->scratch, st->gatty, a->catt, a->q,
                           a->kv, a->kv + dd, dd, 2 * dd, st->src_len, 0, B, Tq, S, H, D);
        linear_backward(st->genc, g->ckv_w, g->ckv_b, st->gkv, enc_out(st), p->ckv_w, N, de,
                        2 * dd, l != c->dec_layers - 1);
        linear_backward(X, g->cq_w, g->cq_b, st->gq, a->y1, p->cq_w, M, dd, dd, 1);
        /* causal self-attention block */
        layernorm_backward(Dt, g->ln1_w, g->ln1_b, X, a->res1, p->ln1_w, a->mean1, a->rstd1, M,
                           dd);
        linear_backward(st->gatty, g->out_w, g->out_b, Dt, a->atty, p->out_w, M, dd, dd, 0);
        attention_backward(st->gqkv, st->gqkv + dd, st->gqkv + 2 * dd, st->scratch, st->gatty,
                           a->att, a->qkv, a->qkv + dd, a->qkv + 2 * dd, 3 * dd, 3 * dd, NULL, 1,
                           B, Tq, Tq, H, D);
        linear_backward(Dt, g->qkv_w, g->qkv_b, st->gqkv, yin, p->qkv_w, M, dd, 3 * dd, 1);
        float *sw = X;
        X = Dt;
        Dt = sw;
    }
    /* decoder embeddings (the token table also holds the output projection's gradient) */
    layernorm_backward(Dt, G->dec_ln_w, G->dec_ln_b, X, st->dec_emb, P->dec_ln_w,
                       st->dec_emb_mean, st->dec_emb_rstd, M, dd);
    embedding_backward(G->dec_tok, G->dec_pos, Dt, st->dec_in, B, Tq, dd);

    /* encoder layers, last first; genc holds the gradient of the layer output throughout */
    X = st->genc;
    Dt = st->g2;
    for (int l = c->enc_layers - 1; l >= 0; l--) {
        const enc_layer_views *p = &P->enc[l];
        const enc_layer_views *g = &G->enc[l];
        enc_acts *a = &st->enc[l];
        const float *xin = l > 0 ? st->enc[l - 1].x2 : st->enc_x0;
        const int H = c->enc_heads, D = de / H;
        layernorm_backward(Dt, g->ln2_w, g->ln2_b, X, a->res2, p->ln2_w, a->mean2, a->rstd2, N,
                           de);
        linear_backward(st->gh, g->fc2_w, g->fc2_b, Dt, a->h, p->fc2_w, N, 4 * de, de, 0);
        relu_backward(st->gh, st->gh, a->h, (long)N * 4 * de);
        linear_backward(Dt, g->fc1_w, g->fc1_b, st->gh, a->x1, p->fc1_w, N, de, 4 * de, 1);
        layernorm_backward(X, g->ln1_w, g->ln1_b, Dt, a->res1, p->ln1_w, a->mean1, a->rstd1, N,
                           de);
        linear_backward(st->gatty, g->out_w, g->out_b, X, a->atty, p->out_w, N, de, de, 0);
        attention_backward(st->gqkv, st->gqkv + de, st->gqkv + 2 * de, st->scratch, st->gatty,
                           a->att, a->qkv, a->qkv + de, a->qkv + 2 * de, 3 * de, 3 * de,
                           st->src_len, 0, B, S, S, H, D);
        linear_backward(X, g->qkv_w, g->qkv_b, st->gqkv, xin, p->qkv_w, N, de, 3 * de, 1);
    }
    layernorm_backward(Dt, G->enc_ln_w, G->enc_ln_b, X, st->enc_emb, P->enc_ln_w,
                       st->enc_emb_mean, st->enc_emb_rstd, N, de);
    embedding_backward(G->enc_tok, G->enc_pos, Dt, st->src, B, S, de);
    st->have_forward = 0; /* probs now hold dlogits */
}

/* ---- optimizer ---- */

/* The sum of squares of each block (in double, in a fixed order), then of the blocks in order:
 * the result does not depend on the number of threads. */
static void sumsq_task(void *ctx, int begin, int end, int thread)
{
    (void)thread;
    const cpu_model *st = ctx;
    for (int blk = begin; blk < end; blk++) {
        size_t lo = (size_t)blk * FLAT_BLOCK, hi = lo + FLAT_BLOCK;
        if (hi > st->np) hi = st->np;
        const float *g = st->grads;
        double acc[8] = {0};
        size_t i = lo;
        for (; i + 8 <= hi; i += 8)
            for (int l = 0; l < 8; l++) acc[l] += (double)g[i + l] * (double)g[i + l];
        double s = ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
        for (; i < hi; i++) s += (double)g[i] * (double)g[i];
        st->block_sums[blk] = s;
    }
}

static double cpu_grad_norm(const void *impl)
{
    const cpu_model *st = impl;
    int nb = flat_blocks(st->np);
    par_for(nb, 8, sumsq_task, (void *)st);
    double s = 0.0;
    for (int b = 0; b < nb; b++) s += st->block_sums[b];
    return sqrt(s);
}

typedef struct {
    cpu_model *st;
    float b1, b2, lr, eps, ib1, ib2, grad_scale;
} adam_args;

/* m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2   (g = grad_scale * grad)
 * p -= lr * (m / (1 - b1^step)) / (sqrt(v / (1 - b2^step)) + eps) */
static void adam_task(void *ctx, int begin, int end, int thread)
{
    (void)thread;
    const adam_args *a = ctx;
    size_t lo = (size_t)begin * FLAT_BLOCK, hi = (size_t)end * FLAT_BLOCK;
    if (hi > a->st->np) hi = a->st->np;
    float *restrict p = a->st->params, *restrict m = a->st->adam_m, *restrict v = a->st->adam_v;
    const float *restrict g = a->st->grads;
    const float b1 = a->b1, b2 = a->b2, lr = a->lr, eps = a->eps, ib1 = a->ib1, ib2 = a->ib2;
    const float gs = a->grad_scale;
    for (size_t i = lo; i < hi; i++) {
        float gi = gs * g[i];
        float mi = b1 * m[i] + (1.0f - b1) * gi;
        float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        p[i] -= lr * (mi * ib1) / (sqrtf(vi * ib2) + eps);
    }
}

static void cpu_adam_step(void *impl, const adam_hparams *hp, long step, float grad_scale)
{
    cpu_model *st = impl;
    adam_args a = {.st = st, .b1 = hp->beta1, .b2 = hp->beta2, .lr = hp->lr, .eps = hp->eps,
                   .grad_scale = grad_scale};
    a.ib1 = 1.0f / (float)(1.0 - pow((double)hp->beta1, (double)step));
    a.ib2 = 1.0f / (float)(1.0 - pow((double)hp->beta2, (double)step));
    par_for(flat_blocks(st->np), 8, adam_task, &a);
}

/* ---- decoding ---- */

static void decode_alloc(cpu_model *st, int R)
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
        if (!pass) ds->mem = alloc_floats(b.off);
    }
    ds->src_len = lawt_malloc(r * sizeof(int));
    ds->key_len = lawt_malloc(r * sizeof(int));
    ds->R_cap = R;
}

static void cpu_decode_begin(void *impl, const int *src, const int *src_len, int B, int S,
                             int rows_per_src)
{
    cpu_model *st = impl;
    const model_config *c = &st->cfg;
    const int R = B * rows_per_src, dd = c->dec_dim, de = c->enc_dim;
    decode_alloc(st, R);
    decode_state *ds = &st->ds;
    ds->R = R;
    ds->rows_per_src = rows_per_src;
    ds->S = S;
    memcpy(st->src, src, (size_t)B * S * sizeof(int));
    memcpy(st->src_len, src_len, (size_t)B * sizeof(int));
    st->have_forward = 0;
    encoder_forward(st, B, S);
    st->B = B;
    st->S = S;
    for (int r = 0; r < R; r++) ds->src_len[r] = src_len[r / rows_per_src];
    for (int l = 0; l < c->dec_layers; l++) {
        const dec_layer_views *p = &st->P.dec[l];
        if (rows_per_src == 1) {
            linear_forward(ds->ckv[l], enc_out(st), p->ckv_w, p->ckv_b, NULL, B * S, de, 2 * dd);
        } else {
            /* compute into the first rows' slots, then replicate each source's block */
            float *tmp = st->dec[0].kv; /* (B*S, 2dd) training buffer, free while decoding */
            linear_forward(tmp, enc_out(st), p->ckv_w, p->ckv_b, NULL, B * S, de, 2 * dd);
            size_t blk = (size_t)S * 2 * dd;
            for (int r = 0; r < R; r++)
                memcpy(ds->ckv[l] + (size_t)r * blk, tmp + (size_t)(r / rows_per_src) * blk,
                       blk * sizeof(float));
        }
    }
}

static const float *cpu_decode_step(void *impl, const int *tokens, int t)
{
    cpu_model *st = impl;
    const model_config *c = &st->cfg;
    decode_state *ds = &st->ds;
    const int R = ds->R, S = ds->S, d = c->dec_dim, H = c->dec_heads, D = d / H, L = st->L;
    const float *pos = st->P.dec_pos + (size_t)t * d;
    for (int r = 0; r < R; r++) {
        const float *te = st->P.dec_tok + (size_t)tokens[r] * d;
        float *e = ds->emb + (size_t)r * d;
        for (int i = 0; i < d; i++) e[i] = te[i] + pos[i];
        ds->key_len[r] = t + 1;
    }
    layernorm_forward(ds->y, ds->mean, ds->rstd, ds->emb, st->P.dec_ln_w, st->P.dec_ln_b, R, d);
    for (int l = 0; l < c->dec_layers; l++) {
        const dec_layer_views *p = &st->P.dec[l];
        /* self-attention: append this position's key and value, attend over positions <= t */
        linear_forward(ds->qkv, ds->y, p->qkv_w, p->qkv_b, NULL, R, d, 3 * d);
        for (int r = 0; r < R; r++) {
            const float *row = ds->qkv + (size_t)r * 3 * d;
            memcpy(ds->kc[l] + ((size_t)r * L + t) * d, row + d, (size_t)d * sizeof(float));
            memcpy(ds->vc[l] + ((size_t)r * L + t) * d, row + 2 * d, (size_t)d * sizeof(float));
        }
        attention_forward(ds->atty, ds->att, st->scratch, ds->qkv, ds->kc[l], ds->vc[l], 3 * d,
                          d, ds->key_len, 0, R, 1, L, H, D);
        linear_forward(ds->res, ds->atty, p->out_w, p->out_b, ds->y, R, d, d);
        layernorm_forward(ds->x, ds->mean, ds->rstd, ds->res, p->ln1_w, p->ln1_b, R, d);
        /* cross-attention on the cached encoder keys/values */
        linear_forward(ds->q, ds->x, p->cq_w, p->cq_b, NULL, R, d, d);
        attention_forward(ds->atty, ds->att, st->scratch, ds->q, ds->ckv[l], ds->ckv[l] + d, d,
                          2 * d, ds->src_len, 0, R, 1, S, H, D);
        linear_forward(ds->res, ds->atty, p->cout_w, p->cout_b, ds->x, R, d, d);
        layernorm_forward(ds->y, ds->mean, ds->rstd, ds->res, p->ln2_w, p->ln2_b, R, d);
        /* feed-forward */
        linear_forward(ds->h, ds->y, p->fc1_w, p->fc1_b, NULL, R, d, 4 * d);
        relu_forward(ds->h, ds->h, (long)R * 4 * d);
        linear_forward(ds->res, ds->h, p->fc2_w, p->fc2_b, ds->y, R, 4 * d, d);
        layernorm_forward(ds->y, ds->mean, ds->rstd, ds->res, p->ln3_w, p->ln3_b, R, d);
    }
    linear_forward(ds->logits, ds->y, st->P.dec_tok, st->P.out_bias, NULL, R, d, c->vocab_out);
    return ds->logits;
}

static void cpu_decode_reorder(void *impl, const int *parent, int t)
{
    cpu_model *st = impl;
    decode_state *ds = &st->ds;
    const size_t d = (size_t)st->cfg.dec_dim, L = (size_t)st->L, n = (size_t)(t + 1) * d;
    for (int l = 0; l < st->cfg.dec_layers; l++) {
        for (int r = 0; r < ds->R; r++) {
            memcpy(ds->kc2[l] + (size_t)r * L * d, ds->kc[l] + (size_t)parent[r] * L * d,
                   n * sizeof(float));
            memcpy(ds->vc2[l] + (size_t)r * L * d, ds->vc[l] + (size_t)parent[r] * L * d,
                   n * sizeof(float));
        }
        float *sw = ds->kc[l];
        ds->kc[l] = ds->kc2[l];
        ds->kc2[l] = sw;
        sw = ds->vc[l];
        ds->vc[l] = ds->vc2[l];
        ds->vc2[l] = sw;
    }
}

static const float *cpu_decode_prefix(void *impl, const int *prefix, int t)
{
    cpu_model *st = impl;
    decode_state *ds = &st->ds;
    if (ds->rows_per_src != 1) lawt_die("model: decode_prefix needs one row per source");
    const int B = ds->R, Tq = t + 1, V = st->cfg.vocab_out;
    memcpy(st->dec_in, prefix, (size_t)B * Tq * sizeof(int));
    decoder_forward(st, B, Tq, ds->S);
    for (int b = 0; b < B; b++)
        memcpy(st->prefix_logits + (size_t)b * V, st->logits + ((size_t)b * Tq + t) * V,
               (size_t)V * sizeof(float));
    return st->prefix_logits;
}

const model_backend_ops model_cpu_ops = {
    .name = "cpu",
    .create = cpu_create,
    .destroy = cpu_destroy,
    .copy_out = cpu_copy_out,
    .copy_in = cpu_copy_in,
    .grads = cpu_grads,
    .zero_grad = cpu_zero_grad,
    .forward = cpu_forward,
    .backward = cpu_backward,
    .copy_logits = cpu_copy_logits,
    .grad_norm = cpu_grad_norm,
    .adam_step = cpu_adam_step,
    .decode_begin = cpu_decode_begin,
    .decode_step = cpu_decode_step,
    .decode_reorder = cpu_decode_reorder,
    .decode_prefix = cpu_decode_prefix,
};
