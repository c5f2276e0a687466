/* model_cpu.c: the CPU reference backend: host memory and the layers of layers.c (BLAS for the
 * matrix products, the pool of parallel.h for the rest). transformer.c runs the model on it.
 * The flat-buffer loops (zeroing, the sum of squares, Adam) run in parallel over fixed blocks
 * of FLAT_BLOCK floats, so their results do not depend on the number of threads. */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "model/layers.h"
#include "model/model_internal.h"
#include "model/parallel.h"
#include "model/recurrent_layers.h"

#define FLAT_BLOCK 16384

static int flat_blocks(size_t n) { return (int)((n + FLAT_BLOCK - 1) / FLAT_BLOCK); }

typedef struct {
    layer_backend k;
    double *block_sums; /* flat_blocks(nparams) */
} cpu_backend;

/* ---- memory ---- */

/* Each block starts with a 64-byte header holding its size, so that the bytes in use can be
 * counted (model_cpu_bytes_in_use) and the data stays 64-byte aligned. */
#define ALLOC_HEADER 64
static atomic_size_t bytes_in_use;

static void *cpu_alloc(size_t bytes)
{
    void *p = NULL;
    if (posix_memalign(&p, 64, ALLOC_HEADER + (bytes > 0 ? bytes : 64)))
        lawt_die("model: cannot allocate %zu bytes", bytes);
    *(size_t *)p = bytes;
    atomic_fetch_add(&bytes_in_use, bytes);
    return (char *)p + ALLOC_HEADER;
}

static void cpu_free(void *p)
{
    if (!p) return;
    char *block = (char *)p - ALLOC_HEADER;
    atomic_fetch_sub(&bytes_in_use, *(size_t *)block);
    free(block);
}

size_t model_cpu_bytes_in_use(void) { return atomic_load(&bytes_in_use); }

static void cpu_copy(void *dst, size_t dpitch, const void *src, size_t spitch, size_t width,
                     size_t rows, copy_kind kind)
{
    (void)kind;
    for (size_t r = 0; r < rows; r++)
        memcpy((char *)dst + r * dpitch, (const char *)src + r * spitch, width);
}

typedef struct {
    float *x;
    size_t n;
} flat_args;

static void zero_task(void *ctx, int begin, int end, int thread)
{
    (void)thread;
    const flat_args *a = ctx;
    size_t lo = (size_t)begin * FLAT_BLOCK, hi = (size_t)end * FLAT_BLOCK;
    if (hi > a->n) hi = a->n;
    memset(a->x + lo, 0, (hi - lo) * sizeof(float));
}

static void cpu_zero(float *x, size_t n)
{
    flat_args a = {x, n};
    par_for(flat_blocks(n), 8, zero_task, &a);
}

static void cpu_gather_rows(float *dst, const float *src, const int *index, int rows, long n,
                            long ld)
{
    for (int r = 0; r < rows; r++)
        memcpy(dst + (size_t)r * (size_t)ld, src + (size_t)index[r] * (size_t)ld,
               (size_t)n * sizeof(float));
}

/* ---- layers: layers.c, adapted where the boundary passes what the CPU does not need ---- */

static void cpu_embedding_backward(layer_backend *k, int table, float *dtok_emb,
                                   float *dpos_emb, const float *dout, const int *tokens, int B,
                                   int T, int C, int V)
{
    (void)k, (void)table, (void)V;
    embedding_backward(dtok_emb, dpos_emb, dout, tokens, B, T, C);
}

static void cpu_linear_forward(layer_backend *k, float *out, const float *inp,
                               const float *weight, const float *bias, const float *residual,
                               int N, int C, int OC)
{
    (void)k;
    linear_forward(out, inp, weight, bias, residual, N, C, OC);
}

static void cpu_linear_backward(layer_backend *k, float *dinp, float *dweight, float *dbias,
                                const float *dout, const float *inp, const float *weight, int N,
                                int C, int OC, int accumulate)
{
    (void)k;
    linear_backward(dinp, dweight, dbias, dout, inp, weight, N, C, OC, accumulate);
}

static long cpu_attention_scratch_floats(int B, int H, int T, int S, int D)
{
    (void)B, (void)H;
    return attention_scratch_floats(T, S, D);
}

static double cpu_crossentropy_forward(float *probs, double *row_loss, const float *logits,
                                       const int *targets, int N, int V, double *host_row_loss)
{
    (void)host_row_loss; /* row_loss is host memory already */
    return crossentropy_forward(probs, row_loss, logits, targets, N, V);
}

/* ---- optimizer ---- */

typedef struct {
    const float *x;
    size_t n;
    double *block_sums;
} sumsq_args;

/* The sum of squares of each block in double, over 8 lanes and then in a fixed pairwise
 * order; the blocks are then summed in order: the result does not depend on the number of
 * threads. */
static void sumsq_task(void *ctx, int begin, int end, int thread)
{
    (void)thread;
    const sumsq_args *a = ctx;
    const float *g = a->x;
    for (int blk = begin; blk < end; blk++) {
        size_t lo = (size_t)blk * FLAT_BLOCK, hi = lo + FLAT_BLOCK;
        if (hi > a->n) hi = a->n;
        double acc[8] = {0};
        size_t i = lo;
        for (; i + 8 <= hi; i += 8)
            for (int l = 0; l < 8; l++) acc[l] += (double)g[i + l] * (double)g[i + l];
        double s =
            ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
        for (; i < hi; i++) s += (double)g[i] * (double)g[i];
        a->block_sums[blk] = s;
    }
}

static double cpu_sumsq(layer_backend *k, const float *x, size_t n)
{
    sumsq_args a = {x, n, ((cpu_backend *)k)->block_sums};
    int nb = flat_blocks(n);
    par_for(nb, 8, sumsq_task, &a);
    double s = 0.0;
    for (int b = 0; b < nb; b++) s += a.block_sums[b];
    return s;
}

typedef struct {
    float *p, *m, *v;
    const float *g;
    size_t n;
    float b1, b2, lr, eps, ib1, ib2, grad_scale;
} adam_args;

/* m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2   (g = grad_scale * grad)
 * p -= lr * (m ib1) / (sqrt(v ib2) + eps) */
static void adam_task(void *ctx, int begin, int end, int thread)
{
    (void)thread;
    const adam_args *a = ctx;
    size_t lo = (size_t)begin * FLAT_BLOCK, hi = (size_t)end * FLAT_BLOCK;
    if (hi > a->n) hi = a->n;
    float *restrict p = a->p, *restrict m = a->m, *restrict v = a->v;
    const float *restrict g = a->g;
    const float b1 = a->b1, b2 = a->b2, lr = a->lr, eps = a->eps, ib1 = a->ib1, ib2 = a->ib2;
    const float gs = a->grad_scale;
    for (size_t i = lo; i < hi; i++) {
        float gi = gs * g[i];
        m[i] = b1 * m[i] + (1.0f - b1) * gi;
        v[i] = b2 * v[i] + (1.0f - b2) * gi * gi;
        p[i] -= lr * (m[i] * ib1) / (sqrtf(v[i] * ib2) + eps);
    }
}

static void cpu_adam_update(float *params, float *m, float *v, const float *grads, size_t n,
                            float lr, float beta1, float beta2, float eps, float ib1, float ib2,
                            float grad_scale)
{
    adam_args a = {.p = params, .m = m, .v = v, .g = grads, .n = n, .b1 = beta1, .b2 = beta2,
                   .lr = lr, .eps = eps, .ib1 = ib1, .ib2 = ib2, .grad_scale = grad_scale};
    par_for(flat_blocks(n), 8, adam_task, &a);
}

static void cpu_destroy(layer_backend *k)
{
    cpu_free(((cpu_backend *)k)->block_sums);
    free(k);
}

static void cpu_state_bytes(const model_config *cfg, int max_batch, size_t nparams,
                            size_t *device, size_t *host)
{
    (void)cfg, (void)max_batch;
    *device = (size_t)(flat_blocks(nparams) + 1) * sizeof(double); /* block_sums */
    *host = 0;
}

const backend_sizes model_cpu_sizes = {.align_floats = 16 /* 64-byte aligned views */,
                                       .attention_scratch_floats = cpu_attention_scratch_floats,
                                       .state_bytes = cpu_state_bytes,
                                       .workspace_bytes = 0};

layer_backend *model_cpu_backend(const model_config *cfg, int max_batch, size_t nparams)
{
    size_t state, host;
    model_cpu_sizes.state_bytes(cfg, max_batch, nparams, &state, &host);
    cpu_backend *b = lawt_calloc(1, sizeof *b);
    b->block_sums = cpu_alloc(state);
    b->k = (layer_backend){
        .name = "cpu", .align_floats = model_cpu_sizes.align_floats, .destroy = cpu_destroy,
        /* memory: the host's, transfers are copies */
        .alloc = cpu_alloc, .free = cpu_free, .host_alloc = cpu_alloc, .host_free = cpu_free,
        .copy = cpu_copy, .zero = cpu_zero, .gather_rows = cpu_gather_rows,
        /* layers.c */
        .embedding_forward = embedding_forward, .embedding_backward = cpu_embedding_backward,
        .layernorm_forward = layernorm_forward, .layernorm_backward = layernorm_backward,
        .linear_forward = cpu_linear_forward, .linear_backward = cpu_linear_backward,
        .relu_forward = relu_forward, .relu_backward = relu_backward,
        .attention_forward = attention_forward, .attention_backward = attention_backward,
        .attention_scratch_floats = model_cpu_sizes.attention_scratch_floats,
        .crossentropy_forward = cpu_crossentropy_forward,
        .crossentropy_backward = crossentropy_backward,
        .copy_gate_forward = copy_gate_forward, .copy_gate_backward = copy_gate_backward,
        .act_halting_forward = act_halting_forward,
        .act_halting_backward = act_halting_backward,
        .weighted_rows_forward = weighted_rows_forward,
        .weighted_rows_backward = weighted_rows_backward,
        /* recurrent_layers.c */
        .gru_cell_forward = gru_cell_forward, .gru_cell_backward = gru_cell_backward,
        .lstm_cell_forward = lstm_cell_forward, .lstm_cell_backward = lstm_cell_backward,
        /* optimizer */
        .sumsq = cpu_sumsq, .adam_update = cpu_adam_update};
    return &b->k;
}
