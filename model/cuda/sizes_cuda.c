/* sizes_cuda.c: what the CUDA backend's memory needs, known without a GPU (built into every
 * lawt_model, so a CPU-only machine can plan a CUDA run). model_cuda.c allocates from these
 * figures and checks at creation that the kernels' own sizes (layers_cuda.cu) agree. */
#include "model/model_internal.h"

/* layers_cuda.cu's attention keeps every (example, head) score row: (B, H, T, S). */
static long cuda_attention_scratch_floats(int B, int H, int T, int S, int D)
{
    (void)D;
    return (long)B * H * T * S;
}

/* sumsq_cuda's partial sums: one per block of 16384 floats (SUMSQ_BLOCK), and one more. */
size_t model_cuda_sumsq_partials(size_t nparams) { return (nparams + 16383) / 16384 + 1; }

/* The embedding gradients' token index of both tables (rows (max_batch * longest sequence),
 * starts (vocab + 1)), on the device and its host twin; the partial sums of sumsq. */
static void cuda_state_bytes(const model_config *cfg, int max_batch, size_t nparams,
                             size_t *device, size_t *host)
{
    size_t ints = model_cuda_index_ints(cfg, max_batch);
    *device = ints * sizeof(int) + model_cuda_sumsq_partials(nparams) * sizeof(double);
    *host = ints * sizeof(int);
}

size_t model_cuda_index_ints(const model_config *cfg, int max_batch)
{
    int src = model_src_capacity(cfg), tgt = model_tgt_capacity(cfg);
    size_t NB = (size_t)max_batch * (size_t)(src > tgt ? src : tgt);
    return 2 * NB + (size_t)cfg->vocab_in + 1 + (size_t)cfg->vocab_out + 1;
}

/* cuBLAS takes a workspace of its own per handle: 32 MiB on Hopper and later (4 MiB before). */
const backend_sizes model_cuda_sizes = {.align_floats = 64 /* 256-byte aligned views */,
                                        .attention_scratch_floats = cuda_attention_scratch_floats,
                                        .state_bytes = cuda_state_bytes,
                                        .workspace_bytes = (size_t)32 << 20};
