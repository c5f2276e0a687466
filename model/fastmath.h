/* fastmath.h: small inline helpers for the CPU layers: reductions with a fixed number of
 * partial sums (FM_LANES, so the compiler can vectorise them while every result stays
 * deterministic: the summation order depends only on n), and an exp for softmaxes.
 *
 * fm_expf: exp(x) = 2^k e^r with k = round(x / ln 2), r = x - k ln 2 in [-ln2/2, ln2/2], e^r by
 * the degree-7 polynomial of Cephes' expf (relative error about 2e-7 over the whole range,
 * i.e. within ~2 ulp of expf). Branch-free, so loops over it vectorise. Inputs are clamped to
 * [-87, 88]: exp(-87) ~ 1.6e-38 stands for 0 in a softmax. */
#ifndef LAWT_MODEL_FASTMATH_H
#define LAWT_MODEL_FASTMATH_H

#include <stdint.h>
#include <string.h>

#define FM_LANES 8

static inline float fm_hsum(const float *acc)
{
    /* fixed pairwise order */
    float a = (acc[0] + acc[4]) + (acc[2] + acc[6]);
    float b = (acc[1] + acc[5]) + (acc[3] + acc[7]);
    return a + b;
}

static inline float fm_sum(const float *restrict x, int n)
{
    float acc[FM_LANES] = {0};
    int i = 0;
    for (; i + FM_LANES <= n; i += FM_LANES)
        for (int l = 0; l < FM_LANES; l++) acc[l] += x[i + l];
    float s = fm_hsum(acc);
    for (; i < n; i++) s += x[i];
    return s;
}

/* sum (x - m)^2 */
static inline float fm_sum_sq_dev(const float *restrict x, float m, int n)
{
    float acc[FM_LANES] = {0};
    int i = 0;
    for (; i + FM_LANES <= n; i += FM_LANES)
        for (int l = 0; l < FM_LANES; l++) {
            float d = x[i + l] - m;
            acc[l] += d * d;
        }
    float s = fm_hsum(acc);
    for (; i < n; i++) s += (x[i] - m) * (x[i] - m);
    return s;
}

static inline float fm_max(const float *restrict x, int n)
{
    float acc[FM_LANES];
    for (int l = 0; l < FM_LANES; l++) acc[l] = x[0];
    int i = 0;
    for (; i + FM_LANES <= n; i += FM_LANES)
        for (int l = 0; l < FM_LANES; l++) acc[l] = x[i + l] > acc[l] ? x[i + l] : acc[l];
    float m = acc[0];
    for (int l = 1; l < FM_LANES; l++) m = acc[l] > m ? acc[l] : m;
    for (; i < n; i++) m = x[i] > m ? x[i] : m;
    return m;
}

static inline float fm_expf(float x)
{
    x = x < -87.0f ? -87.0f : x;
    x = x > 88.0f ? 88.0f : x;
    /* k = round(x / ln2) with the 1.5 * 2^23 trick: the integer lands in the low mantissa bits */
    const float shifter = 12582912.0f;
    float t = x * 1.44269504088896341f + shifter;
    float kf = t - shifter;
    int32_t ti, si;
    memcpy(&ti, &t, 4);
    memcpy(&si, &shifter, 4);
    int32_t k = ti - si;
    float r = x - kf * 0.693359375f;
    r = r - kf * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int32_t bits = (k + 127) << 23;
    float scale;
    memcpy(&scale, &bits, 4);
    return p * scale;
}

/* out[i] = exp(x[i] - m); returns the sum of out. */
static inline float fm_exp_sub(float *restrict out, const float *restrict x, float m, int n)
{
    for (int i = 0; i < n; i++) out[i] = fm_expf(x[i] - m);
    return fm_sum(out, n);
}

/* out[0 .. n) = softmax(x[0 .. n)); out may alias x. */
static inline void fm_softmax(float *out, const float *x, int n)
{
    float m = fm_max(x, n);
    float s = fm_exp_sub(out, x, m, n);
    float inv = 1.0f / s;
    for (int i = 0; i < n; i++) out[i] *= inv;
}

#endif
