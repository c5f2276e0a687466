/* checkpoint.h: everything a run needs to continue, in one HDF5 file users can open with
 * h5dump or h5py (layout documented in README.md, "Checkpoint format").
 *
 * A file is written to "<path>.tmp", flushed, closed, then renamed over <path>: a crash
 * during a write never damages the previous checkpoint. A checksum over the parameters is
 * stored as an attribute and verified on load, so a corrupted or truncated file is refused. */
#ifndef LAWT_CHECKPOINT_H
#define LAWT_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "model/model.h"

#define CHECKPOINT_FORMAT_VERSION 1

typedef struct {
    long step;              /* optimizer steps done */
    long examples_seen;     /* training examples consumed (the train stream's next index) */
    long epoch;             /* completed epochs */
    uint64_t seed;
    uint64_t test_index;    /* next index of the test stream */
    double lr;              /* learning rate of the last step (the schedule is a function of step) */
    double best_accuracy;   /* best evaluation accuracy so far (percent, primary tolerance) */
    double wall_seconds;    /* training time accumulated over all segments of the run */
    char *config_text;      /* the resolved INI text (malloc'd on load) */
    char *metrics_jsonl;    /* metrics history, one JSON object a line (malloc'd on load) */
} checkpoint_meta;

/* Writes parameters, both Adam moments and meta. Returns 0, or -1 with a message in err. */
int checkpoint_save(const char *path, const model *m, const checkpoint_meta *meta,
                    char *err, size_t errcap);

/* Reads meta only (config text first: the caller builds the model from it). */
int checkpoint_read_meta(const char *path, checkpoint_meta *meta, char *err, size_t errcap);

/* Reads the model config stored in the file (to check compatibility before loading). */
int checkpoint_read_model_config(const char *path, model_config *cfg, char *err, size_t errcap);

/* Loads parameters (and the Adam moments when with_optimizer) into m after checking that the
 * file's model config equals m's (a message naming the first differing field otherwise) and
 * verifying the checksum. */
int checkpoint_load(const char *path, model *m, int with_optimizer, char *err, size_t errcap);

/* Retraining (the paper's Appendix F.1: e.g. a 5x5 model retrained on sizes 5 to 7): loads the
 * parameters of the checkpoint at path into m, whose config may differ from the file's only in
 * max_len; layers, dimensions, heads and both vocabularies must be equal. Position tables
 * ("enc.pos_emb.weight", "dec.pos_emb.weight", max_len rows) get the rows both configs have;
 * the model keeps its own values (its initialisation) for the rows beyond the file's max_len.
 * The optimizer starts afresh: both Adam moments and the gradients are zeroed. The checksums
 * are verified as by checkpoint_load. Returns 0, or -1 with a message naming the differing
 * field and both values, e.g. "vocabularies differ: checkpoint vocab_in 1314, config 2311
 * (encoding P1000 vs B1999?)"; on failure the model is untouched. The checkpoint's meta (step,
 * schedule, counters) is not used: a retraining run starts at step 0 with its own data config. */
int checkpoint_load_for_retraining(const char *path, model *m, char *err, size_t errcap);

void checkpoint_meta_free(checkpoint_meta *meta);

/* "<dir>/step-<step zero-padded to CHECKPOINT_STEP_DIGITS digits>.h5" into path, so that the
 * names sort lexically by step; returns 0, or -1 when it does not fit in cap (or step < 0).
 * checkpoint_latest and checkpoint_keep_last order by the number itself, so longer numbers
 * (10^9 steps and more) still sort right. */
#define CHECKPOINT_STEP_DIGITS 9
int checkpoint_step_path(const char *dir, long step, char *path, size_t cap);

/* Path of the newest "step-*.h5" in dir into path; returns 0, or -1 when there is none. */
int checkpoint_latest(const char *dir, char *path, size_t cap);

/* Deletes all but the newest keep "step-*.h5" files of dir (never "best.h5"). */
void checkpoint_keep_last(const char *dir, int keep);

/* Removes the "step-*.h5.tmp" and "best.h5.tmp" files of dir, left by a write that was
 * killed (kill -9, a crash, a node failure); the caller must own the directory (its run.lock),
 * as another writer's .tmp would go too. Returns how many went, their names joined by ", " in
 * names (cut at cap). */
int checkpoint_remove_stray_tmp(const char *dir, char *names, size_t cap);

#endif
