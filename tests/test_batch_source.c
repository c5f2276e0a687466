/* test_batch_source: the training batches of trainer/batch_source.h. Made ahead by the data
 * thread or on demand, from any first step, batch k of rank r is the same, and it holds
 * examples k * batch + r * local + j of the training stream, framed and padded to its longest
 * row (checked against datagen_tokens directly). Variable sizes make the padding matter. */
#include <stdlib.h>
#include <string.h>

#include "tests/test.h"
#include "trainer/batch_source.h"
#include "trainer/trainer.h"

enum { STEPS = 25 };

/* The batch as datagen_tokens makes it, example by example. */
static void check_against_datagen(const batch_spec *sp, long step, const model_batch *b,
                                  long tokens)
{
    int *src = malloc((size_t)sp->max_src * sizeof(int));
    int *tgt = malloc((size_t)sp->max_tgt * sizeof(int));
    long want_tokens = 0;
    int S = 0, T = 0, same = 1;
    for (int j = 0; j < sp->local_batch; j++) {
        uint64_t index = (uint64_t)step * (uint64_t)sp->batch_size +
                         (uint64_t)sp->rank * (uint64_t)sp->local_batch + (uint64_t)j;
        int sl, tl;
        datagen_tokens(sp->data, sp->vin, sp->vout, sp->seed, STREAM_TRAIN, index, src, &sl, tgt,
                       &tl, NULL, NULL, NULL);
        want_tokens += sl + tl;
        S = sl > S ? sl : S;
        T = tl > T ? tl : T;
        same &= b->src_len[j] == sl && b->tgt_len[j] == tl;
        same &= memcmp(b->src + (size_t)j * b->S, src, (size_t)sl * sizeof(int)) == 0;
        same &= memcmp(b->tgt + (size_t)j * b->T, tgt, (size_t)tl * sizeof(int)) == 0;
        for (int t = sl; t < b->S; t++) same &= b->src[(size_t)j * b->S + t] == TOK_PAD;
        for (int t = tl; t < b->T; t++) same &= b->tgt[(size_t)j * b->T + t] == TOK_PAD;
    }
    CHECK_MSG(same, "step %ld: the batch is not the stream's examples, padded", step);
    CHECK_MSG(b->B == sp->local_batch && b->S == S && b->T == T,
              "step %ld: batch %d x (%d, %d), expected %d x (%d, %d)", step, b->B, b->S, b->T,
              sp->local_batch, S, T);
    CHECK_MSG(tokens == want_tokens, "step %ld: %ld tokens, expected %ld", step, tokens,
              want_tokens);
    free(src);
    free(tgt);
}

static int same_batch(const model_batch *a, const model_batch *b)
{
    return a->B == b->B && a->S == b->S && a->T == b->T &&
           !memcmp(a->src, b->src, (size_t)a->B * a->S * sizeof(int)) &&
           !memcmp(a->tgt, b->tgt, (size_t)a->B * a->T * sizeof(int)) &&
           !memcmp(a->src_len, b->src_len, (size_t)a->B * sizeof(int)) &&
           !memcmp(a->tgt_len, b->tgt_len, (size_t)a->B * sizeof(int));
}

int main(void)
{
    trainer_config cfg;
    char err[1024];
    config_init(&cfg);
    if (config_parse_string(&cfg, "[data]\ntask = add\ndim = 2-5\nencoding = P1000\n", "test",
                            err, sizeof err) ||
        config_finish(&cfg, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    lawt_encoding enc;
    encoding_from_name("P1000", &enc);
    lawt_vocab v;
    vocab_init(&v, &enc);
    const int batch = 12, ranks = 3;
    for (int rank = 0; rank < ranks; rank++) {
        batch_spec sp = {&cfg.data, &v, &v, 7, batch, rank, batch / ranks,
                         datagen_max_src_len(&cfg.data, &enc), datagen_max_tgt_len(&cfg.data, &enc)};
        for (long first = 0; first <= 3; first += 3) {
            batch_source *ahead = batch_source_create(&sp, first, 1);
            batch_source *now = batch_source_create(&sp, first, 0);
            int all_same = 1;
            for (long step = first; step < first + STEPS; step++) {
                long ta, tn;
                model_batch a = batch_source_next(ahead, step, &ta);
                model_batch n = batch_source_next(now, step, &tn);
                all_same &= same_batch(&a, &n) && ta == tn;
                check_against_datagen(&sp, step, &n, tn);
            }
            CHECK_MSG(all_same, "rank %d from step %ld: the data thread's batches differ", rank,
                      first);
            batch_source_free(ahead);
            batch_source_free(now);
        }
    }
    /* Freed while the thread may be making a batch nobody will ask for. */
    batch_spec sp = {&cfg.data, &v, &v, 7, batch, 0, batch,
                     datagen_max_src_len(&cfg.data, &enc), datagen_max_tgt_len(&cfg.data, &enc)};
    batch_source *early = batch_source_create(&sp, 0, 1);
    batch_source_free(early);
    vocab_free(&v);
    return test_report("test_batch_source");
}
