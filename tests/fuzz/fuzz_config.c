/* fuzz_config: libFuzzer target for the INI configuration (trainer/config.c over inih).
 * The input is a configuration file, any bytes. It must parse or be refused with a message
 * naming the file and line, never crash; its first line is also applied as a --set
 * assignment. A configuration that parses and passes config_finish must give a resolved text
 * (config_to_ini) that parses back to the same text. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "trainer/trainer.h"

static char path[4096];

static void remove_input(void) { unlink(path); }

/* Where the input file goes: memory (/dev/shm) when there is one, the file being rewritten
 * for every input; else TMPDIR or /tmp. */
static const char *scratch_dir(void)
{
    if (access("/dev/shm", W_OK) == 0) return "/dev/shm";
    return getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Through a file, as lawt_dist reads it: NUL bytes and all. */
    if (!path[0]) {
        snprintf(path, sizeof path, "%s/lawt-fuzz-config-%ld.ini", scratch_dir(), (long)getpid());
        atexit(remove_input);
    }
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0) abort();
    static trainer_config cfg, again;
    char err[4096];
    config_init(&cfg);
    err[0] = '\0';
    int rc = config_parse_file(&cfg, path, err, sizeof err);
    if (rc != 0 && strncmp(err, path, strlen(path)) != 0) {
        fprintf(stderr, "a refusal that does not name the file: %s\n", err);
        abort();
    }
    /* The first line as a --set assignment too (values inih never hands over: blanks, ';'). */
    if (rc == 0) {
        char assignment[512];
        size_t k = 0;
        while (k < size && k < sizeof assignment - 1 && data[k] != '\n' && data[k] != '\0') k++;
        memcpy(assignment, data, k);
        assignment[k] = '\0';
        if (config_set_assignment(&cfg, assignment, err, sizeof err) != 0 &&
            strncmp(err, "--set ", 6) != 0) {
            fprintf(stderr, "a refusal that does not name the --set: %s\n", err);
            abort();
        }
    }
    if (rc != 0 || config_finish(&cfg, err, sizeof err) != 0) return 0;
    char *text = config_to_ini(&cfg);
    config_init(&again);
    if (config_parse_string(&again, text, "resolved", err, sizeof err) != 0 ||
        config_finish(&again, err, sizeof err) != 0) {
        fprintf(stderr, "the resolved text does not parse back: %s\n%s", err, text);
        abort();
    }
    char *text2 = config_to_ini(&again);
    if (strcmp(text, text2) != 0) {
        fprintf(stderr, "the resolved text changes when parsed back:\n%s\n---\n%s", text, text2);
        abort();
    }
    free(text);
    free(text2);
    return 0;
}
