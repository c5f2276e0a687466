/* model_cuda.h: what the CUDA backend adds beyond model.h (declared only in builds with
 * LAWT_MODEL_HAVE_CUDA). The backend itself is reached through model.h with BACKEND_CUDA.
 *
 * Device: the current CUDA device of the calling thread (set it with cudaSetDevice, e.g. to
 * the local rank, before model_create), or LAWT_CUDA_DEVICE=<ordinal> when set.
 * Precision: LAWT_CUDA_PRECISION=fp32 (default) or tf32 (cuBLAS TF32 tensor-core math for the
 * matrix products; everything else stays fp32), read at model_create, or
 * model_cuda_set_precision() before it. bf16 is not implemented yet (asking for it dies). */
#ifndef LAWT_MODEL_CUDA_H
#define LAWT_MODEL_CUDA_H

typedef enum { MODEL_CUDA_FP32, MODEL_CUDA_TF32, MODEL_CUDA_BF16 } model_cuda_precision;

/* For models created after the call; overrides LAWT_CUDA_PRECISION. */
void model_cuda_set_precision(model_cuda_precision p);

#endif
