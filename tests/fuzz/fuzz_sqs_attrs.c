/* fuzz_sqs_attrs: libFuzzer harness for what weir checks in an SQS message
 * before it stores it (queue/sqs_attrs.c): the body's characters and the
 * MessageAttributes (names, types, values, base64), with their MD5.
 *
 * The input is a JSON text (the MessageAttributes map) or, when it does not
 * parse, a message body. For attributes that pass the check, the digest
 * must come out the same from the text weir stores (compact, sorted keys)
 * loaded again, which is what a replay of the log computes: a difference
 * would give a received message another MD5OfMessageAttributes than the
 * send answered. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "queue/qmd5.h"
#include "queue/sqs_internal.h"

#define FUZZ_CHECK(cond) \
    do { \
        if (!(cond)) \
            abort(); \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *copy = malloc(size ? size : 1);
    FUZZ_CHECK(copy != NULL);
    memcpy(copy, data, size);
    (void)sqs_body_ok(copy, size);
    json_t *attrs = json_loadb(copy, size, JSON_DECODE_ANY, NULL);
    free(copy);
    if (attrs == NULL)
        return 0;
    size_t bytes = 0;
    char md5[QMD5_HEX], err[512];
    if (json_is_object(attrs) && sqs_msg_attrs_check(attrs, &bytes, md5, err, sizeof(err)) == 0) {
        char *text = json_dumps(attrs, JSON_COMPACT | JSON_SORT_KEYS);
        FUZZ_CHECK(text != NULL);
        json_t *again = json_loads(text, 0, NULL);
        FUZZ_CHECK(again != NULL);
        char md5_again[QMD5_HEX];
        FUZZ_CHECK(qmd5_attrs(again, md5_again) == 0);
        FUZZ_CHECK(strcmp(md5, md5_again) == 0);
        json_decref(again);
        free(text);
    }
    json_decref(attrs);
    return 0;
}
