/* cuda_fixtures.h: what the CUDA parity tests share (test_cuda_parity.c, test_cuda_recurrent.c):
 * device buffers from host arrays or full of NaN, a device buffer held to a host reference, and
 * two models' decoders held to each other. Built with the CUDA backend only; the host helpers
 * (random numbers, batches, rel_err) are model_fixtures.h's. */
#ifndef LAWT_TESTS_GPU_CUDA_FIXTURES_H
#define LAWT_TESTS_GPU_CUDA_FIXTURES_H

#include <stddef.h>

#include "model/model.h"
#include "tests/model_fixtures.h"

/* All bits set: a NaN as a float and as a double. Outputs start as NaN so that stale memory
 * cannot pass. */
#define NAN_BYTE 0xff

void *dev_up(const void *h, size_t bytes);  /* cudaMalloc'ed copy of h (bytes; h NULL: none) */
float *dup_f(const float *h, size_t n);     /* n floats */
float *dev_nan(size_t n);                   /* n floats of NaN */
float *down_f(const float *d, size_t n);    /* malloc'ed host copy of n device floats */

/* The device buffer d (n floats) against the host reference ref: normwise relative error
 * (rel_err) within tol; prints it. */
void check_dev(const char *what, const float *d, const float *ref, size_t n, double tol);

/* Greedy (cached, and the GPU's without the cache) and beam decoding (width beam), GPU
 * against CPU, of ob's sources; beam 1 equals greedy on the GPU. Returns the CPU's greedy and
 * beam output lengths in greedy_len, beam_len (ob's rows each). */
void compare_decoding(model *gpu, model *cpu, const owned_batch *ob, int max_out, int beam,
                      const char *name, int *greedy_len, int *beam_len);

#endif
