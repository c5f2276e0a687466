/* recurrent_cuda.h: the CUDA twins of recurrent_layers.h (the gates of the GRU and LSTM cells;
 * the math and the conventions are there), on device memory, len included. One thread per
 * (row, unit); the products around them are the backend's cuBLAS linear layers. */
#ifndef LAWT_MODEL_RECURRENT_CUDA_H
#define LAWT_MODEL_RECURRENT_CUDA_H

#ifdef __cplusplus
extern "C" {
#endif

void gru_cell_forward_cuda(float *h, float *gates, const float *gh, const float *h_prev,
                           const int *len, int t, int B, int H);
void gru_cell_backward_cuda(float *dgx, float *dgh, float *dh_carry, const float *dy,
                            const float *gates, const float *gh, const float *h_prev,
                            const int *len, int t, int B, int H);
void lstm_cell_forward_cuda(float *h, float *c, float *gates, const float *h_prev,
                            const float *c_prev, const int *len, int t, int B, int H);
void lstm_cell_backward_cuda(float *dgates, float *dh_carry, float *dc_carry, const float *dy,
                             const float *gates, const float *c, const float *c_prev,
                             const int *len, int t, int B, int H);

#ifdef __cplusplus
}
#endif

#endif
