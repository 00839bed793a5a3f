/* fuzz_rcluster: libFuzzer harness for the Redis Cluster replies weir reads
 * from the network (core/rcluster.c): CLUSTER SHARDS and CLUSTER SLOTS
 * replies (the input as RESP, parsed by hiredis's reader as weir's
 * clients do) and MOVED / ASK errors (the raw input).
 *
 * Checks: every range handed out is 0 <= first <= last < 16384 with 1 to
 * RCLUSTER_NODES_MAX nodes whose host is a NUL-terminated string shorter
 * than RCLUSTER_HOST_MAX and whose port is 1..65535; a parsed redirection
 * has a slot below 16384 and a port 1..65535. */
#include <hiredis/hiredis.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/rcluster.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* hiredis 0.14's reader has no cap on an array's length ("*99912704"
 * allocates its element table at once): such inputs test hiredis, not
 * the walks, so arrays longer than 9999 are left out. */
static int fuzz_rcluster_huge(const uint8_t *data, size_t size)
{
    for (size_t i = 0; i < size; i++) {
        size_t digits = 0;
        if (data[i] != '*')
            continue;
        while (i + 1 + digits < size && data[i + 1 + digits] >= '0' && data[i + 1 + digits] <= '9')
            digits++;
        if (digits > 4)
            return 1;
    }
    return 0;
}

static int fuzz_rcluster_range(void *arg, unsigned first, unsigned last,
                               const struct rcluster_node *nodes, size_t n)
{
    if (first > last || last >= RCLUSTER_SLOTS || n < 1 || n > RCLUSTER_NODES_MAX)
        abort();
    for (size_t i = 0; i < n; i++)
        if (strnlen(nodes[i].host, RCLUSTER_HOST_MAX) >= RCLUSTER_HOST_MAX ||
            nodes[i].port < 1 || nodes[i].port > 65535)
            abort();
    (*(unsigned *)arg)++;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    struct rcluster_redirect rd;
    if (rcluster_redirect_parse((const char *)data, size, &rd) == 0 &&
        (rd.slot >= RCLUSTER_SLOTS || rd.port < 1 || rd.port > 65535 ||
         strnlen(rd.host, RCLUSTER_HOST_MAX) >= RCLUSTER_HOST_MAX))
        abort();

    if (fuzz_rcluster_huge(data, size))
        return 0;
    redisReader *rr = redisReaderCreate();
    if (!rr)
        abort();
    void *reply = NULL;
    if (redisReaderFeed(rr, (const char *)data, size) == REDIS_OK &&
        redisReaderGetReply(rr, &reply) == REDIS_OK && reply) {
        unsigned ranges = 0;
        int rc = rcluster_slots_walk(reply, "self", fuzz_rcluster_range, &ranges);
        if (rc > 0 && (unsigned)rc != ranges)
            abort();
        ranges = 0;
        rc = rcluster_shards_walk(reply, "self", fuzz_rcluster_range, &ranges);
        if (rc > 0 && (unsigned)rc != ranges)
            abort();
        freeReplyObject(reply);
    }
    redisReaderFree(rr);
    return 0;
}
