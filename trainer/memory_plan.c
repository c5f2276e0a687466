/* memory_plan.c: how big one rank of a run is: the batch it takes (train.batch_size or
 * train.batch_per_rank) and the bytes it holds, model_memory_plan's figures for the backend in
 * use plus the trainer's own data buffers. */
#include "trainer/trainer.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

int config_resolve_batch(trainer_config *cfg, int ranks, char *err, size_t errcap)
{
    if (cfg->batch_per_rank > 0) {
        if (cfg->batch_size > 0) {
            snprintf(err, errcap, "[train] batch_size = %d and batch_per_rank = %d: set one of "
                     "them (the global batch, or the batch of each rank)", cfg->batch_size,
                     cfg->batch_per_rank);
            return -1;
        }
        long global = (long)cfg->batch_per_rank * ranks;
        if (global > (1 << 24)) {
            snprintf(err, errcap, "[train] batch_per_rank = %d x %d ranks is above the largest "
                     "global batch, %d", cfg->batch_per_rank, ranks, 1 << 24);
            return -1;
        }
        /* the resolved configuration names the global batch only, as a resume needs it */
        char set[64];
        snprintf(set, sizeof set, "train.batch_size=%ld", global);
        if (config_set_assignment(cfg, set, err, errcap) ||
            config_set_assignment(cfg, "train.batch_per_rank=0", err, errcap))
            return -1;
    } else if (cfg->batch_size == 0) {
        if (config_set_assignment(cfg, "train.batch_size=" CONFIG_DEFAULT_BATCH, err, errcap))
            return -1;
    }
    if (cfg->batch_size % ranks) {
        snprintf(err, errcap, "[train] batch_size = %d cannot be split evenly over %d ranks",
                 cfg->batch_size, ranks);
        return -1;
    }
    return 0;
}

model_config config_model(const trainer_config *cfg)
{
    lawt_encoding in, out;
    encoding_from_name(cfg->encoding, &in);
    encoding_from_name(cfg->out_encoding[0] ? cfg->out_encoding : cfg->encoding, &out);
    lawt_vocab vin, vout;
    vocab_init(&vin, &in);
    vocab_init(&vout, &out);
    const int src = datagen_max_src_len(&cfg->data, &in), tgt = datagen_max_tgt_len(&cfg->data, &out);
    model_config mc = {.enc_layers = cfg->enc_layers, .dec_layers = cfg->dec_layers,
                       .enc_dim = cfg->enc_dim, .dec_dim = cfg->dec_dim,
                       .enc_heads = cfg->enc_heads, .dec_heads = cfg->dec_heads,
                       .vocab_in = vin.size, .vocab_out = vout.size,
                       .max_len = src > tgt ? src : tgt, .max_src = src, .max_tgt = tgt,
                       .recompute = cfg->recompute, .arch = cfg->arch};
    if (model_arch_recurrent(cfg->arch)) { /* a transformer has none (its checkpoints: 0) */
        mc.rnn_layers = cfg->rnn_layers;
        mc.rnn_hidden = cfg->rnn_hidden;
        mc.rnn_reverse_source = cfg->rnn_reverse_source;
    }
    if (cfg->arch == ARCH_UNIVERSAL) { /* the other models have no loops (their checkpoints: 0) */
        mc.enc_loops = cfg->enc_loops;
        mc.dec_loops = cfg->dec_loops;
        mc.loop_mode = cfg->loop_mode;
        mc.act_threshold = cfg->act_threshold;
        mc.ponder_cost = cfg->ponder_cost;
    }
    vocab_free(&vin);
    vocab_free(&vout);
    return mc;
}

int config_check_memory(const trainer_config *cfg, int ranks, char *err, size_t errcap)
{
    model_config mc = config_model(cfg);
    if (model_config_validate(&mc, err, errcap)) return -1;
    const int local_batch = cfg->batch_size / (ranks > 0 ? ranks : 1);
    model_memory m;
    model_memory_plan(&mc, BACKEND_CPU, local_batch, 0, &m);
    const int on_gpu = cfg->device == DEVICE_CUDA;
    const double state = on_gpu ? 0.0 : (double)(m.params + m.grads + m.adam);
    const double activations = on_gpu ? 0.0 : (double)(m.backend_total - m.params - m.grads - m.adam);
    const double need = on_gpu ? (double)(m.host + m.host_init) : state + activations + (double)m.host_init;
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    double memory = pages > 0 && page > 0 ? (double)pages * (double)page : 0;
    if (memory == 0 || need <= memory) return 0;
    const double gb = 1e9;
    snprintf(err, errcap,
             "the model cannot fit in this machine's %.1f GB of memory: it needs %.0f bytes "
             "(%.1f GB): %.1f GB for its %zu parameters, their gradients and both Adam moments "
             "([model] enc_dim = %d, dec_dim = %d, enc_layers = %d, dec_layers = %d, vocabularies "
             "%d and %d), %.1f GB of activations (%d examples a rank: train.batch_size / %d "
             "ranks, of up to %d + %d tokens from [data] dim) and %.1f GB for the initial weights; "
             "lower %s (lawt_dist --memory-plan cpu shows every part)",
             memory / gb, need, need / gb, state / gb, model_param_count(&mc), mc.enc_dim,
             mc.dec_dim, mc.enc_layers, mc.dec_layers, mc.vocab_in, mc.vocab_out,
             activations / gb, local_batch, ranks, mc.max_src, mc.max_tgt,
             (double)m.host_init / gb,
             state > activations ? "model.dim (enc_dim, dec_dim) or the layers"
                                 : "train.batch_size");
    return -1;
}

/* The trainer's host buffers: the training batches (two slots), an evaluation batch of sources,
 * targets, problems and predictions, and the gradients' host copy when the all-reduce needs
 * one. */
static size_t data_bytes(const run_shape *s, size_t nparams)
{
    const trainer_config *cfg = s->cfg;
    size_t train = 2 * (size_t)s->local_batch * ((size_t)s->max_src + s->max_tgt + 2) * sizeof(int);
    size_t eb = (size_t)cfg->eval_batch;
    size_t coeffs = datagen_max_input_coeffs(&cfg->data) + datagen_max_output_coeffs(&cfg->data);
    size_t tokens = (size_t)s->max_src + (size_t)s->max_tgt + 2 + (size_t)s->max_out;
    size_t eval = eb * tokens * sizeof(int) + eb * coeffs * sizeof(double) +
                  eb * (2 * sizeof(lawt_matrix) + sizeof(lawt_task));
    return train + eval + (s->host_gradients ? nparams * sizeof(float) : 0);
}

/* "1.23 GiB", "45.6 MiB", "12.0 KiB": three significant figures or so. */
static const char *human(size_t bytes, char buf[32])
{
    static const char *const UNITS[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)bytes;
    int u = 0;
    while (v >= 1024.0 && u < 4) v /= 1024.0, u++;
    snprintf(buf, 32, u == 0 ? "%.0f %s" : v < 10 ? "%.2f %s" : v < 100 ? "%.1f %s" : "%.0f %s",
             v, UNITS[u]);
    return buf;
}

/* Appends "label human(bytes)" to a line. */
static void add(char *text, size_t cap, const char *label, size_t bytes)
{
    char b[32];
    size_t n = strlen(text);
    if (n < cap) snprintf(text + n, cap - n, "%s%s", label, human(bytes, b));
}

void memory_plan_describe(const run_shape *s, char *text, size_t cap)
{
    const trainer_config *cfg = s->cfg;
    const model_config *mc = s->model;
    int cuda = s->backend == BACKEND_CUDA;
    int beam = cfg->eval_size > 0 ? (cfg->decoding == DECODING_BEAM ? cfg->beam_size : 1) : 0;
    model_memory m;
    model_memory_plan(mc, s->backend, s->local_batch, beam, &m);
    size_t data = data_bytes(s, model_param_count(mc));
    size_t host = m.host + data;
    size_t total = cuda ? m.backend_total : m.backend_total + host;
    /* Host buffers of a moment: the initial weights, and a checkpoint's parameters and two
     * moments while it is written or read (checkpoint.c). The CPU's peak adds the larger. */
    size_t checkpoint = 3 * m.params;
    size_t transient = checkpoint > m.host_init ? checkpoint : m.host_init;
    size_t peak = cuda ? total : total + transient;
    char label[96];
    snprintf(text, cap, "memory per rank (%s, batch %d): ", cuda ? "cuda" : "cpu", s->local_batch);
    add(text, cap, "", total);
    add(text, cap, cuda ? " on the GPU = parameters " : " = parameters ", m.params);
    add(text, cap, ", gradients ", m.grads);
    add(text, cap, ", Adam moments ", m.adam);
    add(text, cap, ", activations ", m.activations);
    static const char *const RECOMPUTE[] = {"", "recompute ffn; ", "recompute layer; "};
    const int rnn = model_arch_recurrent(mc->arch);
    const int enc_layers = rnn ? mc->rnn_layers : mc->enc_layers;
    const int dec_layers = rnn ? mc->rnn_layers : mc->dec_layers;
    /* a looped side holds the activations of every iteration of its one layer */
    const int enc_loops = mc->arch == ARCH_UNIVERSAL ? mc->enc_loops : 0;
    const int dec_loops = mc->arch == ARCH_UNIVERSAL ? mc->dec_loops : 0;
    char loops[32] = "";
    if (enc_loops) snprintf(loops, sizeof loops, "x %d loops ", enc_loops);
    snprintf(label, sizeof label, " (%sencoder %d layer%s %s", RECOMPUTE[mc->recompute],
             enc_layers, enc_layers > 1 ? "s" : "", loops);
    add(text, cap, label, m.enc_layers);
    loops[0] = '\0';
    if (dec_loops) snprintf(loops, sizeof loops, "x %d loops ", dec_loops);
    snprintf(label, sizeof label, ", decoder %d layer%s %s", dec_layers,
             dec_layers > 1 ? "s" : "", loops);
    add(text, cap, label, m.dec_layers);
    add(text, cap, ", embeddings ", m.embeddings);
    add(text, cap, ", logits ", m.logits);
    add(text, cap, ", backward ", m.backward);
    add(text, cap, "; attention scores ", m.attention);
    snprintf(label, sizeof label, " of them), decoding (beam %d) ", beam);
    add(text, cap, label, m.decode);
    add(text, cap, ", token ids ", m.tokens);
    add(text, cap, ", backend state ", m.backend_state);
    if (cuda) add(text, cap, ", cuBLAS workspace ", m.workspace);
    if (cuda) add(text, cap, "; host ", host);
    add(text, cap, cuda ? " (staging " : "; staging ", m.host);
    add(text, cap, ", data buffers ", data);
    size_t n = strlen(text);
    snprintf(text + n, cap - n, "%s",
             cuda ? "); the CUDA context (about 0.5 GiB) is not counted" : " (in the total)");
    add(text, cap, "; for a moment, on the host: initial weights ", m.host_init);
    add(text, cap, ", a checkpoint ", checkpoint);
    if (!cuda) add(text, cap, " (peak ", peak);
    n = strlen(text);
    snprintf(text + n, cap - n,
             "%s\n"
             "memory bytes backend=%s batch_per_rank=%d total=%zu peak=%zu params=%zu grads=%zu "
             "adam=%zu activations=%zu enc_layer=%zu dec_layer=%zu attention=%zu decode=%zu "
             "workspace=%zu host=%zu",
             cuda ? "" : ")", cuda ? "cuda" : "cpu", s->local_batch, total, peak, m.params,
             m.grads, m.adam, m.activations, m.enc_layer, m.dec_layer, m.attention, m.decode,
             m.workspace, host);
}
