/* transformer.c: the transformer of model.h, written once over a layer backend
 * (model_internal.h): the activation layout, forward, backward, the optimizer step and the
 * decoding primitives. The backend supplies memory and layers (those of layers.h, on its own
 * memory); nothing here knows which device it is, so the CPU tests run the very code the GPU
 * runs.
 *
 * Shapes: a batch of B examples padded to S source and T target positions; the decoder reads
 * Tq = T - 1 positions; N = B*S encoder rows, M = B*Tq decoder rows; d the width of the stack
 * at hand (de encoder, dd decoder), H its heads, D = d / H; V = vocab_out.
 *
 * Every sub-layer is post-norm "Add & Norm": out = LN(x + f(x)), and its last step is a
 * projection into the residual (norm_acts). Its activations, for N rows of width d:
 *   self-attention   qkv (N,3d) -> att (B,H,T,T) -> atty (N,d) -> res, mean, rstd, out
 *   cross-attention  q (N,d), kv (B*S,2d) from the encoder output -> att (B,H,T,S) -> atty ...
 *   feed-forward     h = ReLU(x W1^T + b1) (N,4d) -> res = x + h W2^T + b2 -> out = LN(res)
 *   embeddings       res = tok[tokens] + pos (N,d) -> out = LN(res)
 * Backward reuses a few gradient buffers: two (rows, d) buffers that alternate as the gradient
 * of a sub-layer's output and of its input, and one each for d(h), d(qkv), d(atty), d(q), d(kv),
 * and d(enc_out), which the decoder layers' cross-attention keys/values accumulate into. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "model/model_internal.h"

/* ---- activations and the parameters of each block ---- */

typedef struct {
    float *res, *mean, *rstd, *out; /* res (N,d) = x + projection; mean, rstd (N); out (N,d) */
} norm_acts;

typedef struct {
    float *qkv, *att, *atty; /* (N,3d), (B,H,T,T), (N,d) */
    norm_acts norm;
} self_attn_acts;

typedef struct {
    float *q, *kv, *att, *atty; /* (M,d), (B*S,2d), (B,H,Tq,S), (M,d) */
    norm_acts norm;
} cross_attn_acts;

typedef struct {
    float *h; /* (N,4d) after the ReLU */
    norm_acts norm;
} ffn_acts;

typedef struct {
    self_attn_acts attn;
    ffn_acts ffn;
} enc_acts;

typedef struct {
    self_attn_acts self;
    cross_attn_acts cross;
    ffn_acts ffn;
} dec_acts;

/* A weight (OC, C) and bias (OC), or a layer norm's weight and bias (d): of the parameters or
 * of their gradients. */
typedef struct {
    float *w, *b;
} wb;

typedef struct {
    wb qkv, out, ln;
} self_attn_params;

typedef struct {
    wb q, kv, out, ln;
} cross_attn_params;

typedef struct {
    wb fc1, fc2, ln;
} ffn_params;

static self_attn_params enc_attn(const enc_layer_views *v)
{
    return (self_attn_params){{v->qkv_w, v->qkv_b}, {v->out_w, v->out_b}, {v->ln1_w, v->ln1_b}};
}

static ffn_params enc_ffn(const enc_layer_views *v)
{
    return (ffn_params){{v->fc1_w, v->fc1_b}, {v->fc2_w, v->fc2_b}, {v->ln2_w, v->ln2_b}};
}

static self_attn_params dec_self(const dec_layer_views *v)
{
    return (self_attn_params){{v->qkv_w, v->qkv_b}, {v->out_w, v->out_b}, {v->ln1_w, v->ln1_b}};
}

static cross_attn_params dec_cross(const dec_layer_views *v)
{
    return (cross_attn_params){
        {v->cq_w, v->cq_b}, {v->ckv_w, v->ckv_b}, {v->cout_w, v->cout_b}, {v->ln2_w, v->ln2_b}};
}

static ffn_params dec_ffn(const dec_layer_views *v)
{
    return (ffn_params){{v->fc1_w, v->fc1_b}, {v->fc2_w, v->fc2_b}, {v->ln3_w, v->ln3_b}};
}

/* Decoding state for R rows: per decoder layer a key/value cache of the self-attention,
 * (R, L, dd) each (plus a second copy to reorder beams into), and the cross-attention keys and
 * values of the encoder output (R, S, 2dd); buffers for one step of R rows. */
typedef struct {
    int R_cap, R, rows_per_src, S;
    float *mem;
    float **kc, **vc, **kc2, **vc2, **ckv;
    float *emb, *y, *qkv, *atty, *res, *x, *q, *h, *mean, *rstd, *att, *logits;
    int *ints;                      /* backend: tokens, src_len, key_len, index (R each) */
    int *d_tokens, *d_src_len, *d_key_len, *d_index;
    int *key_len, *src_len, *index; /* host (R each) */
    float *host_logits;             /* (R, vocab_out) */
} decode_state;

struct transformer {
    model_config cfg;
    layer_backend *k;
    int maxB, L;
    size_t np;
    float *params, *grads, *adam_m, *adam_v; /* backend memory, model_tensors() order */
    model_views P, G;

    float *act; /* backend memory, carved below */
    norm_acts enc_emb, dec_emb;
    enc_acts *enc;
    dec_acts *dec;
    float *logits, *probs; /* (M,V) each; backward turns probs into dlogits */
    float *g1, *g2, *gh, *gqkv, *gatty, *gq, *gkv, *genc;
    float *scratch;
    double *row_loss; /* backend (M) */

    /* token ids: host staging and their backend twins (one allocation) */
    int *ints;
    int *src, *src_len, *dec_in, *targets;
    int *d_src, *d_src_len, *d_dec_in, *d_targets;
    double *host_row_loss;
    float *host_prefix_logits;
    int B, S, Tq, have_forward;

    decode_state ds;
};

/* ---- memory: a bump allocator run twice (size, then carve) ---- */

typedef struct {
    float *base;
    size_t off, align;
} bump;

static float *take(bump *b, size_t n)
{
    float *p = b->base ? b->base + b->off : NULL;
    b->off += (n + b->align - 1) / b->align * b->align;
    return p;
}

static size_t max_sz(size_t a, size_t b) { return a > b ? a : b; }

static void upload(const transformer *tf, void *dst, const void *src, size_t bytes)
{
    tf->k->copy(dst, bytes, src, bytes, bytes, 1, COPY_HOST_TO_DEVICE);
}

static void download(const transformer *tf, void *dst, const void *src, size_t bytes)
{
    tf->k->copy(dst, bytes, src, bytes, bytes, 1, COPY_DEVICE_TO_HOST);
}

/* Add & Norm activations for NB rows of width d. */
static void take_norm(bump *b, norm_acts *a, size_t NB, size_t d)
{
    a->res = take(b, NB * d);
    a->mean = take(b, NB);
    a->rstd = take(b, NB);
    a->out = take(b, NB * d);
}

static void take_self_attn(bump *b, self_attn_acts *a, size_t NB, size_t d, size_t att)
{
    a->qkv = take(b, NB * 3 * d);
    a->att = take(b, att);
    a->atty = take(b, NB * d);
    take_norm(b, &a->norm, NB, d);
}

static void take_ffn(bump *b, ffn_acts *a, size_t NB, size_t d)
{
    a->h = take(b, NB * 4 * d);
    take_norm(b, &a->norm, NB, d);
}

static void carve(transformer *tf, bump *b)
{
    const model_config *c = &tf->cfg;
    const size_t L = (size_t)tf->L, NB = (size_t)tf->maxB * L; /* rows of either side */
    const size_t de = (size_t)c->enc_dim, dd = (size_t)c->dec_dim, V = (size_t)c->vocab_out;
    const size_t He = (size_t)c->enc_heads, Hd = (size_t)c->dec_heads;
    const size_t B = (size_t)tf->maxB;
    take_norm(b, &tf->enc_emb, NB, de);
    for (int l = 0; l < c->enc_layers; l++) {
        take_self_attn(b, &tf->enc[l].attn, NB, de, B * He * L * L);
        take_ffn(b, &tf->enc[l].ffn, NB, de);
    }
    take_norm(b, &tf->dec_emb, NB, dd);
    for (int l = 0; l < c->dec_layers; l++) {
        dec_acts *a = &tf->dec[l];
        take_self_attn(b, &a->self, NB, dd, B * Hd * L * L);
        a->cross.q = take(b, NB * dd);
        a->cross.kv = take(b, NB * 2 * dd);
        a->cross.att = take(b, B * Hd * L * L);
        a->cross.atty = take(b, NB * dd);
        take_norm(b, &a->cross.norm, NB, dd);
        take_ffn(b, &a->ffn, NB, dd);
    }
    tf->logits = take(b, NB * V);
    tf->probs = take(b, NB * V);
    const size_t dmax = max_sz(de, dd);
    tf->g1 = take(b, NB * dmax);
    tf->g2 = take(b, NB * dmax);
    tf->gh = take(b, NB * 4 * dmax);
    tf->gqkv = take(b, NB * 3 * dmax);
    tf->gatty = take(b, NB * dmax);
    tf->gq = take(b, NB * dd);
    tf->gkv = take(b, NB * 2 * dd);
    tf->genc = take(b, NB * de);
    tf->scratch = take(b, (size_t)tf->k->attention_scratch_floats(
                              (int)B, (int)max_sz(He, Hd), (int)L, (int)L, (int)dmax));
}

transformer *transformer_create(const model_config *cfg, layer_backend *k, int max_batch,
                                size_t nparams)
{
    transformer *tf = lawt_calloc(1, sizeof *tf);
    tf->cfg = *cfg;
    tf->k = k;
    tf->maxB = max_batch;
    tf->L = cfg->max_len;
    tf->np = nparams;
    float **bufs[4] = {&tf->params, &tf->grads, &tf->adam_m, &tf->adam_v};
    for (int i = 0; i < 4; i++) {
        *bufs[i] = k->alloc((nparams > 0 ? nparams : 1) * sizeof(float));
        k->zero(*bufs[i], nparams);
    }
    model_views_bind(&tf->P, cfg, tf->params);
    model_views_bind(&tf->G, cfg, tf->grads);
    tf->enc = lawt_calloc((size_t)cfg->enc_layers, sizeof *tf->enc);
    tf->dec = lawt_calloc((size_t)cfg->dec_layers, sizeof *tf->dec);
    bump b = {.align = k->align_floats};
    carve(tf, &b);
    tf->act = k->alloc(b.off * sizeof(float));
    b = (bump){.base = tf->act, .align = k->align_floats};
    carve(tf, &b);

    const size_t NB = (size_t)max_batch * (size_t)tf->L, mb = (size_t)max_batch;
    tf->ints = k->alloc((3 * NB + mb) * sizeof(int));
    tf->d_src = tf->ints;
    tf->d_src_len = tf->d_src + NB;
    tf->d_dec_in = tf->d_src_len + mb;
    tf->d_targets = tf->d_dec_in + NB;
    tf->src = k->host_alloc(NB * sizeof(int));
    tf->src_len = k->host_alloc(mb * sizeof(int));
    tf->dec_in = k->host_alloc(NB * sizeof(int));
    tf->targets = k->host_alloc(NB * sizeof(int));
    tf->row_loss = k->alloc(NB * sizeof(double));
    tf->host_row_loss = k->host_alloc(NB * sizeof(double));
    tf->host_prefix_logits = k->host_alloc(mb * (size_t)cfg->vocab_out * sizeof(float));
    return tf;
}

static void decode_free(const layer_backend *k, decode_state *ds)
{
    if (ds->mem) k->free(ds->mem);
    if (ds->ints) k->free(ds->ints);
    free(ds->kc);
    free(ds->vc);
    free(ds->kc2);
    free(ds->vc2);
    free(ds->ckv);
    free(ds->key_len);
    free(ds->src_len);
    free(ds->index);
    if (ds->host_logits) k->host_free(ds->host_logits);
    memset(ds, 0, sizeof *ds);
}

static void tf_destroy(transformer *tf)
{
    layer_backend *k = tf->k;
    decode_free(k, &tf->ds);
    float *bufs[] = {tf->params, tf->grads, tf->adam_m, tf->adam_v, tf->act};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) k->free(bufs[i]);
    k->free(tf->ints);
    k->free(tf->row_loss);
    void *host[] = {tf->src, tf->src_len, tf->dec_in, tf->targets, tf->host_row_loss,
                    tf->host_prefix_logits};
    for (size_t i = 0; i < sizeof host / sizeof *host; i++) k->host_free(host[i]);
    model_views_free(&tf->P);
    model_views_free(&tf->G);
    free(tf->enc);
    free(tf->dec);
    k->destroy(k);
    free(tf);
}

static float *buffer(const transformer *tf, model_buffer which)
{
    switch (which) {
    case BUF_PARAMS: return tf->params;
    case BUF_GRADS: return tf->grads;
    case BUF_ADAM_M: return tf->adam_m;
    case BUF_ADAM_V: return tf->adam_v;
    }
    lawt_die("model: unknown buffer %d", (int)which);
}

static void tf_copy_out(const transformer *tf, model_buffer which, float *dst)
{
    download(tf, dst, buffer(tf, which), tf->np * sizeof(float));
}

static void tf_copy_in(transformer *tf, model_buffer which, const float *src)
{
    upload(tf, buffer(tf, which), src, tf->np * sizeof(float));
}

static float *tf_grads(transformer *tf) { return tf->grads; }

static void tf_zero_grad(transformer *tf) { tf->k->zero(tf->grads, tf->np); }

/* ---- the blocks: each forward beside its backward ----
 * A backward takes dout, the gradient of the block's output (N,d), and writes dinp, the
 * gradient of its input x (N,d): the residual's share first (= d res), then the sub-layer's
 * added to it. dinp must not alias dout. Parameter gradients (g) accumulate. */

/* Embeddings: res = tok_emb[tokens] + pos_emb[t] (B*T, d);  out = LN(res) */
static void embed_forward(transformer *tf, norm_acts *a, const int *tokens, const float *tok,
                          const float *pos, wb ln, int B, int T, int d)
{
    layer_backend *k = tf->k;
    k->embedding_forward(a->res, tokens, tok, pos, B, T, d);
    k->layernorm_forward(a->out, a->mean, a->rstd, a->res, ln.w, ln.b, B * T, d);
}

/* dres = LN'(dout) into scratch;  dtok[tokens] += dres;  dpos += dres */
static void embed_backward(transformer *tf, int table, float *scratch, const float *dout,
                           const norm_acts *a, const int *tokens, float *dtok, float *dpos,
                           wb ln, wb dln, int B, int T, int d, int V)
{
    layer_backend *k = tf->k;
    k->layernorm_backward(scratch, dln.w, dln.b, dout, a->res, ln.w, a->mean, a->rstd, B * T,
                          d);
    k->embedding_backward(k, table, dtok, dpos, scratch, tokens, B, T, d, V);
}

/* Add & Norm after a projection: res = x + inp W^T + b (N,d), inp (N,C);  out = LN(res) */
static void residual_norm_forward(transformer *tf, norm_acts *a, const float *inp,
                                  const float *x, wb proj, wb ln, int N, int C, int d)
{
    layer_backend *k = tf->k;
    k->linear_forward(k, a->res, inp, proj.w, proj.b, x, N, C, d);
    k->layernorm_forward(a->out, a->mean, a->rstd, a->res, ln.w, ln.b, N, d);
}

/* dres = LN'(dout) (N,d), which is also d x;  dinp = dres W (N,C) */
static void residual_norm_backward(transformer *tf, float *dres, float *dinp, const float *dout,
                                   const norm_acts *a, const float *inp, wb proj, wb ln,
                                   wb dproj, wb dln, int N, int C, int d)
{
    layer_backend *k = tf->k;
    k->layernorm_backward(dres, dln.w, dln.b, dout, a->res, ln.w, a->mean, a->rstd, N, d);
    k->linear_backward(k, dinp, dproj.w, dproj.b, dres, inp, proj.w, N, C, d, 0);
}

/* Self-attention sub-layer over x (B*T, d), H heads, keys masked by key_len (B) and, when
 * causal, by position:  qkv = x Wqkv^T + bqkv (B*T,3d);  atty = Attn(q, k, v) (B*T,d);
 * out = LN(x + atty Wo^T + bo). */
static void self_attention_block_forward(transformer *tf, self_attn_acts *a, const float *x,
                                         self_attn_params p, const int *key_len, int causal,
                                         int B, int T, int H, int d)
{
    layer_backend *k = tf->k;
    const int N = B * T;
    k->linear_forward(k, a->qkv, x, p.qkv.w, p.qkv.b, NULL, N, d, 3 * d);
    k->attention_forward(a->atty, a->att, tf->scratch, a->qkv, a->qkv + d, a->qkv + 2 * d,
                         3 * d, 3 * d, key_len, causal, B, T, T, H, d / H);
    residual_norm_forward(tf, &a->norm, a->atty, x, p.out, p.ln, N, d, d);
}

static void self_attention_block_backward(transformer *tf, float *dinp, const float *dout,
                                          const self_attn_acts *a, const float *x,
                                          self_attn_params p, self_attn_params g,
                                          const int *key_len, int causal, int B, int T, int H,
                                          int d)
{
    layer_backend *k = tf->k;
    const int N = B * T;
    float *dqkv = tf->gqkv;
    residual_norm_backward(tf, dinp, tf->gatty, dout, &a->norm, a->atty, p.out, p.ln, g.out,
                           g.ln, N, d, d);
    k->attention_backward(dqkv, dqkv + d, dqkv + 2 * d, tf->scratch, tf->gatty, a->att, a->qkv,
                          a->qkv + d, a->qkv + 2 * d, 3 * d, 3 * d, key_len, causal, B, T, T, H,
                          d / H);
    k->linear_backward(k, dinp, g.qkv.w, g.qkv.b, dqkv, x, p.qkv.w, N, d, 3 * d, 1);
}

/* Cross-attention sub-layer: queries from x (B*T, d), keys and values from mem (B*S, dm),
 * source keys masked by key_len (B):  q = x Wq^T + bq (B*T,d);  kv = mem Wkv^T + bkv (B*S,2d);
 * atty = Attn(q, k, v) (B*T,d);  out = LN(x + atty Wo^T + bo). */
static void cross_attention_block_forward(transformer *tf, cross_attn_acts *a, const float *x,
                                          const float *mem, cross_attn_params p,
                                          const int *key_len, int B, int T, int S, int H, int d,
                                          int dm)
{
    layer_backend *k = tf->k;
    const int N = B * T;
    k->linear_forward(k, a->q, x, p.q.w, p.q.b, NULL, N, d, d);
    k->linear_forward(k, a->kv, mem, p.kv.w, p.kv.b, NULL, B * S, dm, 2 * d);
    k->attention_forward(a->atty, a->att, tf->scratch, a->q, a->kv, a->kv + d, d, 2 * d,
                         key_len, 0, B, T, S, H, d / H);
    residual_norm_forward(tf, &a->norm, a->atty, x, p.out, p.ln, N, d, d);
}

/* Also dmem (B*S, dm): =, or += when accumulate_dmem. */
static void cross_attention_block_backward(transformer *tf, float *dinp, float *dmem,
                                           int accumulate_dmem, const float *dout,
                                           const cross_attn_acts *a, const float *x,
                                           const float *mem, cross_attn_params p,
                                           cross_attn_params g, const int *key_len, int B, int T,
                                           int S, int H, int d, int dm)
{
    layer_backend *k = tf->k;
    const int N = B * T;
    residual_norm_backward(tf, dinp, tf->gatty, dout, &a->norm, a->atty, p.out, p.ln, g.out,
                           g.ln, N, d, d);
    k->attention_backward(tf->gq, tf->gkv, tf->gkv + d, tf->scratch, tf->gatty, a->att, a->q,
                          a->kv, a->kv + d, d, 2 * d, key_len, 0, B, T, S, H, d / H);
    k->linear_backward(k, dmem, g.kv.w, g.kv.b, tf->gkv, mem, p.kv.w, B * S, dm, 2 * d,
                       accumulate_dmem);
    k->linear_backward(k, dinp, g.q.w, g.q.b, tf->gq, x, p.q.w, N, d, d, 1);
}

/* Feed-forward sub-layer over x (N, d):  h = ReLU(x W1^T + b1) (N,4d);
 * out = LN(x + h W2^T + b2). out may be x itself (decoding). */
static void ffn_block_forward(transformer *tf, ffn_acts *a, const float *x, ffn_params p, int N,
                              int d)
{
    layer_backend *k = tf->k;
    k->linear_forward(k, a->h, x, p.fc1.w, p.fc1.b, NULL, N, d, 4 * d);
    k->relu_forward(a->h, a->h, (long)N * 4 * d);
    residual_norm_forward(tf, &a->norm, a->h, x, p.fc2, p.ln, N, 4 * d, d);
}

static void ffn_block_backward(transformer *tf, float *dinp, const float *dout,
                               const ffn_acts *a, const float *x, ffn_params p, ffn_params g,
                               int N, int d)
{
    layer_backend *k = tf->k;
    float *dh = tf->gh;
    residual_norm_backward(tf, dinp, dh, dout, &a->norm, a->h, p.fc2, p.ln, g.fc2, g.ln, N,
                           4 * d, d);
    k->relu_backward(dh, dh, a->h, (long)N * 4 * d);
    k->linear_backward(k, dinp, g.fc1.w, g.fc1.b, dh, x, p.fc1.w, N, d, 4 * d, 1);
}

/* ---- forward ---- */

static const float *enc_out(const transformer *tf)
{
    return tf->enc[tf->cfg.enc_layers - 1].ffn.norm.out;
}

static const float *dec_out(const transformer *tf)
{
    return tf->dec[tf->cfg.dec_layers - 1].ffn.norm.out;
}

/* Encoder over d_src (B, S) with d_src_len (B), as uploaded. */
static void encoder_forward(transformer *tf, int B, int S)
{
    const model_config *c = &tf->cfg;
    const int d = c->enc_dim, H = c->enc_heads;
    const model_views *P = &tf->P;
    embed_forward(tf, &tf->enc_emb, tf->d_src, P->enc_tok, P->enc_pos,
                  (wb){P->enc_ln_w, P->enc_ln_b}, B, S, d);
    const float *x = tf->enc_emb.out;
    for (int l = 0; l < c->enc_layers; l++) {
        enc_acts *a = &tf->enc[l];
        self_attention_block_forward(tf, &a->attn, x, enc_attn(&P->enc[l]), tf->d_src_len, 0, B,
                                     S, H, d);
        ffn_block_forward(tf, &a->ffn, a->attn.norm.out, enc_ffn(&P->enc[l]), B * S, d);
        x = a->ffn.norm.out;
    }
}

/* Decoder over d_dec_in (B, Tq) against the encoder output of the last encoder_forward
 * (B, S); logits (B*Tq, V) into tf->logits. */
static void decoder_forward(transformer *tf, int B, int Tq, int S)
{
    const model_config *c = &tf->cfg;
    const int d = c->dec_dim, H = c->dec_heads, M = B * Tq;
    const model_views *P = &tf->P;
    embed_forward(tf, &tf->dec_emb, tf->d_dec_in, P->dec_tok, P->dec_pos,
                  (wb){P->dec_ln_w, P->dec_ln_b}, B, Tq, d);
    const float *y = tf->dec_emb.out;
    for (int l = 0; l < c->dec_layers; l++) {
        dec_acts *a = &tf->dec[l];
        self_attention_block_forward(tf, &a->self, y, dec_self(&P->dec[l]), NULL, 1, B, Tq, H,
                                     d);
        cross_attention_block_forward(tf, &a->cross, a->self.norm.out, enc_out(tf),
                                      dec_cross(&P->dec[l]), tf->d_src_len, B, Tq, S, H, d,
                                      c->enc_dim);
        ffn_block_forward(tf, &a->ffn, a->cross.norm.out, dec_ffn(&P->dec[l]), M, d);
        y = a->ffn.norm.out;
    }
    /* tied output projection: logits = y E_dec^T + out_bias (M, V) */
    tf->k->linear_forward(tf->k, tf->logits, y, P->dec_tok, P->out_bias, NULL, M, d,
                          c->vocab_out);
}

static double tf_forward(transformer *tf, const model_batch *bt, long *ntokens)
{
    const int B = bt->B, S = bt->S, T = bt->T, Tq = T - 1;
    memcpy(tf->src, bt->src, (size_t)B * S * sizeof(int));
    memcpy(tf->src_len, bt->src_len, (size_t)B * sizeof(int));
    long nt = 0;
    for (int b = 0; b < B; b++) {
        for (int t = 0; t < Tq; t++) {
            tf->dec_in[b * Tq + t] = bt->tgt[(size_t)b * T + t];
            int counted = t + 1 < bt->tgt_len[b];
            tf->targets[b * Tq + t] = counted ? bt->tgt[(size_t)b * T + t + 1] : -1;
            nt += counted;
        }
    }
    upload(tf, tf->d_src, tf->src, (size_t)B * S * sizeof(int));
    upload(tf, tf->d_src_len, tf->src_len, (size_t)B * sizeof(int));
    upload(tf, tf->d_dec_in, tf->dec_in, (size_t)B * Tq * sizeof(int));
    upload(tf, tf->d_targets, tf->targets, (size_t)B * Tq * sizeof(int));
    encoder_forward(tf, B, S);
    decoder_forward(tf, B, Tq, S);
    double loss = tf->k->crossentropy_forward(tf->probs, tf->row_loss, tf->logits, tf->d_targets,
                                              B * Tq, tf->cfg.vocab_out, tf->host_row_loss);
    tf->B = B;
    tf->S = S;
    tf->Tq = Tq;
    tf->have_forward = 1;
    *ntokens = nt;
    return loss;
}

static void tf_copy_logits(const transformer *tf, float *dst)
{
    if (!tf->have_forward) lawt_die("model: copy_logits before any forward");
    download(tf, dst, tf->logits, (size_t)tf->B * tf->Tq * tf->cfg.vocab_out * sizeof(float));
}

/* ---- backward ---- */

static void tf_backward(transformer *tf, const model_batch *bt, float loss_scale)
{
    const model_config *c = &tf->cfg;
    layer_backend *k = tf->k;
    if (!tf->have_forward || bt->B != tf->B || bt->S != tf->S || bt->T - 1 != tf->Tq)
        lawt_die("model: backward needs the forward of the same batch just before");
    const int B = tf->B, S = tf->S, Tq = tf->Tq, M = B * Tq, N = B * S;
    const int dd = c->dec_dim, de = c->enc_dim, V = c->vocab_out;
    const model_views *P = &tf->P, *G = &tf->G;
    if (k->embedding_backward_prepare) {
        k->embedding_backward_prepare(k, EMB_DEC, tf->dec_in, M, V);
        k->embedding_backward_prepare(k, EMB_ENC, tf->src, N, c->vocab_in);
    }

    /* loss and the tied output projection: dlogits (M,V) in place of probs */
    k->crossentropy_backward(tf->probs, tf->d_targets, loss_scale, M, V);
    float *X = tf->g1, *Dt = tf->g2;
    k->linear_backward(k, X, G->dec_tok, G->out_bias, tf->probs, dec_out(tf), P->dec_tok, M, dd,
                       V, 0);

    /* decoder layers, last first; X holds the gradient of the layer output */
    for (int l = c->dec_layers - 1; l >= 0; l--) {
        const dec_acts *a = &tf->dec[l];
        const float *yin = l > 0 ? tf->dec[l - 1].ffn.norm.out : tf->dec_emb.out;
        const int H = c->dec_heads;
        ffn_block_backward(tf, Dt, X, &a->ffn, a->cross.norm.out, dec_ffn(&P->dec[l]),
                           dec_ffn(&G->dec[l]), M, dd);
        cross_attention_block_backward(tf, X, tf->genc, l != c->dec_layers - 1, Dt, &a->cross,
                                       a->self.norm.out, enc_out(tf), dec_cross(&P->dec[l]),
                                       dec_cross(&G->dec[l]), tf->d_src_len, B, Tq, S, H, dd,
                                       de);
        self_attention_block_backward(tf, Dt, X, &a->self, yin, dec_self(&P->dec[l]),
                                      dec_self(&G->dec[l]), NULL, 1, B, Tq, H, dd);
        float *sw = X;
        X = Dt;
        Dt = sw;
    }
    /* decoder embeddings (the token table also holds the output projection's gradient) */
    embed_backward(tf, EMB_DEC, Dt, X, &tf->dec_emb, tf->d_dec_in, G->dec_tok, G->dec_pos,
                   (wb){P->dec_ln_w, P->dec_ln_b}, (wb){G->dec_ln_w, G->dec_ln_b}, B, Tq, dd, V);

    /* encoder layers, last first; genc holds the gradient of the layer output throughout */
    X = tf->genc;
    Dt = tf->g2;
    for (int l = c->enc_layers - 1; l >= 0; l--) {
        const enc_acts *a = &tf->enc[l];
        const float *xin = l > 0 ? tf->enc[l - 1].ffn.norm.out : tf->enc_emb.out;
        ffn_block_backward(tf, Dt, X, &a->ffn, a->attn.norm.out, enc_ffn(&P->enc[l]),
                           enc_ffn(&G->enc[l]), N, de);
        self_attention_block_backward(tf, X, Dt, &a->attn, xin, enc_attn(&P->enc[l]),
                                      enc_attn(&G->enc[l]), tf->d_src_len, 0, B, S,
                                      c->enc_heads, de);
    }
    embed_backward(tf, EMB_ENC, Dt, X, &tf->enc_emb, tf->d_src, G->enc_tok, G->enc_pos,
                   (wb){P->enc_ln_w, P->enc_ln_b}, (wb){G->enc_ln_w, G->enc_ln_b}, B, S, de,
                   c->vocab_in);
    tf->have_forward = 0; /* probs now hold dlogits */
}

/* ---- optimizer ---- */

static double tf_grad_norm(const transformer *tf)
{
    return sqrt(tf->k->sumsq(tf->k, tf->grads, tf->np));
}

/* m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2   (g = grad_scale * grad)
 * p -= lr * (m / (1 - b1^step)) / (sqrt(v / (1 - b2^step)) + eps) */
static void tf_adam_step(transformer *tf, const adam_hparams *hp, long step, float grad_scale)
{
    float ib1 = 1.0f / (float)(1.0 - pow((double)hp->beta1, (double)step));
    float ib2 = 1.0f / (float)(1.0 - pow((double)hp->beta2, (double)step));
    tf->k->adam_update(tf->params, tf->adam_m, tf->adam_v, tf->grads, tf->np, hp->lr, hp->beta1,
                       hp->beta2, hp->eps, ib1, ib2, grad_scale);
}

/* ---- decoding ---- */

static void decode_alloc(transformer *tf, int R)
{
    decode_state *ds = &tf->ds;
    layer_backend *k = tf->k;
    if (R <= ds->R_cap) return;
    decode_free(k, ds);
    const model_config *c = &tf->cfg;
    const size_t L = (size_t)tf->L, dd = (size_t)c->dec_dim, nl = (size_t)c->dec_layers;
    const size_t r = (size_t)R;
    ds->kc = lawt_calloc(nl, sizeof(float *));
    ds->vc = lawt_calloc(nl, sizeof(float *));
    ds->kc2 = lawt_calloc(nl, sizeof(float *));
    ds->vc2 = lawt_calloc(nl, sizeof(float *));
    ds->ckv = lawt_calloc(nl, sizeof(float *));
    for (int pass = 0; pass < 2; pass++) {
        bump b = {.base = pass ? ds->mem : NULL, .align = k->align_floats};
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
        if (!pass) ds->mem = k->alloc(b.off * sizeof(float));
    }
    ds->ints = k->alloc(4 * r * sizeof(int));
    ds->d_tokens = ds->ints;
    ds->d_src_len = ds->ints + r;
    ds->d_key_len = ds->ints + 2 * r;
    ds->d_index = ds->ints + 3 * r;
    ds->key_len = lawt_malloc(r * sizeof(int));
    ds->src_len = lawt_malloc(r * sizeof(int));
    ds->index = lawt_malloc(r * sizeof(int));
    ds->host_logits = k->host_alloc(r * (size_t)c->vocab_out * sizeof(float));
    ds->R_cap = R;
}

static void tf_decode_begin(transformer *tf, const int *src, const int *src_len, int B, int S,
                            int rows_per_src)
{
    const model_config *c = &tf->cfg;
    layer_backend *k = tf->k;
    const int R = B * rows_per_src, dd = c->dec_dim, de = c->enc_dim;
    decode_alloc(tf, R);
    decode_state *ds = &tf->ds;
    ds->R = R;
    ds->rows_per_src = rows_per_src;
    ds->S = S;
    memcpy(tf->src, src, (size_t)B * S * sizeof(int));
    memcpy(tf->src_len, src_len, (size_t)B * sizeof(int));
    upload(tf, tf->d_src, tf->src, (size_t)B * S * sizeof(int));
    upload(tf, tf->d_src_len, tf->src_len, (size_t)B * sizeof(int));
    tf->have_forward = 0;
    encoder_forward(tf, B, S);
    tf->B = B;
    tf->S = S;
    for (int r = 0; r < R; r++) {
        ds->src_len[r] = src_len[r / rows_per_src];
        ds->index[r] = r / rows_per_src;
    }
    upload(tf, ds->d_src_len, ds->src_len, (size_t)R * sizeof(int));
    upload(tf, ds->d_index, ds->index, (size_t)R * sizeof(int));
    /* the cross-attention keys and values of each layer: (B*S, 2dd), one block per row */
    for (int l = 0; l < c->dec_layers; l++) {
        const dec_layer_views *p = &tf->P.dec[l];
        if (rows_per_src == 1) {
            k->linear_forward(k, ds->ckv[l], enc_out(tf), p->ckv_w, p->ckv_b, NULL, B * S, de,
                              2 * dd);
        } else {
            /* compute into a training buffer (free while decoding), then replicate each
             * source's block */
            float *tmp = tf->dec[0].cross.kv;
            k->linear_forward(k, tmp, enc_out(tf), p->ckv_w, p->ckv_b, NULL, B * S, de, 2 * dd);
            long blk = (long)S * 2 * dd;
            k->gather_rows(ds->ckv[l], tmp, ds->d_index, R, blk, blk);
        }
    }
}

/* One position t for R rows: the blocks of decoder_forward on (R, 1), the self-attention
 * reading its keys and values from the cache. */
static const float *tf_decode_step(transformer *tf, const int *tokens, int t)
{
    const model_config *c = &tf->cfg;
    layer_backend *k = tf->k;
    decode_state *ds = &tf->ds;
    const int R = ds->R, S = ds->S, d = c->dec_dim, H = c->dec_heads, D = d / H, L = tf->L;
    const model_views *P = &tf->P;
    const size_t fs = sizeof(float);
    for (int r = 0; r < R; r++) ds->key_len[r] = t + 1;
    upload(tf, ds->d_tokens, tokens, (size_t)R * sizeof(int));
    upload(tf, ds->d_key_len, ds->key_len, (size_t)R * sizeof(int));
    /* one position: the position table from row t, read as a table of one row */
    embed_forward(tf, &(norm_acts){ds->emb, ds->mean, ds->rstd, ds->y}, ds->d_tokens, P->dec_tok,
                  P->dec_pos + (size_t)t * d, (wb){P->dec_ln_w, P->dec_ln_b}, R, 1, d);
    for (int l = 0; l < c->dec_layers; l++) {
        self_attn_params ps = dec_self(&P->dec[l]);
        cross_attn_params pc = dec_cross(&P->dec[l]);
        /* self-attention: append this position's key and value, attend over positions <= t */
        k->linear_forward(k, ds->qkv, ds->y, ps.qkv.w, ps.qkv.b, NULL, R, d, 3 * d);
        k->copy(ds->kc[l] + (size_t)t * d, (size_t)L * d * fs, ds->qkv + d, (size_t)3 * d * fs,
                (size_t)d * fs, (size_t)R, COPY_DEVICE_TO_DEVICE);
        k->copy(ds->vc[l] + (size_t)t * d, (size_t)L * d * fs, ds->qkv + 2 * d,
                (size_t)3 * d * fs, (size_t)d * fs, (size_t)R, COPY_DEVICE_TO_DEVICE);
        k->attention_forward(ds->atty, ds->att, tf->scratch, ds->qkv, ds->kc[l], ds->vc[l],
                             3 * d, d, ds->d_key_len, 0, R, 1, L, H, D);
        residual_norm_forward(tf, &(norm_acts){ds->res, ds->mean, ds->rstd, ds->x}, ds->atty,
                              ds->y, ps.out, ps.ln, R, d, d);
        /* cross-attention on the cached encoder keys/values */
        k->linear_forward(k, ds->q, ds->x, pc.q.w, pc.q.b, NULL, R, d, d);
        k->attention_forward(ds->atty, ds->att, tf->scratch, ds->q, ds->ckv[l], ds->ckv[l] + d,
                             d, 2 * d, ds->d_src_len, 0, R, 1, S, H, D);
        residual_norm_forward(tf, &(norm_acts){ds->res, ds->mean, ds->rstd, ds->y}, ds->atty,
                              ds->x, pc.out, pc.ln, R, d, d);
        ffn_block_forward(tf, &(ffn_acts){ds->h, {ds->res, ds->mean, ds->rstd, ds->y}}, ds->y,
                          dec_ffn(&P->dec[l]), R, d);
    }
    k->linear_forward(k, ds->logits, ds->y, P->dec_tok, P->out_bias, NULL, R, d, c->vocab_out);
    download(tf, ds->host_logits, ds->logits, (size_t)R * c->vocab_out * fs);
    return ds->host_logits;
}

static void tf_decode_reorder(transformer *tf, const int *parent, int t)
{
    decode_state *ds = &tf->ds;
    layer_backend *k = tf->k;
    const long d = tf->cfg.dec_dim, L = tf->L;
    upload(tf, ds->d_index, parent, (size_t)ds->R * sizeof(int));
    for (int l = 0; l < tf->cfg.dec_layers; l++) {
        k->gather_rows(ds->kc2[l], ds->kc[l], ds->d_index, ds->R, (long)(t + 1) * d, L * d);
        k->gather_rows(ds->vc2[l], ds->vc[l], ds->d_index, ds->R, (long)(t + 1) * d, L * d);
        float *sw = ds->kc[l];
        ds->kc[l] = ds->kc2[l];
        ds->kc2[l] = sw;
        sw = ds->vc[l];
        ds->vc[l] = ds->vc2[l];
        ds->vc2[l] = sw;
    }
}

static const float *tf_decode_prefix(transformer *tf, const int *prefix, int t)
{
    decode_state *ds = &tf->ds;
    if (ds->rows_per_src != 1) lawt_die("model: decode_prefix needs one row per source");
    const int B = ds->R, Tq = t + 1, V = tf->cfg.vocab_out;
    const size_t fs = sizeof(float);
    memcpy(tf->dec_in, prefix, (size_t)B * Tq * sizeof(int));
    upload(tf, tf->d_dec_in, tf->dec_in, (size_t)B * Tq * sizeof(int));
    decoder_forward(tf, B, Tq, ds->S);
    tf->k->copy(tf->host_prefix_logits, (size_t)V * fs, tf->logits + (size_t)t * V,
                (size_t)Tq * V * fs, (size_t)V * fs, (size_t)B, COPY_DEVICE_TO_HOST);
    return tf->host_prefix_logits;
}

const transformer_ops transformer_model_ops = {
    .destroy = tf_destroy,
    .copy_out = tf_copy_out,
    .copy_in = tf_copy_in,
    .grads = tf_grads,
    .zero_grad = tf_zero_grad,
    .forward = tf_forward,
    .backward = tf_backward,
    .copy_logits = tf_copy_logits,
    .grad_norm = tf_grad_norm,
    .adam_step = tf_adam_step,
    .decode_begin = tf_decode_begin,
    .decode_step = tf_decode_step,
    .decode_reorder = tf_decode_reorder,
    .decode_prefix = tf_decode_prefix,
};
