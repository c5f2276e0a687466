/* model_cuda.c: the CUDA backend: device memory and the layers of layers_cuda.cu, each the
 * _cuda twin of the CPU layer at the same place of the boundary (model_internal.h);
 * transformer.c runs the model on it, exactly as on the CPU. Host memory that crosses to or
 * from the device every step (token ids, row losses, logits) is page-locked, so that copies are
 * DMA transfers, not staged again by the driver through a pageable bounce.
 *
 * Host synchronisation points: the loss (per-row losses are summed on the host in row order),
 * the gradient norm, the copies to the host and the decoding logits.
 * Every CUDA and cuBLAS call is checked (cuda_check.h); the device is device.h's. */
#include <stdlib.h>
#include <string.h>

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include "common/common.h"
#include "device/device.h"
#include "model/cuda/cuda_check.h"
#include "model/cuda/layers_cuda.h"
#include "model/cuda/recurrent_cuda.h"
#include "model/model_internal.h"

/* The cuBLAS handle of the model, the embedding gradients' token indexes of the current batch
 * (built on the host by embedding_index_build, one per table: EMB_ENC, EMB_DEC), the partial
 * sums of sumsq_cuda. */
typedef struct {
    layer_backend k;
    blas_cuda blas;
    int *rows[2], *start[2];     /* host: (max_batch * longest sequence), (vocab + 1) */
    int *ints;                   /* device: d_rows and d_start of both tables */
    int *d_rows[2], *d_start[2];
    double *partials;
} cuda_backend;

static cuda_backend *cuda(layer_backend *k) { return (cuda_backend *)k; }

/* ---- device, precision ---- */

static int precision_set = -1;

void model_set_cuda_precision(model_precision p) { precision_set = (int)p; }

static model_precision precision_wanted(void)
{
    if (precision_set >= 0) return (model_precision)precision_set;
    const char *e = getenv("LAWT_CUDA_PRECISION");
    if (!e || !*e) return PRECISION_FP32;
    int p = enum_from_name(&MODEL_PRECISION_TABLE, e);
    char names[64];
    if (p < 0)
        lawt_die("model: LAWT_CUDA_PRECISION=%s: expected %s", e,
                 enum_names_join(&MODEL_PRECISION_TABLE, ", ", names, sizeof names));
    return (model_precision)p;
}

int model_cuda_built(void) { return 1; }

int model_cuda_available(void) { return device_available(); }

static int device_rank = -1;

void model_set_cuda_device_for_rank(int local_rank) { device_rank = local_rank; }

static void select_device(void) { device_select(device_rank >= 0 ? device_rank : 0); }

/* ---- memory ---- */

static void *dev_alloc(size_t bytes)
{
    void *p = NULL;
    CUDA_CHECK(cudaMalloc(&p, bytes > 0 ? bytes : 256));
    return p;
}

static void dev_free(void *p) { CUDA_CHECK(cudaFree(p)); }

static void *pinned_alloc(size_t bytes)
{
    void *p = NULL;
    CUDA_CHECK(cudaHostAlloc(&p, bytes > 0 ? bytes : 1, cudaHostAllocDefault));
    return p;
}

static void pinned_free(void *p) { CUDA_CHECK(cudaFreeHost(p)); }

static void dev_copy(void *dst, size_t dpitch, const void *src, size_t spitch, size_t width,
                     size_t rows, copy_kind kind)
{
    enum cudaMemcpyKind ck = kind == COPY_HOST_TO_DEVICE   ? cudaMemcpyHostToDevice
                             : kind == COPY_DEVICE_TO_HOST ? cudaMemcpyDeviceToHost
                                                           : cudaMemcpyDeviceToDevice;
    if (rows == 1)
        CUDA_CHECK(cudaMemcpy(dst, src, width, ck));
    else
        CUDA_CHECK(cudaMemcpy2D(dst, dpitch, src, spitch, width, rows, ck));
}

static void dev_zero(float *x, size_t n) { CUDA_CHECK(cudaMemset(x, 0, n * sizeof(float))); }

/* ---- layers that need the backend's state ---- */

static void upload_ints(int *dst, const int *src, size_t n)
{
    CUDA_CHECK(cudaMemcpy(dst, src, n * sizeof(int), cudaMemcpyHostToDevice));
}

static void embedding_prepare(layer_backend *k, int table, const int *tokens_host, int N, int V)
{
    cuda_backend *c = cuda(k);
    embedding_index_build(c->rows[table], c->start[table], tokens_host, N, V);
    upload_ints(c->d_rows[table], c->rows[table], (size_t)N);
    upload_ints(c->d_start[table], c->start[table], (size_t)V + 1);
}

static void embedding_backward_indexed(layer_backend *k, int table, float *dtok_emb,
                                       float *dpos_emb, const float *dout, const int *tokens,
                                       int B, int T, int C, int V)
{
    (void)tokens; /* read through the index of embedding_prepare */
    const cuda_backend *c = cuda(k);
    embedding_backward_cuda(dtok_emb, dpos_emb, dout, c->d_rows[table], c->d_start[table], B, T,
                            C, V);
}

static void linear_fwd(layer_backend *k, float *out, const float *inp, const float *weight,
                       const float *bias, const float *residual, int N, int C, int OC)
{
    linear_forward_cuda(&cuda(k)->blas, out, inp, weight, bias, residual, N, C, OC);
}

static void linear_bwd(layer_backend *k, float *dinp, float *dweight, float *dbias,
                       const float *dout, const float *inp, const float *weight, int N, int C,
                       int OC, int accumulate)
{
    linear_backward_cuda(&cuda(k)->blas, dinp, dweight, dbias, dout, inp, weight, N, C, OC,
                         accumulate);
}

static double sumsq(layer_backend *k, const float *x, size_t n)
{
    return sumsq_cuda(x, n, cuda(k)->partials);
}

static void destroy(layer_backend *k)
{
    cuda_backend *c = cuda(k);
    CUBLAS_CHECK(cublasDestroy(c->blas.handle));
    dev_free(c->ints);
    dev_free(c->partials);
    for (int t = 0; t < 2; t++) {
        free(c->rows[t]);
        free(c->start[t]);
    }
    free(c);
}

layer_backend *model_cuda_backend(const model_config *cfg, int max_batch, size_t nparams)
{
    select_device();
    model_precision prec = precision_wanted();
    cuda_backend *c = lawt_calloc(1, sizeof *c);
    CUBLAS_CHECK(cublasCreate(&c->blas.handle));
    c->blas.compute = prec == PRECISION_TF32   ? CUBLAS_COMPUTE_32F_FAST_TF32
                      : prec == PRECISION_BF16 ? CUBLAS_COMPUTE_32F_FAST_16BF
                                                : CUBLAS_COMPUTE_32F;
    /* model_memory_plan counts this backend from sizes_cuda.c: the kernels must agree */
    if (model_cuda_sizes.attention_scratch_floats(3, 5, 7, 11, 13) !=
            attention_scratch_floats_cuda(3, 5, 7, 11) ||
        model_cuda_sumsq_partials(nparams) != sumsq_partials_cuda(nparams))
        lawt_die("model: internal error: sizes_cuda.c disagrees with layers_cuda.cu");
    const int src = model_src_capacity(cfg), tgt = model_tgt_capacity(cfg);
    const size_t NB = (size_t)max_batch * (size_t)(src > tgt ? src : tgt);
    const size_t vocab[2] = {(size_t)cfg->vocab_in + 1, (size_t)cfg->vocab_out + 1};
    c->ints = dev_alloc(model_cuda_index_ints(cfg, max_batch) * sizeof(int));
    int *p = c->ints;
    for (int t = 0; t < 2; t++) {
        c->rows[t] = lawt_malloc(NB * sizeof(int));
        c->start[t] = lawt_malloc(vocab[t] * sizeof(int));
        c->d_rows[t] = p, p += NB;
        c->d_start[t] = p, p += vocab[t];
    }
    c->partials = dev_alloc(sumsq_partials_cuda(nparams) * sizeof(double));
    c->k = (layer_backend){.name = "cuda", .align_floats = model_cuda_sizes.align_floats,
                           .destroy = destroy,
                           /* memory: the device's; page-locked host memory for transfers */
                           .alloc = dev_alloc, .free = dev_free, .host_alloc = pinned_alloc,
                           .host_free = pinned_free, .copy = dev_copy, .zero = dev_zero,
                           .gather_rows = gather_rows_cuda,
                           /* layers_cuda.cu */
                           .embedding_forward = embedding_forward_cuda,
                           .embedding_backward_prepare = embedding_prepare,
                           .embedding_backward = embedding_backward_indexed,
                           .layernorm_forward = layernorm_forward_cuda,
                           .layernorm_backward = layernorm_backward_cuda,
                           .linear_forward = linear_fwd, .linear_backward = linear_bwd,
                           .relu_forward = relu_forward_cuda, .relu_backward = relu_backward_cuda,
                           .attention_forward = attention_forward_cuda,
                           .attention_backward = attention_backward_cuda,
                           .attention_scratch_floats = model_cuda_sizes.attention_scratch_floats,
                           .crossentropy_forward = crossentropy_forward_cuda,
                           .crossentropy_backward = crossentropy_backward_cuda,
                           .copy_gate_forward = copy_gate_forward_cuda,
                           .copy_gate_backward = copy_gate_backward_cuda,
                           .act_halting_forward = act_halting_forward_cuda,
                           .act_halting_backward = act_halting_backward_cuda,
                           .weighted_rows_forward = weighted_rows_forward_cuda,
                           .weighted_rows_backward = weighted_rows_backward_cuda,
                           /* recurrent_cuda.cu */
                           .gru_cell_forward = gru_cell_forward_cuda,
                           .gru_cell_backward = gru_cell_backward_cuda,
                           .lstm_cell_forward = lstm_cell_forward_cuda,
                           .lstm_cell_backward = lstm_cell_backward_cuda,
                           /* optimizer */
                           .sumsq = sumsq, .adam_update = adam_update_cuda};
    return &c->k;
}
