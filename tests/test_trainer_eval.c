/* test_trainer_eval: the measurements of an evaluation that do not need a trained model. The
 * test loss (trainer_loss_sum, in chunks of the model's batch, rows padded to the longest
 * possible as the evaluation pads them) is the loss a training step computes on the same
 * examples (trainer_step on the batch padded to its longest, as training pads it). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "encoding/encoding.h"
#include "tests/test.h"
#include "trainer/batch_source.h"
#include "trainer/trainer.h"

static char err[4096];

static int parse(trainer_config *cfg, const char *text)
{
    config_init(cfg);
    err[0] = '\0';
    if (config_parse_string(cfg, text, "test.ini", err, sizeof err)) return -1;
    return config_finish(cfg, err, sizeof err);
}

static int max_of(const int *v, int n)
{
    int m = 0;
    for (int i = 0; i < n; i++) m = v[i] > m ? v[i] : m;
    return m;
}

static void test_loss_is_the_training_loss(void)
{
    trainer_config cfg;
    /* Sizes 2-4: rows of different lengths, so that padding is exercised. */
    CHECK(parse(&cfg, "[data]\ntask = add\ndim = 2-4\nencoding = P1000\n[model]\nlayers = 1\n"
                      "dim = 32\nheads = 2\n[train]\nbatch_size = 4\n") == 0);
    lawt_encoding enc;
    encoding_from_name(cfg.encoding, &enc);
    lawt_vocab vin, vout;
    vocab_init(&vin, &enc);
    vocab_init(&vout, &enc);
    int max_src = datagen_max_src_len(&cfg.data, &enc), max_tgt = datagen_max_tgt_len(&cfg.data, &enc);
    model_config mc = config_model(&cfg);
    enum { B = 10, CHUNK = 4 };
    model *m = model_create(&mc, BACKEND_CPU, B);
    model_init_params(m, 7);
    int *src = calloc((size_t)B * max_src, sizeof(int)), *tgt = calloc((size_t)B * max_tgt, sizeof(int));
    int src_len[B], tgt_len[B];
    long expected_tokens = 0;
    for (int j = 0; j < B; j++) {
        datagen_tokens(&cfg.data, &vin, &vout, 3, STREAM_TEST, (uint64_t)j, src + (size_t)j * max_src,
                       &src_len[j], tgt + (size_t)j * max_tgt, &tgt_len[j], NULL, NULL, NULL);
        expected_tokens += tgt_len[j] - 1;
    }
    int shortest = tgt_len[0];
    for (int j = 1; j < B; j++) shortest = tgt_len[j] < shortest ? tgt_len[j] : shortest;
    CHECK(shortest < max_of(tgt_len, B));
    pad_rows(src, B, max_src, max_src, src_len);
    pad_rows(tgt, B, max_tgt, max_tgt, tgt_len);

    /* The evaluation's way: the longest possible rows, chunks of CHUNK rows. */
    model_batch full = {B, max_src, max_tgt, src, src_len, tgt, tgt_len};
    long tokens = 0;
    model *small = model_create(&mc, BACKEND_CPU, CHUNK);
    model_init_params(small, 7);
    double test_loss = trainer_loss_sum(small, CHUNK, &full, &tokens) / (double)tokens;
    CHECK(tokens == expected_tokens);
    double again = trainer_loss_sum(small, CHUNK, &full, &tokens) / (double)tokens;
    CHECK(again == test_loss);
    /* An untrained model is about as unsure as a uniform guess over the vocabulary. */
    double uniform = log((double)mc.vocab_out);
    CHECK_MSG(isfinite(test_loss) && test_loss > 0.5 * uniform && test_loss < 2.0 * uniform,
              "test loss %g, log(vocabulary) %g", test_loss, uniform);

    /* The training step's way: rows padded to the batch's longest, the whole batch at once. */
    int S = max_of(src_len, B), T = max_of(tgt_len, B);
    int *s2 = malloc((size_t)B * max_src * sizeof(int)), *t2 = malloc((size_t)B * max_tgt * sizeof(int));
    memcpy(s2, src, (size_t)B * max_src * sizeof(int));
    memcpy(t2, tgt, (size_t)B * max_tgt * sizeof(int));
    pad_rows(s2, B, max_src, S, src_len);
    pad_rows(t2, B, max_tgt, T, tgt_len);
    model_batch longest = {B, S, T, s2, src_len, t2, tgt_len};
    const step_context ctx = {m, NULL, NULL, 1, NULL, 0};
    const step_hparams hp = {1e-3, 0.9, 0.999, 1e-8, 5.0};
    double train_loss = trainer_step(&ctx, &longest, &hp, 1, NULL, NULL);
    printf("test loss %.9g (chunks of %d, longest rows), training step's loss %.9g\n", test_loss,
           CHUNK, train_loss);
    CHECK_CLOSE(test_loss, train_loss, 1e-5);
    /* The step changed the weights: the same examples now have another loss. */
    double after = trainer_loss_sum(m, B, &full, &tokens) / (double)tokens;
    CHECK_MSG(fabs(after - train_loss) > 1e-4, "loss %g before the step, %g after", train_loss, after);

    free(s2);
    free(t2);
    free(src);
    free(tgt);
    model_free(small);
    model_free(m);
    vocab_free(&vin);
    vocab_free(&vout);
}

int main(void)
{
    test_loss_is_the_training_loss();
    return test_report("test_trainer_eval");
}
