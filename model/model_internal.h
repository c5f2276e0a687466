/* model_internal.h: what the parts of the model component share:
 *   model.c          configuration, the parameter layout and its named views (below),
 *                    initialisation, greedy and beam search; it drives
 *   transformer.c    the transformer itself, written once: the activation layout, forward,
 *                    backward, the optimizer and the decoding primitives, over
 *   recurrent.c      the LSTM/GRU encoder-decoders, the same way;
 *   model_buffers.c  what both hold alike: the trained state, the token staging, the shared
 *                    part of the memory plan;
 *   a layer backend  (layer_backend below): memory and the layers of layers.h on one kind of
 *                    device; model_cpu.c (host memory, layers.c) and cuda/model_cuda.c
 *                    (device memory, cuda/layers_cuda.cu) supply one each, nothing else. */
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

/* The loop parameters of a looped side of a universal transformer (NULL when absent). */
typedef struct {
    float *gate_w, *gate_b; /* gated: the copy gate, (d, d), (d) */
    float *halt_w, *halt_b; /* act: the halting unit, (1, d), (1) */
} loop_views;

/* One recurrent layer, as PyTorch's nn.GRU / nn.LSTM store it: g gates (GRU r, z, n; LSTM
 * i, f, g, o) of h units in the rows of each tensor. */
typedef struct {
    float *w_ih, *w_hh; /* (g h, in), (g h, h): in = the embedding for layer 0, else h */
    float *b_ih, *b_hh; /* (g h) each */
} rnn_layer_views;

typedef struct {
    float *enc_tok, *enc_pos;   /* (vocab_in, de), (max_len, de) */
    float *enc_ln_w, *enc_ln_b; /* (de) */
    enc_layer_views *enc;       /* enc_layers */
    loop_views enc_loop;
    float *dec_tok, *dec_pos;   /* (vocab_out, dd), (max_len, dd); dec_tok is also the output
                                   projection (tied) */
    float *dec_ln_w, *dec_ln_b; /* (dd) */
    dec_layer_views *dec;       /* dec_layers */
    loop_views dec_loop;
    float *out_bias;            /* (vocab_out) */
    /* The recurrent models (only enc_tok, dec_tok and out_bias of the above): rnn_layers
     * layers on each side, and the projection of the top decoder state to the decoder's
     * embedding dimension before the tied output projection. */
    rnn_layer_views *enc_rnn, *dec_rnn;
    float *proj_w, *proj_b; /* (dd, h), (dd) */
} model_views;

/* Allocates the layer arrays of v and points every view into base. */
void model_views_bind(model_views *v, const model_config *cfg, float *base);
void model_views_free(model_views *v);

/* ---- the backend boundary: memory and layers on one kind of device ----
 * Pointers are the backend's memory (host for the CPU, device for CUDA) unless they say host.
 * The layers are those of layers.h, with its shapes and conventions (forward overwrites;
 * backward accumulates parameter gradients). A backend embeds this struct as its first member
 * and gets it back as k in the few operations that need its own state. */
typedef enum { COPY_HOST_TO_DEVICE, COPY_DEVICE_TO_HOST, COPY_DEVICE_TO_DEVICE } copy_kind;
/* The two embedding tables, for the backends that prepare embedding_backward per batch. */
enum { EMB_ENC, EMB_DEC };

typedef struct layer_backend layer_backend;
struct layer_backend {
    const char *name;
    size_t align_floats; /* views into an activation buffer start at multiples of this */
    void (*destroy)(layer_backend *k);

    /* memory */
    void *(*alloc)(size_t bytes);
    void (*free)(void *p);
    void *(*host_alloc)(size_t bytes); /* host memory for transfers (pinned for CUDA) */
    void (*host_free)(void *p);
    /* rows rows of width bytes, row pitches dpitch and spitch bytes (cudaMemcpy2D) */
    void (*copy)(void *dst, size_t dpitch, const void *src, size_t spitch, size_t width,
                 size_t rows, copy_kind kind);
    void (*zero)(float *x, size_t n);
    /* dst[r, 0..n) = src[index[r], 0..n) for r < rows, row strides ld (index in backend
     * memory) */
    void (*gather_rows)(float *dst, const float *src, const int *index, int rows, long n,
                        long ld);

    /* layers */
    void (*embedding_forward)(float *out, const int *tokens, const float *tok_emb,
                              const float *pos_emb, int B, int T, int C);
    /* Optional (NULL): called at the start of backward with the batch's tokens (N, host) of
     * table EMB_ENC or EMB_DEC, before the layers' work, so that a backend can prepare and
     * upload what its embedding_backward of that table needs while the device computes. */
    void (*embedding_backward_prepare)(layer_backend *k, int table, const int *tokens_host,
                                       int N, int V);
    void (*embedding_backward)(layer_backend *k, int table, float *dtok_emb, float *dpos_emb,
                               const float *dout, const int *tokens, int B, int T, int C, int V);
    void (*layernorm_forward)(float *out, float *mean, float *rstd, const float *inp,
                              const float *weight, const float *bias, int N, int C);
    void (*layernorm_backward)(float *dinp, float *dweight, float *dbias, const float *dout,
                               const float *inp, const float *weight, const float *mean,
                               const float *rstd, int N, int C);
    void (*linear_forward)(layer_backend *k, float *out, const float *inp, const float *weight,
                           const float *bias, const float *residual, int N, int C, int OC);
    void (*linear_backward)(layer_backend *k, float *dinp, float *dweight, float *dbias,
                            const float *dout, const float *inp, const float *weight, int N,
                            int C, int OC, int accumulate);
    void (*relu_forward)(float *out, const float *inp, long n);
    void (*relu_backward)(float *dinp, const float *dout, const float *out, long n);
    void (*attention_forward)(float *out, float *att, float *scratch, const float *q,
                              const float *k, const float *v, int ldq, int ldkv,
                              const int *key_len, int causal, int B, int T, int S, int H, int D);
    void (*attention_backward)(float *dq, float *dk, float *dv, float *scratch,
                               const float *dout, const float *att, const float *q,
                               const float *k, const float *v, int ldq, int ldkv,
                               const int *key_len, int causal, int B, int T, int S, int H,
                               int D);
    /* scratch floats for any attention call of up to B sequences, H heads, T queries, S keys,
     * D head dimensions */
    long (*attention_scratch_floats)(int B, int H, int T, int S, int D);
    /* host_row_loss: N doubles of host memory the backend may stage the row losses in */
    double (*crossentropy_forward)(float *probs, double *row_loss, const float *logits,
                                   const int *targets, int N, int V, double *host_row_loss);
    void (*crossentropy_backward)(float *dlogits_probs, const int *targets, float scale, int N,
                                  int V);
    /* the loops of a universal transformer */
    void (*copy_gate_forward)(float *out, float *gate, const float *y, const float *x, long n);
    void (*copy_gate_backward)(float *dz, float *dy, float *dx, const float *dout,
                               const float *gate, const float *y, const float *x, long n);
    void (*act_halting_forward)(float *weight, float *ponder, float *halt, float threshold,
                                int L, int N);
    void (*act_halting_backward)(float *dhalt, const float *dweight, const float *halt,
                                 const float *mask, float ponder_scale, float threshold, int L,
                                 int N);
    void (*weighted_rows_forward)(float *out, const float *w, const float *x, int N, int C,
                                  int accumulate);
    void (*weighted_rows_backward)(float *dw, float *dx, const float *dout, const float *w,
                                   const float *x, int N, int C);
    /* the gates of the recurrent cells (recurrent_layers.h) */
    void (*gru_cell_forward)(float *h, float *gates, const float *gh, const float *h_prev,
                             const int *len, int t, int B, int H);
    void (*gru_cell_backward)(float *dgx, float *dgh, float *dh_carry, const float *dy,
                              const float *gates, const float *gh, const float *h_prev,
                              const int *len, int t, int B, int H);
    void (*lstm_cell_forward)(float *h, float *c, float *gates, const float *h_prev,
                              const float *c_prev, const int *len, int t, int B, int H);
    void (*lstm_cell_backward)(float *dgates, float *dh_carry, float *dc_carry, const float *dy,
                               const float *gates, const float *c, const float *c_prev,
                               const int *len, int t, int B, int H);

    /* optimizer: the sum of squares of x (n <= the nparams the backend was made for), in a
     * fixed order; the Adam update (ib1, ib2: the bias corrections 1 / (1 - beta^step)) */
    double (*sumsq)(layer_backend *k, const float *x, size_t n);
    void (*adam_update)(float *params, float *m, float *v, const float *grads, size_t n,
                        float lr, float beta1, float beta2, float eps, float ib1, float ib2,
                        float grad_scale);
};

/* A backend for models of cfg with batches up to max_batch and nparams parameters. */
layer_backend *model_cpu_backend(const model_config *cfg, int max_batch, size_t nparams);
layer_backend *model_cuda_backend(const model_config *cfg, int max_batch, size_t nparams);

/* What a backend's memory needs, known without creating it (no device needed): the backend
 * takes align_floats and attention_scratch_floats from here, and its own allocations are those
 * of state_bytes, so that model_memory_plan and the allocation agree by construction. */
typedef struct {
    size_t align_floats;
    long (*attention_scratch_floats)(int B, int H, int T, int S, int D);
    /* the backend's own state for (cfg, max_batch, nparams): in its memory, and on the host */
    void (*state_bytes)(const model_config *cfg, int max_batch, size_t nparams, size_t *device,
                        size_t *host);
    size_t workspace_bytes; /* what its library allocates by itself (cuBLAS workspace) */
} backend_sizes;
extern const backend_sizes model_cpu_sizes, model_cuda_sizes;
/* The CUDA backend's own state, as cuda_state_bytes counts it: its token-index ints (device,
 * and as many on the host) and the partial sums of its sum of squares (doubles). */
size_t model_cuda_index_ints(const model_config *cfg, int max_batch);
size_t model_cuda_sumsq_partials(size_t nparams);

/* Iterations of the encoder's and the decoder's layer stack: the loop count of a looped side
 * (its one layer runs that many times), else its layers. */
int model_enc_iters(const model_config *cfg);
int model_dec_iters(const model_config *cfg);
/* The loop mode of a side with loops (LOOP_FIXED for a plain stack). */
int model_enc_loop_mode(const model_config *cfg);
int model_dec_loop_mode(const model_config *cfg);

/* Sequence lengths the activations hold: cfg->max_src / max_tgt, or max_len when 0. */
int model_src_capacity(const model_config *cfg);
int model_tgt_capacity(const model_config *cfg);

/* ---- what every architecture holds alike (model_buffers.c): transformer.c and recurrent.c
 * build their models from these ---- */

/* The trained state in backend memory: parameters, their gradients and Adam's two moments, np
 * floats each in model_tensors() order, with named views of the first two. */
typedef struct {
    layer_backend *k;
    size_t np;
    float *params, *grads, *adam_m, *adam_v;
    model_views P, G;
} model_state;

/* Allocates the four buffers (at zero) and binds the views. */
void model_state_create(model_state *s, const model_config *cfg, layer_backend *k, size_t np);
void model_state_destroy(model_state *s);
void model_state_copy_out(const model_state *s, model_buffer which, float *dst);
void model_state_copy_in(model_state *s, model_buffer which, const float *src);
void model_state_zero_grad(model_state *s);
double model_state_grad_norm(const model_state *s);
/* m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2   (g = grad_scale * grad)
 * p -= lr * (m / (1 - b1^step)) / (sqrt(v / (1 - b2^step)) + eps) */
void model_state_adam_step(model_state *s, const adam_hparams *hp, long step, float grad_scale);

/* A batch's token ids for batches of up to maxB sequences (sources up to Ls tokens, targets up
 * to Lt), time- or batch-major as the architecture lays them out: host staging and its
 * backend twins, the per-row losses, and one position's logits for decode_prefix. */
typedef struct {
    int *ints; /* backend: d_src (maxB Ls), d_src_len (maxB), d_dec_in, d_targets (maxB Lt) */
    int *d_src, *d_src_len, *d_dec_in, *d_targets;
    int *src, *src_len, *dec_in, *targets; /* host, the same shapes */
    double *row_loss;                      /* backend (maxB Lt) */
    double *host_row_loss;                 /* host (maxB Lt) */
    float *host_prefix_logits;             /* host (maxB, vocab_out) */
} model_tokens;

void model_tokens_create(model_tokens *t, const model_config *cfg, layer_backend *k, int maxB,
                         int Ls, int Lt);
void model_tokens_destroy(model_tokens *t, layer_backend *k);
/* Host-to-backend and backend-to-host copies of bytes bytes. */
void model_upload(const layer_backend *k, void *dst, const void *src, size_t bytes);
void model_download(const layer_backend *k, void *dst, const void *src, size_t bytes);

/* A bump allocator over an activation buffer, run twice: with base NULL it only counts (the
 * size to allocate, and model_memory_plan's), then it carves the same views out of base. att
 * counts the floats of attention scores among those taken (transformer.c). */
typedef struct {
    float *base;
    size_t off, align;
    size_t att;
} bump;

static inline float *bump_take(bump *b, size_t n)
{
    float *p = b->base ? b->base + b->off : NULL;
    b->off += (n + b->align - 1) / b->align * b->align;
    return p;
}

/* Floats of each part of an activation buffer, as model_memory reports them. */
typedef struct {
    size_t embeddings, enc_layer, dec_layer, enc_layers, dec_layers, attention, logits, backward;
} act_sizes;

/* The parts of model_memory every architecture has alike: the state (nparams floats, four
 * times), the activations (sz; total the bump's floats), the tokens, and the backend's own;
 * the architecture adds its decoding buffers and extra host memory, then calls
 * model_memory_total. */
void model_memory_common(const model_config *cfg, const backend_sizes *bs, int max_batch,
                         size_t nparams, const act_sizes *sz, size_t act_floats,
                         model_memory *out);
void model_memory_total(model_memory *out);

/* ---- the transformer (transformer.c) over a backend; model.c calls it through this table ---- */
typedef struct transformer transformer;
/* Takes ownership of k. Parameters, gradients and moments start at zero. */
transformer *transformer_create(const model_config *cfg, layer_backend *k, int max_batch,
                                size_t nparams);

typedef struct {
    void (*destroy)(transformer *tf);
    void (*copy_out)(const transformer *tf, model_buffer which, float *dst);
    void (*copy_in)(transformer *tf, model_buffer which, const float *src);
    /* The gradient buffer itself, in the backend's memory. */
    float *(*grads)(transformer *tf);
    void (*zero_grad)(transformer *tf);
    double (*forward)(transformer *tf, const model_batch *batch, long *ntokens);
    void (*backward)(transformer *tf, const model_batch *batch, float loss_scale);
    void (*copy_logits)(const transformer *tf, float *dst);
    double (*grad_norm)(const transformer *tf);
    void (*adam_step)(transformer *tf, const adam_hparams *h, long step, float grad_scale);
    /* Decoding primitives (they reuse the training activations: a decode invalidates the last
     * forward). decode_begin encodes src (B, S) and prepares R = B * rows_per_src decoder rows
     * (row r reads source r / rows_per_src) with an empty key/value cache. */
    void (*decode_begin)(transformer *tf, const int *src, const int *src_len, int B, int S,
                         int rows_per_src);
    /* Feeds tokens (R) at position t (the cache holds positions < t) and returns the logits
     * (R, vocab_out) in host memory, valid until the next call. */
    const float *(*decode_step)(transformer *tf, const int *tokens, int t);
    /* Row r of the cache (positions 0 .. t) becomes a copy of row parent[r]. */
    void (*decode_reorder)(transformer *tf, const int *parent, int t);
    /* No cache: runs the whole decoder on prefix (R, t + 1) and returns the logits of the last
     * position (R, vocab_out) in host memory. */
    const float *(*decode_prefix)(transformer *tf, const int *prefix, int t);
} transformer_ops;

extern const transformer_ops transformer_model_ops;

/* The plan of model.h for a backend of these sizes: the walk transformer_create allocates by. */
void transformer_memory_plan(const model_config *cfg, const backend_sizes *sz, int max_batch,
                             size_t nparams, int beam, model_memory *out);

/* ---- the recurrent encoder-decoders (recurrent.c) behind the same table: their state is a
 * struct recurrent, which model.c holds as the opaque transformer pointer of transformer_ops
 * (recurrent.c's functions alone look inside it) ---- */
transformer *recurrent_create(const model_config *cfg, layer_backend *k, int max_batch,
                              size_t nparams);
extern const transformer_ops recurrent_model_ops;
void recurrent_memory_plan(const model_config *cfg, const backend_sizes *sz, int max_batch,
                           size_t nparams, int beam, model_memory *out);

#endif
