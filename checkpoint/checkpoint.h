/* checkpoint.h: everything a run needs to continue, in one HDF5 file users can open with
 * h5dump or h5py (layout documented in README.md, "Checkpoint format").
 *
 * A file is written to "<path>.tmp", flushed, closed, then renamed over <path>: a crash
 * during a write never damages the previous checkpoint. CRC-32 checksums over the parameters,
 * both moments, both texts and (format_version 2) the counters and model config are stored as
 * attributes and verified on load, and every counter is checked against what a run can
 * produce (step >= 0, finite lr, accuracy in [0, 100] ...): a corrupted, truncated or foreign
 * file is refused with a message naming it and the damaged dataset or attribute. Files of
 * format_version 1 (no counters CRC) are still read, with the same range checks; files before
 * format_version 3 (no arch, rnn_layers, rnn_hidden attributes) hold transformers, and files
 * before format_version 4 (no enc_loops ... ponder_cost) no universal transformers. */
#ifndef LAWT_CHECKPOINT_H
#define LAWT_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "model/model.h"

#define CHECKPOINT_FORMAT_VERSION 4

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

/* The counters of meta (read from path) against the run that resumes it: step <= total_steps,
 * examples_seen = step x batch_size, epoch = step / steps_per_epoch. Returns 0, or -1 with a
 * message naming the file, the field and the configuration keys to keep. */
int checkpoint_check_progress(const char *path, const checkpoint_meta *meta, long batch_size,
                              long steps_per_epoch, long total_steps, char *err, size_t errcap);

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

/* ---- inspection (lawt_inspect) ----
 * A file read as far as it can be, every part on its own, so that a damaged file still shows
 * what is intact and says what is not. Attributes are read generically (every attribute of /,
 * names this lawt does not know included), tensors by listing their groups, so files of every
 * format version since 1 read alike. */

typedef enum {
    CHECKPOINT_ATTR_INT,
    CHECKPOINT_ATTR_UINT,
    CHECKPOINT_ATTR_FLOAT,
    CHECKPOINT_ATTR_STRING,
    CHECKPOINT_ATTR_UNREADABLE /* s says why (not a scalar, HDF5 error) */
} checkpoint_attr_kind;

typedef struct {
    char name[64];
    checkpoint_attr_kind kind;
    long long i;
    unsigned long long u;
    double f;
    char s[256];
} checkpoint_attr;

typedef struct {
    char name[64];
    int ndim;
    long long shape[MODEL_MAX_NDIM];
    size_t count;
    long long offset; /* position in the flat buffer: the "offset" attribute of /params/<name>
                       * (the moments share it); -1 when unknown */
    float *values;    /* count floats, or NULL when unreadable (problem says why) */
    char problem[256];
} checkpoint_tensor_data;

/* One table: the five checksummed parts of a checkpoint, their names and CRC attributes. */
#define CHECKPOINT_PART_LIST(X)                                       \
    X(CHECKPOINT_PART_PARAMS, "params", "params_crc32", 1)            \
    X(CHECKPOINT_PART_ADAM_M, "adam/m", "adam_m_crc32", 1)            \
    X(CHECKPOINT_PART_ADAM_V, "adam/v", "adam_v_crc32", 1)            \
    X(CHECKPOINT_PART_CONFIG, "config_text", "config_text_crc32", 0)  \
    X(CHECKPOINT_PART_METRICS, "metrics_jsonl", "metrics_jsonl_crc32", 0)
#define CHECKPOINT_PART_ENUM(id, name, crc, tensors) id,
typedef enum { CHECKPOINT_PART_LIST(CHECKPOINT_PART_ENUM) CHECKPOINT_PARTS } checkpoint_part_id;
#undef CHECKPOINT_PART_ENUM

typedef enum {
    CHECKPOINT_PART_OK,         /* read, and its CRC-32 is the one recorded */
    CHECKPOINT_PART_CORRUPT,    /* read, but its CRC-32 differs from the recorded one */
    CHECKPOINT_PART_UNREADABLE, /* HDF5 could not read some of it, or shapes are wrong */
    CHECKPOINT_PART_MISSING,
} checkpoint_part_status;

typedef struct {
    const char *name;     /* "params", "adam/m", "adam/v", "config_text", "metrics_jsonl" */
    const char *crc_attr; /* "params_crc32", ... */
    int is_tensors;
    checkpoint_part_status status;
    unsigned int stored_crc, computed_crc;
    char problem[512];               /* "" when OK */
    checkpoint_tensor_data *tensors; /* tensor parts: in buffer order */
    int ntensors;
    char *text;                      /* text parts: the text, even when corrupt */
} checkpoint_part;

typedef struct {
    char problem[768]; /* why the file could not be opened at all, or why its counters and
                          model config are refused (attributes_crc32, ranges), or "" */
    int format_version; /* -1 when unknown */
    checkpoint_attr *attrs; /* every attribute of /, by name */
    int nattrs;
    checkpoint_part parts[CHECKPOINT_PARTS];
    int damaged; /* a problem anywhere (an unreadable attribute, a part not OK) */
} checkpoint_contents;

/* Reads everything of path that can be read into c (free it with checkpoint_contents_free).
 * Returns 0 for an intact file, -1 for a damaged one (c says what is damaged). */
int checkpoint_inspect(const char *path, checkpoint_contents *c);
void checkpoint_contents_free(checkpoint_contents *c);
/* The attribute called name, or NULL. */
const checkpoint_attr *checkpoint_contents_attr(const checkpoint_contents *c, const char *name);
const char *checkpoint_part_status_name(checkpoint_part_status s);

#endif
