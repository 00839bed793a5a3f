/* fuzz_qredis: libFuzzer harness for what the Redis queue backend
 * (queue/qredis.c) parses: receipt handles from clients, and the receive
 * script's reply from Redis.
 *
 * First byte 0 (or an input of one byte): the rest is a receipt handle
 * (NUL-terminated copy); a parsed one must be digits, '-', digits, and must
 * parse the same way again with its 'R' put back. Otherwise the rest is RESP
 * read by hiredis's reader into replies (arrays of at most 4096 elements),
 * each walked as a receive reply (no store: dead letters are not moved).
 * Every message handed out must have a receipt that parses to its stream
 * id, a body and an id; the count returned must be the messages handed out.
 */
#include <errno.h>
#include <hiredis/hiredis.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "queue/qbackend.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

static void fuzz_receipt(const char *s)
{
    char id[QREDIS_ID_MAX], again[QREDIS_ID_MAX + 1];
    if (qredis_receipt_parse(s, id) < 0)
        return;
    size_t len = strlen(id), dash = strcspn(id, "-");
    FUZZ_CHECK(dash > 0 && dash < len - 1);
    FUZZ_CHECK(strspn(id, "0123456789") == dash);
    FUZZ_CHECK(strspn(id + dash + 1, "0123456789") == len - dash - 1);
    again[0] = 'R';
    memcpy(again + 1, id, len + 1);
    char id2[QREDIS_ID_MAX];
    FUZZ_CHECK(qredis_receipt_parse(again, id2) == 0 && strcmp(id, id2) == 0);
}

static void fuzz_on_msg(void *arg, const struct queue_received *m)
{
    char id[QREDIS_ID_MAX];
    FUZZ_CHECK(m->id && m->body && m->receipt && m->md5_body && m->md5_attrs);
    FUZZ_CHECK(m->attrs == NULL || m->attrs_len > 0);
    fuzz_receipt(m->receipt);
    (void)qredis_receipt_parse(m->receipt, id);
    (*(int *)arg)++;
}

/* Whether the RESP bytes declare an array of more than 4096 elements:
 * hiredis's reader allocates them all up front (a reply from a hostile
 * server, not what the receive script sends: at most 10 messages). */
static int fuzz_huge_array(const uint8_t *data, size_t size)
{
    for (size_t i = 0; i < size; i++) {
        unsigned long n = 0;
        if (data[i] != '*')
            continue;
        for (size_t j = i + 1; j < size && data[j] >= '0' && data[j] <= '9' && n <= 4096; j++)
            n = n * 10 + (unsigned long)(data[j] - '0');
        if (n > 4096)
            return 1;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    if (size <= 1 || data[0] == 0) {
        char *s = malloc(size + 1);
        FUZZ_CHECK(s != NULL);
        if (size > 1)
            memcpy(s, data + 1, size - 1);
        s[size > 1 ? size - 1 : 0] = 0;
        fuzz_receipt(s);
        free(s);
        return 0;
    }
    if (fuzz_huge_array(data + 1, size - 1))
        return 0;
    redisReader *rd = redisReaderCreate();
    FUZZ_CHECK(rd != NULL);
    redisReaderFeed(rd, (const char *)data + 1, size - 1);
    void *reply = NULL;
    while (redisReaderGetReply(rd, &reply) == REDIS_OK && reply != NULL) {
        int handed = 0;
        struct qcall call;
        memset(&call, 0, sizeof(call));
        call.on_msg = fuzz_on_msg;
        call.msg_arg = &handed;
        int n = qredis_receive_reply(&call, reply);
        FUZZ_CHECK(n == -EPROTO || n == handed);
        freeReplyObject(reply);
        reply = NULL;
    }
    redisReaderFree(rd);
    return 0;
}
