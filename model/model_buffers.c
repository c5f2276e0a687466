/* model_buffers.c: what the architectures (transformer.c, recurrent.c) hold alike: the trained
 * state, the token staging and the part of the memory plan that counts them. */
#include <math.h>
#include <string.h>

#include "common/common.h"
#include "model/model_internal.h"

void model_upload(const layer_backend *k, void *dst, const void *src, size_t bytes)
{
    k->copy(dst, bytes, src, bytes, bytes, 1, COPY_HOST_TO_DEVICE);
}

void model_download(const layer_backend *k, void *dst, const void *src, size_t bytes)
{
    k->copy(dst, bytes, src, bytes, bytes, 1, COPY_DEVICE_TO_HOST);
}

/* ---- the trained state ---- */

void model_state_create(model_state *s, const model_config *cfg, layer_backend *k, size_t np)
{
    memset(s, 0, sizeof *s);
    s->k = k;
    s->np = np;
    float **bufs[4] = {&s->params, &s->grads, &s->adam_m, &s->adam_v};
    for (int i = 0; i < 4; i++) {
        *bufs[i] = k->alloc((np > 0 ? np : 1) * sizeof(float));
        k->zero(*bufs[i], np);
    }
    model_views_bind(&s->P, cfg, s->params);
    model_views_bind(&s->G, cfg, s->grads);
}

void model_state_destroy(model_state *s)
{
    float *bufs[] = {s->params, s->grads, s->adam_m, s->adam_v};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) s->k->free(bufs[i]);
    model_views_free(&s->P);
    model_views_free(&s->G);
}

static float *state_buffer(const model_state *s, model_buffer which)
{
    switch (which) {
    case BUF_PARAMS: return s->params;
    case BUF_GRADS: return s->grads;
    case BUF_ADAM_M: return s->adam_m;
    case BUF_ADAM_V: return s->adam_v;
    }
    lawt_die("model: unknown buffer %d", (int)which);
}

void model_state_copy_out(const model_state *s, model_buffer which, float *dst)
{
    model_download(s->k, dst, state_buffer(s, which), s->np * sizeof(float));
}

void model_state_copy_in(model_state *s, model_buffer which, const float *src)
{
    model_upload(s->k, state_buffer(s, which), src, s->np * sizeof(float));
}

void model_state_zero_grad(model_state *s) { s->k->zero(s->grads, s->np); }

double model_state_grad_norm(const model_state *s)
{
    return sqrt(s->k->sumsq(s->k, s->grads, s->np));
}

void model_state_adam_step(model_state *s, const adam_hparams *hp, long step, float grad_scale)
{
    float ib1 = 1.0f / (float)(1.0 - pow((double)hp->beta1, (double)step));
    float ib2 = 1.0f / (float)(1.0 - pow((double)hp->beta2, (double)step));
    s->k->adam_update(s->params, s->adam_m, s->adam_v, s->grads, s->np, hp->lr, hp->beta1,
                      hp->beta2, hp->eps, ib1, ib2, grad_scale);
}

/* ---- the token staging ---- */

static void token_sizes(const model_config *c, int maxB, int Ls, int Lt, size_t *ints,
                        size_t *doubles, size_t *host_bytes)
{
    const size_t mb = (size_t)maxB, NS = mb * (size_t)Ls, NT = mb * (size_t)Lt;
    *ints = NS + mb + 2 * NT; /* src, src_len, dec_in, targets */
    *doubles = NT;            /* row_loss */
    *host_bytes = *ints * sizeof(int) + NT * sizeof(double) +
                  mb * (size_t)c->vocab_out * sizeof(float);
}

void model_tokens_create(model_tokens *t, const model_config *cfg, layer_backend *k, int maxB,
                         int Ls, int Lt)
{
    const size_t mb = (size_t)maxB, NS = mb * (size_t)Ls, NT = mb * (size_t)Lt;
    size_t ints, doubles, host_bytes;
    token_sizes(cfg, maxB, Ls, Lt, &ints, &doubles, &host_bytes);
    t->ints = k->alloc(ints * sizeof(int));
    t->d_src = t->ints;
    t->d_src_len = t->d_src + NS;
    t->d_dec_in = t->d_src_len + mb;
    t->d_targets = t->d_dec_in + NT;
    t->src = k->host_alloc(NS * sizeof(int));
    t->src_len = k->host_alloc(mb * sizeof(int));
    t->dec_in = k->host_alloc(NT * sizeof(int));
    t->targets = k->host_alloc(NT * sizeof(int));
    t->row_loss = k->alloc(doubles * sizeof(double));
    t->host_row_loss = k->host_alloc(NT * sizeof(double));
    t->host_prefix_logits = k->host_alloc(mb * (size_t)cfg->vocab_out * sizeof(float));
}

void model_tokens_destroy(model_tokens *t, layer_backend *k)
{
    k->free(t->ints);
    k->free(t->row_loss);
    void *host[] = {t->src, t->src_len, t->dec_in, t->targets, t->host_row_loss,
                    t->host_prefix_logits};
    for (size_t i = 0; i < sizeof host / sizeof *host; i++) k->host_free(host[i]);
}

/* ---- the memory plan ---- */

void model_memory_common(const model_config *cfg, const backend_sizes *bs, int max_batch,
                         size_t nparams, const act_sizes *sz, size_t act_floats,
                         model_memory *out)
{
    const int Ls = model_src_capacity(cfg), Lt = model_tgt_capacity(cfg);
    const size_t fs = sizeof(float), buf = (nparams > 0 ? nparams : 1) * fs;
    out->params = buf;
    out->grads = buf;
    out->adam = 2 * buf;
    out->embeddings = sz->embeddings * fs;
    out->enc_layer = sz->enc_layer * fs;
    out->dec_layer = sz->dec_layer * fs;
    out->enc_layers = sz->enc_layers * fs;
    out->dec_layers = sz->dec_layers * fs;
    out->attention = sz->attention * fs;
    out->logits = sz->logits * fs;
    out->backward = sz->backward * fs;
    out->activations = act_floats * fs;
    size_t ints, doubles, host_bytes;
    token_sizes(cfg, max_batch, Ls, Lt, &ints, &doubles, &host_bytes);
    out->tokens = ints * sizeof(int) + doubles * sizeof(double);
    out->host += host_bytes;
    size_t state_host;
    bs->state_bytes(cfg, max_batch, nparams, &out->backend_state, &state_host);
    out->host += state_host;
    out->workspace = bs->workspace_bytes;
}

void model_memory_total(model_memory *out)
{
    out->backend_total = out->params + out->grads + out->adam + out->activations + out->decode +
                         out->tokens + out->backend_state + out->workspace;
}
