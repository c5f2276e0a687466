/* recurrent.c: the LSTM and GRU encoder-decoders of the paper's Appendix E.1
 * (model.arch = lstm | gru), written once over a layer backend as transformer.c is, and driven
 * by model.c through the same transformer_ops table: same tokens, same "EOS tokens EOS"
 * framing, same loss, optimizer, decoding and checks.
 *
 *   encoder  x_t = E_in[src_t] (de);  L layers of cells of h units:
 *            h^l_t = cell(h^{l-1}_t, h^l_{t-1}), h^0_t = x_t, h^l_{-1} = 0 (and c^l_{-1} = 0).
 *            A source of n tokens stops stepping after its last token (padding leaves the
 *            state as it is), so that its final state does not depend on its batch.
 *   decoder  y_t = E_out[tgt_t] (dd);  L layers of the same cells, layer l starting from
 *            encoder layer l's final state (h, and c for the LSTM): the sequence-to-sequence
 *            model of Sutskever et al. (2014) and Cho et al. (2014), with no attention.
 *   output   logits_t = (h^L_t Wp^T + bp) E_out^T + out_bias: the top state projected to the
 *            decoder's embedding dimension, then the tied output projection.
 * The cells and their gates are recurrent_layers.h's; their matrix products are the backend's
 * linear layers: the input's for all steps at once, the state's step by step.
 *
 * Layout: time-major. Step t of the B examples of a batch is rows [t B, (t+1) B) of every
 * (T B, .) activation, so that each step's rows are contiguous for the products; tokens are
 * laid out so on the host. A layer keeps its states hs ((T+1) B, h): block 0 the initial
 * state, block t+1 the state after step t (the next layer's input); the LSTM its cells cs
 * likewise; gates (T B, g h): the activated gates of every step; the GRU gh (T B, 3h): the
 * state's products, which its candidate n reads through r.
 *
 * Backward runs each layer's steps last first, carrying the state's gradient (dh, and dc for
 * the LSTM) through time; the decoder layers' carried gradients at step 0 are the gradients of
 * the encoder's final states, where the encoder layers' backward starts. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "model/model_internal.h"

typedef struct {
    float *hs;    /* ((T+1) B, h) */
    float *cs;    /* ((T+1) B, h), LSTM; NULL for the GRU */
    float *gates; /* (T B, g h) */
    float *gh;    /* (T B, 3h), GRU; NULL for the LSTM */
} rnn_acts;

/* Decoding state for R rows: per layer the state h (R, h) (and c, LSTM), and their twins to
 * reorder beams into; one step's buffers. */
typedef struct {
    int R_cap, R, rows_per_src, S;
    int can_reorder;
    float *mem;
    float **h, **c, **h2, **c2;
    float *x, *gates, *gh, *proj, *logits;
    int *ints; /* backend: tokens, index (R each) */
    int *d_tokens, *d_index;
    int *index;         /* host (R) */
    float *host_logits; /* (R, vocab_out) */
} rnn_decode_state;

typedef struct {
    model_config cfg;
    layer_backend *k;
    int maxB, Ls, Lt;
    int lstm, H, gH; /* gH: g h, the width of a layer's gates */
    model_state st;

    float *act;
    float *enc_x, *dec_x; /* embeddings (Ls B, de), (Lt B, dd) */
    rnn_acts *enc, *dec;
    float *proj;           /* (Lt B, dd) */
    float *logits, *probs; /* (Lt B, V) each; backward turns probs into dlogits */
    /* backward: two buffers that alternate as the gradient of a layer's outputs and of its
     * inputs; the gates' gradients of every step (dgx) and of one step (dgh, GRU); the carried
     * state gradients; the decoder's initial-state gradients per layer; a row that collects
     * the "position" gradient of the backend's embedding_backward (the recurrent models have
     * no positions: it is never read) */
    float *dA, *dB, *dgx, *dgh, *dh, *dc, *dh0, *dc0, *dpos;

    model_tokens tok; /* time-major */
    int B, S, Tq, have_forward;

    rnn_decode_state ds;
} recurrent;

/* model.c holds the model as transformer_ops' opaque pointer (model_internal.h). */
static recurrent *rnn(transformer *t) { return (recurrent *)(void *)t; }
static const recurrent *crnn(const transformer *t) { return (const recurrent *)(const void *)t; }

/* ---- memory: the bump allocator of model_internal.h, run twice (size, then carve) ---- */

static size_t max3(size_t a, size_t b, size_t c)
{
    size_t m = a > b ? a : b;
    return m > c ? m : c;
}

static void take_layer(bump *b, rnn_acts *a, int lstm, size_t B, size_t T, size_t H, size_t gH)
{
    a->hs = bump_take(b, (T + 1) * B * H);
    a->cs = lstm ? bump_take(b, (T + 1) * B * H) : NULL;
    a->gates = bump_take(b, T * B * gH);
    a->gh = lstm ? NULL : bump_take(b, T * B * gH);
}

/* The activation buffer for maxB examples, sources of Ls tokens and targets of Lt; views
 * into r (when not NULL) and b->base (sizes only when it is NULL). */
static void carve(const model_config *c, int maxB, int Ls, int Lt, rnn_acts *enc, rnn_acts *dec,
                  recurrent *r, bump *b, act_sizes *sz)
{
    const int lstm = c->arch == ARCH_LSTM;
    const size_t B = (size_t)maxB, NS = B * (size_t)Ls, NT = B * (size_t)Lt;
    const size_t de = (size_t)c->enc_dim, dd = (size_t)c->dec_dim, V = (size_t)c->vocab_out;
    const size_t H = (size_t)c->rnn_hidden, gH = (lstm ? 4 : 3) * H, L = (size_t)c->rnn_layers;
    size_t mark = b->off;
    float *enc_x = bump_take(b, NS * de), *dec_x = bump_take(b, NT * dd);
    sz->embeddings = b->off - mark;
    mark = b->off;
    for (size_t l = 0; l < L; l++) {
        take_layer(b, &enc[l], lstm, B, (size_t)Ls, H, gH);
        if (l == 0) sz->enc_layer = b->off - mark;
    }
    sz->enc_layers = b->off - mark;
    mark = b->off;
    for (size_t l = 0; l < L; l++) {
        take_layer(b, &dec[l], lstm, B, (size_t)Lt, H, gH);
        if (l == 0) sz->dec_layer = b->off - mark;
    }
    sz->dec_layers = b->off - mark;
    mark = b->off;
    float *proj = bump_take(b, NT * dd), *logits = bump_take(b, NT * V), *probs = bump_take(b, NT * V);
    sz->logits = b->off - mark;
    mark = b->off;
    const size_t rows = NS > NT ? NS : NT, width = max3(de, dd, H);
    float *dA = bump_take(b, rows * width), *dB = bump_take(b, rows * width), *dgx = bump_take(b, rows * gH);
    float *dgh = lstm ? NULL : bump_take(b, B * gH);
    float *dh = bump_take(b, B * H), *dc = lstm ? bump_take(b, B * H) : NULL;
    float *dh0 = bump_take(b, L * B * H), *dc0 = lstm ? bump_take(b, L * B * H) : NULL;
    float *dpos = bump_take(b, de > dd ? de : dd);
    sz->backward = b->off - mark;
    if (r) {
        r->enc_x = enc_x;
        r->dec_x = dec_x;
        r->proj = proj;
        r->logits = logits;
        r->probs = probs;
        r->dA = dA;
        r->dB = dB;
        r->dgx = dgx;
        r->dgh = dgh;
        r->dh = dh;
        r->dc = dc;
        r->dh0 = dh0;
        r->dc0 = dc0;
        r->dpos = dpos;
    }
}

static void device_copy(const recurrent *r, float *dst, const float *src, size_t n)
{
    r->k->copy(dst, n * sizeof(float), src, n * sizeof(float), n * sizeof(float), 1,
               COPY_DEVICE_TO_DEVICE);
}

transformer *recurrent_create(const model_config *cfg, layer_backend *k, int max_batch,
                              size_t nparams)
{
    const int lstm = cfg->arch == ARCH_LSTM;
    recurrent *r = lawt_calloc(1, sizeof *r);
    r->cfg = *cfg;
    r->k = k;
    r->maxB = max_batch;
    r->Ls = model_src_capacity(cfg);
    r->Lt = model_tgt_capacity(cfg);
    r->lstm = lstm;
    r->H = cfg->rnn_hidden;
    r->gH = (lstm ? 4 : 3) * cfg->rnn_hidden;
    model_state_create(&r->st, cfg, k, nparams);
    r->enc = lawt_calloc((size_t)cfg->rnn_layers, sizeof *r->enc);
    r->dec = lawt_calloc((size_t)cfg->rnn_layers, sizeof *r->dec);
    act_sizes sz = {0};
    bump b = {.align = k->align_floats};
    carve(cfg, max_batch, r->Ls, r->Lt, r->enc, r->dec, NULL, &b, &sz);
    r->act = k->alloc(b.off * sizeof(float));
    b = (bump){.base = r->act, .align = k->align_floats};
    carve(cfg, max_batch, r->Ls, r->Lt, r->enc, r->dec, r, &b, &sz);

    model_tokens_create(&r->tok, cfg, k, max_batch, r->Ls, r->Lt);
    return (transformer *)(void *)r;
}

static void decode_free(const layer_backend *k, rnn_decode_state *ds)
{
    if (ds->mem) k->free(ds->mem);
    if (ds->ints) k->free(ds->ints);
    free(ds->h);
    free(ds->c);
    free(ds->h2);
    free(ds->c2);
    free(ds->index);
    if (ds->host_logits) k->host_free(ds->host_logits);
    memset(ds, 0, sizeof *ds);
}

static void rnn_destroy(transformer *t)
{
    recurrent *r = rnn(t);
    layer_backend *k = r->k;
    decode_free(k, &r->ds);
    model_state_destroy(&r->st);
    k->free(r->act);
    model_tokens_destroy(&r->tok, k);
    free(r->enc);
    free(r->dec);
    k->destroy(k);
    free(r);
}

static void rnn_copy_out(const transformer *t, model_buffer which, float *dst)
{
    model_state_copy_out(&crnn(t)->st, which, dst);
}

static void rnn_copy_in(transformer *t, model_buffer which, const float *src)
{
    model_state_copy_in(&rnn(t)->st, which, src);
}

static float *rnn_grads(transformer *t) { return rnn(t)->st.grads; }

static void rnn_zero_grad(transformer *t) { model_state_zero_grad(&rnn(t)->st); }

/* ---- one layer over T steps, forward beside backward ---- */

/* x (T B, in): the layer's input; a->hs block 0 (and a->cs's) holds the initial state.
 *   gates = x W_ih^T + b_ih for every step; then per step t, h_prev = block t:
 *   GRU   gh_t = h_prev W_hh^T + b_hh;  block t+1 = gru(gates_t, gh_t, h_prev)
 *   LSTM  gates_t += h_prev W_hh^T + b_hh;  block t+1 = lstm(gates_t, h_prev, c_prev) */
static void layer_forward(recurrent *r, rnn_acts *a, const float *x, int in,
                          const rnn_layer_views *p, const int *len, int T, int B)
{
    layer_backend *k = r->k;
    const int H = r->H, gH = r->gH;
    const size_t blk = (size_t)B * H, gblk = (size_t)B * gH;
    k->linear_forward(k, a->gates, x, p->w_ih, p->b_ih, NULL, T * B, in, gH);
    for (int t = 0; t < T; t++) {
        const float *hp = a->hs + t * blk;
        float *gt = a->gates + t * gblk;
        if (r->lstm) {
            k->linear_forward(k, gt, hp, p->w_hh, p->b_hh, gt, B, H, gH);
            k->lstm_cell_forward(a->hs + (t + 1) * blk, a->cs + (t + 1) * blk, gt, hp,
                                 a->cs + t * blk, len, t, B, H);
        } else {
            float *ght = a->gh + t * gblk;
            k->linear_forward(k, ght, hp, p->w_hh, p->b_hh, NULL, B, H, gH);
            k->gru_cell_forward(a->hs + (t + 1) * blk, gt, ght, hp, len, t, B, H);
        }
    }
}

/* dy (T B, H): the gradient of the layer's outputs (blocks 1..T), or NULL (none); r->dh (and
 * r->dc) on entry: the gradient of the final state (block T), on exit: of the initial state.
 * Writes dx (T B, in), the gradient of x; accumulates the layer's parameter gradients g. */
static void layer_backward(recurrent *r, float *dx, const rnn_acts *a, const float *x, int in,
                           const rnn_layer_views *p, const rnn_layer_views *g, const float *dy,
                           const int *len, int T, int B)
{
    layer_backend *k = r->k;
    const int H = r->H, gH = r->gH;
    const size_t blk = (size_t)B * H, gblk = (size_t)B * gH;
    for (int t = T - 1; t >= 0; t--) {
        const float *hp = a->hs + t * blk, *dyt = dy ? dy + t * blk : NULL;
        float *dgt = r->dgx + t * gblk;
        if (r->lstm) {
            k->lstm_cell_backward(dgt, r->dh, r->dc, dyt, a->gates + t * gblk,
                                  a->cs + (t + 1) * blk, a->cs + t * blk, len, t, B, H);
            k->linear_backward(k, r->dh, g->w_hh, g->b_hh, dgt, hp, p->w_hh, B, H, gH, 1);
        } else {
            k->gru_cell_backward(dgt, r->dgh, r->dh, dyt, a->gates + t * gblk, a->gh + t * gblk,
                                 hp, len, t, B, H);
            k->linear_backward(k, r->dh, g->w_hh, g->b_hh, r->dgh, hp, p->w_hh, B, H, gH, 1);
        }
    }
    k->linear_backward(k, dx, g->w_ih, g->b_ih, r->dgx, x, p->w_ih, T * B, in, gH, 0);
}

/* ---- forward ---- */

/* The input of layer l of a side: the embeddings for the first, else the states of the one
 * below (blocks 1..T). */
static const float *layer_input(const recurrent *r, const rnn_acts *side, const float *emb,
                                int l, int B)
{
    return l ? side[l - 1].hs + (size_t)B * r->H : emb;
}

/* Encoder over d_src (S B, time-major) with d_src_len (B), as uploaded. */
static void encoder_forward(recurrent *r, int B, int S)
{
    layer_backend *k = r->k;
    const model_config *c = &r->cfg;
    k->gather_rows(r->enc_x, r->st.P.enc_tok, r->tok.d_src, S * B, c->enc_dim, c->enc_dim);
    for (int l = 0; l < c->rnn_layers; l++) {
        rnn_acts *a = &r->enc[l];
        k->zero(a->hs, (size_t)B * r->H);
        if (r->lstm) k->zero(a->cs, (size_t)B * r->H);
        layer_forward(r, a, layer_input(r, r->enc, r->enc_x, l, B), l ? r->H : c->enc_dim,
                      &r->st.P.enc_rnn[l], r->tok.d_src_len, S, B);
    }
}

/* Decoder over d_dec_in (Tq B, time-major) from the final states of the last encoder_forward
 * (B sources of S steps); logits (Tq B, V) into r->logits. */
static void decoder_forward(recurrent *r, int B, int Tq, int S)
{
    layer_backend *k = r->k;
    const model_config *c = &r->cfg;
    const size_t blk = (size_t)B * r->H;
    const int M = B * Tq;
    k->gather_rows(r->dec_x, r->st.P.dec_tok, r->tok.d_dec_in, M, c->dec_dim, c->dec_dim);
    for (int l = 0; l < c->rnn_layers; l++) {
        rnn_acts *a = &r->dec[l];
        device_copy(r, a->hs, r->enc[l].hs + (size_t)S * blk, blk);
        if (r->lstm) device_copy(r, a->cs, r->enc[l].cs + (size_t)S * blk, blk);
        layer_forward(r, a, layer_input(r, r->dec, r->dec_x, l, B), l ? r->H : c->dec_dim,
                      &r->st.P.dec_rnn[l], NULL, Tq, B);
    }
    const float *top = r->dec[c->rnn_layers - 1].hs + blk;
    k->linear_forward(k, r->proj, top, r->st.P.proj_w, r->st.P.proj_b, NULL, M, r->H, c->dec_dim);
    k->linear_forward(k, r->logits, r->proj, r->st.P.dec_tok, r->st.P.out_bias, NULL, M, c->dec_dim,
                      c->vocab_out);
}

/* The sources (B, S) time-major into r->tok.src (S B); with reverse_source each one's tokens in
 * reverse order, its padding still last (Sutskever et al. 2014). */
static void sources_time_major(recurrent *r, const int *src, const int *src_len, int B, int S)
{
    const int reverse = r->cfg.rnn_reverse_source;
    for (int b = 0; b < B; b++)
        for (int s = 0; s < S; s++) {
            int from = reverse && s < src_len[b] ? src_len[b] - 1 - s : s;
            r->tok.src[s * B + b] = src[(size_t)b * S + from];
        }
}

static double rnn_forward(transformer *t, const model_batch *bt, long *ntokens)
{
    recurrent *r = rnn(t);
    const int B = bt->B, S = bt->S, T = bt->T, Tq = T - 1;
    sources_time_major(r, bt->src, bt->src_len, B, S);
    memcpy(r->tok.src_len, bt->src_len, (size_t)B * sizeof(int));
    long nt = 0;
    for (int s = 0; s < Tq; s++) {
        for (int b = 0; b < B; b++) {
            r->tok.dec_in[s * B + b] = bt->tgt[(size_t)b * T + s];
            int counted = s + 1 < bt->tgt_len[b];
            r->tok.targets[s * B + b] = counted ? bt->tgt[(size_t)b * T + s + 1] : -1;
            nt += counted;
        }
    }
    model_upload(r->k, r->tok.d_src, r->tok.src, (size_t)B * S * sizeof(int));
    model_upload(r->k, r->tok.d_src_len, r->tok.src_len, (size_t)B * sizeof(int));
    model_upload(r->k, r->tok.d_dec_in, r->tok.dec_in, (size_t)B * Tq * sizeof(int));
    model_upload(r->k, r->tok.d_targets, r->tok.targets, (size_t)B * Tq * sizeof(int));
    encoder_forward(r, B, S);
    decoder_forward(r, B, Tq, S);
    double loss = r->k->crossentropy_forward(r->probs, r->tok.row_loss, r->logits, r->tok.d_targets,
                                             B * Tq, r->cfg.vocab_out, r->tok.host_row_loss);
    r->B = B;
    r->S = S;
    r->Tq = Tq;
    r->have_forward = 1;
    *ntokens = nt;
    return loss;
}

/* (B, Tq, V) from the time-major (Tq B, V). */
static void rnn_copy_logits(const transformer *t, float *dst)
{
    const recurrent *r = crnn(t);
    if (!r->have_forward) lawt_die("model: copy_logits before any forward");
    const size_t V = (size_t)r->cfg.vocab_out, fs = sizeof(float);
    for (int s = 0; s < r->Tq; s++)
        r->k->copy(dst + s * V, (size_t)r->Tq * V * fs, r->logits + (size_t)s * r->B * V, V * fs,
                   V * fs, (size_t)r->B, COPY_DEVICE_TO_HOST);
}

/* ---- backward ---- */

static void rnn_backward(transformer *t, const model_batch *bt, float loss_scale)
{
    recurrent *r = rnn(t);
    const model_config *c = &r->cfg;
    layer_backend *k = r->k;
    if (!r->have_forward || bt->B != r->B || bt->S != r->S || bt->T - 1 != r->Tq)
        lawt_die("model: backward needs the forward of the same batch just before");
    const int B = r->B, S = r->S, Tq = r->Tq, M = B * Tq, N = B * S, L = c->rnn_layers;
    const int dd = c->dec_dim, de = c->enc_dim, V = c->vocab_out, H = r->H;
    const size_t blk = (size_t)B * H;
    const model_views *P = &r->st.P, *G = &r->st.G;
    if (k->embedding_backward_prepare) {
        k->embedding_backward_prepare(k, EMB_DEC, r->tok.dec_in, M, V);
        k->embedding_backward_prepare(k, EMB_ENC, r->tok.src, N, c->vocab_in);
    }
    /* the loss, the tied output projection and the projection of the top state */
    k->crossentropy_backward(r->probs, r->tok.d_targets, loss_scale, M, V);
    k->linear_backward(k, r->dA, G->dec_tok, G->out_bias, r->probs, r->proj, P->dec_tok, M, dd,
                       V, 0);
    k->linear_backward(k, r->dB, G->proj_w, G->proj_b, r->dA, r->dec[L - 1].hs + blk, P->proj_w,
                       M, H, dd, 0);

    /* decoder layers, last first: dy the gradient of the layer's outputs, dx of its inputs */
    float *dy = r->dB, *dx = r->dA;
    for (int l = L - 1; l >= 0; l--) {
        k->zero(r->dh, blk);
        if (r->lstm) k->zero(r->dc, blk);
        layer_backward(r, dx, &r->dec[l], layer_input(r, r->dec, r->dec_x, l, B), l ? H : dd,
                       &P->dec_rnn[l], &G->dec_rnn[l], dy, NULL, Tq, B);
        device_copy(r, r->dh0 + l * blk, r->dh, blk);
        if (r->lstm) device_copy(r, r->dc0 + l * blk, r->dc, blk);
        float *sw = dy;
        dy = dx;
        dx = sw;
    }
    k->embedding_backward(k, EMB_DEC, G->dec_tok, r->dpos, dy, r->tok.d_dec_in, M, 1, dd, V);

    /* encoder layers, last first, from the gradients of their final states */
    const float *edy = NULL;
    dx = r->dA;
    for (int l = L - 1; l >= 0; l--) {
        device_copy(r, r->dh, r->dh0 + l * blk, blk);
        if (r->lstm) device_copy(r, r->dc, r->dc0 + l * blk, blk);
        layer_backward(r, dx, &r->enc[l], layer_input(r, r->enc, r->enc_x, l, B), l ? H : de,
                       &P->enc_rnn[l], &G->enc_rnn[l], edy, r->tok.d_src_len, S, B);
        edy = dx;
        dx = dx == r->dA ? r->dB : r->dA;
    }
    k->embedding_backward(k, EMB_ENC, G->enc_tok, r->dpos, edy, r->tok.d_src, N, 1, de,
                          c->vocab_in);
    r->have_forward = 0; /* probs now hold dlogits */
}

/* ---- optimizer ---- */

static double rnn_grad_norm(const transformer *t) { return model_state_grad_norm(&crnn(t)->st); }

static void rnn_adam_step(transformer *t, const adam_hparams *hp, long step, float grad_scale)
{
    model_state_adam_step(&rnn(t)->st, hp, step, grad_scale);
}

/* ---- decoding: the state is all a step needs (no cache) ---- */

static void decode_layout(const model_config *c, bump *b, rnn_decode_state *ds, size_t R,
                          int reorder)
{
    const int lstm = c->arch == ARCH_LSTM;
    const size_t H = (size_t)c->rnn_hidden, gH = (lstm ? 4 : 3) * H, dd = (size_t)c->dec_dim;
    for (int l = 0; l < c->rnn_layers; l++) {
        ds->h[l] = bump_take(b, R * H);
        ds->c[l] = lstm ? bump_take(b, R * H) : NULL;
        ds->h2[l] = reorder ? bump_take(b, R * H) : NULL;
        ds->c2[l] = reorder && lstm ? bump_take(b, R * H) : NULL;
    }
    ds->x = bump_take(b, R * dd);
    ds->gates = bump_take(b, R * gH);
    ds->gh = lstm ? NULL : bump_take(b, R * gH);
    ds->proj = bump_take(b, R * dd);
    ds->logits = bump_take(b, R * (size_t)c->vocab_out);
}

static void decode_views_alloc(rnn_decode_state *ds, int layers)
{
    ds->h = lawt_calloc((size_t)layers, sizeof(float *));
    ds->c = lawt_calloc((size_t)layers, sizeof(float *));
    ds->h2 = lawt_calloc((size_t)layers, sizeof(float *));
    ds->c2 = lawt_calloc((size_t)layers, sizeof(float *));
}

static void decode_alloc(recurrent *r, int R, int reorder)
{
    rnn_decode_state *ds = &r->ds;
    layer_backend *k = r->k;
    if (R <= ds->R_cap && (ds->can_reorder || !reorder)) return;
    decode_free(k, ds);
    const model_config *c = &r->cfg;
    decode_views_alloc(ds, c->rnn_layers);
    bump b = {.align = k->align_floats};
    decode_layout(c, &b, ds, (size_t)R, reorder);
    ds->mem = k->alloc(b.off * sizeof(float));
    b = (bump){.base = ds->mem, .align = k->align_floats};
    decode_layout(c, &b, ds, (size_t)R, reorder);
    ds->can_reorder = reorder;
    ds->ints = k->alloc(2 * (size_t)R * sizeof(int));
    ds->d_tokens = ds->ints;
    ds->d_index = ds->ints + R;
    ds->index = lawt_malloc((size_t)R * sizeof(int));
    ds->host_logits = k->host_alloc((size_t)R * (size_t)c->vocab_out * sizeof(float));
    ds->R_cap = R;
}

/* Encodes src (B, S) and starts R = B rows_per_src decoder rows from the final states of
 * source r / rows_per_src. */
static void rnn_decode_begin(transformer *t, const int *src, const int *src_len, int B, int S,
                             int rows_per_src)
{
    recurrent *r = rnn(t);
    layer_backend *k = r->k;
    const int R = B * rows_per_src, H = r->H;
    decode_alloc(r, R, rows_per_src > 1);
    rnn_decode_state *ds = &r->ds;
    ds->R = R;
    ds->rows_per_src = rows_per_src;
    ds->S = S;
    sources_time_major(r, src, src_len, B, S);
    memcpy(r->tok.src_len, src_len, (size_t)B * sizeof(int));
    model_upload(r->k, r->tok.d_src, r->tok.src, (size_t)B * S * sizeof(int));
    model_upload(r->k, r->tok.d_src_len, r->tok.src_len, (size_t)B * sizeof(int));
    r->have_forward = 0;
    encoder_forward(r, B, S);
    r->B = B;
    r->S = S;
    for (int i = 0; i < R; i++) ds->index[i] = i / rows_per_src;
    model_upload(r->k, ds->d_index, ds->index, (size_t)R * sizeof(int));
    const size_t last = (size_t)S * B * H;
    for (int l = 0; l < r->cfg.rnn_layers; l++) {
        k->gather_rows(ds->h[l], r->enc[l].hs + last, ds->d_index, R, H, H);
        if (r->lstm) k->gather_rows(ds->c[l], r->enc[l].cs + last, ds->d_index, R, H, H);
    }
}

/* One step of the R rows on tokens (R): each layer's state moves on in place. */
static const float *rnn_decode_step(transformer *t, const int *tokens, int step)
{
    (void)step; /* no positions: the state is the history */
    recurrent *r = rnn(t);
    layer_backend *k = r->k;
    rnn_decode_state *ds = &r->ds;
    const model_config *c = &r->cfg;
    const int R = ds->R, H = r->H, gH = r->gH, dd = c->dec_dim;
    model_upload(r->k, ds->d_tokens, tokens, (size_t)R * sizeof(int));
    k->gather_rows(ds->x, r->st.P.dec_tok, ds->d_tokens, R, dd, dd);
    const float *in = ds->x;
    for (int l = 0; l < c->rnn_layers; l++) {
        const rnn_layer_views *p = &r->st.P.dec_rnn[l];
        k->linear_forward(k, ds->gates, in, p->w_ih, p->b_ih, NULL, R, l ? H : dd, gH);
        if (r->lstm) {
            k->linear_forward(k, ds->gates, ds->h[l], p->w_hh, p->b_hh, ds->gates, R, H, gH);
            k->lstm_cell_forward(ds->h[l], ds->c[l], ds->gates, ds->h[l], ds->c[l], NULL, 0, R,
                                 H);
        } else {
            k->linear_forward(k, ds->gh, ds->h[l], p->w_hh, p->b_hh, NULL, R, H, gH);
            k->gru_cell_forward(ds->h[l], ds->gates, ds->gh, ds->h[l], NULL, 0, R, H);
        }
        in = ds->h[l];
    }
    k->linear_forward(k, ds->proj, in, r->st.P.proj_w, r->st.P.proj_b, NULL, R, H, dd);
    k->linear_forward(k, ds->logits, ds->proj, r->st.P.dec_tok, r->st.P.out_bias, NULL, R, dd,
                      c->vocab_out);
    model_download(r->k, ds->host_logits, ds->logits, (size_t)R * c->vocab_out * sizeof(float));
    return ds->host_logits;
}

static void rnn_decode_reorder(transformer *t, const int *parent, int step)
{
    (void)step;
    recurrent *r = rnn(t);
    rnn_decode_state *ds = &r->ds;
    layer_backend *k = r->k;
    if (!ds->can_reorder)
        lawt_die("model: decode_reorder needs a decode_begin of several rows a source");
    model_upload(r->k, ds->d_index, parent, (size_t)ds->R * sizeof(int));
    for (int l = 0; l < r->cfg.rnn_layers; l++) {
        k->gather_rows(ds->h2[l], ds->h[l], ds->d_index, ds->R, r->H, r->H);
        float *sw = ds->h[l];
        ds->h[l] = ds->h2[l];
        ds->h2[l] = sw;
        if (!r->lstm) continue;
        k->gather_rows(ds->c2[l], ds->c[l], ds->d_index, ds->R, r->H, r->H);
        sw = ds->c[l];
        ds->c[l] = ds->c2[l];
        ds->c2[l] = sw;
    }
}

/* The whole decoder on prefix (R, t + 1) from the encoder's final states: the oracle of the
 * stepwise decoding. */
static const float *rnn_decode_prefix(transformer *tr, const int *prefix, int t)
{
    recurrent *r = rnn(tr);
    rnn_decode_state *ds = &r->ds;
    if (ds->rows_per_src != 1) lawt_die("model: decode_prefix needs one row per source");
    const int B = ds->R, Tq = t + 1, V = r->cfg.vocab_out;
    for (int s = 0; s < Tq; s++)
        for (int b = 0; b < B; b++) r->tok.dec_in[s * B + b] = prefix[(size_t)b * Tq + s];
    model_upload(r->k, r->tok.d_dec_in, r->tok.dec_in, (size_t)B * Tq * sizeof(int));
    decoder_forward(r, B, Tq, ds->S);
    model_download(r->k, r->tok.host_prefix_logits, r->logits + (size_t)t * B * V,
             (size_t)B * V * sizeof(float));
    return r->tok.host_prefix_logits;
}

/* ---- the memory plan: the walks above, sizes only ---- */

void recurrent_memory_plan(const model_config *cfg, const backend_sizes *bs, int max_batch,
                           size_t nparams, int beam, model_memory *out)
{
    memset(out, 0, sizeof *out);
    const int Ls = model_src_capacity(cfg), Lt = model_tgt_capacity(cfg);
    const size_t fs = sizeof(float);
    rnn_acts *enc = lawt_calloc((size_t)cfg->rnn_layers, sizeof *enc);
    rnn_acts *dec = lawt_calloc((size_t)cfg->rnn_layers, sizeof *dec);
    act_sizes sz = {0};
    bump b = {.align = bs->align_floats};
    carve(cfg, max_batch, Ls, Lt, enc, dec, NULL, &b, &sz);
    free(enc);
    free(dec);
    model_memory_common(cfg, bs, max_batch, nparams, &sz, b.off, out);
    if (beam > 0) {
        const size_t R = (size_t)max_batch * (size_t)beam;
        rnn_decode_state ds = {0};
        decode_views_alloc(&ds, cfg->rnn_layers);
        b = (bump){.align = bs->align_floats};
        decode_layout(cfg, &b, &ds, R, beam > 1);
        out->decode = b.off * fs + 2 * R * sizeof(int);
        out->host += R * (size_t)cfg->vocab_out * fs;
        free(ds.h);
        free(ds.c);
        free(ds.h2);
        free(ds.c2);
    }
    model_memory_total(out);
}

const transformer_ops recurrent_model_ops = {
    .destroy = rnn_destroy,
    .copy_out = rnn_copy_out,
    .copy_in = rnn_copy_in,
    .grads = rnn_grads,
    .zero_grad = rnn_zero_grad,
    .forward = rnn_forward,
    .backward = rnn_backward,
    .copy_logits = rnn_copy_logits,
    .grad_norm = rnn_grad_norm,
    .adam_step = rnn_adam_step,
    .decode_begin = rnn_decode_begin,
    .decode_step = rnn_decode_step,
    .decode_reorder = rnn_decode_reorder,
    .decode_prefix = rnn_decode_prefix,
};
