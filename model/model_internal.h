/* model_internal.h: what model.c shares with the backends: the named views of the parameter
 * layout and the backend boundary (one struct of function pointers). A backend owns its four
 * flat buffers (parameters, gradients, Adam moments, in model_tensors() order) and its
 * activations; model.c owns the configuration, the layout, initialisation and the decoding
 * logic (greedy and beam search on top of three decoding primitives). */
#ifndef LAWT_MODEL_INTERNAL_H
#define LAWT_MODEL_INTERNAL_H

#include "model/model.h"

/* Pointers into one flat buffer (parameters, gradients or a moment), one per tensor. */
typedef struct {
    float *qkv_w, *qkv_b;   /* (3d, d), (3d): rows [0,d) query, [d,2d) key, [2d,3d) value */
    float *out_w, *out_b;   /* (d, d), (d) */
    float *ln1_w, *ln1_b;   /* (d) */
    float *fc1_w, *fc1_b;   /* (4d, d), (4d) */
    float *fc2_w, *fc2_b;   /* (d, 4d), (d) */
    float *ln2_w, *ln2_b;   /* (d) */
} enc_layer_views;

typedef struct {
    float *qkv_w, *qkv_b;   /* causal self-attention, as in the encoder */
    float *out_w, *out_b;
    float *ln1_w, *ln1_b;
    float *cq_w, *cq_b;     /* cross-attention query (d, d), (d) */
    float *ckv_w, *ckv_b;   /* cross-attention keys/values (2d, d_enc), (2d): rows [0,d) key */
    float *cout_w, *cout_b; /* (d, d), (d) */
    float *ln2_w, *ln2_b;
    float *fc1_w, *fc1_b;
    float *fc2_w, *fc2_b;
    float *ln3_w, *ln3_b;
} dec_layer_views;

typedef struct {
    float *enc_tok, *enc_pos;   /* (vocab_in, de), (max_len, de) */
    float *enc_ln_w, *enc_ln_b; /* (de) */
    enc_layer_views *enc;       /* enc_layers */
    float *dec_tok, *dec_pos;   /* (vocab_out, dd), (max_len, dd); dec_tok is also the output
                                   projection (tied) */
    float *dec_ln_w, *dec_ln_b; /* (dd) */
    dec_layer_views *dec;       /* dec_layers */
    float *out_bias;            /* (vocab_out) */
} model_views;

/* Allocates the layer arrays of v and points every view into base. */
void model_views_bind(model_views *v, const model_config *cfg, float *base);
void model_views_free(model_views *v);

typedef struct model_backend_ops {
    const char *name;
    /* State for cfg with activations for max_batch examples; buffers of nparams floats. */
    void *(*create)(const model_config *cfg, int max_batch, size_t nparams);
    void (*destroy)(void *impl);
    void (*copy_out)(const void *impl, model_buffer which, float *dst);
    void (*copy_in)(void *impl, model_buffer which, const float *src);
    /* The gradient buffer itself, in the backend's memory. */
    float *(*grads)(void *impl);
    void (*zero_grad)(void *impl);
    double (*forward)(void *impl, const model_batch *batch, long *ntokens);
    void (*backward)(void *impl, const model_batch *batch, float loss_scale);
    void (*copy_logits)(const void *impl, float *dst);
    double (*grad_norm)(const void *impl);
    void (*adam_step)(void *impl, const adam_hparams *h, long step, float grad_scale);
    /* Decoding primitives (they reuse the training activations: a decode invalidates the last
     * forward). decode_begin encodes src (B, S) and prepares R = B * rows_per_src decoder rows
     * (row r reads source r / rows_per_src) with an empty key/value cache. */
    void (*decode_begin)(void *impl, const int *src, const int *src_len, int B, int S,
                         int rows_per_src);
    /* Feeds tokens (R) at position t (the cache holds positions < t) and returns the logits
     * (R, vocab_out) in host memory, valid until the next call. */
    const float *(*decode_step)(void *impl, const int *tokens, int t);
    /* Row r of the cache (positions 0 .. t) becomes a copy of row parent[r]. */
    void (*decode_reorder)(void *impl, const int *parent, int t);
    /* No cache: runs the whole decoder on prefix (R, t + 1) and returns the logits of the last
     * position (R, vocab_out) in host memory. */
    const float *(*decode_prefix)(void *impl, const int *prefix, int t);
} model_backend_ops;

extern const model_backend_ops model_cpu_ops;

#endif
