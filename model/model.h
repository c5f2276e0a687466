/* model.h: the sequence-to-sequence transformer of the paper (section 3), as its reference
 * implementation built it (Vaswani et al., post-norm):
 *
 *   encoder:  x = LN(tok_in[src] + pos_in[t]);  per layer: x = LN(x + SelfAttn(x, pad mask))
 *                                                          x = LN(x + FFN(x))
 *   decoder:  y = LN(tok_out[tgt] + pos_out[t]); per layer: y = LN(y + CausalSelfAttn(y))
 *                                                          y = LN(y + CrossAttn(y, x, pad mask))
 *                                                          y = LN(y + FFN(y))
 *   logits = y tok_out^T + out_bias   (the projection is tied to the decoder embedding)
 *   FFN(x) = W2 ReLU(W1 x + b1) + b2 with 4*dim hidden units; no dropout.
 * Cross-attention keys and values map enc_dim to dec_dim. model_config.arch = ARCH_LSTM or
 * ARCH_GRU builds the recurrent encoder-decoders of Appendix E.1 instead (recurrent.c), behind
 * this same interface.
 *
 * Sequences are framed "EOS tokens EOS" and padded with TOK_PAD. The decoder reads
 * tgt[0 .. T-1) and predicts tgt[1 .. T); the loss is the cross-entropy of every target token
 * after the first EOS (the closing EOS included), never of padding.
 *
 * Parameters, gradients and the two Adam moments each live in one contiguous float buffer;
 * model_tensors() names the views (for checkpoints and tests). Two backends implement this
 * interface on the same layout: the CPU reference (BLAS) and, when built, CUDA.
 *
 * Weights are stored as PyTorch stores them: a linear layer's weight is (out, in) and
 * y = x W^T + b; the query/key/value projections are one (3d, d) matrix (rows: q, k, v), the
 * cross-attention keys/values one (2 d_dec, d_enc) matrix (rows: k, v).
 *
 * Threads (CPU backend): the model runs its own pool of as many threads as OpenBLAS had at the
 * first model_create (or LAWT_THREADS), and sets OpenBLAS itself to one thread (again at every
 * call): matrix products are split by rows among the pool's threads. Results are bit-identical
 * from run to run for a given thread count. Use a model from one thread at a time.
 * Memory: activations for max_batch examples (sources of max_src tokens, targets of max_tgt)
 * are allocated once at model_create; nothing is allocated per step (decoding allocates its
 * cache at its first, larger call). model_memory_plan says how many bytes that is, from the
 * very layout the allocation walks. */
#ifndef LAWT_MODEL_H
#define LAWT_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "common/common.h"

/* The architectures of the paper: its transformer, and Appendix E's alternatives. */
#define LAWT_ARCHS(X) \
    X(ARCH_TRANSFORMER, "transformer", "encoder-decoder transformer (the paper's main model)") \
    X(ARCH_UNIVERSAL, "universal", "shared-layer universal transformer: one encoder and/or decoder layer looped (Appendix E.2)") \
    X(ARCH_LSTM, "lstm", "LSTM encoder-decoder (Appendix E.1)") \
    X(ARCH_GRU, "gru", "GRU encoder-decoder (Appendix E.1)")
typedef enum { LAWT_ARCHS(ENUM_VALUE) } model_arch;
extern const enum_table MODEL_ARCH_TABLE;

/* How a looped side of a universal transformer goes from state x_i (x_0: the embeddings) to
 * x_{i+1}, for i < loops, with y_i = layer(x_i) the shared layer's output:
 *   fixed  x_{i+1} = y_i; the side's output is x_loops.
 *   gated  copy gate (Csordas et al. 2021): g_i = sigmoid(x_i W_g^T + b_g) per position and
 *          feature, x_{i+1} = g_i y_i + (1 - g_i) x_i; the output is x_loops.
 *   act    adaptive computation time (Graves 2016, as in Dehghani et al. 2018): x_{i+1} = y_i,
 *          a halting probability p_i = sigmoid(y_i . w_h + b_h) per position; a position
 *          halts at the first iteration N where p_1 + .. + p_N >= act_threshold (at the last
 *          one at the latest), weights w_i = p_i for i < N and the remainder
 *          R = 1 - (p_1 + .. + p_{N-1}) for i = N, 0 after; the output is sum_i w_i y_i, and
 *          ponder_cost * (N + R) per counted position joins the loss. */
#define MODEL_LOOP_MODES(X)                                                                 \
    X(LOOP_FIXED, "fixed", "the shared layer applied loops times")                          \
    X(LOOP_GATED, "gated", "copy gate: x' = g layer(x) + (1 - g) x, g = sigmoid(W_g x + b_g)") \
    X(LOOP_ACT, "act", "adaptive computation time: halting unit, remainder, ponder cost")
typedef enum { MODEL_LOOP_MODES(ENUM_VALUE) } model_loop_mode;
extern const enum_table MODEL_LOOP_MODE_TABLE;

typedef struct {
    int enc_layers, dec_layers;
    int enc_dim, dec_dim;
    int enc_heads, dec_heads;
    int vocab_in, vocab_out;
    int max_len; /* positions: the longest framed source or target sequence */
    /* What the activations hold (not parameters: a checkpoint does not record them): framed
     * sources of up to max_src tokens and targets of up to max_tgt (<= max_len each);
     * 0: max_len. The decoder's buffers are sized by max_tgt, the encoder's by max_src. */
    int max_src, max_tgt;
    /* Activation recomputation (model_recompute; not a parameter either): layers after the
     * first keep only their output, or no feed-forward hidden units, and backward recomputes
     * the rest from the layer's input. Gradients are the same bit for bit. */
    int recompute;
    /* model_arch. The recurrent models (ARCH_LSTM, ARCH_GRU: recurrent.c) have rnn_layers
     * layers of rnn_hidden units on each side, embeddings of enc_dim (encoder) and dec_dim
     * (decoder) dimensions; they have no heads and no positions (enc_heads, dec_heads,
     * enc_layers, dec_layers are not used; max_len still bounds the sequences). */
    int arch;
    int rnn_layers, rnn_hidden;
    /* 1: the encoder reads each source backwards (its tokens reversed, padding still last), as
     * Sutskever et al. (2014) did: the first outputs then depend on the last inputs read. */
    int rnn_reverse_source;
    /* ARCH_UNIVERSAL: a side with loops > 0 has one layer (enc_layers or dec_layers = 1) run
     * loops times; 0: that side is a plain stack. */
    int enc_loops, dec_loops;
    int loop_mode;        /* model_loop_mode */
    double act_threshold; /* LOOP_ACT: in (0, 1] */
    double ponder_cost;   /* LOOP_ACT: tau >= 0, the weight of N + R in the loss */
} model_config;

/* 1 for ARCH_LSTM and ARCH_GRU. */
int model_arch_recurrent(int arch);

typedef enum { MODEL_RECOMPUTE_NONE, MODEL_RECOMPUTE_FFN, MODEL_RECOMPUTE_LAYER } model_recompute;

/* The parameter count of Appendix G for the transformer:
 * P = de(wi + wp + 2) + (wo + wp + 2)dd + wo + ne de(12de + 13) + nd dd(14dd + 2de + 19);
 * for a universal transformer (ne, nd = 1 on a looped side) plus, per looped side of width d,
 * d(d + 1) for the copy gate (gated) or d + 1 for the halting unit (act);
 * for the recurrent models (recurrent.c), with g gates (GRU 3, LSTM 4), L layers of h units:
 * P = de wi + dd wo + g h(de + h + 2) + g h(dd + h + 2) + 2 (L-1) g h(2h + 2) + dd(h + 1) + wo. */
size_t model_param_count(const model_config *cfg);
/* Returns 0, or -1 with a message in err (e.g. dim not divisible by heads). */
int model_config_validate(const model_config *cfg, char *err, size_t errcap);

/* One named view of the parameter buffer: name like "enc.layer0.attn.qkv.weight". */
#define MODEL_MAX_NDIM 3
typedef struct {
    char name[64];
    size_t offset; /* in floats, into the parameter (and gradient, and moment) buffers */
    int ndim;
    int shape[MODEL_MAX_NDIM];
} model_tensor;
/* Fills up to cap tensors (in buffer order, covering it exactly); returns how many exist. */
int model_tensors(const model_config *cfg, model_tensor *out, int cap);

#define MODEL_BACKENDS(X)                                                                   \
    X(BACKEND_CPU, "cpu", "host memory, BLAS and the thread pool")                          \
    X(BACKEND_CUDA, "cuda", "device memory, cuBLAS and the CUDA kernels")
typedef enum { MODEL_BACKENDS(ENUM_VALUE) } model_backend;
extern const enum_table MODEL_BACKEND_TABLE;

/* A batch of B framed examples, padded to S source and T target positions. */
typedef struct {
    int B, S, T;
    const int *src;     /* (B, S) */
    const int *src_len; /* (B): framed lengths, the rest is TOK_PAD */
    const int *tgt;     /* (B, T) */
    const int *tgt_len; /* (B) */
} model_batch;

typedef struct model model;

/* Threads of the CPU backend (a fixed count fixes the partition of every product, hence its
 * rounding). Call it before the first model_create; without it the count is OpenBLAS's at
 * first use, or LAWT_THREADS. */
void model_set_threads(int n);

/* 1 when this binary has the CUDA backend and the CUDA runtime sees at least one device (so
 * BACKEND_CUDA can be created), 0 otherwise (a CPU-only build, no driver, no device): what a
 * trainer's device=auto asks. Never dies. */
int model_cuda_available(void);
/* 1 when this binary has the CUDA backend (a GPU may still be missing). */
int model_cuda_built(void);

/* Precision of the matrix products of CUDA models created after the call: fp32; tf32 (tensor
 * cores on inputs rounded to tf32); bf16 (tensor cores on inputs rounded to bf16, fp32
 * accumulation). Weights (the optimizer's master copy), activations, loss and Adam moments stay
 * fp32 in every case. Without the call: LAWT_CUDA_PRECISION=fp32|tf32|bf16, else fp32. The CPU
 * backend always computes in fp32. */
#define MODEL_PRECISIONS(X)                                                                 \
    X(PRECISION_FP32, "fp32", "fp32 products")                                              \
    X(PRECISION_TF32, "tf32", "tensor cores on inputs rounded to tf32, fp32 accumulation")  \
    X(PRECISION_BF16, "bf16", "tensor cores on inputs rounded to bf16, fp32 accumulation")
typedef enum { MODEL_PRECISIONS(ENUM_VALUE) } model_precision;
extern const enum_table MODEL_PRECISION_TABLE;
void model_set_cuda_precision(model_precision p);

/* The GPU of CUDA models created after the call: the device of local rank local_rank by
 * device/device.h's rule (LAWT_CUDA_DEVICE, then the local rank modulo the visible devices),
 * which comm_nccl_init follows too. Without the call, local rank 0's. No effect in a CPU-only
 * build. */
void model_set_cuda_device_for_rank(int local_rank);

/* Activations are sized for batches of up to max_batch examples of up to cfg->max_src source
 * and cfg->max_tgt target tokens. Dies with a message if the backend is not available. */
model *model_create(const model_config *cfg, model_backend backend, int max_batch);
void model_free(model *m);
const model_config *model_get_config(const model *m);
size_t model_num_params(const model *m);

/* Deterministic initialisation from seed, as the paper's code (PyTorch) starts each kind of
 * tensor: token and position embeddings N(0, 1/d) (the padding token's row 0), linear weights
 * and biases U(-1/sqrt(fan_in), 1/sqrt(fan_in)), layer norms (1, 0); moments zero. */
void model_init_params(model *m, uint64_t seed);

typedef enum { BUF_PARAMS, BUF_GRADS, BUF_ADAM_M, BUF_ADAM_V } model_buffer;
/* Copy a whole buffer to / from host memory (num_params floats). */
void model_copy_out(const model *m, model_buffer which, float *dst);
void model_copy_in(model *m, model_buffer which, const float *src);

/* The gradient buffer itself (num_params floats), for an in-place all-reduce between
 * backward and the optimizer step: host memory for BACKEND_CPU, device memory for
 * BACKEND_CUDA (model_get_backend tells which). */
float *model_gradient_buffer(model *m);
model_backend model_get_backend(const model *m);

/* Forward pass with loss: returns the sum over target tokens of -log p(token) (plus, with
 * loop_mode act, ponder_cost times the sum of N + R over the counted positions: source tokens
 * before the padding, decoder inputs whose next token is counted) and sets *ntokens to the
 * number of target tokens counted. Keeps activations for backward. */
double model_forward(model *m, const model_batch *batch, long *ntokens);
/* Mean-free per-example loss is not needed: the trainer divides by the global token count. */
void model_zero_grad(model *m);
/* Accumulates d(loss_scale * sum of token losses)/d(params) into the gradient buffer for the
 * batch of the last forward. loss_scale is 1 / (global number of target tokens). */
void model_backward(model *m, const model_batch *batch, float loss_scale);

/* Logits of the last forward, (B, T-1, vocab_out) on the host: for tests. Valid until the
 * next forward or decode. */
void model_copy_logits(const model *m, float *dst);

typedef struct {
    float lr, beta1, beta2, eps;
} adam_hparams;
/* L2 norm of the gradient buffer. */
double model_grad_norm(const model *m);
/* One Adam step (step counted from 1) on grad_scale * gradients, as the paper's code does it:
 * p -= lr sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps) (eps before the bias correction);
 * the trainer uses grad_scale for norm clipping and gradient averaging. */
void model_adam_step(model *m, const adam_hparams *h, long step, float grad_scale);

/* Bytes a model holds, by what they hold, as model_create and decoding allocate them for
 * (cfg, backend, max_batch) and decoding beams of width beam (0: no decoding). Backend memory
 * is the GPU's for BACKEND_CUDA, the host's for BACKEND_CPU; host is host memory besides
 * (pinned staging for CUDA). Needs no device: a CPU-only machine can plan a CUDA run. */
typedef struct {
    size_t params, grads, adam;  /* adam: both moments */
    size_t embeddings;           /* embedding activations of both sides */
    size_t enc_layer, dec_layer; /* one layer's activations, attention scores included */
    size_t enc_layers, dec_layers;
    size_t attention;            /* attention scores of every layer (inside the layer figures) */
    size_t logits;               /* logits and probabilities (M, vocab_out) each */
    size_t backward;             /* backward's gradient buffers and the attention scratch */
    size_t activations;          /* embeddings + layers + logits + backward */
    size_t decode;               /* decoding: key/value caches and one step's buffers */
    size_t tokens;               /* token ids and per-row losses */
    size_t backend_state;        /* the backend's own (CUDA: embedding index, norm partials) */
    size_t workspace;            /* cuBLAS workspace (CUDA); the CUDA context is not counted */
    size_t backend_total;        /* all of the above: in the backend's memory */
    size_t host;                 /* host memory besides (staging; for CPU, the same memory) */
    size_t host_init;            /* host memory model_init_params holds while it runs */
} model_memory;
void model_memory_plan(const model_config *cfg, model_backend backend, int max_batch, int beam,
                       model_memory *out);
/* Bytes the backend's allocator handed out to models and not yet freed, in this process
 * (CPU backend: through its alloc and host_alloc): what tests hold the plan against. */
size_t model_cpu_bytes_in_use(void);

/* Decoding reuses the training activations: call backward before decoding, not after.
 * Any number of sources B: they are decoded in chunks of at most max_batch (a source's
 * prediction does not depend on its companions).
 * Greedy decoding with a key/value cache. src: (B, S) framed sources. For each example writes
 * the predicted tokens after the leading EOS, without the closing EOS, into
 * out[b * max_out ...] and their count into out_len[b]; stops at EOS or max_out tokens. */
void model_greedy_decode(model *m, const int *src, const int *src_len, int B, int S,
                         int max_out, int *out, int *out_len);
/* Same without the KV cache (recomputes the whole prefix each step): the test oracle. */
void model_greedy_decode_nocache(model *m, const int *src, const int *src_len, int B, int S,
                                 int max_out, int *out, int *out_len);
/* Beam search of width beam (length-normalised log-probability); writes the best hypothesis.
 * Hypotheses that end in EOS leave the beam (model.c documents the exact rule); width 1 is
 * greedy decoding, token for token. B * beam rows are decoded at once. */
void model_beam_decode(model *m, const int *src, const int *src_len, int B, int S, int beam,
                       int max_out, int *out, int *out_len);

#endif
