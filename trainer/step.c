/* step.c: one optimizer step (trainer.h, trainer_step): the trainer and every benchmark take
 * their steps here, so that what is timed is what trains. */
#include "trainer/trainer.h"

#include <math.h>

double trainer_step(const step_context *ctx, const model_batch *batch, const step_hparams *hp,
                    long step, long *tokens, step_times *times)
{
    model *m = ctx->model;
    const int ranks = ctx->ranks > 1 ? ctx->ranks : 1;
    double t0 = lawt_now();
    long loss_tokens;
    model_zero_grad(m);
    double loss_sum = model_forward(m, batch, &loss_tokens);
    double t1 = lawt_now();
    /* The scale needs the global count before backward: summing scaled gradients then gives
     * the gradient of the global mean loss, whatever the number of ranks. */
    long counts[2] = {loss_tokens, tokens ? *tokens : 0};
    if (ranks > 1) comm_allreduce_sum_long(ctx->comm, counts, 2);
    model_backward(m, batch, 1.0f / (float)(counts[0] > 0 ? counts[0] : 1));
    double t2 = lawt_now();
    if (ranks > 1) {
        size_t n = model_num_params(m);
        float *grads = model_gradient_buffer(m);
        if (ctx->nccl) {
            comm_allreduce_sum_float_device(ctx->nccl, grads, n);
        } else if (model_get_backend(m) == BACKEND_CPU) {
            comm_allreduce_sum_float(ctx->comm, grads, n);
        } else {
            model_copy_out(m, BUF_GRADS, ctx->host_grads);
            comm_allreduce_sum_float(ctx->comm, ctx->host_grads, n);
            model_copy_in(m, BUF_GRADS, ctx->host_grads);
        }
        comm_allreduce_sum_double(ctx->comm, &loss_sum, 1);
    }
    double t3 = lawt_now();
    double mean_loss = loss_sum / (double)(counts[0] > 0 ? counts[0] : 1);
    if (ctx->fault_nan) mean_loss = NAN;
    if (tokens) *tokens = counts[1];
    /* The same number on every rank: all of them stop here, before the step touches the
     * weights; the caller reports it. */
    if (!isfinite(mean_loss)) return mean_loss;
    double norm = model_grad_norm(m);
    float grad_scale = hp->clip > 0 && norm > hp->clip ? (float)(hp->clip / norm) : 1.0f;
    adam_hparams h = {(float)hp->lr, (float)hp->beta1, (float)hp->beta2, (float)hp->eps};
    model_adam_step(m, &h, step, grad_scale);
    if (times) {
        double t4 = lawt_now();
        times->forward_s += t1 - t0;
        times->backward_s += t2 - t1;
        times->allreduce_s += t3 - t2;
        times->optimizer_s += t4 - t3;
    }
    return mean_loss;
}

double trainer_loss_sum(model *m, int max_batch, const model_batch *batch, long *tokens)
{
    double sum = 0;
    long count = 0;
    for (int first = 0; first < batch->B; first += max_batch) {
        int rows = batch->B - first < max_batch ? batch->B - first : max_batch;
        model_batch chunk = {rows,
                             batch->S,
                             batch->T,
                             batch->src + (size_t)first * batch->S,
                             batch->src_len + first,
                             batch->tgt + (size_t)first * batch->T,
                             batch->tgt_len + first};
        long n;
        sum += model_forward(m, &chunk, &n);
        count += n;
    }
    *tokens = count;
    return sum;
}
