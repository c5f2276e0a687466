/* recurrent_layers.c: the gates of the GRU and LSTM cells on the CPU (math in
 * recurrent_layers.h). Plain loops over the rows: the products around them (BLAS) dominate. */
#include "model/recurrent_layers.h"

#include <math.h>
#include <string.h>

static float sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }

static int steps(const int *len, int t, int b) { return !len || t < len[b]; }

void gru_cell_forward(float *h, float *gates, const float *gh, const float *h_prev,
                      const int *len, int t, int B, int H)
{
    for (int b = 0; b < B; b++) {
        float *hb = h + (size_t)b * H;
        const float *hp = h_prev + (size_t)b * H;
        if (!steps(len, t, b)) {
            if (hb != hp) memcpy(hb, hp, (size_t)H * sizeof(float));
            continue;
        }
        float *r = gates + (size_t)b * 3 * H, *z = r + H, *n = z + H;
        const float *ghr = gh + (size_t)b * 3 * H, *ghz = ghr + H, *ghn = ghz + H;
        for (int j = 0; j < H; j++) {
            r[j] = sigmoidf(r[j] + ghr[j]);
            z[j] = sigmoidf(z[j] + ghz[j]);
            n[j] = tanhf(n[j] + r[j] * ghn[j]);
            hb[j] = (1.0f - z[j]) * n[j] + z[j] * hp[j];
        }
    }
}

void gru_cell_backward(float *dgx, float *dgh, float *dh_carry, const float *dy,
                       const float *gates, const float *gh, const float *h_prev,
                       const int *len, int t, int B, int H)
{
    for (int b = 0; b < B; b++) {
        float *dc = dh_carry + (size_t)b * H;
        const float *d = dy ? dy + (size_t)b * H : NULL;
        float *dxr = dgx + (size_t)b * 3 * H, *dxz = dxr + H, *dxn = dxz + H;
        float *dhr = dgh + (size_t)b * 3 * H, *dhz = dhr + H, *dhn = dhz + H;
        if (!steps(len, t, b)) {
            if (d)
                for (int j = 0; j < H; j++) dc[j] += d[j];
            memset(dxr, 0, (size_t)3 * H * sizeof(float));
            memset(dhr, 0, (size_t)3 * H * sizeof(float));
            continue;
        }
        const float *r = gates + (size_t)b * 3 * H, *z = r + H, *n = z + H;
        const float *ghn = gh + (size_t)b * 3 * H + 2 * H, *hp = h_prev + (size_t)b * H;
        for (int j = 0; j < H; j++) {
            float dh = dc[j] + (d ? d[j] : 0.0f);
            float dan = dh * (1.0f - z[j]) * (1.0f - n[j] * n[j]);
            float dar = dan * ghn[j] * r[j] * (1.0f - r[j]);
            float daz = dh * (hp[j] - n[j]) * z[j] * (1.0f - z[j]);
            dxn[j] = dan;
            dhn[j] = dan * r[j];
            dxr[j] = dhr[j] = dar;
            dxz[j] = dhz[j] = daz;
            dc[j] = dh * z[j];
        }
    }
}

void lstm_cell_forward(float *h, float *c, float *gates, const float *h_prev,
                       const float *c_prev, const int *len, int t, int B, int H)
{
    for (int b = 0; b < B; b++) {
        float *hb = h + (size_t)b * H, *cb = c + (size_t)b * H;
        const float *hp = h_prev + (size_t)b * H, *cp = c_prev + (size_t)b * H;
        if (!steps(len, t, b)) {
            if (hb != hp) memcpy(hb, hp, (size_t)H * sizeof(float));
            if (cb != cp) memcpy(cb, cp, (size_t)H * sizeof(float));
            continue;
        }
        float *i = gates + (size_t)b * 4 * H, *f = i + H, *g = f + H, *o = g + H;
        for (int j = 0; j < H; j++) {
            i[j] = sigmoidf(i[j]);
            f[j] = sigmoidf(f[j]);
            g[j] = tanhf(g[j]);
            o[j] = sigmoidf(o[j]);
            cb[j] = f[j] * cp[j] + i[j] * g[j];
            hb[j] = o[j] * tanhf(cb[j]);
        }
    }
}

void lstm_cell_backward(float *dgates, float *dh_carry, float *dc_carry, const float *dy,
                        const float *gates, const float *c, const float *c_prev,
                        const int *len, int t, int B, int H)
{
    for (int b = 0; b < B; b++) {
        float *dhc = dh_carry + (size_t)b * H, *dcc = dc_carry + (size_t)b * H;
        const float *d = dy ? dy + (size_t)b * H : NULL;
        float *dai = dgates + (size_t)b * 4 * H, *daf = dai + H, *dag = daf + H, *dao = dag + H;
        if (!steps(len, t, b)) {
            if (d)
                for (int j = 0; j < H; j++) dhc[j] += d[j];
            memset(dai, 0, (size_t)4 * H * sizeof(float));
            continue;
        }
        const float *i = gates + (size_t)b * 4 * H, *f = i + H, *g = f + H, *o = g + H;
        const float *cb = c + (size_t)b * H, *cp = c_prev + (size_t)b * H;
        for (int j = 0; j < H; j++) {
            float dh = dhc[j] + (d ? d[j] : 0.0f);
            float tc = tanhf(cb[j]);
            float dc = dcc[j] + dh * o[j] * (1.0f - tc * tc);
            dai[j] = dc * g[j] * i[j] * (1.0f - i[j]);
            daf[j] = dc * cp[j] * f[j] * (1.0f - f[j]);
            dag[j] = dc * i[j] * (1.0f - g[j] * g[j]);
            dao[j] = dh * tc * o[j] * (1.0f - o[j]);
            dcc[j] = dc * f[j];
            dhc[j] = 0.0f;
        }
    }
}
