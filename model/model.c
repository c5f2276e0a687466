/* model.c: the public face of the model: configuration, the parameter layout and its named
 * views, initialisation, the choice of a layer backend, and greedy and beam decoding on top of
 * the decoding primitives of the transformer (transformer.c, through transformer_ops). */
#include "model/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "encoding/encoding.h"
#include "model/model_internal.h"

ENUM_TABLE_DEFINE(MODEL_BACKEND_TABLE, MODEL_BACKENDS);
ENUM_TABLE_DEFINE(MODEL_PRECISION_TABLE, MODEL_PRECISIONS);
ENUM_TABLE_DEFINE(MODEL_ARCH_TABLE, LAWT_ARCHS);
ENUM_TABLE_DEFINE(MODEL_LOOP_MODE_TABLE, MODEL_LOOP_MODES);

int model_arch_recurrent(int arch) { return arch == ARCH_LSTM || arch == ARCH_GRU; }

/* Gates of a recurrent cell: GRU r, z, n; LSTM i, f, g, o. */
static size_t rnn_gates(int arch) { return arch == ARCH_LSTM ? 4 : 3; }

#define MODEL_PI 3.14159265358979323846

struct model {
    model_config cfg;
    model_backend backend;
    const transformer_ops *ops;
    transformer *impl;
    size_t nparams;
    int max_batch;
};

static int looped(const model_config *c, int loops)
{
    return c->arch == ARCH_UNIVERSAL && loops > 0;
}

int model_enc_iters(const model_config *c)
{
    return looped(c, c->enc_loops) ? c->enc_loops : c->enc_layers;
}

int model_dec_iters(const model_config *c)
{
    return looped(c, c->dec_loops) ? c->dec_loops : c->dec_layers;
}

int model_enc_loop_mode(const model_config *c)
{
    return looped(c, c->enc_loops) ? c->loop_mode : LOOP_FIXED;
}

int model_dec_loop_mode(const model_config *c)
{
    return looped(c, c->dec_loops) ? c->loop_mode : LOOP_FIXED;
}

/* The loop parameters of a side of width d: the copy gate d(d + 1), the halting unit d + 1. */
static size_t loop_params(int mode, size_t d)
{
    return mode == LOOP_GATED ? d * (d + 1) : mode == LOOP_ACT ? d + 1 : 0;
}

static size_t recurrent_param_count(const model_config *c)
{
    size_t de = (size_t)c->enc_dim, dd = (size_t)c->dec_dim, wi = (size_t)c->vocab_in,
           wo = (size_t)c->vocab_out, g = rnn_gates(c->arch), h = (size_t)c->rnn_hidden,
           L = (size_t)c->rnn_layers;
    return de * wi + dd * wo + g * h * (de + h + 2) + g * h * (dd + h + 2) +
           2 * (L - 1) * g * h * (2 * h + 2) + dd * (h + 1) + wo;
}

size_t model_param_count(const model_config *c)
{
    if (model_arch_recurrent(c->arch)) return recurrent_param_count(c);
    size_t de = (size_t)c->enc_dim, dd = (size_t)c->dec_dim, ne = (size_t)c->enc_layers,
           nd = (size_t)c->dec_layers, wi = (size_t)c->vocab_in, wo = (size_t)c->vocab_out,
           wp = (size_t)c->max_len;
    return de * (wi + wp + 2) + ((wo + wp + 2) * dd + wo) + ne * de * (12 * de + 13) +
           nd * dd * (14 * dd + 2 * de + 19) + loop_params(model_enc_loop_mode(c), de) +
           loop_params(model_dec_loop_mode(c), dd);
}

int model_config_validate(const model_config *c, char *err, size_t errcap)
{
#define BAD(...)                                      \
    do {                                              \
        if (err && errcap) snprintf(err, errcap, __VA_ARGS__); \
        return -1;                                    \
    } while (0)
    if (c->arch < 0 || c->arch >= MODEL_ARCH_TABLE.count)
        BAD("arch %d is not a model_arch", c->arch);
    if (model_arch_recurrent(c->arch)) {
        if (c->rnn_layers < 1 || c->rnn_hidden < 1)
            BAD("rnn_layers %d and rnn_hidden %d must be >= 1", c->rnn_layers, c->rnn_hidden);
        if (c->rnn_layers > 1024 || c->rnn_hidden > 65536)
            BAD("configuration too large (rnn_layers %d, rnn_hidden %d)", c->rnn_layers,
                c->rnn_hidden);
        if (c->rnn_reverse_source != 0 && c->rnn_reverse_source != 1)
            BAD("rnn_reverse_source must be 0 or 1 (got %d)", c->rnn_reverse_source);
        if (c->recompute != MODEL_RECOMPUTE_NONE)
            BAD("recompute applies to the transformer only (arch %s)",
                enum_name(&MODEL_ARCH_TABLE, c->arch));
    }
    if (c->enc_layers < 1 || c->dec_layers < 1)
        BAD("layers must be >= 1 (encoder %d, decoder %d)", c->enc_layers, c->dec_layers);
    if (c->enc_dim < 1 || c->dec_dim < 1)
        BAD("dimensions must be >= 1 (encoder %d, decoder %d)", c->enc_dim, c->dec_dim);
    if (c->enc_heads < 1 || c->dec_heads < 1)
        BAD("heads must be >= 1 (encoder %d, decoder %d)", c->enc_heads, c->dec_heads);
    if (!model_arch_recurrent(c->arch) && c->enc_dim % c->enc_heads)
        BAD("encoder dimension %d is not divisible by its %d heads", c->enc_dim, c->enc_heads);
    if (!model_arch_recurrent(c->arch) && c->dec_dim % c->dec_heads)
        BAD("decoder dimension %d is not divisible by its %d heads", c->dec_dim, c->dec_heads);
    if (c->vocab_in <= TOK_EOS || c->vocab_out <= TOK_EOS)
        BAD("vocabularies must hold the special tokens (in %d, out %d)", c->vocab_in,
            c->vocab_out);
    if (c->max_len < 2) BAD("max_len must be >= 2 (got %d)", c->max_len);
    if (c->recompute < MODEL_RECOMPUTE_NONE || c->recompute > MODEL_RECOMPUTE_LAYER)
        BAD("recompute %d is not a model_recompute", c->recompute);
    if (c->max_src < 0 || c->max_src > c->max_len || c->max_tgt == 1 || c->max_tgt < 0 ||
        c->max_tgt > c->max_len)
        BAD("max_src %d and max_tgt %d must be 0 (max_len) or in [1, max_len %d] ([2, ..] for "
            "max_tgt)", c->max_src, c->max_tgt, c->max_len);
    if (c->enc_dim > 65536 || c->dec_dim > 65536 || c->enc_layers > 1024 ||
        c->dec_layers > 1024 || c->max_len > 65536)
        BAD("configuration too large");
    if (c->enc_loops < 0 || c->dec_loops < 0 || c->enc_loops > 1024 || c->dec_loops > 1024)
        BAD("enc_loops %d and dec_loops %d must be in [0, 1024]", c->enc_loops, c->dec_loops);
    if (c->loop_mode < LOOP_FIXED || c->loop_mode > LOOP_ACT)
        BAD("loop_mode %d is not a model_loop_mode", c->loop_mode);
    if (c->arch != ARCH_UNIVERSAL && (c->enc_loops || c->dec_loops || c->loop_mode))
        BAD("enc_loops %d, dec_loops %d, loop_mode %s: loops need arch = universal",
            c->enc_loops, c->dec_loops, enum_name(&MODEL_LOOP_MODE_TABLE, c->loop_mode));
    if (c->arch == ARCH_UNIVERSAL) {
        if (c->enc_loops == 0 && c->dec_loops == 0)
            BAD("arch = universal needs enc_loops > 0 or dec_loops > 0 (the side(s) to loop)");
        if ((c->enc_loops && c->enc_layers != 1) || (c->dec_loops && c->dec_layers != 1))
            BAD("a looped side has one shared layer: enc_layers %d with enc_loops %d, "
                "dec_layers %d with dec_loops %d", c->enc_layers, c->enc_loops, c->dec_layers,
                c->dec_loops);
        if (c->recompute != MODEL_RECOMPUTE_NONE)
            BAD("recompute is not available for universal transformers (set it to none)");
        if (c->loop_mode == LOOP_ACT &&
            !(c->act_threshold > 0 && c->act_threshold <= 1 && c->ponder_cost >= 0 &&
              isfinite(c->ponder_cost)))
            BAD("act_threshold %g must be in (0, 1] and ponder_cost %g a finite number >= 0",
                c->act_threshold, c->ponder_cost);
    }
    return 0;
#undef BAD
}

/* ---- the parameter layout: one walk defines names, shapes, offsets, views and init ---- */

/* How each kind of tensor starts, as the paper's code (PyTorch) starts it, so that lawt learns
 * as fast per example (issue 18: with GPT-2's N(0, 0.02^2) everywhere it needed about twice
 * the examples):
 *   INIT_EMBEDDING  position embeddings: N(0, 1/d), d = the row width (nn.init.normal_ with
 *                   std d^-0.5)
 *   INIT_TOKEN_EMBEDDING  token embeddings, hence the tied output projection: the same, but
 *                   the padding token's row starts at 0 (nn.Embedding's padding_idx)
 *   INIT_LINEAR     weights (out, in) and biases (out) of every linear layer: U(-1/sqrt(in),
 *                   1/sqrt(in)), nn.Linear's default (kaiming_uniform_(a = sqrt(5)))
 *   INIT_ZERO, INIT_ONE  layer-norm biases and weights */
enum { INIT_EMBEDDING, INIT_TOKEN_EMBEDDING, INIT_LINEAR, INIT_ZERO, INIT_ONE };

typedef struct {
    unsigned char kind; /* INIT_* */
    int fan_in;         /* INIT_LINEAR: inputs of the layer the tensor belongs to */
} tensor_init;

typedef struct {
    model_tensor *out; /* may be NULL */
    int cap, n;
    size_t off;
    float *base;       /* when set, views are bound into it */
    tensor_init *init; /* may be NULL: per tensor (cap entries) */
} layout_walk;

static void add(layout_walk *w, float **view, tensor_init init, int d0, int d1, const char *fmt,
                ...) __attribute__((format(printf, 6, 7)));

#include <stdarg.h>
static void add(layout_walk *w, float **view, tensor_init init, int d0, int d1, const char *fmt,
                ...)
{
    if (w->out && w->n < w->cap) {
        model_tensor *t = &w->out[w->n];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(t->name, sizeof t->name, fmt, ap);
        va_end(ap);
        t->offset = w->off;
        t->ndim = d1 ? 2 : 1;
        t->shape[0] = d0;
        t->shape[1] = d1;
        t->shape[2] = 0;
    }
    if (w->init && w->n < w->cap) w->init[w->n] = init;
    if (w->base && view) *view = w->base + w->off;
    w->off += (size_t)d0 * (size_t)(d1 ? d1 : 1);
    w->n++;
}

/* The loop parameters of a looped side of width d. The copy gate starts as a linear layer
 * (bias 0: gates open halfway); the halting unit's bias starts at 1 (tensor2tensor's
 * act_halting_bias_init), so that halting takes about two iterations at first. */
static void walk_loop(layout_walk *w, int mode, int d, loop_views *v, const char *side)
{
    const tensor_init LINEAR = {INIT_LINEAR, d}, ZERO = {INIT_ZERO, 0}, ONE = {INIT_ONE, 0};
    if (mode == LOOP_GATED) {
        add(w, v ? &v->gate_w : NULL, LINEAR, d, d, "%s.loop.gate.weight", side);
        add(w, v ? &v->gate_b : NULL, ZERO, d, 0, "%s.loop.gate.bias", side);
    } else if (mode == LOOP_ACT) {
        add(w, v ? &v->halt_w : NULL, LINEAR, 1, d, "%s.loop.halt.weight", side);
        add(w, v ? &v->halt_b : NULL, ONE, 1, 0, "%s.loop.halt.bias", side);
    }
}

/* The recurrent models: embeddings, rnn_layers layers a side (nn.GRU / nn.LSTM's tensors and
 * initialisation: every weight and bias U(-1/sqrt(h), 1/sqrt(h))), the projection of the top
 * decoder state to dd (nn.Linear) and the output bias of the tied projection. */
static void walk_recurrent_layout(layout_walk *w, const model_config *c, model_views *v)
{
    const int de = c->enc_dim, dd = c->dec_dim, h = c->rnn_hidden;
    const int gh = (int)rnn_gates(c->arch) * h;
    const tensor_init TOKENS = {INIT_TOKEN_EMBEDDING, 0}, CELL = {INIT_LINEAR, h},
                      OUT_BIAS = {INIT_LINEAR, dd};
    for (int side = 0; side < 2; side++) {
        const char *name = side ? "dec" : "enc";
        rnn_layer_views *layers = v ? (side ? v->dec_rnn : v->enc_rnn) : NULL;
        add(w, v ? (side ? &v->dec_tok : &v->enc_tok) : NULL, TOKENS,
            side ? c->vocab_out : c->vocab_in, side ? dd : de, "%s.tok_emb.weight", name);
        for (int l = 0; l < c->rnn_layers; l++) {
            const int in = l ? h : side ? dd : de;
            rnn_layer_views *lv = layers ? &layers[l] : NULL;
            add(w, lv ? &lv->w_ih : NULL, CELL, gh, in, "%s.rnn.weight_ih_l%d", name, l);
            add(w, lv ? &lv->w_hh : NULL, CELL, gh, h, "%s.rnn.weight_hh_l%d", name, l);
            add(w, lv ? &lv->b_ih : NULL, CELL, gh, 0, "%s.rnn.bias_ih_l%d", name, l);
            add(w, lv ? &lv->b_hh : NULL, CELL, gh, 0, "%s.rnn.bias_hh_l%d", name, l);
        }
    }
    add(w, v ? &v->proj_w : NULL, CELL, dd, h, "dec.out_proj.weight");
    add(w, v ? &v->proj_b : NULL, CELL, dd, 0, "dec.out_proj.bias");
    add(w, v ? &v->out_bias : NULL, OUT_BIAS, c->vocab_out, 0, "dec.out_bias");
}

/* v: NULL, or views whose enc/dec arrays are allocated. */
static void walk_layout(layout_walk *w, const model_config *c, model_views *v)
{
    if (model_arch_recurrent(c->arch)) {
        walk_recurrent_layout(w, c, v);
        return;
    }
    const int de = c->enc_dim, dd = c->dec_dim;
    const tensor_init TOKENS = {INIT_TOKEN_EMBEDDING, 0}, POSITIONS = {INIT_EMBEDDING, 0},
                      ONE = {INIT_ONE, 0}, ZERO = {INIT_ZERO, 0};
    const tensor_init FROM_ENC = {INIT_LINEAR, de}, FROM_DEC = {INIT_LINEAR, dd},
                      FROM_ENC_FFN = {INIT_LINEAR, 4 * de}, FROM_DEC_FFN = {INIT_LINEAR, 4 * dd};
#define V(field) (v ? &v->field : NULL)
#define VL(arr, i, field) (v ? &v->arr[i].field : NULL)
    add(w, V(enc_tok), TOKENS, c->vocab_in, de, "enc.tok_emb.weight");
    add(w, V(enc_pos), POSITIONS, c->max_len, de, "enc.pos_emb.weight");
    add(w, V(enc_ln_w), ONE, de, 0, "enc.emb_ln.weight");
    add(w, V(enc_ln_b), ZERO, de, 0, "enc.emb_ln.bias");
    for (int i = 0; i < c->enc_layers; i++) {
        add(w, VL(enc, i, qkv_w), FROM_ENC, 3 * de, de, "enc.layer%d.attn.qkv.weight", i);
        add(w, VL(enc, i, qkv_b), FROM_ENC, 3 * de, 0, "enc.layer%d.attn.qkv.bias", i);
        add(w, VL(enc, i, out_w), FROM_ENC, de, de, "enc.layer%d.attn.out.weight", i);
        add(w, VL(enc, i, out_b), FROM_ENC, de, 0, "enc.layer%d.attn.out.bias", i);
        add(w, VL(enc, i, ln1_w), ONE, de, 0, "enc.layer%d.ln1.weight", i);
        add(w, VL(enc, i, ln1_b), ZERO, de, 0, "enc.layer%d.ln1.bias", i);
        add(w, VL(enc, i, fc1_w), FROM_ENC, 4 * de, de, "enc.layer%d.ffn.fc1.weight", i);
        add(w, VL(enc, i, fc1_b), FROM_ENC, 4 * de, 0, "enc.layer%d.ffn.fc1.bias", i);
        add(w, VL(enc, i, fc2_w), FROM_ENC_FFN, de, 4 * de, "enc.layer%d.ffn.fc2.weight", i);
        add(w, VL(enc, i, fc2_b), FROM_ENC_FFN, de, 0, "enc.layer%d.ffn.fc2.bias", i);
        add(w, VL(enc, i, ln2_w), ONE, de, 0, "enc.layer%d.ln2.weight", i);
        add(w, VL(enc, i, ln2_b), ZERO, de, 0, "enc.layer%d.ln2.bias", i);
    }
    walk_loop(w, model_enc_loop_mode(c), de, v ? &v->enc_loop : NULL, "enc");
    add(w, V(dec_tok), TOKENS, c->vocab_out, dd, "dec.tok_emb.weight");
    add(w, V(dec_pos), POSITIONS, c->max_len, dd, "dec.pos_emb.weight");
    add(w, V(dec_ln_w), ONE, dd, 0, "dec.emb_ln.weight");
    add(w, V(dec_ln_b), ZERO, dd, 0, "dec.emb_ln.bias");
    for (int i = 0; i < c->dec_layers; i++) {
        add(w, VL(dec, i, qkv_w), FROM_DEC, 3 * dd, dd, "dec.layer%d.self_attn.qkv.weight", i);
        add(w, VL(dec, i, qkv_b), FROM_DEC, 3 * dd, 0, "dec.layer%d.self_attn.qkv.bias", i);
        add(w, VL(dec, i, out_w), FROM_DEC, dd, dd, "dec.layer%d.self_attn.out.weight", i);
        add(w, VL(dec, i, out_b), FROM_DEC, dd, 0, "dec.layer%d.self_attn.out.bias", i);
        add(w, VL(dec, i, ln1_w), ONE, dd, 0, "dec.layer%d.ln1.weight", i);
        add(w, VL(dec, i, ln1_b), ZERO, dd, 0, "dec.layer%d.ln1.bias", i);
        add(w, VL(dec, i, cq_w), FROM_DEC, dd, dd, "dec.layer%d.cross_attn.q.weight", i);
        add(w, VL(dec, i, cq_b), FROM_DEC, dd, 0, "dec.layer%d.cross_attn.q.bias", i);
        add(w, VL(dec, i, ckv_w), FROM_ENC, 2 * dd, de, "dec.layer%d.cross_attn.kv.weight", i);
        add(w, VL(dec, i, ckv_b), FROM_ENC, 2 * dd, 0, "dec.layer%d.cross_attn.kv.bias", i);
        add(w, VL(dec, i, cout_w), FROM_DEC, dd, dd, "dec.layer%d.cross_attn.out.weight", i);
        add(w, VL(dec, i, cout_b), FROM_DEC, dd, 0, "dec.layer%d.cross_attn.out.bias", i);
        add(w, VL(dec, i, ln2_w), ONE, dd, 0, "dec.layer%d.ln2.weight", i);
        add(w, VL(dec, i, ln2_b), ZERO, dd, 0, "dec.layer%d.ln2.bias", i);
        add(w, VL(dec, i, fc1_w), FROM_DEC, 4 * dd, dd, "dec.layer%d.ffn.fc1.weight", i);
        add(w, VL(dec, i, fc1_b), FROM_DEC, 4 * dd, 0, "dec.layer%d.ffn.fc1.bias", i);
        add(w, VL(dec, i, fc2_w), FROM_DEC_FFN, dd, 4 * dd, "dec.layer%d.ffn.fc2.weight", i);
        add(w, VL(dec, i, fc2_b), FROM_DEC_FFN, dd, 0, "dec.layer%d.ffn.fc2.bias", i);
        add(w, VL(dec, i, ln3_w), ONE, dd, 0, "dec.layer%d.ln3.weight", i);
        add(w, VL(dec, i, ln3_b), ZERO, dd, 0, "dec.layer%d.ln3.bias", i);
    }
    walk_loop(w, model_dec_loop_mode(c), dd, v ? &v->dec_loop : NULL, "dec");
    add(w, V(out_bias), FROM_DEC, c->vocab_out, 0, "dec.out_bias");
#undef V
#undef VL
}

int model_tensors(const model_config *cfg, model_tensor *out, int cap)
{
    layout_walk w = {.out = out, .cap = cap};
    walk_layout(&w, cfg, NULL);
    return w.n;
}

static size_t layout_size(const model_config *cfg)
{
    layout_walk w = {0};
    walk_layout(&w, cfg, NULL);
    return w.off;
}

void model_views_bind(model_views *v, const model_config *cfg, float *base)
{
    memset(v, 0, sizeof *v);
    if (model_arch_recurrent(cfg->arch)) {
        v->enc_rnn = lawt_calloc((size_t)cfg->rnn_layers, sizeof *v->enc_rnn);
        v->dec_rnn = lawt_calloc((size_t)cfg->rnn_layers, sizeof *v->dec_rnn);
    } else {
        v->enc = lawt_calloc((size_t)cfg->enc_layers, sizeof *v->enc);
        v->dec = lawt_calloc((size_t)cfg->dec_layers, sizeof *v->dec);
    }
    layout_walk w = {.base = base};
    walk_layout(&w, cfg, v);
}

void model_views_free(model_views *v)
{
    free(v->enc);
    free(v->dec);
    free(v->enc_rnn);
    free(v->dec_rnn);
    v->enc = NULL;
    v->dec = NULL;
    v->enc_rnn = NULL;
    v->dec_rnn = NULL;
}

/* ---- creation and dispatch ---- */

static layer_backend *backend_create(model_backend backend, const model_config *cfg,
                                     int max_batch, size_t nparams)
{
    switch (backend) {
    case BACKEND_CPU:
        return model_cpu_backend(cfg, max_batch, nparams);
    case BACKEND_CUDA:
#ifdef LAWT_MODEL_HAVE_CUDA
        return model_cuda_backend(cfg, max_batch, nparams);
#else
        lawt_die("model: the CUDA backend is not built in this binary (no CUDA model backend "
                 "was compiled); use the CPU backend");
#endif
    }
    lawt_die("model: unknown backend %d", (int)backend);
}

int model_src_capacity(const model_config *cfg)
{
    return cfg->max_src > 0 ? cfg->max_src : cfg->max_len;
}

int model_tgt_capacity(const model_config *cfg)
{
    return cfg->max_tgt > 0 ? cfg->max_tgt : cfg->max_len;
}

void model_memory_plan(const model_config *cfg, model_backend backend, int max_batch, int beam,
                       model_memory *out)
{
    char err[256];
    if (model_config_validate(cfg, err, sizeof err)) lawt_die("model: %s", err);
    if (max_batch < 1) lawt_die("model: max_batch must be >= 1 (got %d)", max_batch);
    const backend_sizes *bs = backend == BACKEND_CUDA ? &model_cuda_sizes : &model_cpu_sizes;
    if (model_arch_recurrent(cfg->arch))
        recurrent_memory_plan(cfg, bs, max_batch, model_param_count(cfg), beam, out);
    else
        transformer_memory_plan(cfg, bs, max_batch, model_param_count(cfg), beam, out);
    out->host_init = model_param_count(cfg) * sizeof(float); /* model_init_params' buffer */
}

#ifndef LAWT_MODEL_HAVE_CUDA
int model_cuda_available(void) { return 0; } /* model/cuda/model_cuda.c when built */
int model_cuda_built(void) { return 0; }
void model_set_cuda_device_for_rank(int local_rank) { (void)local_rank; }
void model_set_cuda_precision(model_precision p) { (void)p; }
#endif

model *model_create(const model_config *cfg, model_backend backend, int max_batch)
{
    char err[256];
    if (model_config_validate(cfg, err, sizeof err)) lawt_die("model: %s", err);
    if (max_batch < 1) lawt_die("model: max_batch must be >= 1 (got %d)", max_batch);
    size_t n = layout_size(cfg);
    if (n != model_param_count(cfg))
        lawt_die("model: internal error: layout has %zu parameters, the count formula %zu", n,
                 model_param_count(cfg));
    model *m = lawt_calloc(1, sizeof *m);
    m->cfg = *cfg;
    m->backend = backend;
    m->nparams = n;
    m->max_batch = max_batch;
    layer_backend *k = backend_create(backend, cfg, max_batch, n);
    if (model_arch_recurrent(cfg->arch)) {
        m->ops = &recurrent_model_ops;
        m->impl = recurrent_create(cfg, k, max_batch, n);
    } else {
        m->ops = &transformer_model_ops;
        m->impl = transformer_create(cfg, k, max_batch, n);
    }
    return m;
}

void model_free(model *m)
{
    if (!m) return;
    m->ops->destroy(m->impl);
    free(m);
}

const model_config *model_get_config(const model *m) { return &m->cfg; }
size_t model_num_params(const model *m) { return m->nparams; }

/* A counter-based generator: the value for (seed, tensor, index) does not depend on the order
 * of generation, so a GPU can reproduce the same initialisation. */
static uint64_t mix64(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Uniform in [0, 1) and (0, 1) from 24 bits each of one hash. */
static double hash_unit(uint64_t r) { return (double)(r & 0xffffffULL) / 16777216.0; }
static double hash_unit_open(uint64_t r) { return ((double)(r >> 40) + 0.5) / 16777216.0; }

/* Initialisation per tensor kind (tensor_init above). Value j of tensor i comes from hashes of
 * (seed, i, j), so a GPU could reproduce it; a normal pair (2j, 2j+1) is one Box-Muller
 * transform. Adam moments and gradients are zeroed. */
void model_init_params(model *m, uint64_t seed)
{
    int nt = model_tensors(&m->cfg, NULL, 0);
    model_tensor *t = lawt_malloc((size_t)nt * sizeof *t);
    tensor_init *init = lawt_malloc((size_t)nt * sizeof *init);
    layout_walk w = {.out = t, .cap = nt, .init = init};
    walk_layout(&w, &m->cfg, NULL);
    float *p = lawt_malloc(m->nparams * sizeof(float));
    for (int i = 0; i < nt; i++) {
        const size_t rows = (size_t)t[i].shape[0];
        const size_t cols = t[i].ndim == 2 ? (size_t)t[i].shape[1] : 1, n = rows * cols;
        float *x = p + t[i].offset;
        const uint64_t key = mix64(seed ^ mix64((uint64_t)i + 0x1234567ULL));
        switch (init[i].kind) {
        case INIT_ZERO: memset(x, 0, n * sizeof(float)); break;
        case INIT_ONE:
            for (size_t j = 0; j < n; j++) x[j] = 1.0f;
            break;
        case INIT_LINEAR: {
            const double bound = 1.0 / sqrt((double)init[i].fan_in);
            for (size_t j = 0; j < n; j++) {
                uint64_t r = mix64(key ^ (uint64_t)j * 0xd1b54a32d192ed03ULL);
                x[j] = (float)(bound * (2.0 * hash_unit(r) - 1.0));
            }
            break;
        }
        case INIT_EMBEDDING:
        case INIT_TOKEN_EMBEDDING: {
            const double std = 1.0 / sqrt((double)cols);
            for (size_t j = 0; j < n; j += 2) {
                uint64_t r = mix64(key ^ (uint64_t)(j / 2) * 0xd1b54a32d192ed03ULL);
                double rad = std * sqrt(-2.0 * log(hash_unit_open(r)));
                double angle = 2.0 * MODEL_PI * hash_unit(r);
                x[j] = (float)(rad * cos(angle));
                if (j + 1 < n) x[j + 1] = (float)(rad * sin(angle));
            }
            if (init[i].kind == INIT_TOKEN_EMBEDDING)
                memset(x + (size_t)TOK_PAD * cols, 0, cols * sizeof(float));
            break;
        }
        }
    }
    m->ops->copy_in(m->impl, BUF_PARAMS, p);
    memset(p, 0, m->nparams * sizeof(float));
    m->ops->copy_in(m->impl, BUF_GRADS, p);
    m->ops->copy_in(m->impl, BUF_ADAM_M, p);
    m->ops->copy_in(m->impl, BUF_ADAM_V, p);
    free(p);
    free(init);
    free(t);
}

void model_copy_out(const model *m, model_buffer which, float *dst)
{
    m->ops->copy_out(m->impl, which, dst);
}

void model_copy_in(model *m, model_buffer which, const float *src)
{
    m->ops->copy_in(m->impl, which, src);
}

float *model_gradient_buffer(model *m) { return m->ops->grads(m->impl); }
model_backend model_get_backend(const model *m) { return m->backend; }

static void check_batch(const model *m, const model_batch *b)
{
    const model_config *c = &m->cfg;
    if (b->B < 1 || b->B > m->max_batch)
        lawt_die("model: batch of %d examples (max_batch %d)", b->B, m->max_batch);
    if (b->S < 1 || b->S > model_src_capacity(c) || b->T < 2 || b->T > model_tgt_capacity(c))
        lawt_die("model: batch padded to S=%d, T=%d (need 1 <= S <= %d, 2 <= T <= %d)", b->S,
                 b->T, model_src_capacity(c), model_tgt_capacity(c));
    for (int i = 0; i < b->B; i++) {
        if (b->src_len[i] < 1 || b->src_len[i] > b->S)
            lawt_die("model: example %d has src_len %d (S=%d)", i, b->src_len[i], b->S);
        if (b->tgt_len[i] < 1 || b->tgt_len[i] > b->T)
            lawt_die("model: example %d has tgt_len %d (T=%d)", i, b->tgt_len[i], b->T);
    }
    for (long i = 0; i < (long)b->B * b->S; i++)
        if (b->src[i] < 0 || b->src[i] >= c->vocab_in)
            lawt_die("model: source token %d out of the input vocabulary (%d)", b->src[i],
                     c->vocab_in);
    for (long i = 0; i < (long)b->B * b->T; i++)
        if (b->tgt[i] < 0 || b->tgt[i] >= c->vocab_out)
            lawt_die("model: target token %d out of the output vocabulary (%d)", b->tgt[i],
                     c->vocab_out);
}

double model_forward(model *m, const model_batch *batch, long *ntokens)
{
    check_batch(m, batch);
    long nt = 0;
    double loss = m->ops->forward(m->impl, batch, &nt);
    if (ntokens) *ntokens = nt;
    return loss;
}

void model_zero_grad(model *m) { m->ops->zero_grad(m->impl); }

void model_backward(model *m, const model_batch *batch, float loss_scale)
{
    m->ops->backward(m->impl, batch, loss_scale);
}

void model_copy_logits(const model *m, float *dst) { m->ops->copy_logits(m->impl, dst); }

double model_grad_norm(const model *m) { return m->ops->grad_norm(m->impl); }

void model_adam_step(model *m, const adam_hparams *h, long step, float grad_scale)
{
    if (step < 1) lawt_die("model: Adam step must count from 1 (got %ld)", step);
    /* The backends compute m_hat / (sqrt(v_hat) + eps'). The paper's code adds eps to sqrt(v)
     * before the bias correction, lr sqrt(1 - b2^t) / (1 - b1^t) m / (sqrt(v) + eps), which is
     * the same with eps' = eps / sqrt(1 - b2^t). */
    adam_hparams hc = *h;
    hc.eps = (float)(h->eps / sqrt(1.0 - pow(h->beta2, (double)step)));
    m->ops->adam_step(m->impl, &hc, step, grad_scale);
}

/* ---- decoding ---- */

static void check_decode(const model *m, const int *src, const int *src_len, int B, int S,
                         int rows)
{
    if (B < 1 || B > m->max_batch)
        lawt_die("model: decoding %d sources (max_batch %d)", B, m->max_batch);
    if (S < 1 || S > model_src_capacity(&m->cfg))
        lawt_die("model: decoding sources padded to %d (at most %d)", S,
                 model_src_capacity(&m->cfg));
    if (rows < 1 || rows > 1024) lawt_die("model: beam width %d out of [1, 1024]", rows);
    for (int b = 0; b < B; b++)
        if (src_len[b] < 1 || src_len[b] > S)
            lawt_die("model: source %d has length %d (S=%d)", b, src_len[b], S);
    for (long i = 0; i < (long)B * S; i++)
        if (src[i] < 0 || src[i] >= m->cfg.vocab_in)
            lawt_die("model: source token %d out of the input vocabulary (%d)", src[i],
                     m->cfg.vocab_in);
}

/* Index of the largest value, the lowest index among equals. */
static int argmax(const float *x, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

/* Positions 0 .. steps-1 feed the decoder: at most the target length it holds. */
static int decode_steps(const model *m, int max_out)
{
    if (max_out < 0) max_out = 0;
    int cap = model_tgt_capacity(&m->cfg);
    return max_out < cap ? max_out : cap;
}

/* A decoding of B sources in chunks of at most max_batch (the activations' size). */
typedef void (*decode_fn)(model *m, const int *src, const int *src_len, int B, int S, int beam,
                          int max_out, int *out, int *out_len, int cached);

static void in_chunks(decode_fn fn, model *m, const int *src, const int *src_len, int B, int S,
                      int beam, int max_out, int *out, int *out_len, int cached)
{
    if (B < 1) lawt_die("model: decoding %d sources", B);
    for (int first = 0; first < B; first += m->max_batch) {
        int n = B - first < m->max_batch ? B - first : m->max_batch;
        fn(m, src + (size_t)first * S, src_len + first, n, S, beam, max_out,
           out + (size_t)first * (size_t)(max_out > 0 ? max_out : 0), out_len + first, cached);
    }
}

static void greedy(model *m, const int *src, const int *src_len, int B, int S, int beam,
                   int max_out, int *out, int *out_len, int cached)
{
    (void)beam;
    check_decode(m, src, src_len, B, S, 1);
    const int V = m->cfg.vocab_out, steps = decode_steps(m, max_out);
    for (int b = 0; b < B; b++) out_len[b] = 0;
    if (steps == 0) return;
    m->ops->decode_begin(m->impl, src, src_len, B, S, 1);
    int *prefix = lawt_malloc((size_t)B * (size_t)(steps + 1) * sizeof(int));
    int *tok = lawt_malloc((size_t)B * sizeof(int));
    unsigned char *done = lawt_calloc((size_t)B, 1);
    for (int b = 0; b < B; b++) tok[b] = TOK_EOS;
    int left = B;
    for (int t = 0; t < steps && left > 0; t++) {
        const float *logits;
        if (cached) {
            logits = m->ops->decode_step(m->impl, tok, t);
        } else {
            /* prefix (B, t + 1): EOS then the tokens chosen so far */
            for (int b = 0; b < B; b++) {
                prefix[(size_t)b * (t + 1)] = TOK_EOS;
                for (int i = 0; i < t; i++)
                    prefix[(size_t)b * (t + 1) + 1 + i] =
                        i < out_len[b] ? out[(size_t)b * max_out + i] : TOK_EOS;
            }
            logits = m->ops->decode_prefix(m->impl, prefix, t);
        }
        for (int b = 0; b < B; b++) {
            if (done[b]) continue;
            int a = argmax(logits + (size_t)b * V, V);
            if (a == TOK_EOS) {
                done[b] = 1;
                left--;
            } else {
                out[(size_t)b * max_out + out_len[b]++] = a;
            }
            tok[b] = a;
        }
    }
    free(prefix);
    free(tok);
    free(done);
}

void model_greedy_decode(model *m, const int *src, const int *src_len, int B, int S,
                         int max_out, int *out, int *out_len)
{
    in_chunks(greedy, m, src, src_len, B, S, 1, max_out, out, out_len, 1);
}

void model_greedy_decode_nocache(model *m, const int *src, const int *src_len, int B, int S,
                                 int max_out, int *out, int *out_len)
{
    in_chunks(greedy, m, src, src_len, B, S, 1, max_out, out, out_len, 0);
}

/* Beam search. Each source keeps up to `beam` live hypotheses (rows of the decoder). At each
 * step the candidates are every live hypothesis extended by every token, ranked by their summed
 * log-probability (ties: lower hypothesis, then lower token first); the best `beam` of them are
 * kept, and those that end in EOS leave the beam as finished (so the beam can shrink). A source
 * is done when its beam is empty or after the last step, where live hypotheses count as
 * finished. The answer is the finished hypothesis with the best length-normalised score
 * (summed log-probability / number of generated tokens, EOS included). With beam 1 this is
 * exactly greedy decoding. */
typedef struct {
    double score;
    int slot, tok;
} beam_cand;

static void beam_search(model *m, const int *src, const int *src_len, int B, int S, int beam,
                        int max_out, int *out, int *out_len, int cached)
{
    (void)cached;
    check_decode(m, src, src_len, B, S, beam);
    const int V = m->cfg.vocab_out, K = beam, steps = decode_steps(m, max_out);
    const int R = B * K;
    for (int b = 0; b < B; b++) out_len[b] = 0;
    if (steps == 0) return;
    m->ops->decode_begin(m->impl, src, src_len, B, S, K);
    int *tok = lawt_malloc((size_t)R * sizeof(int));
    int *hyp = lawt_malloc((size_t)R * (size_t)steps * sizeof(int));
    int *hyp2 = lawt_malloc((size_t)R * (size_t)steps * sizeof(int));
    int *parent = lawt_malloc((size_t)R * sizeof(int));
    double *score = lawt_malloc((size_t)R * sizeof(double));
    unsigned char *alive = lawt_calloc((size_t)R, 1);
    double *best = lawt_malloc((size_t)B * sizeof(double));
    int *live = lawt_malloc((size_t)B * sizeof(int));
    double *lp = lawt_malloc((size_t)V * sizeof(double));
    beam_cand *cand = lawt_malloc((size_t)K * sizeof(beam_cand));
    for (int r = 0; r < R; r++) {
        tok[r] = TOK_EOS;
        score[r] = 0.0;
        alive[r] = (r % K) == 0;
    }
    for (int b = 0; b < B; b++) {
        best[b] = -INFINITY;
        live[b] = 1;
    }
    int sources_left = B;
    for (int t = 0; t < steps && sources_left > 0; t++) {
        const float *logits = m->ops->decode_step(m->impl, tok, t);
        for (int b = 0; b < B; b++) {
            if (!live[b]) {
                for (int j = 0; j < K; j++) parent[b * K + j] = b * K + j;
                continue;
            }
            int nc = 0;
            for (int j = 0; j < K; j++) {
                int r = b * K + j;
                if (!alive[r]) continue;
                const float *l = logits + (size_t)r * V;
                double mx = l[0], sum = 0.0;
                for (int v = 1; v < V; v++) mx = l[v] > mx ? l[v] : mx;
                for (int v = 0; v < V; v++) sum += exp((double)l[v] - mx);
                double lse = mx + log(sum);
                for (int v = 0; v < V; v++) lp[v] = (double)l[v] - lse;
                for (int v = 0; v < V; v++) {
                    double sc = score[r] + lp[v];
                    if (nc == K && !(sc > cand[K - 1].score)) continue;
                    int pos = nc < K ? nc++ : K - 1;
                    while (pos > 0 && sc > cand[pos - 1].score) {
                        cand[pos] = cand[pos - 1];
                        pos--;
                    }
                    cand[pos] = (beam_cand){sc, j, v};
                }
            }
            /* finished candidates leave; the others fill the new beam in rank order */
            int nl = 0;
            for (int c = 0; c < nc; c++) {
                int pr = b * K + cand[c].slot;
                int gen = t + 1; /* tokens generated by this candidate, EOS included */
                int finished = cand[c].tok == TOK_EOS || t == steps - 1;
                if (finished) {
                    double norm = cand[c].score / gen;
                    if (norm > best[b]) {
                        best[b] = norm;
                        int n = cand[c].tok == TOK_EOS ? t : t + 1;
                        for (int i = 0; i < t; i++)
                            out[(size_t)b * max_out + i] = hyp[(size_t)pr * steps + i];
                        if (n > t) out[(size_t)b * max_out + t] = cand[c].tok;
                        out_len[b] = n;
                    }
                    continue;
                }
                int r = b * K + nl++;
                parent[r] = pr;
                memcpy(hyp2 + (size_t)r * steps, hyp + (size_t)pr * steps, (size_t)t * sizeof(int));
                hyp2[(size_t)r * steps + t] = cand[c].tok;
                tok[r] = cand[c].tok;
                score[r] = cand[c].score;
            }
            for (int j = 0; j < K; j++) {
                int r = b * K + j;
                alive[r] = j < nl;
                if (j >= nl) parent[r] = r;
            }
            if (nl == 0) {
                live[b] = 0;
                sources_left--;
            }
        }
        int *sw = hyp;
        hyp = hyp2;
        hyp2 = sw;
        if (K > 1) m->ops->decode_reorder(m->impl, parent, t);
    }
    free(tok);
    free(hyp);
    free(hyp2);
    free(parent);
    free(score);
    free(alive);
    free(best);
    free(live);
    free(lp);
    free(cand);
}

void model_beam_decode(model *m, const int *src, const int *src_len, int B, int S, int beam,
                       int max_out, int *out, int *out_len)
{
    in_chunks(beam_search, m, src, src_len, B, S, beam, max_out, out, out_len, 1);
}
