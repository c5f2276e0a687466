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
 * and d(enc_out), which the decoder layers' cross-attention keys/values accumulate into.
 *
 * Universal transformers (model.h, MODEL_LOOP_MODES): a looped side runs its one layer once per
 * iteration, each iteration with activations of its own (a stack of that depth, sharing one
 * layer's parameters, whose gradients accumulate over the iterations); the loop step after each
 * iteration (the copy gate, ACT's halting unit) and ACT's weighted sum are backend layers too.
 * Backward carries the gradient of the state between a gated side's iterations, or of an ACT
 * side's output, in one more (rows, d) buffer. */
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

/* One iteration of a stack: a layer's activations; next is the state after it, the next
 * iteration's input (the layer's output ffn.norm.out itself, or the copy gate's mix). */
typedef struct {
    self_attn_acts attn;
    ffn_acts ffn;
    float *gate, *next; /* gated: g (N,d) and the mix (N,d) */
} enc_acts;

typedef struct {
    self_attn_acts self;
    cross_attn_acts cross;
    ffn_acts ffn;
    float *gate, *next;
} dec_acts;

/* Adaptive computation time over the L iterations of a side, N rows: the halting unit's
 * logits, then probabilities (L,N); the weights of the iterations' outputs (L,N); N + R (N);
 * the side's output, the weighted sum (N,d); which rows count in the ponder cost (N, 0 or 1). */
typedef struct {
    float *halt, *weight, *ponder, *out, *mask;
} act_acts;

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

/* Decoding state for R rows: per decoder iteration a key/value cache of the self-attention,
 * (R, L, dd) each (plus a second copy to reorder beams into), and per decoder layer the
 * cross-attention keys and values of the encoder output (R, S, 2dd); buffers for one step of R
 * rows (a looped decoder's: the gate's input state and gate, or ACT's states of every
 * iteration, halting probabilities and weights). */
typedef struct {
    int R_cap, R, rows_per_src, S;
    int can_reorder; /* kc2, vc2 exist (beams): greedy decoding does without them */
    float *mem;
    float **kc, **vc, **kc2, **vc2, **ckv;
    float *emb, *y, *qkv, *atty, *res, *x, *q, *h, *mean, *rstd, *att, *logits;
    float *xin, *gate;                 /* gated: (R,dd) each */
    float *ys, *halt, *weight, *ponder; /* act: (iters,R,dd), (iters,R) twice, (R) */
    int *ints;                      /* backend: tokens, src_len, key_len, index (R each) */
    int *d_tokens, *d_src_len, *d_key_len, *d_index;
    int *key_len, *src_len, *index; /* host (R each) */
    float *host_logits;             /* (R, vocab_out) */
} decode_state;

struct transformer {
    model_config cfg;
    layer_backend *k;
    int maxB;
    int Ls, Lt; /* the longest source and target the activations hold */
    int recompute; /* model_recompute */
    int enc_iters, dec_iters; /* iterations of each stack: its layers, or its loops */
    int enc_mode, dec_mode;   /* model_loop_mode of each side (LOOP_FIXED: a plain stack) */
    model_state st;

    float *act; /* backend memory, carved below */
    norm_acts enc_emb, dec_emb;
    enc_acts *enc; /* enc_iters */
    dec_acts *dec; /* dec_iters */
    act_acts enc_act, dec_act;
    float *logits, *probs; /* (M,V) each; backward turns probs into dlogits */
    float *g1, *g2, *gh, *gqkv, *gatty, *gq, *gkv, *genc;
    /* loops: the gradient of the state a gated or ACT side carries across iterations, the
     * copy gate's pre-activation, ACT's weights and halting logits (iters, rows) */
    float *g3, *gdz, *gact_dw, *gact_dz;
    float *scratch;

    model_tokens tok; /* batch-major */
    float *host_ponder, *host_mask; /* act: one side's rows */
    int B, S, Tq, have_forward;

    decode_state ds;
};

/* ---- memory: a bump allocator run twice (size, then carve) ---- */

/* model_memory_plan reports the attention scores among the floats the bump hands out. */
static float *take_att(bump *b, size_t n)
{
    size_t before = b->off;
    float *p = bump_take(b, n);
    b->att += b->off - before;
    return p;
}

static size_t max_sz(size_t a, size_t b) { return a > b ? a : b; }

/* Add & Norm activations for NB rows of width d. */
static void take_norm(bump *b, norm_acts *a, size_t NB, size_t d)
{
    a->res = bump_take(b, NB * d);
    a->mean = bump_take(b, NB);
    a->rstd = bump_take(b, NB);
    a->out = bump_take(b, NB * d);
}

static void take_self_attn(bump *b, self_attn_acts *a, size_t NB, size_t d, size_t att)
{
    a->qkv = bump_take(b, NB * 3 * d);
    a->att = take_att(b, att);
    a->atty = bump_take(b, NB * d);
    take_norm(b, &a->norm, NB, d);
}

static void take_ffn(bump *b, ffn_acts *a, size_t NB, size_t d)
{
    a->h = bump_take(b, NB * 4 * d);
    take_norm(b, &a->norm, NB, d);
}

static void take_act(bump *b, act_acts *a, size_t L, size_t NB, size_t d)
{
    a->halt = bump_take(b, L * NB);
    a->weight = bump_take(b, L * NB);
    a->ponder = bump_take(b, NB);
    a->out = bump_take(b, NB * d);
    a->mask = bump_take(b, NB);
}

/* The activation buffer for maxB examples: the encoder's rows for sources of Ls tokens, the
 * decoder's for targets of Lt (it reads at most Lt positions); views into b->base (sizes only
 * when it is NULL), and the floats of each part into sz. */
static void carve(const model_config *c, const backend_sizes *bs, int maxB, int Ls, int Lt,
                  enc_acts *enc, dec_acts *dec, transformer *tf, bump *b, act_sizes *sz)
{
    const int enc_iters = model_enc_iters(c), dec_iters = model_dec_iters(c);
    const int enc_mode = model_enc_loop_mode(c), dec_mode = model_dec_loop_mode(c);
    const size_t B = (size_t)maxB, NS = B * (size_t)Ls, NT = B * (size_t)Lt;
    const size_t de = (size_t)c->enc_dim, dd = (size_t)c->dec_dim, V = (size_t)c->vocab_out;
    const size_t He = (size_t)c->enc_heads, Hd = (size_t)c->dec_heads;
    const size_t ls = (size_t)Ls, lt = (size_t)Lt;
    norm_acts enc_emb, dec_emb;
    size_t mark = b->off;
    take_norm(b, &enc_emb, NS, de);
    take_norm(b, &dec_emb, NT, dd);
    sz->embeddings = b->off - mark;
    mark = b->off;
    /* Recomputation: the layers after the first share its buffers (all of them, or the
     * feed-forward hidden units), each keeping its own output, the next layer's input. */
    const int rc = c->recompute;
    for (int l = 0; l < enc_iters; l++) {
        if (l > 0 && rc == MODEL_RECOMPUTE_LAYER) {
            enc[l] = enc[0];
            enc[l].ffn.norm.out = enc[l].next = bump_take(b, NS * de);
            continue;
        }
        take_self_attn(b, &enc[l].attn, NS, de, B * He * ls * ls);
        if (l > 0 && rc == MODEL_RECOMPUTE_FFN) {
            enc[l].ffn.h = enc[0].ffn.h;
            take_norm(b, &enc[l].ffn.norm, NS, de);
        } else {
            take_ffn(b, &enc[l].ffn, NS, de);
        }
        enc[l].next = enc[l].ffn.norm.out;
        if (enc_mode == LOOP_GATED) {
            enc[l].gate = bump_take(b, NS * de);
            enc[l].next = bump_take(b, NS * de);
        }
        if (l == 0) sz->enc_layer = b->off - mark;
    }
    act_acts enc_act = {0}, dec_act = {0};
    if (enc_mode == LOOP_ACT) take_act(b, &enc_act, (size_t)enc_iters, NS, de);
    sz->enc_layers = b->off - mark;
    mark = b->off;
    for (int l = 0; l < dec_iters; l++) {
        dec_acts *a = &dec[l];
        if (l > 0 && rc == MODEL_RECOMPUTE_LAYER) {
            *a = dec[0];
            a->ffn.norm.out = a->next = bump_take(b, NT * dd);
            continue;
        }
        take_self_attn(b, &a->self, NT, dd, B * Hd * lt * lt);
        a->cross.q = bump_take(b, NT * dd);
        a->cross.kv = bump_take(b, NS * 2 * dd);
        a->cross.att = take_att(b, B * Hd * lt * ls);
        a->cross.atty = bump_take(b, NT * dd);
        take_norm(b, &a->cross.norm, NT, dd);
        if (l > 0 && rc == MODEL_RECOMPUTE_FFN) {
            a->ffn.h = dec[0].ffn.h;
            take_norm(b, &a->ffn.norm, NT, dd);
        } else {
            take_ffn(b, &a->ffn, NT, dd);
        }
        a->next = a->ffn.norm.out;
        if (dec_mode == LOOP_GATED) {
            a->gate = bump_take(b, NT * dd);
            a->next = bump_take(b, NT * dd);
        }
        if (l == 0) sz->dec_layer = b->off - mark;
    }
    if (dec_mode == LOOP_ACT) take_act(b, &dec_act, (size_t)dec_iters, NT, dd);
    sz->dec_layers = b->off - mark;
    sz->attention = b->att;
    mark = b->off;
    float *logits = bump_take(b, NT * V), *probs = bump_take(b, NT * V);
    sz->logits = b->off - mark;
    /* backward: g1 and g2 alternate over the decoder's rows, g2 then serves the encoder's */
    mark = b->off;
    const size_t rows_d = max_sz(NS * de, NT * dd);
    float *g1 = bump_take(b, NT * dd), *g2 = bump_take(b, rows_d);
    float *gh = bump_take(b, 4 * rows_d), *gqkv = bump_take(b, 3 * rows_d), *gatty = bump_take(b, rows_d);
    float *gq = bump_take(b, NT * dd), *gkv = bump_take(b, NS * 2 * dd), *genc = bump_take(b, NS * de);
    const int gated = enc_mode == LOOP_GATED || dec_mode == LOOP_GATED;
    const int act = enc_mode == LOOP_ACT || dec_mode == LOOP_ACT;
    float *g3 = gated || act ? bump_take(b, rows_d) : NULL, *gdz = gated ? bump_take(b, rows_d) : NULL;
    const size_t act_rows = max_sz(enc_mode == LOOP_ACT ? (size_t)enc_iters * NS : 0,
                                   dec_mode == LOOP_ACT ? (size_t)dec_iters * NT : 0);
    float *gact_dw = act ? bump_take(b, act_rows) : NULL, *gact_dz = act ? bump_take(b, act_rows) : NULL;
    long sc_enc = bs->attention_scratch_floats(maxB, (int)He, Ls, Ls, (int)(de / He));
    long sc_self = bs->attention_scratch_floats(maxB, (int)Hd, Lt, Lt, (int)(dd / Hd));
    long sc_cross = bs->attention_scratch_floats(maxB, (int)Hd, Lt, Ls, (int)(dd / Hd));
    long sc = sc_enc > sc_self ? sc_enc : sc_self;
    float *scratch = bump_take(b, (size_t)(sc > sc_cross ? sc : sc_cross));
    sz->backward = b->off - mark;
    if (tf) {
        tf->enc_emb = enc_emb;
        tf->dec_emb = dec_emb;
        tf->logits = logits;
        tf->probs = probs;
        tf->g1 = g1;
        tf->g2 = g2;
        tf->gh = gh;
        tf->gqkv = gqkv;
        tf->gatty = gatty;
        tf->gq = gq;
        tf->gkv = gkv;
        tf->genc = genc;
        tf->g3 = g3;
        tf->gdz = gdz;
        tf->gact_dw = gact_dw;
        tf->gact_dz = gact_dz;
        tf->enc_act = enc_act;
        tf->dec_act = dec_act;
        tf->scratch = scratch;
    }
}

/* Rows of host_ponder and host_mask: the larger ACT side's (0 without ACT). */
static size_t act_host_rows(const model_config *c, int maxB, int Ls, int Lt)
{
    const size_t mb = (size_t)maxB;
    return max_sz(model_enc_loop_mode(c) == LOOP_ACT ? mb * (size_t)Ls : 0,
                  model_dec_loop_mode(c) == LOOP_ACT ? mb * (size_t)Lt : 0);
}

transformer *transformer_create(const model_config *cfg, layer_backend *k, int max_batch,
                                size_t nparams)
{
    transformer *tf = lawt_calloc(1, sizeof *tf);
    tf->cfg = *cfg;
    tf->k = k;
    tf->maxB = max_batch;
    tf->Ls = model_src_capacity(cfg);
    tf->Lt = model_tgt_capacity(cfg);
    tf->recompute = cfg->recompute;
    tf->enc_iters = model_enc_iters(cfg);
    tf->dec_iters = model_dec_iters(cfg);
    tf->enc_mode = model_enc_loop_mode(cfg);
    tf->dec_mode = model_dec_loop_mode(cfg);
    model_state_create(&tf->st, cfg, k, nparams);
    tf->enc = lawt_calloc((size_t)tf->enc_iters, sizeof *tf->enc);
    tf->dec = lawt_calloc((size_t)tf->dec_iters, sizeof *tf->dec);
    const backend_sizes bs = {.align_floats = k->align_floats,
                              .attention_scratch_floats = k->attention_scratch_floats};
    act_sizes sz;
    bump b = {.align = k->align_floats};
    carve(cfg, &bs, max_batch, tf->Ls, tf->Lt, tf->enc, tf->dec, NULL, &b, &sz);
    tf->act = k->alloc(b.off * sizeof(float));
    b = (bump){.base = tf->act, .align = k->align_floats};
    carve(cfg, &bs, max_batch, tf->Ls, tf->Lt, tf->enc, tf->dec, tf, &b, &sz);

    model_tokens_create(&tf->tok, cfg, k, max_batch, tf->Ls, tf->Lt);
    const size_t act_rows = act_host_rows(cfg, max_batch, tf->Ls, tf->Lt);
    if (act_rows) {
        tf->host_ponder = k->host_alloc(act_rows * sizeof(float));
        tf->host_mask = k->host_alloc(act_rows * sizeof(float));
    }
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
    model_state_destroy(&tf->st);
    k->free(tf->act);
    model_tokens_destroy(&tf->tok, k);
    if (tf->host_ponder) k->host_free(tf->host_ponder);
    if (tf->host_mask) k->host_free(tf->host_mask);
    free(tf->enc);
    free(tf->dec);
    k->destroy(k);
    free(tf);
}

static void tf_copy_out(const transformer *tf, model_buffer which, float *dst)
{
    model_state_copy_out(&tf->st, which, dst);
}

static void tf_copy_in(transformer *tf, model_buffer which, const float *src)
{
    model_state_copy_in(&tf->st, which, src);
}

static float *tf_grads(transformer *tf) { return tf->st.grads; }

static void tf_zero_grad(transformer *tf) { model_state_zero_grad(&tf->st); }

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
static void ffn_hidden_forward(transformer *tf, ffn_acts *a, const float *x, ffn_params p, int N,
                               int d)
{
    layer_backend *k = tf->k;
    k->linear_forward(k, a->h, x, p.fc1.w, p.fc1.b, NULL, N, d, 4 * d);
    k->relu_forward(a->h, a->h, (long)N * 4 * d);
}

static void ffn_block_forward(transformer *tf, ffn_acts *a, const float *x, ffn_params p, int N,
                              int d)
{
    ffn_hidden_forward(tf, a, x, p, N, d);
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

/* The layer iteration i of a stack runs: its own, or the one shared layer of a looped side
 * (which has one layer). */
static int layer_of(int layers, int i) { return layers == 1 ? 0 : i; }

static const float *enc_out(const transformer *tf)
{
    return tf->enc_mode == LOOP_ACT ? tf->enc_act.out : tf->enc[tf->enc_iters - 1].next;
}

static const float *dec_out(const transformer *tf)
{
    return tf->dec_mode == LOOP_ACT ? tf->dec_act.out : tf->dec[tf->dec_iters - 1].next;
}

/* The input of encoder iteration l (the embeddings' output for the first). */
static const float *enc_in(const transformer *tf, int l)
{
    return l > 0 ? tf->enc[l - 1].next : tf->enc_emb.out;
}

static const float *dec_in(const transformer *tf, int l)
{
    return l > 0 ? tf->dec[l - 1].next : tf->dec_emb.out;
}

/* Encoder iteration l over its input (B*S, de): self-attention, feed-forward. */
static void encoder_layer_forward(transformer *tf, int l, int B, int S)
{
    const model_config *c = &tf->cfg;
    enc_acts *a = &tf->enc[l];
    const enc_layer_views *p = &tf->st.P.enc[layer_of(c->enc_layers, l)];
    self_attention_block_forward(tf, &a->attn, enc_in(tf, l), enc_attn(p), tf->tok.d_src_len, 0, B,
                                 S, c->enc_heads, c->enc_dim);
    ffn_block_forward(tf, &a->ffn, a->attn.norm.out, enc_ffn(p), B * S, c->enc_dim);
}

/* Decoder iteration l over its input (B*Tq, dd) and the encoder output (B*S, de). */
static void decoder_layer_forward(transformer *tf, int l, int B, int Tq, int S)
{
    const model_config *c = &tf->cfg;
    const int d = c->dec_dim, H = c->dec_heads;
    dec_acts *a = &tf->dec[l];
    const dec_layer_views *p = &tf->st.P.dec[layer_of(c->dec_layers, l)];
    self_attention_block_forward(tf, &a->self, dec_in(tf, l), dec_self(p), NULL, 1, B, Tq, H, d);
    cross_attention_block_forward(tf, &a->cross, a->self.norm.out, enc_out(tf), dec_cross(p),
                                  tf->tok.d_src_len, B, Tq, S, H, d, c->enc_dim);
    ffn_block_forward(tf, &a->ffn, a->cross.norm.out, dec_ffn(p), B * Tq, d);
}

/* After iteration i of a looped side (N rows of width d), input x, layer output y:
 *   gated  gate = sigmoid(x W_g^T + b_g) (N,d);  next = gate y + (1 - gate) x
 *   act    halt[i] = y w_h^T + b_h (N), the halting unit's logits (probabilities once
 *          act_finish_forward has run) */
static void loop_step_forward(transformer *tf, int mode, const loop_views *p, float *gate,
                              float *next, float *halt, const float *x, const float *y, int N,
                              int d)
{
    layer_backend *k = tf->k;
    if (mode == LOOP_GATED) {
        k->linear_forward(k, gate, x, p->gate_w, p->gate_b, NULL, N, d, d);
        k->copy_gate_forward(next, gate, y, x, (long)N * d);
    } else if (mode == LOOP_ACT) {
        k->linear_forward(k, halt, y, p->halt_w, p->halt_b, NULL, N, d, 1);
    }
}

/* ACT after the L iterations: weights and N + R from the halting logits, and the side's output
 * out = sum_i weight[i] y_i (N,d); y(i) is iteration i's output. */
static void act_finish_forward(transformer *tf, act_acts *a, int L, int N, int d,
                               const float *(*y)(const transformer *tf, int i))
{
    layer_backend *k = tf->k;
    k->act_halting_forward(a->weight, a->ponder, a->halt, (float)tf->cfg.act_threshold, L, N);
    for (int i = 0; i < L; i++)
        k->weighted_rows_forward(a->out, a->weight + (size_t)i * N, y(tf, i), N, d, i > 0);
}

static const float *enc_y(const transformer *tf, int i) { return tf->enc[i].ffn.norm.out; }
static const float *dec_y(const transformer *tf, int i) { return tf->dec[i].ffn.norm.out; }

static void encoder_forward(transformer *tf, int B, int S)
{
    const model_config *c = &tf->cfg;
    const model_views *P = &tf->st.P;
    const int N = B * S, d = c->enc_dim;
    embed_forward(tf, &tf->enc_emb, tf->tok.d_src, P->enc_tok, P->enc_pos,
                  (wb){P->enc_ln_w, P->enc_ln_b}, B, S, d);
    for (int l = 0; l < tf->enc_iters; l++) {
        enc_acts *a = &tf->enc[l];
        encoder_layer_forward(tf, l, B, S);
        float *halt = tf->enc_act.halt ? tf->enc_act.halt + (size_t)l * N : NULL;
        loop_step_forward(tf, tf->enc_mode, &P->enc_loop, a->gate, a->next, halt, enc_in(tf, l),
                          a->ffn.norm.out, N, d);
    }
    if (tf->enc_mode == LOOP_ACT) act_finish_forward(tf, &tf->enc_act, tf->enc_iters, N, d, enc_y);
}

/* Decoder over d_dec_in (B, Tq) against the encoder output of the last encoder_forward
 * (B, S); logits (B*Tq, V) into tf->logits. */
static void decoder_forward(transformer *tf, int B, int Tq, int S)
{
    const model_config *c = &tf->cfg;
    const int d = c->dec_dim, M = B * Tq;
    const model_views *P = &tf->st.P;
    embed_forward(tf, &tf->dec_emb, tf->tok.d_dec_in, P->dec_tok, P->dec_pos,
                  (wb){P->dec_ln_w, P->dec_ln_b}, B, Tq, d);
    for (int l = 0; l < tf->dec_iters; l++) {
        dec_acts *a = &tf->dec[l];
        decoder_layer_forward(tf, l, B, Tq, S);
        float *halt = tf->dec_act.halt ? tf->dec_act.halt + (size_t)l * M : NULL;
        loop_step_forward(tf, tf->dec_mode, &P->dec_loop, a->gate, a->next, halt, dec_in(tf, l),
                          a->ffn.norm.out, M, d);
    }
    if (tf->dec_mode == LOOP_ACT) act_finish_forward(tf, &tf->dec_act, tf->dec_iters, M, d, dec_y);
    /* tied output projection: logits = y E_dec^T + out_bias (M, V) */
    tf->k->linear_forward(tf->k, tf->logits, dec_out(tf), P->dec_tok, P->out_bias, NULL, M, d,
                          c->vocab_out);
}

/* ACT's ponder cost of one side: uploads the mask of its counted rows (host_mask, N) for
 * backward and returns the sum of N + R over them, in row order. */
static double act_ponder_sum(transformer *tf, act_acts *a, int N)
{
    model_upload(tf->k, a->mask, tf->host_mask, (size_t)N * sizeof(float));
    model_download(tf->k, tf->host_ponder, a->ponder, (size_t)N * sizeof(float));
    double sum = 0.0;
    for (int r = 0; r < N; r++) sum += (double)tf->host_mask[r] * tf->host_ponder[r];
    return sum;
}

static double tf_forward(transformer *tf, const model_batch *bt, long *ntokens)
{
    const int B = bt->B, S = bt->S, T = bt->T, Tq = T - 1;
    memcpy(tf->tok.src, bt->src, (size_t)B * S * sizeof(int));
    memcpy(tf->tok.src_len, bt->src_len, (size_t)B * sizeof(int));
    long nt = 0;
    for (int b = 0; b < B; b++) {
        for (int t = 0; t < Tq; t++) {
            tf->tok.dec_in[b * Tq + t] = bt->tgt[(size_t)b * T + t];
            int counted = t + 1 < bt->tgt_len[b];
            tf->tok.targets[b * Tq + t] = counted ? bt->tgt[(size_t)b * T + t + 1] : -1;
            nt += counted;
        }
    }
    model_upload(tf->k, tf->tok.d_src, tf->tok.src, (size_t)B * S * sizeof(int));
    model_upload(tf->k, tf->tok.d_src_len, tf->tok.src_len, (size_t)B * sizeof(int));
    model_upload(tf->k, tf->tok.d_dec_in, tf->tok.dec_in, (size_t)B * Tq * sizeof(int));
    model_upload(tf->k, tf->tok.d_targets, tf->tok.targets, (size_t)B * Tq * sizeof(int));
    encoder_forward(tf, B, S);
    decoder_forward(tf, B, Tq, S);
    double loss = tf->k->crossentropy_forward(tf->probs, tf->tok.row_loss, tf->logits, tf->tok.d_targets,
                                              B * Tq, tf->cfg.vocab_out, tf->tok.host_row_loss);
    /* ACT: the ponder cost of the source tokens before the padding and of the decoder
     * positions whose next token is counted */
    double ponder = 0.0;
    if (tf->enc_mode == LOOP_ACT) {
        for (int b = 0; b < B; b++)
            for (int t = 0; t < S; t++) tf->host_mask[b * S + t] = t < bt->src_len[b];
        ponder += act_ponder_sum(tf, &tf->enc_act, B * S);
    }
    if (tf->dec_mode == LOOP_ACT) {
        for (int r = 0; r < B * Tq; r++) tf->host_mask[r] = tf->tok.targets[r] >= 0;
        ponder += act_ponder_sum(tf, &tf->dec_act, B * Tq);
    }
    loss += tf->cfg.ponder_cost * ponder;
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
    model_download(tf->k, dst, tf->logits, (size_t)tf->B * tf->Tq * tf->cfg.vocab_out * sizeof(float));
}

/* ---- backward ---- */

/* ACT before a side's iterations: from dout (N,d), the gradient of the side's output
 * sum_i weight[i] y_i, the gradient of each weight (gact_dw, (L,N)), then that of the
 * halting logits (gact_dz, (L,N)), the ponder cost weighing ponder_scale per counted row. */
static void act_weights_backward(transformer *tf, const act_acts *a, const float *dout, int L,
                                 int N, int d, float ponder_scale,
                                 const float *(*y)(const transformer *tf, int i))
{
    layer_backend *k = tf->k;
    for (int i = 0; i < L; i++)
        k->weighted_rows_backward(tf->gact_dw + (size_t)i * N, NULL, dout,
                                  a->weight + (size_t)i * N, y(tf, i), N, d);
    k->act_halting_backward(tf->gact_dz, tf->gact_dw, a->halt, a->mask, ponder_scale,
                            (float)tf->cfg.act_threshold, L, N);
}

/* Before the backward of iteration l of a side (input x, layer output y, N rows of width d),
 * X becomes the gradient of y:
 *   fixed  X already is;
 *   gated  carry (N,d) holds the gradient of the state after the iteration:
 *          X = gate carry (and the gate's pre-activation gradient into gdz);
 *   act    carry holds that of the side's output: X (the next iteration's input gradient, or
 *          0 for the last) += weight[l] carry, plus the halting unit's share. */
static void loop_step_backward_before(transformer *tf, int mode, const loop_views *p,
                                      const loop_views *g, const act_acts *a, float *X,
                                      const float *carry, const float *gate, const float *x,
                                      const float *y, int l, int last, int N, int d)
{
    layer_backend *k = tf->k;
    if (mode == LOOP_GATED) {
        k->copy_gate_backward(tf->gdz, X, NULL, carry, gate, y, x, (long)N * d);
    } else if (mode == LOOP_ACT) {
        if (last) k->zero(X, (size_t)N * d);
        k->weighted_rows_backward(NULL, X, carry, a->weight + (size_t)l * N, y, N, d);
        k->linear_backward(k, X, g->halt_w, g->halt_b, tf->gact_dz + (size_t)l * N, y, p->halt_w,
                           N, d, 1, 1);
    }
}

/* After it, X holding the gradient of x through the layer: gated adds the skip path's and the
 * gate's shares, and X becomes the carry of the iteration before (unless l is the first). */
static void loop_step_backward_after(transformer *tf, int mode, const loop_views *p,
                                     const loop_views *g, float *X, float *carry,
                                     const float *gate, const float *x, const float *y, int l,
                                     int N, int d)
{
    layer_backend *k = tf->k;
    if (mode != LOOP_GATED) return;
    k->copy_gate_backward(NULL, NULL, X, carry, gate, y, x, (long)N * d);
    k->linear_backward(k, X, g->gate_w, g->gate_b, tf->gdz, x, p->gate_w, N, d, d, 1);
    if (l > 0)
        k->copy(carry, (size_t)N * d * sizeof(float), X, (size_t)N * d * sizeof(float),
                (size_t)N * d * sizeof(float), 1, COPY_DEVICE_TO_DEVICE);
}


static void tf_backward(transformer *tf, const model_batch *bt, float loss_scale)
{
    const model_config *c = &tf->cfg;
    layer_backend *k = tf->k;
    if (!tf->have_forward || bt->B != tf->B || bt->S != tf->S || bt->T - 1 != tf->Tq)
        lawt_die("model: backward needs the forward of the same batch just before");
    const int B = tf->B, S = tf->S, Tq = tf->Tq, M = B * Tq, N = B * S;
    const int dd = c->dec_dim, de = c->enc_dim, V = c->vocab_out;
    const model_views *P = &tf->st.P, *G = &tf->st.G;
    if (k->embedding_backward_prepare) {
        k->embedding_backward_prepare(k, EMB_DEC, tf->tok.dec_in, M, V);
        k->embedding_backward_prepare(k, EMB_ENC, tf->tok.src, N, c->vocab_in);
    }

    /* loss and the tied output projection: dlogits (M,V) in place of probs. X holds the
     * gradient of an iteration's output, Dt its scratch twin; a gated or ACT side keeps the
     * gradient of its output (ACT) or of the state between iterations (gated) in g3. */
    k->crossentropy_backward(tf->probs, tf->tok.d_targets, loss_scale, M, V);
    float *X = tf->g1, *Dt = tf->g2;
    float *dtop = tf->dec_mode == LOOP_FIXED ? X : tf->g3;
    k->linear_backward(k, dtop, G->dec_tok, G->out_bias, tf->probs, dec_out(tf), P->dec_tok, M,
                       dd, V, 0);
    const float ponder_scale = (float)(c->ponder_cost * loss_scale);
    if (tf->dec_mode == LOOP_ACT)
        act_weights_backward(tf, &tf->dec_act, dtop, tf->dec_iters, M, dd, ponder_scale, dec_y);

    /* decoder iterations, last first; X holds the gradient of the layer output */
    for (int l = tf->dec_iters - 1; l >= 0; l--) {
        dec_acts *a = &tf->dec[l];
        const float *yin = dec_in(tf, l);
        const int H = c->dec_heads, pl = layer_of(c->dec_layers, l);
        loop_step_backward_before(tf, tf->dec_mode, &P->dec_loop, &G->dec_loop, &tf->dec_act, X,
                                  tf->g3, a->gate, yin, a->ffn.norm.out, l,
                                  l == tf->dec_iters - 1, M, dd);
        if (tf->recompute == MODEL_RECOMPUTE_LAYER) decoder_layer_forward(tf, l, B, Tq, S);
        else if (tf->recompute == MODEL_RECOMPUTE_FFN)
            ffn_hidden_forward(tf, &a->ffn, a->cross.norm.out, dec_ffn(&P->dec[pl]), M, dd);
        ffn_block_backward(tf, Dt, X, &a->ffn, a->cross.norm.out, dec_ffn(&P->dec[pl]),
                           dec_ffn(&G->dec[pl]), M, dd);
        cross_attention_block_backward(tf, X, tf->genc, l != tf->dec_iters - 1, Dt, &a->cross,
                                       a->self.norm.out, enc_out(tf), dec_cross(&P->dec[pl]),
                                       dec_cross(&G->dec[pl]), tf->tok.d_src_len, B, Tq, S, H, dd,
                                       de);
        self_attention_block_backward(tf, Dt, X, &a->self, yin, dec_self(&P->dec[pl]),
                                      dec_self(&G->dec[pl]), NULL, 1, B, Tq, H, dd);
        float *sw = X;
        X = Dt;
        Dt = sw;
        loop_step_backward_after(tf, tf->dec_mode, &P->dec_loop, &G->dec_loop, X, tf->g3,
                                 a->gate, yin, a->ffn.norm.out, l, M, dd);
    }
    /* decoder embeddings (the token table also holds the output projection's gradient) */
    embed_backward(tf, EMB_DEC, Dt, X, &tf->dec_emb, tf->tok.d_dec_in, G->dec_tok, G->dec_pos,
                   (wb){P->dec_ln_w, P->dec_ln_b}, (wb){G->dec_ln_w, G->dec_ln_b}, B, Tq, dd, V);

    /* encoder iterations, last first; X holds the gradient of the layer output throughout:
     * genc, which the decoder's cross-attention filled, or for a gated or ACT encoder g3
     * (genc then keeps the gradient of the encoder's output or state) */
    X = tf->enc_mode == LOOP_FIXED ? tf->genc : tf->g3;
    Dt = tf->g2;
    if (tf->enc_mode == LOOP_ACT)
        act_weights_backward(tf, &tf->enc_act, tf->genc, tf->enc_iters, N, de, ponder_scale,
                             enc_y);
    for (int l = tf->enc_iters - 1; l >= 0; l--) {
        enc_acts *a = &tf->enc[l];
        const float *xin = enc_in(tf, l);
        const int pl = layer_of(c->enc_layers, l);
        loop_step_backward_before(tf, tf->enc_mode, &P->enc_loop, &G->enc_loop, &tf->enc_act, X,
                                  tf->genc, a->gate, xin, a->ffn.norm.out, l,
                                  l == tf->enc_iters - 1, N, de);
        if (tf->recompute == MODEL_RECOMPUTE_LAYER) encoder_layer_forward(tf, l, B, S);
        else if (tf->recompute == MODEL_RECOMPUTE_FFN)
            ffn_hidden_forward(tf, &a->ffn, a->attn.norm.out, enc_ffn(&P->enc[pl]), N, de);
        ffn_block_backward(tf, Dt, X, &a->ffn, a->attn.norm.out, enc_ffn(&P->enc[pl]),
                           enc_ffn(&G->enc[pl]), N, de);
        self_attention_block_backward(tf, X, Dt, &a->attn, xin, enc_attn(&P->enc[pl]),
                                      enc_attn(&G->enc[pl]), tf->tok.d_src_len, 0, B, S,
                                      c->enc_heads, de);
        loop_step_backward_after(tf, tf->enc_mode, &P->enc_loop, &G->enc_loop, X, tf->genc,
                                 a->gate, xin, a->ffn.norm.out, l, N, de);
    }
    embed_backward(tf, EMB_ENC, Dt, X, &tf->enc_emb, tf->tok.d_src, G->enc_tok, G->enc_pos,
                   (wb){P->enc_ln_w, P->enc_ln_b}, (wb){G->enc_ln_w, G->enc_ln_b}, B, S, de,
                   c->vocab_in);
    tf->have_forward = 0; /* probs now hold dlogits */
}

/* ---- optimizer ---- */

static double tf_grad_norm(const transformer *tf) { return model_state_grad_norm(&tf->st); }

static void tf_adam_step(transformer *tf, const adam_hparams *hp, long step, float grad_scale)
{
    model_state_adam_step(&tf->st, hp, step, grad_scale);
}

/* ---- decoding ---- */

/* The decoding buffers of R rows (views into b->base, sizes only when it is NULL): per
 * iteration the self-attention key/value cache over Lt positions (and, for beams, its
 * reordering twin), per layer the cross-attention keys/values over Ls source positions (a
 * looped decoder's iterations share its one layer's); one step's buffers. */
static void decode_layout(const model_config *c, bump *b, decode_state *ds, size_t r, size_t Ls,
                          size_t Lt, int reorder)
{
    const size_t dd = (size_t)c->dec_dim, iters = (size_t)model_dec_iters(c);
    for (size_t l = 0; l < iters; l++) {
        ds->kc[l] = bump_take(b, r * Lt * dd);
        ds->vc[l] = bump_take(b, r * Lt * dd);
        ds->kc2[l] = reorder ? bump_take(b, r * Lt * dd) : NULL;
        ds->vc2[l] = reorder ? bump_take(b, r * Lt * dd) : NULL;
    }
    for (int l = 0; l < c->dec_layers; l++) ds->ckv[l] = bump_take(b, r * Ls * 2 * dd);
    const int mode = model_dec_loop_mode(c);
    if (mode == LOOP_GATED) {
        ds->xin = bump_take(b, r * dd);
        ds->gate = bump_take(b, r * dd);
    } else if (mode == LOOP_ACT) {
        ds->ys = bump_take(b, iters * r * dd);
        ds->halt = bump_take(b, iters * r);
        ds->weight = bump_take(b, iters * r);
        ds->ponder = bump_take(b, r);
    }
    ds->emb = bump_take(b, r * dd);
    ds->y = bump_take(b, r * dd);
    ds->qkv = bump_take(b, r * 3 * dd);
    ds->atty = bump_take(b, r * dd);
    ds->res = bump_take(b, r * dd);
    ds->x = bump_take(b, r * dd);
    ds->q = bump_take(b, r * dd);
    ds->h = bump_take(b, r * 4 * dd);
    ds->mean = bump_take(b, r);
    ds->rstd = bump_take(b, r);
    ds->att = bump_take(b, r * (size_t)c->dec_heads * max_sz(Ls, Lt));
    ds->logits = bump_take(b, r * (size_t)c->vocab_out);
}

static void decode_views_alloc(decode_state *ds, const model_config *c)
{
    const size_t iters = (size_t)model_dec_iters(c);
    ds->kc = lawt_calloc(iters, sizeof(float *));
    ds->vc = lawt_calloc(iters, sizeof(float *));
    ds->kc2 = lawt_calloc(iters, sizeof(float *));
    ds->vc2 = lawt_calloc(iters, sizeof(float *));
    ds->ckv = lawt_calloc((size_t)c->dec_layers, sizeof(float *));
}

static void decode_alloc(transformer *tf, int R, int reorder)
{
    decode_state *ds = &tf->ds;
    layer_backend *k = tf->k;
    if (R <= ds->R_cap && (ds->can_reorder || !reorder)) return;
    decode_free(k, ds);
    const model_config *c = &tf->cfg;
    const size_t r = (size_t)R;
    decode_views_alloc(ds, c);
    bump b = {.align = k->align_floats};
    decode_layout(c, &b, ds, r, (size_t)tf->Ls, (size_t)tf->Lt, reorder);
    ds->mem = k->alloc(b.off * sizeof(float));
    b = (bump){.base = ds->mem, .align = k->align_floats};
    decode_layout(c, &b, ds, r, (size_t)tf->Ls, (size_t)tf->Lt, reorder);
    ds->can_reorder = reorder;
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
    decode_alloc(tf, R, rows_per_src > 1);
    decode_state *ds = &tf->ds;
    ds->R = R;
    ds->rows_per_src = rows_per_src;
    ds->S = S;
    memcpy(tf->tok.src, src, (size_t)B * S * sizeof(int));
    memcpy(tf->tok.src_len, src_len, (size_t)B * sizeof(int));
    model_upload(tf->k, tf->tok.d_src, tf->tok.src, (size_t)B * S * sizeof(int));
    model_upload(tf->k, tf->tok.d_src_len, tf->tok.src_len, (size_t)B * sizeof(int));
    tf->have_forward = 0;
    encoder_forward(tf, B, S);
    tf->B = B;
    tf->S = S;
    for (int r = 0; r < R; r++) {
        ds->src_len[r] = src_len[r / rows_per_src];
        ds->index[r] = r / rows_per_src;
    }
    model_upload(tf->k, ds->d_src_len, ds->src_len, (size_t)R * sizeof(int));
    model_upload(tf->k, ds->d_index, ds->index, (size_t)R * sizeof(int));
    /* the cross-attention keys and values of each layer: (B*S, 2dd), one block per row */
    for (int l = 0; l < c->dec_layers; l++) {
        const dec_layer_views *p = &tf->st.P.dec[l];
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
    const int R = ds->R, S = ds->S, d = c->dec_dim, H = c->dec_heads, D = d / H, L = tf->Lt;
    const model_views *P = &tf->st.P;
    const size_t fs = sizeof(float);
    for (int r = 0; r < R; r++) ds->key_len[r] = t + 1;
    model_upload(tf->k, ds->d_tokens, tokens, (size_t)R * sizeof(int));
    model_upload(tf->k, ds->d_key_len, ds->key_len, (size_t)R * sizeof(int));
    /* one position: the position table from row t, read as a table of one row */
    embed_forward(tf, &(norm_acts){ds->emb, ds->mean, ds->rstd, ds->y}, ds->d_tokens, P->dec_tok,
                  P->dec_pos + (size_t)t * d, (wb){P->dec_ln_w, P->dec_ln_b}, R, 1, d);
    for (int l = 0; l < tf->dec_iters; l++) {
        const int pl = layer_of(c->dec_layers, l);
        self_attn_params ps = dec_self(&P->dec[pl]);
        cross_attn_params pc = dec_cross(&P->dec[pl]);
        if (tf->dec_mode == LOOP_GATED)
            k->copy(ds->xin, (size_t)R * d * fs, ds->y, (size_t)R * d * fs, (size_t)R * d * fs, 1,
                    COPY_DEVICE_TO_DEVICE);
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
        k->attention_forward(ds->atty, ds->att, tf->scratch, ds->q, ds->ckv[pl], ds->ckv[pl] + d,
                             d, 2 * d, ds->d_src_len, 0, R, 1, S, H, D);
        residual_norm_forward(tf, &(norm_acts){ds->res, ds->mean, ds->rstd, ds->y}, ds->atty,
                              ds->x, pc.out, pc.ln, R, d, d);
        ffn_block_forward(tf, &(ffn_acts){ds->h, {ds->res, ds->mean, ds->rstd, ds->y}}, ds->y,
                          dec_ffn(&P->dec[pl]), R, d);
        /* the loop step of decoder_forward, on one position */
        float *ys = ds->ys ? ds->ys + (size_t)l * R * d : NULL;
        if (ys)
            k->copy(ys, (size_t)R * d * fs, ds->y, (size_t)R * d * fs, (size_t)R * d * fs, 1,
                    COPY_DEVICE_TO_DEVICE);
        loop_step_forward(tf, tf->dec_mode, &P->dec_loop, ds->gate, ds->y,
                          ds->halt ? ds->halt + (size_t)l * R : NULL, ds->xin, ds->y, R, d);
    }
    if (tf->dec_mode == LOOP_ACT) {
        k->act_halting_forward(ds->weight, ds->ponder, ds->halt, (float)c->act_threshold,
                               tf->dec_iters, R);
        for (int l = 0; l < tf->dec_iters; l++)
            k->weighted_rows_forward(ds->y, ds->weight + (size_t)l * R, ds->ys + (size_t)l * R * d,
                                     R, d, l > 0);
    }
    k->linear_forward(k, ds->logits, ds->y, P->dec_tok, P->out_bias, NULL, R, d, c->vocab_out);
    model_download(tf->k, ds->host_logits, ds->logits, (size_t)R * c->vocab_out * fs);
    return ds->host_logits;
}

static void tf_decode_reorder(transformer *tf, const int *parent, int t)
{
    decode_state *ds = &tf->ds;
    layer_backend *k = tf->k;
    const long d = tf->cfg.dec_dim, L = tf->Lt;
    if (!ds->can_reorder)
        lawt_die("model: decode_reorder needs a decode_begin of several rows a source");
    model_upload(tf->k, ds->d_index, parent, (size_t)ds->R * sizeof(int));
    for (int l = 0; l < tf->dec_iters; l++) {
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
    memcpy(tf->tok.dec_in, prefix, (size_t)B * Tq * sizeof(int));
    model_upload(tf->k, tf->tok.d_dec_in, tf->tok.dec_in, (size_t)B * Tq * sizeof(int));
    decoder_forward(tf, B, Tq, ds->S);
    tf->k->copy(tf->tok.host_prefix_logits, (size_t)V * fs, tf->logits + (size_t)t * V,
                (size_t)Tq * V * fs, (size_t)V * fs, (size_t)B, COPY_DEVICE_TO_HOST);
    return tf->tok.host_prefix_logits;
}

/* ---- the memory plan: the walks above, sizes only ---- */

void transformer_memory_plan(const model_config *cfg, const backend_sizes *bs, int max_batch,
                             size_t nparams, int beam, model_memory *out)
{
    memset(out, 0, sizeof *out);
    const int Ls = model_src_capacity(cfg), Lt = model_tgt_capacity(cfg);
    const size_t fs = sizeof(float);
    enc_acts *enc = lawt_calloc((size_t)model_enc_iters(cfg), sizeof *enc);
    dec_acts *dec = lawt_calloc((size_t)model_dec_iters(cfg), sizeof *dec);
    act_sizes sz;
    bump b = {.align = bs->align_floats};
    carve(cfg, bs, max_batch, Ls, Lt, enc, dec, NULL, &b, &sz);
    free(enc);
    free(dec);
    model_memory_common(cfg, bs, max_batch, nparams, &sz, b.off, out);
    out->host += 2 * act_host_rows(cfg, max_batch, Ls, Lt) * fs; /* ACT's ponder costs, masks */
    if (beam > 0) {
        const size_t r = (size_t)max_batch * (size_t)beam;
        decode_state ds = {0};
        decode_views_alloc(&ds, cfg);
        b = (bump){.align = bs->align_floats};
        decode_layout(cfg, &b, &ds, r, (size_t)Ls, (size_t)Lt, beam > 1);
        out->decode = b.off * fs + 4 * r * sizeof(int);
        out->host += r * (size_t)cfg->vocab_out * fs;
        free(ds.kc);
        free(ds.vc);
        free(ds.kc2);
        free(ds.vc2);
        free(ds.ckv);
    }
    model_memory_total(out);
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
