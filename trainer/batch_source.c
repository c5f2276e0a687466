/* batch_source.c: see batch_source.h. */
#include "trainer/batch_source.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"

typedef struct {
    int *src, *tgt, *src_len, *tgt_len;
    model_batch batch;
    long tokens;
} batch_slot;

struct batch_source {
    batch_spec spec;
    int threaded;
    batch_slot slot[2]; /* step k lives in slot k % 2 */
    long next_step;     /* the step the caller asks for next */

    /* Threaded: the producer makes step `made` + 1 once the caller has asked for step `made`
     * (then the caller is done with step made - 1, whose slot the new batch takes). */
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t changed;
    long made;   /* last step whose batch is complete */
    long asked;  /* last step the caller asked for */
    int quit;
};

/* Moving rows forward in order never overwrites a row not yet moved (width <= stride). */
void pad_rows(int *rows, int count, int stride, int width, const int *len)
{
    for (int b = 0; b < count; b++) {
        memmove(rows + (size_t)b * width, rows + (size_t)b * stride, (size_t)len[b] * sizeof(int));
        for (int t = len[b]; t < width; t++) rows[(size_t)b * width + t] = TOK_PAD;
    }
}

static int max_of(const int *v, int n)
{
    int m = 0;
    for (int i = 0; i < n; i++) m = v[i] > m ? v[i] : m;
    return m;
}

static void make_batch(const batch_spec *sp, long step, batch_slot *s)
{
    uint64_t first = (uint64_t)step * (uint64_t)sp->batch_size +
                     (uint64_t)sp->rank * (uint64_t)sp->local_batch;
    s->tokens = 0;
    for (int j = 0; j < sp->local_batch; j++) {
        datagen_tokens(sp->data, sp->vin, sp->vout, sp->seed, STREAM_TRAIN, first + (uint64_t)j,
                       s->src + (size_t)j * sp->max_src, &s->src_len[j],
                       s->tgt + (size_t)j * sp->max_tgt, &s->tgt_len[j], NULL, NULL, NULL);
        s->tokens += s->src_len[j] + s->tgt_len[j];
    }
    int S = max_of(s->src_len, sp->local_batch), T = max_of(s->tgt_len, sp->local_batch);
    pad_rows(s->src, sp->local_batch, sp->max_src, S, s->src_len);
    pad_rows(s->tgt, sp->local_batch, sp->max_tgt, T, s->tgt_len);
    s->batch = (model_batch){sp->local_batch, S, T, s->src, s->src_len, s->tgt, s->tgt_len};
}

static void *producer(void *arg)
{
    batch_source *bs = arg;
    pthread_mutex_lock(&bs->lock);
    for (;;) {
        while (!bs->quit && bs->made > bs->asked) pthread_cond_wait(&bs->changed, &bs->lock);
        if (bs->quit) break;
        long step = bs->made + 1;
        pthread_mutex_unlock(&bs->lock);
        make_batch(&bs->spec, step, &bs->slot[step % 2]);
        pthread_mutex_lock(&bs->lock);
        bs->made = step;
        pthread_cond_broadcast(&bs->changed);
    }
    pthread_mutex_unlock(&bs->lock);
    return NULL;
}

static void check(int rc, const char *call)
{
    if (rc) lawt_die("trainer: %s failed: %s", call, strerror(rc));
}

batch_source *batch_source_create(const batch_spec *spec, long first_step, int threaded)
{
    batch_source *bs = lawt_calloc(1, sizeof *bs);
    bs->spec = *spec;
    bs->threaded = threaded;
    bs->next_step = first_step;
    for (int i = 0; i < 2; i++) {
        batch_slot *s = &bs->slot[i];
        s->src = lawt_malloc((size_t)spec->local_batch * spec->max_src * sizeof(int));
        s->tgt = lawt_malloc((size_t)spec->local_batch * spec->max_tgt * sizeof(int));
        s->src_len = lawt_malloc((size_t)spec->local_batch * sizeof(int));
        s->tgt_len = lawt_malloc((size_t)spec->local_batch * sizeof(int));
    }
    if (threaded) {
        bs->made = first_step - 1;
        bs->asked = first_step - 1; /* the first batch may be made at once */
        check(pthread_mutex_init(&bs->lock, NULL), "pthread_mutex_init");
        check(pthread_cond_init(&bs->changed, NULL), "pthread_cond_init");
        check(pthread_create(&bs->thread, NULL, producer, bs), "pthread_create");
    }
    return bs;
}

model_batch batch_source_next(batch_source *bs, long step, long *tokens)
{
    if (step != bs->next_step)
        lawt_die("trainer: internal error: batch of step %ld asked, step %ld expected", step,
                 bs->next_step);
    bs->next_step++;
    batch_slot *s = &bs->slot[step % 2];
    if (!bs->threaded) {
        make_batch(&bs->spec, step, s);
    } else {
        pthread_mutex_lock(&bs->lock);
        bs->asked = step;
        pthread_cond_broadcast(&bs->changed);
        while (bs->made < step) pthread_cond_wait(&bs->changed, &bs->lock);
        pthread_mutex_unlock(&bs->lock);
    }
    *tokens = s->tokens;
    return s->batch;
}

void batch_source_free(batch_source *bs)
{
    if (!bs) return;
    if (bs->threaded) {
        pthread_mutex_lock(&bs->lock);
        bs->quit = 1;
        pthread_cond_broadcast(&bs->changed);
        pthread_mutex_unlock(&bs->lock);
        check(pthread_join(bs->thread, NULL), "pthread_join");
        pthread_mutex_destroy(&bs->lock);
        pthread_cond_destroy(&bs->changed);
    }
    for (int i = 0; i < 2; i++) {
        free(bs->slot[i].src);
        free(bs->slot[i].tgt);
        free(bs->slot[i].src_len);
        free(bs->slot[i].tgt_len);
    }
    free(bs);
}
