/* recurrent_cuda.cu: the CUDA twins of model/recurrent_layers.c (math in recurrent_layers.h).
 * One thread per (row b, unit j), grid-stride; each thread reads and writes only its own
 * (b, j) elements, so the new state may be the previous one itself, as on the CPU. */
#include "model/cuda/recurrent_cuda.h"

#include "model/cuda/cuda_check.h"

#define CELL_THREADS 256

static unsigned cell_grid(long n)
{
    long g = (n + CELL_THREADS - 1) / CELL_THREADS;
    if (g < 1) g = 1;
    if (g > (1L << 20)) g = 1L << 20;
    return (unsigned)g;
}

#define CELL_LOOP(i, n)                                                                  \
    for (long i = (long)blockIdx.x * blockDim.x + threadIdx.x; i < (long)(n);            \
         i += (long)gridDim.x * blockDim.x)

__device__ __forceinline__ float sigmoid_dev(float x) { return 1.0f / (1.0f + expf(-x)); }

__device__ __forceinline__ int steps_dev(const int *len, int t, int b)
{
    return !len || t < len[b];
}

__global__ void gru_forward_kernel(float *h, float *gates, const float *gh, const float *h_prev,
                                   const int *len, int t, int B, int H)
{
    CELL_LOOP(i, (long)B * H)
    {
        const int b = (int)(i / H), j = (int)(i % H);
        if (!steps_dev(len, t, b)) {
            h[i] = h_prev[i];
            continue;
        }
        float *g = gates + (long)b * 3 * H;
        const float *q = gh + (long)b * 3 * H;
        const float r = sigmoid_dev(g[j] + q[j]), z = sigmoid_dev(g[H + j] + q[H + j]);
        const float n = tanhf(g[2 * H + j] + r * q[2 * H + j]);
        g[j] = r;
        g[H + j] = z;
        g[2 * H + j] = n;
        h[i] = (1.0f - z) * n + z * h_prev[i];
    }
}

__global__ void gru_backward_kernel(float *dgx, float *dgh, float *dh_carry, const float *dy,
                                    const float *gates, const float *gh, const float *h_prev,
                                    const int *len, int t, int B, int H)
{
    CELL_LOOP(i, (long)B * H)
    {
        const int b = (int)(i / H), j = (int)(i % H);
        float *dx = dgx + (long)b * 3 * H, *dq = dgh + (long)b * 3 * H;
        const float dh = dh_carry[i] + (dy ? dy[i] : 0.0f);
        if (!steps_dev(len, t, b)) {
            dh_carry[i] = dh;
            dx[j] = dx[H + j] = dx[2 * H + j] = 0.0f;
            dq[j] = dq[H + j] = dq[2 * H + j] = 0.0f;
            continue;
        }
        const float *g = gates + (long)b * 3 * H;
        const float r = g[j], z = g[H + j], n = g[2 * H + j];
        const float ghn = gh[(long)b * 3 * H + 2 * H + j];
        const float dan = dh * (1.0f - z) * (1.0f - n * n);
        const float dar = dan * ghn * r * (1.0f - r);
        const float daz = dh * (h_prev[i] - n) * z * (1.0f - z);
        dx[2 * H + j] = dan;
        dq[2 * H + j] = dan * r;
        dx[j] = dq[j] = dar;
        dx[H + j] = dq[H + j] = daz;
        dh_carry[i] = dh * z;
    }
}

__global__ void lstm_forward_kernel(float *h, float *c, float *gates, const float *h_prev,
                                    const float *c_prev, const int *len, int t, int B, int H)
{
    CELL_LOOP(i, (long)B * H)
    {
        const int b = (int)(i / H), j = (int)(i % H);
        if (!steps_dev(len, t, b)) {
            h[i] = h_prev[i];
            c[i] = c_prev[i];
            continue;
        }
        float *g = gates + (long)b * 4 * H;
        const float ig = sigmoid_dev(g[j]), fg = sigmoid_dev(g[H + j]);
        const float gg = tanhf(g[2 * H + j]), og = sigmoid_dev(g[3 * H + j]);
        g[j] = ig;
        g[H + j] = fg;
        g[2 * H + j] = gg;
        g[3 * H + j] = og;
        const float cn = fg * c_prev[i] + ig * gg;
        c[i] = cn;
        h[i] = og * tanhf(cn);
    }
}

__global__ void lstm_backward_kernel(float *dgates, float *dh_carry, float *dc_carry,
                                     const float *dy, const float *gates, const float *c,
                                     const float *c_prev, const int *len, int t, int B, int H)
{
    CELL_LOOP(i, (long)B * H)
    {
        const int b = (int)(i / H), j = (int)(i % H);
        float *da = dgates + (long)b * 4 * H;
        const float dh = dh_carry[i] + (dy ? dy[i] : 0.0f);
        if (!steps_dev(len, t, b)) {
            dh_carry[i] = dh;
            da[j] = da[H + j] = da[2 * H + j] = da[3 * H + j] = 0.0f;
            continue;
        }
        const float *g = gates + (long)b * 4 * H;
        const float ig = g[j], fg = g[H + j], gg = g[2 * H + j], og = g[3 * H + j];
        const float tc = tanhf(c[i]);
        const float dc = dc_carry[i] + dh * og * (1.0f - tc * tc);
        da[j] = dc * gg * ig * (1.0f - ig);
        da[H + j] = dc * c_prev[i] * fg * (1.0f - fg);
        da[2 * H + j] = dc * ig * (1.0f - gg * gg);
        da[3 * H + j] = dh * tc * og * (1.0f - og);
        dc_carry[i] = dc * fg;
        dh_carry[i] = 0.0f;
    }
}

extern "C" void gru_cell_forward_cuda(float *h, float *gates, const float *gh,
                                      const float *h_prev, const int *len, int t, int B, int H)
{
    gru_forward_kernel<<<cell_grid((long)B * H), CELL_THREADS>>>(h, gates, gh, h_prev, len, t,
                                                                  B, H);
    CUDA_CHECK_LAUNCH();
}

extern "C" void gru_cell_backward_cuda(float *dgx, float *dgh, float *dh_carry, const float *dy,
                                       const float *gates, const float *gh, const float *h_prev,
                                       const int *len, int t, int B, int H)
{
    gru_backward_kernel<<<cell_grid((long)B * H), CELL_THREADS>>>(dgx, dgh, dh_carry, dy, gates,
                                                                   gh, h_prev, len, t, B, H);
    CUDA_CHECK_LAUNCH();
}

extern "C" void lstm_cell_forward_cuda(float *h, float *c, float *gates, const float *h_prev,
                                       const float *c_prev, const int *len, int t, int B, int H)
{
    lstm_forward_kernel<<<cell_grid((long)B * H), CELL_THREADS>>>(h, c, gates, h_prev, c_prev,
                                                                   len, t, B, H);
    CUDA_CHECK_LAUNCH();
}

extern "C" void lstm_cell_backward_cuda(float *dgates, float *dh_carry, float *dc_carry,
                                        const float *dy, const float *gates, const float *c,
                                        const float *c_prev, const int *len, int t, int B, int H)
{
    lstm_backward_kernel<<<cell_grid((long)B * H), CELL_THREADS>>>(
        dgates, dh_carry, dc_carry, dy, gates, c, c_prev, len, t, B, H);
    CUDA_CHECK_LAUNCH();
}
