/* grpc: see the header. Nothing here allocates; the names table is the
 * one X-macro list. */
#include "http/grpc.h"

#include <string.h>

#include "http/http_parser.h"

static const struct {
    const char *name;
    unsigned code;
} grpc_retry_on[] = {
#define GRPC_RETRY_ON_ROW(s, c) { s, c },
    GRPC_RETRY_ON_LIST(GRPC_RETRY_ON_ROW)
#undef GRPC_RETRY_ON_ROW
};

uint32_t grpc_retry_on_bit(const char *s)
{
    for (size_t i = 0; i < sizeof(grpc_retry_on) / sizeof(grpc_retry_on[0]); i++)
        if (strcmp(grpc_retry_on[i].name, s) == 0)
            return GRPC_STATUS_BIT(grpc_retry_on[i].code);
    return 0;
}

const char *grpc_retry_on_names(void)
{
#define GRPC_RETRY_ON_NAME(s, c) ", " s
    static const char names[] = GRPC_RETRY_ON_LIST(GRPC_RETRY_ON_NAME);
#undef GRPC_RETRY_ON_NAME
    return names + 2;
}

/* content-type application/grpc, application/grpc+proto, application/grpc;x=y */
static int grpc_content_type(struct http_slice v)
{
    static const char base[] = "application/grpc";
    size_t n = sizeof(base) - 1;
    if (v.len < n || !http_slice_eq_nocase((struct http_slice){ v.p, n }, base))
        return 0;
    return v.len == n || v.p[n] == '+' || v.p[n] == ';';
}

int grpc_trailers_only_status(const struct http_msg *msg)
{
    if (msg->status != 200 || msg->body_kind == HTTP_BODY_UNTIL_CLOSE ||
        (msg->body_kind == HTTP_BODY_LENGTH && msg->content_length != 0))
        return -1;
    int ct = http_msg_find(msg, "content-type");
    int gs = http_msg_find(msg, "grpc-status");
    if (ct < 0 || gs < 0 || !grpc_content_type(msg->headers[ct].value))
        return -1;
    struct http_slice v = msg->headers[gs].value;
    if (v.len == 0 || v.len > 2)
        return -1;
    int code = 0;
    for (size_t i = 0; i < v.len; i++) {
        if (v.p[i] < '0' || v.p[i] > '9')
            return -1;
        code = code * 10 + (v.p[i] - '0');
    }
    return code <= GRPC_STATUS_MAX ? code : -1;
}
