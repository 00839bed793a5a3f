/* fuzz_autoscale_cmd: libFuzzer harness for the shell-less command
 * splitter of autoscale: blocks (autoscale/autoscale_cfg.c), which turns
 * the configuration's `command:` and `hooks:` strings into argv.
 *
 * The input (up to its first NUL) is split. Checks: a success has 1 to
 * AUTOSCALE_MAX_ARGS - 1 arguments, NULL-terminated, none longer than the
 * input; each argument written back single-quoted (a quote as '\'') and
 * split again gives the same arguments (a round trip); a failure leaves
 * nothing allocated (the leak checker sees it). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "autoscale/autoscale_cfg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The arguments of c quoted back into one line (the caller frees). */
static char *fuzz_quote(const struct cfg_autoscale_cmd *c, size_t input_len)
{
    char *out = malloc(input_len * 4 + c->argc * 3 + 1), *o = out;
    if (!out)
        abort();
    for (size_t i = 0; i < c->argc; i++) {
        if (i)
            *o++ = ' ';
        *o++ = '\'';
        for (const char *p = c->argv[i]; *p; p++) {
            if (*p == '\'') {
                memcpy(o, "'\\''", 4);
                o += 4;
            } else {
                *o++ = *p;
            }
        }
        *o++ = '\'';
    }
    *o = 0;
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    char *s = malloc(size + 1);
    if (!s)
        abort();
    memcpy(s, data, size);
    s[size] = 0;
    size_t len = strlen(s);
    struct cfg_autoscale_cmd c;
    if (autoscale_cmd_split(s, &c) != 0) {
        free(s);
        return 0;
    }
    if (c.argc < 1 || c.argc >= AUTOSCALE_MAX_ARGS || c.argv[c.argc] != NULL)
        abort();
    for (size_t i = 0; i < c.argc; i++)
        if (strlen(c.argv[i]) > len)
            abort();
    char *q = fuzz_quote(&c, len);
    struct cfg_autoscale_cmd again;
    if (autoscale_cmd_split(q, &again) != 0 || again.argc != c.argc)
        abort();
    for (size_t i = 0; i < c.argc; i++)
        if (strcmp(again.argv[i], c.argv[i]) != 0)
            abort();
    autoscale_cmd_free(&again);
    autoscale_cmd_free(&c);
    free(q);
    free(s);
    return 0;
}
