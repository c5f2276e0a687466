/* recurrent_layers.h: the gates of the recurrent cells of recurrent.c, one time step of B rows
 * as forward/backward pairs (the conventions of layers.h). The matrix products around them are
 * linear_forward / linear_backward: the input's for every step at once,
 *   gx = x W_ih^T + b_ih  (T*B, g H),
 * and the state's at each step, gh = h_prev W_hh^T + b_hh (B, g H). Gates are in PyTorch's
 * order (nn.GRU: r, z, n; nn.LSTM: i, f, g, o), H units each, side by side in a row.
 *
 * Lengths: with len (B) non-NULL, row b steps only while t < len[b]; after that its state is
 * carried over unchanged (h = h_prev, c = c_prev), so that a padded source ends in the state of
 * its last token, and backward passes the state's gradient through untouched (the gates'
 * gradients are 0). len NULL: every row steps. The new state may be the previous one itself
 * (h == h_prev, c == c_prev: decoding moves its state on in place).
 *
 * Backward carries the gradient of the state through time: dh_carry holds, on entry, the
 * gradient of h that flows from step t+1 (dc_carry likewise for the LSTM's cell); the
 * gradient of h is dy (from the layer above, or NULL: none) + dh_carry. On exit dh_carry
 * holds the part of the gradient of h_prev that does not pass through W_hh; the caller adds
 * dgh W_hh (linear_backward, accumulate). */
#ifndef LAWT_MODEL_RECURRENT_LAYERS_H
#define LAWT_MODEL_RECURRENT_LAYERS_H

/* GRU (Cho et al. 2014, as nn.GRU):
 *   r = sigmoid(gx_r + gh_r);  z = sigmoid(gx_z + gh_z);  n = tanh(gx_n + r * gh_n)
 *   h = (1 - z) * n + z * h_prev
 * gates (B, 3H): on entry gx, on exit r, z, n (in place); gh (B, 3H); h, h_prev (B, H). */
void gru_cell_forward(float *h, float *gates, const float *gh, const float *h_prev,
                      const int *len, int t, int B, int H);
/* With dh = dy + dh_carry:
 *   dn = dh (1 - z);  dz = dh (h_prev - n);  dan = dn (1 - n^2)   (an: n's pre-activation)
 *   dgx_n = dan;  dgh_n = dan r;  dgx_r = dgh_r = dan gh_n r (1 - r);
 *   dgx_z = dgh_z = dz z (1 - z);  dh_carry = dh z.
 * dgx, dgh (B, 3H) overwritten; gates, gh as the forward left them. */
void gru_cell_backward(float *dgx, float *dgh, float *dh_carry, const float *dy,
                       const float *gates, const float *gh, const float *h_prev,
                       const int *len, int t, int B, int H);

/* LSTM (Hochreiter & Schmidhuber 1997, as nn.LSTM):
 *   i = sigmoid(a_i);  f = sigmoid(a_f);  g = tanh(a_g);  o = sigmoid(a_o)
 *   c = f * c_prev + i * g;  h = o * tanh(c)
 * gates (B, 4H): on entry the pre-activations a = gx + gh, on exit i, f, g, o (in place);
 * h, c, h_prev, c_prev (B, H). */
void lstm_cell_forward(float *h, float *c, float *gates, const float *h_prev,
                       const float *c_prev, const int *len, int t, int B, int H);
/* With dh = dy + dh_carry and dc = dc_carry + dh o (1 - tanh(c)^2):
 *   da_i = dc g i (1 - i);  da_f = dc c_prev f (1 - f);  da_g = dc i (1 - g^2);
 *   da_o = dh tanh(c) o (1 - o);  dc_carry = dc f;  dh_carry = 0.
 * dgates (B, 4H), the gradient of both gx and gh, overwritten. */
void lstm_cell_backward(float *dgates, float *dh_carry, float *dc_carry, const float *dy,
                        const float *gates, const float *c, const float *c_prev,
                        const int *len, int t, int B, int H);

#endif
