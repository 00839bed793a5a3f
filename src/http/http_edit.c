/* http_edit: see http_edit.h. */
#include "http/http_edit.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

int http_edit_reserved(const char *name, size_t len)
{
    static const char *const names[] = { "content-length", "transfer-encoding", "connection",
                                         "upgrade", "host", "te", "keep-alive", "expect",
                                         "proxy-connection", "trailer" };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strlen(names[i]) == len && strncasecmp(names[i], name, len) == 0)
            return 1;
    return 0;
}

int http_edit_remove(struct http_msg *msg, const char *name, size_t name_len)
{
    int n = 0;
    for (size_t i = 0; i < msg->n_headers; i++) {
        struct http_slice h = msg->headers[i].name;
        if (msg->hop[i] || h.len != name_len || strncasecmp(h.p, name, name_len) != 0)
            continue;
        msg->hop[i] = HTTP_HOP_REMOVED;
        n++;
    }
    return n;
}

int http_edit_add(struct http_msg *msg, struct http_slice name, struct http_slice value)
{
    if (msg->n_headers >= HTTP_MAX_HEADERS_HARD)
        return -ENOSPC;
    msg->headers[msg->n_headers].name = name;
    msg->headers[msg->n_headers].value = value;
    msg->hop[msg->n_headers] = 0;
    msg->n_headers++;
    return 0;
}

int http_edit_set(struct http_msg *msg, struct http_slice name, struct http_slice value)
{
    http_edit_remove(msg, name.p, name.len);
    return http_edit_add(msg, name, value);
}

void http_edit_target(struct http_msg *msg, struct http_slice target)
{
    const char *q = memchr(target.p, '?', target.len);
    msg->target = target;
    msg->path.p = target.p;
    msg->path.len = q ? (size_t)(q - target.p) : target.len;
    msg->query.p = q ? q + 1 : target.p + target.len;
    msg->query.len = q ? target.len - msg->path.len - 1 : 0;
    msg->absolute_form = 0;
}
