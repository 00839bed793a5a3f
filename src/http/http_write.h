/* http_write: re-serialises parsed message heads in weir's one canonical
 * form. Nothing a client or backend sent is passed through byte for byte:
 * the start line is rebuilt, each forwarded field is written as
 * "Name: value\r\n" from its parsed slices, hop-by-hop and framing fields
 * are dropped, and the framing weir chose (one Content-Length or chunked)
 * is written by weir itself. RFC 9112 sections 3, 5, 6; RFC 9110 7.6. */
#ifndef WEIR_HTTP_WRITE_H
#define WEIR_HTTP_WRITE_H

#include <stddef.h>
#include <stdint.h>

#include "http/http_parser.h"

/* A bounded output cursor. Writes past cap set `overflow` and are dropped. */
struct http_out {
    char *p;
    size_t len;
    size_t cap;
    int overflow;
};

void http_out_lit(struct http_out *o, const char *s, size_t n);
void http_out_str(struct http_out *o, const char *s);
void http_out_slice(struct http_out *o, struct http_slice s);
void http_out_u64(struct http_out *o, uint64_t v);
void http_out_hex(struct http_out *o, uint64_t v);

/* What the proxy adds to a forwarded request. */
struct http_fwd_info {
    const char *client_ip;         /* appended to X-Forwarded-For */
    const char *proto;             /* X-Forwarded-Proto */
    const char *request_id;        /* X-Request-Id when the client sent none */
    enum http_body_kind body_kind; /* framing to announce: NONE, LENGTH or CHUNKED */
    uint64_t content_length;
};

/* Writes the request head for the backend: origin-form request line in
 * HTTP/1.1, Host first, the client's end-to-end fields, X-Forwarded-For
 * (the client's list plus client_ip), X-Forwarded-Proto, X-Forwarded-Host,
 * Via, X-Request-Id (kept when the client sent one), the framing field, and
 * for an upgrade "Connection: upgrade" with its Upgrade field. Expect is not
 * forwarded: weir answers 100-continue itself. Returns the bytes written, or
 * -ENOSPC when the head does not fit in cap. */
int http_write_request_head(char *dst, size_t cap, const struct http_msg *msg,
                            const struct http_fwd_info *info);

/* Framing of the response as weir sends it to the client. */
struct http_resp_info {
    enum http_body_kind body_kind; /* NONE, LENGTH or CHUNKED (as sent by weir) */
    uint64_t content_length;
    int keep_alive;                /* 0: "Connection: close" */
    int client_version_minor;      /* 1.0 keep-alive clients get "Connection: keep-alive" */
    int upgrade;                   /* 101: forward Connection: upgrade + Upgrade */
    int pass_transfer_encoding;    /* forward the backend's Transfer-Encoding as is */
};

/* Writes a response head: "HTTP/1.1 status reason", the backend's
 * end-to-end fields, then framing and Connection. A HEAD or 304 response
 * keeps the backend's Content-Length value (body_kind NONE with
 * content_length from the message). Returns bytes written or -ENOSPC. */
int http_write_response_head(char *dst, size_t cap, const struct http_msg *msg,
                             const struct http_resp_info *info);

#endif
