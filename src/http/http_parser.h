/* http_parser: a strict, zero-copy HTTP/1.1 message-head parser and a
 * streaming chunked-body decoder (RFC 9112).
 *
 * http_parse_request()/http_parse_response() look at the bytes received so
 * far. While the head (start line, fields, empty line) is incomplete they
 * return HTTP_PARSE_PARTIAL and the caller calls again with more bytes (the
 * same buffer start, longer length); `msg->scan_pos` remembers how far the
 * previous call got so the work is not redone from scratch. When the head is
 * complete they return the number of bytes it occupies and fill `msg` with
 * slices into the caller's buffer (nothing is copied or allocated: the buffer
 * must stay put while msg is used). On a violation they return
 * HTTP_PARSE_ERROR with msg->error_status (the HTTP status to answer: 400,
 * 414, 431, 501, 505), msg->error (a static reason string) and msg->error_pos
 * (byte offset of the offending byte).
 *
 * Framing is decided here, once, so the proxy never re-derives it:
 * msg->body_kind says whether a body follows and how it is delimited. */
#ifndef WEIR_HTTP_PARSER_H
#define WEIR_HTTP_PARSER_H

#include <stddef.h>
#include <stdint.h>

#define HTTP_PARSE_ERROR (-1)
#define HTTP_PARSE_PARTIAL (-2)

#define HTTP_MAX_HEADERS_HARD 256  /* the array size; limits.headers is <= this */
#define HTTP_HOP_REMOVED 2         /* a hop[] mark: the field was removed (http_edit.h) */

struct http_slice {
    const char *p;
    size_t len;
};

struct http_header {
    struct http_slice name;
    struct http_slice value;       /* without leading/trailing OWS */
};

#define HTTP_METHOD_LIST(X) \
    X(HTTP_METHOD_GET, "GET") X(HTTP_METHOD_HEAD, "HEAD") X(HTTP_METHOD_POST, "POST") \
    X(HTTP_METHOD_PUT, "PUT") X(HTTP_METHOD_DELETE, "DELETE") X(HTTP_METHOD_CONNECT, "CONNECT") \
    X(HTTP_METHOD_OPTIONS, "OPTIONS") X(HTTP_METHOD_TRACE, "TRACE") X(HTTP_METHOD_PATCH, "PATCH")
#define HTTP_METHOD_ENUM(e, s) e,
enum http_method { HTTP_METHOD_LIST(HTTP_METHOD_ENUM) HTTP_METHOD_OTHER };
#undef HTTP_METHOD_ENUM

enum http_body_kind {
    HTTP_BODY_NONE,           /* no body follows the head */
    HTTP_BODY_LENGTH,         /* exactly msg->content_length bytes follow */
    HTTP_BODY_CHUNKED,        /* chunked coding follows: use struct http_chunked */
    HTTP_BODY_UNTIL_CLOSE,    /* response only: body runs until the server closes */
};

/* Hop-by-hop and framing fields are recognised and flagged; they are kept in
 * headers[] too, with msg->hop[i] != 0, so the serialiser can skip them. */
struct http_msg {
    /* request */
    enum http_method method;
    struct http_slice method_str;
    struct http_slice target;      /* request-target as sent */
    struct http_slice path;        /* target up to '?' (origin-form), or the path of absolute-form
                                      (a static "/" if that path is empty; "*" for asterisk-form) */
    struct http_slice query;       /* after '?' without it, may be empty */
    struct http_slice host;        /* Host field value (or authority of absolute-form) */
    /* response */
    int status;
    struct http_slice reason;
    /* both */
    int version_minor;             /* 0 or 1 (HTTP/1.x only) */
    struct http_header headers[HTTP_MAX_HEADERS_HARD];
    unsigned char hop[HTTP_MAX_HEADERS_HARD]; /* 1 = hop-by-hop or framing: not forwarded as is;
                                                 HTTP_HOP_REMOVED: removed by a route step */
    size_t n_headers;
    enum http_body_kind body_kind;
    uint64_t content_length;       /* valid when body_kind == HTTP_BODY_LENGTH */
    unsigned keep_alive : 1;       /* persistent after this message (version + Connection) */
    unsigned expect_continue : 1;  /* request had "Expect: 100-continue" */
    unsigned upgrade : 1;          /* Connection: upgrade with an Upgrade field */
    unsigned has_te_trailers : 1;  /* TE: trailers */
    unsigned has_content_length : 1; /* a valid Content-Length was present (content_length holds
                                        it even when body_kind is NONE, e.g. HEAD/304 responses) */
    unsigned absolute_form : 1;    /* request-target was absolute-form (host/path from it) */
    unsigned te_other_codings : 1; /* response: Transfer-Encoding lists codings besides chunked */
    struct http_slice upgrade_proto; /* Upgrade field value */
    /* error */
    int error_status;
    const char *error;
    size_t error_pos;
    /* resumption */
    size_t scan_pos;               /* bytes already searched for the end of the head; the only
                                      state carried between calls: a caller may http_msg_init()
                                      before each call and restore just this (0 if the bytes
                                      moved). After a result: the head length. */
    unsigned pflags;               /* internal: fields seen so far (HTTP_PF_* in the .c) */
    unsigned char pstate;          /* internal: start line / fields / done / error */
    unsigned char empty_lines;     /* internal: empty lines skipped before the start line */
    unsigned char te_chunked;      /* internal: "chunked" codings seen (saturates at 2) */
    unsigned char conn_options;    /* internal: Connection options naming other fields */
};

struct http_limits {
    size_t max_request_line;       /* request line longer -> 414 */
    size_t max_header_bytes;       /* whole head longer -> 431 */
    size_t max_headers;            /* more fields -> 431 (<= HTTP_MAX_HEADERS_HARD) */
};

/* Call before the first parse of every message (zeroes the state). */
void http_msg_init(struct http_msg *msg);

/* See the file comment. Request rules enforced (each -> 400 unless noted):
 * method token syntax; request-target syntax (origin-form, absolute-form,
 * authority-form only with CONNECT, "*" only with OPTIONS; absolute-form
 * only http/https, without userinfo) with no control bytes, spaces, non-ASCII
 * or '#'; "HTTP/1.0" or "HTTP/1.1" only (other HTTP/x.y -> 505);
 * exactly one SP between parts; CRLF line ends (a bare LF or a bare CR
 * anywhere in the head is rejected); field names are tokens, no
 * whitespace before ':'; obs-fold; field values without NUL, CR, LF or other
 * CTLs except HTAB; Host missing on 1.1, repeated, or invalid; Content-Length
 * not a plain decimal, duplicated (even with equal values) or too large;
 * Transfer-Encoding together with Content-Length; Transfer-Encoding whose
 * final coding is not chunked, chunked listed twice, or any coding other
 * than chunked (-> 501); Transfer-Encoding in an HTTP/1.0 request; a head
 * longer than the limits (-> 414/431, reported as soon as the bytes received
 * prove it, even while the head is incomplete); an Expect other than
 * 100-continue (-> 417); a Connection field naming more than 32 other
 * fields (each named field is marked in hop[], except Host). Up to HTTP_MAX_EMPTY_LINES empty lines before the
 * request line are skipped (RFC 9112 2.2); the return value counts them.
 * `lim` NULL means the defaults below. Calling again after a result returns
 * the same result. Results and errors (status and position) do not depend on
 * how the bytes were split over calls. */
#define HTTP_MAX_EMPTY_LINES 4
#define HTTP_DEFAULT_MAX_REQUEST_LINE 8192
#define HTTP_DEFAULT_MAX_HEADER_BYTES 65536
#define HTTP_DEFAULT_MAX_HEADERS 100
int http_parse_request(const char *buf, size_t len, struct http_msg *msg,
                       const struct http_limits *lim);

/* Response heads: status-line "HTTP/1.x NNN reason"; the same field rules.
 * `req_method` and the status decide framing (RFC 9112 6.3): HEAD, 1xx, 204
 * and 304 have no body; 2xx to CONNECT is a tunnel (HTTP_BODY_NONE, the
 * caller knows); chunked wins over Content-Length is NOT accepted: both ->
 * error; neither -> HTTP_BODY_UNTIL_CLOSE (and keep_alive = 0). */
int http_parse_response(const char *buf, size_t len, struct http_msg *msg,
                        const struct http_limits *lim, enum http_method req_method);

/* Streaming chunked decoder (RFC 9112 7.1). Chunk extensions are parsed
 * and dropped; trailer fields are parsed (same syntax rules as fields) and
 * dropped, unless `keep_trailers` is set: then the trailer section's bytes
 * (every field line with its CRLF, not the empty line ending the section)
 * are handed out as HTTP_CHUNK_TRAILER spans, in order, as they arrive; a
 * span may end inside a line (the caller concatenates them). Limits: a chunk-size of more than 16 hex digits or that overflows
 * 2^62 is an error; a chunk line or trailer line longer than 4096 bytes is
 * an error. */
struct http_chunked {
    int state;                     /* internal */
    uint64_t remaining;            /* bytes of the current chunk's data still to come */
    size_t line_len;               /* internal: length of the current size/trailer line */
    unsigned digits;               /* internal */
    unsigned trailer_lines;        /* internal: trailer fields seen (limited) */
    unsigned keep_trailers : 1;    /* set by the caller after init: hand out trailer bytes */
    const char *error;
};

enum http_chunk_result {
    HTTP_CHUNK_DATA = 1,   /* buf[*data_off .. *data_off + *data_len) is body data */
    HTTP_CHUNK_MORE = 2,   /* all of buf consumed (*consumed == len): need more bytes */
    HTTP_CHUNK_DONE = 3,   /* last-chunk and trailers ended; *consumed bytes belonged to the body */
    HTTP_CHUNK_TRAILER = 4, /* keep_trailers only: buf[*data_off .. + *data_len) is trailer bytes */
    HTTP_CHUNK_ERROR = -1, /* c->error says why */
};

void http_chunked_init(struct http_chunked *c);
/* The last-chunk and the trailer section were read (HTTP_CHUNK_DONE returned). */
int http_chunked_done(const struct http_chunked *c);

/* On HTTP_CHUNK_ERROR, *consumed is the offset of the offending byte. */
/* Consumes bytes from buf[0..len) until it has a run of data to hand out,
 * needs more input, finishes or fails. *consumed is always set to the bytes
 * used (including any data span handed out, which ends at *consumed). At
 * most one data span per call; call again with buf + *consumed. */
enum http_chunk_result http_chunked_next(struct http_chunked *c, const char *buf, size_t len,
                                         size_t *consumed, size_t *data_off, size_t *data_len);

/* Helpers for the proxy. */
int http_slice_eq_nocase(struct http_slice s, const char *lit);
/* Returns the index of the first header named `name` (case-insensitive) or -1. */
int http_msg_find(const struct http_msg *msg, const char *name);
const char *http_method_name(enum http_method m);
/* Reason phrase for a status code ("Bad Request"), "Unknown" if none. */
const char *http_status_reason(int status);

#endif
