/* http_write: see http_write.h. */
#include "http/http_write.h"

#include <errno.h>
#include <string.h>

void http_out_lit(struct http_out *o, const char *s, size_t n)
{
    if (n == 0)
        return; /* s may be NULL for an empty slice */
    if (o->overflow || o->cap - o->len < n) {
        o->overflow = 1;
        return;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

void http_out_str(struct http_out *o, const char *s)
{
    http_out_lit(o, s, strlen(s));
}

void http_out_slice(struct http_out *o, struct http_slice s)
{
    http_out_lit(o, s.p, s.len);
}

void http_out_u64(struct http_out *o, uint64_t v)
{
    char tmp[24];
    size_t i = sizeof(tmp);
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    http_out_lit(o, tmp + i, sizeof(tmp) - i);
}

void http_out_hex(struct http_out *o, uint64_t v)
{
    static const char digits[] = "0123456789abcdef";
    char tmp[16];
    size_t i = sizeof(tmp);
    do {
        tmp[--i] = digits[v & 15];
        v >>= 4;
    } while (v);
    http_out_lit(o, tmp + i, sizeof(tmp) - i);
}

static void http_out_field(struct http_out *o, struct http_slice name, struct http_slice value)
{
    http_out_slice(o, name);
    http_out_lit(o, ": ", 2);
    http_out_slice(o, value);
    http_out_lit(o, "\r\n", 2);
}

/* Fields weir rewrites itself on a forwarded request. */
static int http_write_is_replaced(struct http_slice name)
{
    static const char *const names[] = { "host", "x-forwarded-for", "x-forwarded-proto",
                                         "x-forwarded-host", "via", "expect" };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (http_slice_eq_nocase(name, names[i]))
            return 1;
    return 0;
}

static void http_write_list(struct http_out *o, const struct http_msg *msg, const char *name,
                            const char *last)
{
    int n = 0;
    for (size_t i = 0; i < msg->n_headers; i++) {
        if (!http_slice_eq_nocase(msg->headers[i].name, name))
            continue;
        if (msg->headers[i].value.len == 0)
            continue;
        if (n++ == 0) {
            http_out_str(o, name);
            http_out_lit(o, ": ", 2);
        } else {
            http_out_lit(o, ", ", 2);
        }
        http_out_slice(o, msg->headers[i].value);
    }
    if (n == 0) {
        http_out_str(o, name);
        http_out_lit(o, ": ", 2);
    } else {
        http_out_lit(o, ", ", 2);
    }
    http_out_str(o, last);
    http_out_lit(o, "\r\n", 2);
}

static void http_write_request_line(struct http_out *o, const struct http_msg *msg)
{
    http_out_slice(o, msg->method_str);
    http_out_lit(o, " ", 1);
    if (msg->target.len && msg->target.p[0] != '/' && msg->target.p[0] != '*') {
        /* absolute-form: a backend gets origin-form (RFC 9112 3.2.2) */
        if (msg->path.len)
            http_out_slice(o, msg->path);
        else
            http_out_lit(o, "/", 1);
        if (msg->query.p && msg->query.p > msg->target.p && msg->query.p[-1] == '?') {
            http_out_lit(o, "?", 1);
            http_out_slice(o, msg->query);
        }
    } else {
        http_out_slice(o, msg->target);
    }
    http_out_lit(o, " HTTP/1.1\r\n", 11);
}

int http_write_request_head(char *dst, size_t cap, const struct http_msg *msg,
                            const struct http_fwd_info *info)
{
    struct http_out o = { dst, 0, cap, 0 };
    int has_request_id = 0;

    http_write_request_line(&o, msg);
    /* HTTP/1.1 requires Host, empty when there is no authority (RFC 9112 3.2) */
    http_out_lit(&o, "Host: ", 6);
    http_out_slice(&o, msg->host);
    http_out_lit(&o, "\r\n", 2);
    for (size_t i = 0; i < msg->n_headers; i++) {
        const struct http_header *h = &msg->headers[i];
        if (msg->hop[i] || http_write_is_replaced(h->name))
            continue;
        if (http_slice_eq_nocase(h->name, "x-request-id"))
            has_request_id = 1;
        http_out_field(&o, h->name, h->value);
    }
    http_write_list(&o, msg, "X-Forwarded-For", info->client_ip);
    http_out_lit(&o, "X-Forwarded-Proto: ", 19);
    http_out_str(&o, info->proto);
    http_out_lit(&o, "\r\n", 2);
    if (msg->host.len) {
        http_out_lit(&o, "X-Forwarded-Host: ", 18);
        http_out_slice(&o, msg->host);
        http_out_lit(&o, "\r\n", 2);
    }
    http_write_list(&o, msg, "Via", msg->version_minor ? "1.1 weir" : "1.0 weir");
    if (!has_request_id && info->request_id) {
        http_out_lit(&o, "X-Request-Id: ", 14);
        http_out_str(&o, info->request_id);
        http_out_lit(&o, "\r\n", 2);
    }
    if (info->body_kind == HTTP_BODY_LENGTH) {
        http_out_lit(&o, "Content-Length: ", 16);
        http_out_u64(&o, info->content_length);
        http_out_lit(&o, "\r\n", 2);
    } else if (info->body_kind == HTTP_BODY_CHUNKED) {
        http_out_lit(&o, "Transfer-Encoding: chunked\r\n", 28);
    }
    /* "TE: trailers" says the client takes trailers (gRPC needs it); TE is
     * hop-by-hop, so it is named in Connection too (RFC 9110 10.1.4). Other
     * codings it lists are not passed on. */
    if (msg->upgrade) {
        http_out_lit(&o, "Connection: upgrade", 19);
        if (msg->has_te_trailers)
            http_out_lit(&o, ", te", 4);
        http_out_lit(&o, "\r\nUpgrade: ", 11);
        http_out_slice(&o, msg->upgrade_proto);
        http_out_lit(&o, "\r\n", 2);
    } else if (msg->has_te_trailers) {
        http_out_lit(&o, "Connection: te\r\n", 16);
    }
    if (msg->has_te_trailers)
        http_out_lit(&o, "TE: trailers\r\n", 14);
    http_out_lit(&o, "\r\n", 2);
    return o.overflow ? -ENOSPC : (int)o.len;
}

int http_write_response_head(char *dst, size_t cap, const struct http_msg *msg,
                             const struct http_resp_info *info)
{
    struct http_out o = { dst, 0, cap, 0 };
    int cl = http_msg_find(msg, "content-length");

    http_out_lit(&o, "HTTP/1.1 ", 9);
    http_out_u64(&o, (uint64_t)msg->status);
    http_out_lit(&o, " ", 1);
    if (msg->reason.len)
        http_out_slice(&o, msg->reason);
    else
        http_out_str(&o, http_status_reason(msg->status));
    http_out_lit(&o, "\r\n", 2);
    for (size_t i = 0; i < msg->n_headers; i++)
        if (!msg->hop[i] || (info->pass_transfer_encoding &&
                             http_slice_eq_nocase(msg->headers[i].name, "transfer-encoding")))
            http_out_field(&o, msg->headers[i].name, msg->headers[i].value);
    if (info->body_kind == HTTP_BODY_LENGTH) {
        http_out_lit(&o, "Content-Length: ", 16);
        http_out_u64(&o, info->content_length);
        http_out_lit(&o, "\r\n", 2);
    } else if (info->body_kind == HTTP_BODY_CHUNKED) {
        if (!info->pass_transfer_encoding) /* else the backend's list, ending in chunked, went out */
            http_out_lit(&o, "Transfer-Encoding: chunked\r\n", 28);
    } else if (cl >= 0 && msg->status != 204 && msg->status >= 200) {
        /* HEAD and 304 announce the length of the body they do not carry */
        http_out_field(&o, msg->headers[cl].name, msg->headers[cl].value);
    }
    if (info->upgrade) {
        http_out_lit(&o, "Connection: upgrade\r\nUpgrade: ", 30);
        http_out_slice(&o, msg->upgrade_proto);
        http_out_lit(&o, "\r\n", 2);
    } else if (!info->keep_alive) {
        http_out_lit(&o, "Connection: close\r\n", 19);
    } else if (info->client_version_minor == 0) {
        http_out_lit(&o, "Connection: keep-alive\r\n", 24);
    }
    http_out_lit(&o, "\r\n", 2);
    return o.overflow ? -ENOSPC : (int)o.len;
}
