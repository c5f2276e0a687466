/* batch_source.h (inside trainer/): this rank's training batches, step after step.
 *
 * Batch k holds examples k * batch_size + rank * local_batch + j of the training stream
 * (j < local_batch), framed and padded to its longest row: a pure function of the seed and k,
 * so a run sees the same examples whether they are made ahead or on demand.
 *
 * Threaded, a second thread makes batch k + 1 while the model trains on batch k, into the
 * other of two buffers: the GPU never waits for the CPU to generate data. Unthreaded, the
 * batch is made in the caller when asked (the CPU backend's pool already uses every core). */
#ifndef LAWT_TRAINER_BATCH_SOURCE_H
#define LAWT_TRAINER_BATCH_SOURCE_H

#include <stdint.h>

#include "datagen/datagen.h"
#include "encoding/encoding.h"
#include "model/model.h"

typedef struct {
    const datagen_config *data;
    const lawt_vocab *vin, *vout;
    uint64_t seed;
    int batch_size;  /* global */
    int rank;
    int local_batch; /* this rank's share */
    int max_src, max_tgt;
} batch_spec;

typedef struct batch_source batch_source;

/* The first batch asked will be first_step's. spec (and what it points to) must outlive it. */
batch_source *batch_source_create(const batch_spec *spec, long first_step, int threaded);
/* The batch of step `step`: first_step, then each next step in turn (anything else dies).
 * Sets *tokens to its source plus target tokens. Valid until the next call. */
model_batch batch_source_next(batch_source *bs, long step, long *tokens);
void batch_source_free(batch_source *bs);

/* Rows of `stride` ints, row b holding len[b] tokens, become rows of `width` ints (width <=
 * stride) padded with TOK_PAD. */
void pad_rows(int *rows, int count, int stride, int width, const int *len);

#endif
