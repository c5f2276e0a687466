/* layers.h: the layers of the transformer as plain forward/backward function pairs on float
 * buffers, in the style of llm.c. Shapes are in the signatures; every tensor is row-major and
 * contiguous unless a leading dimension (ld*) says otherwise. N is a number of token rows
 * (batch x positions), C an input width, OC an output width.
 *
 * Conventions, for every pair:
 *   forward:  outputs are overwritten.
 *   backward: parameter gradients (dweight, dbias, ...) are ACCUMULATED (+=), so that a step
 *             can sum several batches; input gradients (dinp) are overwritten unless the
 *             function takes an `accumulate` flag and it is set (then dinp +=).
 * These functions are the CPU reference that the CUDA backend is tested against, layer by
 * layer; tests/test_model_layers.c checks each backward against finite differences. */
#ifndef LAWT_MODEL_LAYERS_H
#define LAWT_MODEL_LAYERS_H

/* The paper's code (XLM's transformer) uses 1e-12. */
#define LAYERNORM_EPS 1e-12f

/* out[b,t,:] = tok_emb[tokens[b,t], :] + pos_emb[t, :]
 * out (B, T, C); tokens (B, T); tok_emb (V, C); pos_emb (>= T, C). */
void embedding_forward(float *out, const int *tokens, const float *tok_emb, const float *pos_emb,
                       int B, int T, int C);
/* dtok_emb[tokens[b,t], :] += dout[b,t,:];  dpos_emb[t, :] += dout[b,t,:] */
void embedding_backward(float *dtok_emb, float *dpos_emb, const float *dout, const int *tokens,
                        int B, int T, int C);

/* Per row n: mu = mean(x), rstd = 1 / sqrt(var(x) + eps) (biased variance),
 *   out = (x - mu) * rstd * weight + bias.
 * out, inp (N, C); mean, rstd (N) are saved for backward; weight, bias (C). */
void layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                       const float *weight, const float *bias, int N, int C);
/* With xhat = (x - mu) * rstd and g = dout * weight:
 *   dinp = rstd * (g - mean(g) - xhat * mean(g * xhat));
 *   dweight += sum_n dout * xhat;  dbias += sum_n dout.
 * dinp must not alias dout. */
void layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                        const float *inp, const float *weight, const float *mean,
                        const float *rstd, int N, int C);

/* out = residual + inp weight^T + bias     (one sgemm; weight is (OC, C) as in PyTorch)
 * out (N, OC); inp (N, C); weight (OC, C); bias (OC) or NULL; residual (N, OC) or NULL
 * (residual may be out itself). */
void linear_forward(float *out, const float *inp, const float *weight, const float *bias,
                    const float *residual, int N, int C, int OC);
/* dinp (=, or += when accumulate) dout weight;  dweight += dout^T inp;  dbias += sum_n dout.
 * dinp (N, C) may be NULL (not needed); dout (N, OC); dbias may be NULL. */
void linear_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                     const float *inp, const float *weight, int N, int C, int OC,
                     int accumulate);

/* out = max(inp, 0), in place allowed; n elements. */
void relu_forward(float *out, const float *inp, long n);
/* dinp = dout * (out > 0); dinp may alias dout. */
void relu_backward(float *dinp, const float *dout, const float *out, long n);

/* Multi-head scaled dot-product attention, H heads of D = C / H dimensions.
 *   q: (B, T, ldq) rows, head h in columns [h*D, (h+1)*D);  k, v: (B, S, ldkv) rows likewise.
 *   For query t and key s of sequence b, head h:
 *     att[b,h,t,s] = softmax_s( q[b,t,h] . k[b,s,h] / sqrt(D) ) over the unmasked keys,
 *                    0 for masked ones;
 *     out[b,t,h*D + c] = sum_s att[b,h,t,s] v[b,s,h*D + c].
 *   Key s is masked when s >= key_len[b] (key_len NULL: no padding mask) or, when causal,
 *   when s > t. Every query row keeps at least key 0, so padded query rows stay finite.
 * out (B, T, C); att (B, H, T, S) saved for backward; scratch: attention_scratch_floats().
 * The (b, h) pairs run in parallel (parallel.h). */
void attention_forward(float *out, float *att, float *scratch, const float *q, const float *k,
                       const float *v, int ldq, int ldkv, const int *key_len, int causal,
                       int B, int T, int S, int H, int D);
/* dv[s] = sum_t att[t,s] dout[t];  datt[t,s] = dout[t] . v[s];
 * dlogit[t,s] = att[t,s] (datt[t,s] - sum_s' att[t,s'] datt[t,s']) / sqrt(D);
 * dq[t] = sum_s dlogit[t,s] k[s];  dk[s] = sum_t dlogit[t,s] q[t]   (per b, h).
 * dq has rows of stride ldq, dk and dv of stride ldkv (they may interleave with dq in one
 * buffer, as q, k, v do); all three are overwritten, masked keys get 0. */
void attention_backward(float *dq, float *dk, float *dv, float *scratch, const float *dout,
                        const float *att, const float *q, const float *k, const float *v,
                        int ldq, int ldkv, const int *key_len, int causal, int B, int T,
                        int S, int H, int D);
/* Scratch floats for any call with at most T queries, S keys, D head dimensions. */
long attention_scratch_floats(int T, int S, int D);

/* Softmax + cross-entropy, fused. Rows with target < 0 are ignored.
 *   probs[n,:] = softmax(logits[n,:]);  row_loss[n] = -log probs[n, target[n]] (0 if ignored);
 *   returns sum_n row_loss[n], summed in row order (double).
 * logits, probs (N, V); row_loss (N); probs rows of ignored targets are left untouched. */
double crossentropy_forward(float *probs, double *row_loss, const float *logits,
                            const int *targets, int N, int V);
/* In place over probs: dlogits[n,:] = scale * (probs[n,:] - onehot(target[n])), and 0 for
 * ignored rows. */
void crossentropy_backward(float *dlogits_probs, const int *targets, float scale, int N, int V);

/* ---- the loops of a universal transformer (model.h, MODEL_LOOP_MODES) ---- */

/* Copy gate (Csordas et al. 2021), element by element over n = N x C values:
 *   g = sigmoid(z);  out = g y + (1 - g) x
 * gate (n) holds z = x W_g^T + b_g on entry and g on return (backward reads it); y (n) is the
 * shared layer's output, x (n) its input; out may alias y or x. */
void copy_gate_forward(float *out, float *gate, const float *y, const float *x, long n);
/* dy = g dout;  dz = dout (y - x) g (1 - g)       (each written when not NULL)
 * dx += (1 - g) dout                              (when not NULL)
 * dx accumulates the skip path's share into the gradient the layer's own backward wrote, so a
 * caller takes dy (and dz) first, runs the layer's backward, then adds dx with a second call. */
void copy_gate_backward(float *dz, float *dy, float *dx, const float *dout, const float *gate,
                        const float *y, const float *x, long n);

/* Adaptive computation time (Graves 2016) over L iterations of N positions, each position on
 * its own (i counts iterations from 0):
 *   p[i] = sigmoid(halt[i])       halt (L, N) holds the halting unit's logits on entry and the
 *                                 probabilities p on return;
 *   n = the first i with p[0] + .. + p[i] >= threshold (sums in float, in order), or L - 1;
 *   R = 1 - (p[0] + .. + p[n-1]);
 *   weight[i] = p[i] for i < n, R for i = n, 0 for i > n;   weight (L, N)
 *   ponder = (n + 1) + R                                     ponder (N): Graves' N + R. */
void act_halting_forward(float *weight, float *ponder, float *halt, float threshold, int L,
                         int N);
/* The halting decisions n are piecewise constant (their derivative is 0 almost everywhere), so
 * with dweight (L, N) the gradient of the loss in the weights and ponder_scale * mask[r] that
 * in ponder[r] (mask (N), 1 for a counted position, 0 for padding):
 *   dp[i] = dweight[i] - dweight[n] - ponder_scale mask   for i < n, 0 for i >= n
 *   dhalt[i] = dp[i] p[i] (1 - p[i])   the gradient of the logits;  dhalt (L, N), halt as
 *                                      act_halting_forward left it (the probabilities). */
void act_halting_backward(float *dhalt, const float *dweight, const float *halt,
                          const float *mask, float ponder_scale, float threshold, int L, int N);

/* out[r, :] = w[r] x[r, :]   (+= when accumulate): the weighted sum of ACT's states.
 * out, x (N, C); w (N). */
void weighted_rows_forward(float *out, const float *w, const float *x, int N, int C,
                           int accumulate);
/* dw[r] = dout[r, :] . x[r, :]   (written when not NULL; summed in column order)
 * dx[r, :] += w[r] dout[r, :]    (when not NULL) */
void weighted_rows_backward(float *dw, float *dx, const float *dout, const float *w,
                            const float *x, int N, int C);

#endif
