/* http_parser: strict HTTP/1.1 message heads and chunked bodies (RFC 9112).
 *
 * A head is parsed in two steps:
 *
 *   buf:  GET /a HTTP/1.1 CRLF Host: x CRLF Acc|ept: ...          (len)
 *         ^                                  ^
 *         0                                  scan_pos: the LF search resumes here
 *
 *   1. find the end: memchr() for LF from scan_pos; an LF that ends a
 *      non-empty line is passed over; one that ends an empty line (or a bare
 *      LF, or CR CR LF) stops the search. scan_pos = len when none is found, so bytes
 *      arriving a few at a time are searched once, and scan_pos is all the
 *      state there is between calls (the proxy keeps one msg per worker,
 *      re-initialises it per call and restores only scan_pos).
 *   2. parse, once: the lines from buf[0] to that LF, in order (start line,
 *      field lines), filling msg with slices; framing, Connection and Host
 *      are decided at the empty line from what the fields said.
 *
 * The size limits (414, 431) are checked on every call, on the bytes present,
 * so a client that never ends its head is stopped early. They grow only
 * with len, and step 2 checks them on its prefix first, so a result (status
 * and position) never depends on how the bytes were split over calls.
 *
 * Byte classes come from one 256-entry table; field values are checked
 * eight bytes at a time (a word holding no byte < 0x20 and no 0x7f is all
 * valid) and only words holding a CTL or HTAB go byte by byte.
 *
 * The chunked decoder is a byte-level state machine for the size and
 * trailer lines (they are short) that hands out data runs whole, without
 * touching the bytes.
 *
 * This file must never allocate, never copy the caller's bytes, never read
 * at or past buf[len], and never accept what RFC 9112 says to reject: a
 * lenient parser in front of a stricter or different one is how request
 * smuggling happens. */
#include "http/http_parser.h"

#include <string.h>

/* byte classes */
#define C_TCHAR 1u  /* token (RFC 9110 5.6.2) */
#define C_TARGET 2u /* request-target: visible ASCII except '#' */
#define C_VALUE 4u  /* field-value byte: HTAB, SP, VCHAR, obs-text */
#define C_HOST 8u   /* reg-name: unreserved, pct-encoded's '%', sub-delims */
#define C_HEX 16u

static const unsigned char http_cls[256] = {
    0,  0,  0,  0,  0,  0,  0,  0,  0,  4,  0,  0,  0,  0,  0,  0,  /* 0x00 */
    0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  /* 0x10 */
    4,  15, 6,  5,  15, 15, 15, 15, 14, 14, 15, 15, 14, 15, 15, 6,  /* 0x20 */
    31, 31, 31, 31, 31, 31, 31, 31, 31, 31, 6,  14, 6,  14, 6,  6,  /* 0x30 */
    6,  31, 31, 31, 31, 31, 31, 15, 15, 15, 15, 15, 15, 15, 15, 15, /* 0x40 */
    15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 6,  6,  6,  7,  15, /* 0x50 */
    7,  31, 31, 31, 31, 31, 31, 15, 15, 15, 15, 15, 15, 15, 15, 15, /* 0x60 */
    15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 6,  7,  6,  15, 0,  /* 0x70 */
    4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  /* 0x80 */
    4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  /* 0x90 */
    4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  /* 0xa0 */
    4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  /* 0xb0 */
    4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  /* 0xc0 */
    4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  /* 0xd0 */
    4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  /* 0xe0 */
    4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  /* 0xf0 */
};

#define HTTP_IS(ch, cls) (http_cls[(unsigned char)(ch)] & (cls))
#define HTTP_IS_WS(ch) ((ch) == ' ' || (ch) == '\t')
#define HTTP_IS_DIGIT(ch) ((unsigned)((unsigned char)(ch) - '0') < 10u)

#define HTTP_MAX_LENGTH ((uint64_t)1 << 62) /* Content-Length and chunk-size cap */
#define HTTP_MAX_CONNECTION_OPTIONS 32 /* field names a request may list in Connection */

/* msg->pstate */
enum http_pstate {
    HTTP_PS_START,  /* skipping empty lines, waiting for the start line */
    HTTP_PS_FIELDS, /* field lines until the empty line */
    HTTP_PS_DONE,   /* head complete: scan_pos holds its length */
    HTTP_PS_ERROR,  /* failed: error fields are set */
};

/* msg->pflags: what the field lines seen so far said */
enum http_pflag {
    HTTP_PF_RESPONSE = 1u << 0,
    HTTP_PF_HOST = 1u << 1,
    HTTP_PF_TE = 1u << 2,
    HTTP_PF_TE_LAST_CHUNKED = 1u << 3, /* the last coding listed so far is chunked */
    HTTP_PF_TE_OTHER = 1u << 4,        /* a coding other than chunked was listed */
    HTTP_PF_CONN_CLOSE = 1u << 5,
    HTTP_PF_CONN_KEEP_ALIVE = 1u << 6,
    HTTP_PF_CONN_UPGRADE = 1u << 7,
    HTTP_PF_CONN_OTHER = 1u << 8, /* Connection names other fields: mark them at the end */
    HTTP_PF_UPGRADE = 1u << 9,
};

/* what a field name means to the parser */
enum http_field_kind {
    HTTP_FK_OTHER,
    HTTP_FK_HOP, /* hop-by-hop, nothing else to do */
    HTTP_FK_HOST,
    HTTP_FK_CONTENT_LENGTH,
    HTTP_FK_TRANSFER_ENCODING,
    HTTP_FK_CONNECTION,
    HTTP_FK_UPGRADE,
    HTTP_FK_EXPECT,
    HTTP_FK_TE,
};

static int http_fail(struct http_msg *msg, int status, const char *why, size_t pos)
{
    msg->error_status = (msg->pflags & HTTP_PF_RESPONSE) ? 502 : status;
    msg->error = why;
    msg->error_pos = pos;
    msg->pstate = HTTP_PS_ERROR;
    return HTTP_PARSE_ERROR;
}

/* `n` bytes at `p` equal the lower-case literal `lit`, ignoring ASCII case.
 * Only for token bytes against literals made of letters and '-': OR-ing 0x20
 * folds case there and maps no other token byte onto a letter or '-'. */
static int http_token_is(const char *p, const char *lit, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        if ((unsigned char)(p[k] | 0x20) != (unsigned char)lit[k])
            return 0;
    }
    return 1;
}

static int http_ascii_eq_nocase(const char *a, const char *b, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        unsigned char x = (unsigned char)a[k], y = (unsigned char)b[k];
        if ((unsigned)(x - 'A') < 26u)
            x |= 0x20;
        if ((unsigned)(y - 'A') < 26u)
            y |= 0x20;
        if (x != y)
            return 0;
    }
    return 1;
}

#define HTTP_TOKEN_IS(s, lit) ((s).len == sizeof(lit) - 1 && http_token_is((s).p, lit, (s).len))

static struct http_slice http_slice_make(const char *p, size_t len)
{
    struct http_slice s = {p, len};
    return s;
}

/* Next element of the comma-separated list v[*pos..n), OWS trimmed (it may
 * be empty: RFC 9110 5.6.1 says to ignore empty elements). Returns 0 when
 * the list is exhausted. */
static int http_list_next(const char *v, size_t n, size_t *pos, struct http_slice *el)
{
    size_t i = *pos;
    if (i > n)
        return 0;
    const char *comma = memchr(v + i, ',', n - i);
    size_t end = comma ? (size_t)(comma - v) : n;
    *pos = end + 1;
    while (i < end && HTTP_IS_WS(v[i]))
        i++;
    while (end > i && HTTP_IS_WS(v[end - 1]))
        end--;
    *el = http_slice_make(v + i, end - i);
    return 1;
}

static int http_is_token(struct http_slice s)
{
    if (s.len == 0)
        return 0;
    for (size_t k = 0; k < s.len; k++) {
        if (!HTTP_IS(s.p[k], C_TCHAR))
            return 0;
    }
    return 1;
}

/* Offset of the first byte of p[i..e) that may not appear in a field value
 * (a CTL other than HTAB, or DEL), or e. Words of eight ordinary bytes are
 * passed whole: (x - 0x20..) & ~x & 0x80.. is non-zero exactly when some byte
 * is below 0x20, and the same test on x ^ 0x7f.. finds a DEL. */
static size_t http_value_scan(const unsigned char *p, size_t i, size_t e)
{
    const uint64_t ones = 0x0101010101010101ull;
    const uint64_t high = 0x8080808080808080ull;
    while (e - i >= 8) {
        uint64_t x;
        memcpy(&x, p + i, 8);
        uint64_t y = x ^ (ones * 0x7f);
        if ((((x - ones * 0x20) & ~x) | ((y - ones) & ~y)) & high) {
            for (size_t k = 0; k < 8; k++) {
                if (!HTTP_IS(p[i + k], C_VALUE))
                    return i + k;
            }
        }
        i += 8;
    }
    for (; i < e; i++) {
        if (!HTTP_IS(p[i], C_VALUE))
            return i;
    }
    return e;
}

/* uri-host [ ":" port ] (RFC 9110 4.2.3, 7.2): a reg-name or an IP-literal,
 * no userinfo, no path; the port at most 65535, required if need_port. */
static int http_host_valid(const char *p, size_t n, int need_port)
{
    size_t i = 0;
    if (n == 0)
        return 0;
    if (p[0] == '[') {
        i = 1;
        while (i < n && (HTTP_IS(p[i], C_HEX) || p[i] == ':' || p[i] == '.'))
            i++;
        if (i == 1 || i == n || p[i] != ']')
            return 0;
        i++;
    } else {
        while (i < n && HTTP_IS(p[i], C_HOST))
            i++;
        if (i == 0)
            return 0;
    }
    if (i == n)
        return !need_port;
    if (p[i] != ':')
        return 0;
    i++;
    if (n - i > 5 || (need_port && i == n))
        return 0;
    unsigned port = 0;
    for (; i < n; i++) {
        if (!HTTP_IS_DIGIT(p[i]))
            return 0;
        port = port * 10 + (unsigned)(p[i] - '0');
    }
    return port <= 65535;
}

/* 1*DIGIT, at most 2^62 (RFC 9110 8.6). Returns 0 if not a plain number. */
static int http_parse_length(struct http_slice v, uint64_t *out)
{
    uint64_t n = 0;
    if (v.len == 0)
        return 0;
    for (size_t k = 0; k < v.len; k++) {
        if (!HTTP_IS_DIGIT(v.p[k]))
            return 0;
        unsigned d = (unsigned)(v.p[k] - '0');
        if (n > (HTTP_MAX_LENGTH - d) / 10)
            return 0;
        n = n * 10 + d;
    }
    *out = n;
    return 1;
}

static enum http_method http_method_lookup(const char *p, size_t n)
{
#define HTTP_METHOD_MATCH(e, s) \
    if (n == sizeof(s) - 1 && memcmp(p, s, n) == 0) \
        return e;
    HTTP_METHOD_LIST(HTTP_METHOD_MATCH)
#undef HTTP_METHOD_MATCH
    return HTTP_METHOD_OTHER;
}

/* "HTTP/1.0" or "HTTP/1.1" -> minor; another HTTP/x.y -> -505; else -400. */
static int http_parse_version(const char *p, size_t n)
{
    if (n != 8 || memcmp(p, "HTTP/", 5) != 0 || !HTTP_IS_DIGIT(p[5]) || p[6] != '.' ||
        !HTTP_IS_DIGIT(p[7]))
        return -400;
    if (p[5] == '1' && (p[7] == '0' || p[7] == '1'))
        return p[7] - '0';
    return -505;
}

/* Splits p[0..n) (starting with '/') into path and query. */
static void http_split_path(struct http_msg *msg, const char *p, size_t n)
{
    const char *q = memchr(p, '?', n);
    if (q) {
        msg->path = http_slice_make(p, (size_t)(q - p));
        msg->query = http_slice_make(q + 1, n - (size_t)(q - p) - 1);
    } else {
        msg->path = http_slice_make(p, n);
        msg->query = http_slice_make(p + n, 0);
    }
}

/* The four request-target forms of RFC 9112 3.2; buf[t..te) holds only
 * C_TARGET bytes and is not empty. */
static int http_parse_target(const char *buf, size_t t, size_t te, struct http_msg *msg)
{
    const char *p = buf + t;
    size_t n = te - t;
    if (p[0] == '/') {
        if (msg->method == HTTP_METHOD_CONNECT)
            return http_fail(msg, 400, "CONNECT needs an authority-form target", t);
        http_split_path(msg, p, n);
        return 0;
    }
    if (n == 1 && p[0] == '*') {
        if (msg->method != HTTP_METHOD_OPTIONS)
            return http_fail(msg, 400, "asterisk-form target is only for OPTIONS", t);
        msg->path = msg->target;
        msg->query = http_slice_make(p + 1, 0);
        return 0;
    }
    if (msg->method == HTTP_METHOD_CONNECT) {
        if (!http_host_valid(p, n, 1))
            return http_fail(msg, 400, "invalid authority-form target", t);
        msg->host = msg->target;
        msg->path = http_slice_make(p + n, 0);
        msg->query = http_slice_make(p + n, 0);
        return 0;
    }
    /* absolute-form: http or https only */
    size_t a;
    if (n > 7 && http_token_is(p, "http://", 7))
        a = 7;
    else if (n > 8 && http_token_is(p, "https://", 8))
        a = 8;
    else
        return http_fail(msg, 400, "invalid request-target", t);
    size_t k = a;
    while (k < n && p[k] != '/' && p[k] != '?')
        k++;
    if (!http_host_valid(p + a, k - a, 0))
        return http_fail(msg, 400, "invalid authority in absolute-form target", t + a);
    msg->host = http_slice_make(p + a, k - a);
    msg->absolute_form = 1;
    if (k < n && p[k] == '/') {
        http_split_path(msg, p + k, n - k);
    } else {
        /* RFC 9112 3.2.1: an empty path is sent as "/" */
        msg->path = http_slice_make("/", 1);
        msg->query = http_slice_make(p + n, 0);
        if (k < n)
            msg->query = http_slice_make(p + k + 1, n - k - 1);
    }
    return 0;
}

/* request-line = method SP request-target SP HTTP-version (RFC 9112 3) */
static int http_parse_request_line(const char *buf, size_t s, size_t e, struct http_msg *msg)
{
    size_t i = s;
    while (i < e && HTTP_IS(buf[i], C_TCHAR))
        i++;
    if (i == s || i == e || buf[i] != ' ')
        return http_fail(msg, 400, "invalid method", i);
    msg->method_str = http_slice_make(buf + s, i - s);
    msg->method = http_method_lookup(buf + s, i - s);
    size_t t = ++i;
    while (i < e && HTTP_IS(buf[i], C_TARGET))
        i++;
    if (i == t)
        return http_fail(msg, 400, "invalid request-target", i);
    if (i == e)
        return http_fail(msg, 400, "missing HTTP version", i);
    if (buf[i] != ' ')
        return http_fail(msg, 400, "invalid byte in request-target", i);
    size_t te = i++;
    msg->target = http_slice_make(buf + t, te - t);
    int minor = http_parse_version(buf + i, e - i);
    if (minor == -505)
        return http_fail(msg, 505, "HTTP version not supported", i);
    if (minor < 0)
        return http_fail(msg, 400, "invalid HTTP version", i);
    msg->version_minor = minor;
    return http_parse_target(buf, t, te, msg);
}

/* status-line = HTTP-version SP 3DIGIT SP [ reason-phrase ] (RFC 9112 4);
 * the SP before an empty reason may be missing. */
static int http_parse_status_line(const char *buf, size_t s, size_t e, struct http_msg *msg)
{
    const char *p = buf + s;
    size_t n = e - s;
    if (n < 12 || http_parse_version(p, 8) < 0 || p[8] != ' ')
        return http_fail(msg, 502, "invalid status line", s);
    msg->version_minor = p[7] - '0';
    if (!HTTP_IS_DIGIT(p[9]) || !HTTP_IS_DIGIT(p[10]) || !HTTP_IS_DIGIT(p[11]))
        return http_fail(msg, 502, "invalid status code", s + 9);
    msg->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    if (msg->status < 100 || msg->status > 599)
        return http_fail(msg, 502, "status code out of range", s + 9);
    if (n == 12) {
        msg->reason = http_slice_make(p + 12, 0);
        return 0;
    }
    if (p[12] != ' ')
        return http_fail(msg, 502, "invalid status line", s + 12);
    size_t bad = http_value_scan((const unsigned char *)buf, s + 13, e);
    if (bad < e)
        return http_fail(msg, 502, "invalid byte in reason phrase", bad);
    msg->reason = http_slice_make(p + 13, n - 13);
    return 0;
}

static enum http_field_kind http_field_kind(struct http_slice n)
{
    switch (n.len) {
    case 2:
        return HTTP_TOKEN_IS(n, "te") ? HTTP_FK_TE : HTTP_FK_OTHER;
    case 4:
        return HTTP_TOKEN_IS(n, "host") ? HTTP_FK_HOST : HTTP_FK_OTHER;
    case 6:
        return HTTP_TOKEN_IS(n, "expect") ? HTTP_FK_EXPECT : HTTP_FK_OTHER;
    case 7:
        if (HTTP_TOKEN_IS(n, "upgrade"))
            return HTTP_FK_UPGRADE;
        return HTTP_TOKEN_IS(n, "trailer") ? HTTP_FK_HOP : HTTP_FK_OTHER;
    case 10:
        if (HTTP_TOKEN_IS(n, "connection"))
            return HTTP_FK_CONNECTION;
        return HTTP_TOKEN_IS(n, "keep-alive") ? HTTP_FK_HOP : HTTP_FK_OTHER;
    case 14:
        return HTTP_TOKEN_IS(n, "content-length") ? HTTP_FK_CONTENT_LENGTH : HTTP_FK_OTHER;
    case 16:
        return HTTP_TOKEN_IS(n, "proxy-connection") ? HTTP_FK_HOP : HTTP_FK_OTHER;
    case 17:
        return HTTP_TOKEN_IS(n, "transfer-encoding") ? HTTP_FK_TRANSFER_ENCODING : HTTP_FK_OTHER;
    case 18:
        return HTTP_TOKEN_IS(n, "proxy-authenticate") ? HTTP_FK_HOP : HTTP_FK_OTHER;
    case 19:
        return HTTP_TOKEN_IS(n, "proxy-authorization") ? HTTP_FK_HOP : HTTP_FK_OTHER;
    default:
        return HTTP_FK_OTHER;
    }
}

/* Transfer-Encoding (RFC 9112 6.1): several field lines form one list. */
static int http_field_transfer_encoding(struct http_msg *msg, struct http_slice v, size_t vpos)
{
    struct http_slice el;
    size_t pos = 0;
    msg->pflags |= HTTP_PF_TE;
    while (http_list_next(v.p, v.len, &pos, &el)) {
        if (el.len == 0)
            continue;
        if (!http_is_token(el))
            return http_fail(msg, 400, "invalid Transfer-Encoding", vpos);
        if (HTTP_TOKEN_IS(el, "chunked")) {
            if (msg->te_chunked < 2)
                msg->te_chunked++;
            msg->pflags |= HTTP_PF_TE_LAST_CHUNKED;
        } else {
            msg->pflags &= ~HTTP_PF_TE_LAST_CHUNKED;
            msg->pflags |= HTTP_PF_TE_OTHER;
        }
    }
    return 0;
}

/* Connection (RFC 9110 7.6.1): a list of option tokens. */
static int http_field_connection(struct http_msg *msg, struct http_slice v, size_t vpos)
{
    struct http_slice el;
    size_t pos = 0;
    while (http_list_next(v.p, v.len, &pos, &el)) {
        if (el.len == 0)
            continue;
        if (!http_is_token(el))
            return http_fail(msg, 400, "invalid Connection", vpos);
        if (HTTP_TOKEN_IS(el, "close"))
            msg->pflags |= HTTP_PF_CONN_CLOSE;
        else if (HTTP_TOKEN_IS(el, "keep-alive"))
            msg->pflags |= HTTP_PF_CONN_KEEP_ALIVE;
        else if (HTTP_TOKEN_IS(el, "upgrade"))
            msg->pflags |= HTTP_PF_CONN_UPGRADE;
        else if (++msg->conn_options > HTTP_MAX_CONNECTION_OPTIONS)
            /* each one is matched against every field name at the end */
            return http_fail(msg, 400, "too many Connection options", vpos);
        else
            msg->pflags |= HTTP_PF_CONN_OTHER;
    }
    return 0;
}

/* TE (RFC 9110 10.1.4): only "trailers" matters to us. */
static void http_field_te(struct http_msg *msg, struct http_slice v)
{
    struct http_slice el;
    size_t pos = 0;
    while (http_list_next(v.p, v.len, &pos, &el)) {
        size_t k = 0;
        while (k < el.len && HTTP_IS(el.p[k], C_TCHAR))
            k++;
        if (HTTP_TOKEN_IS(http_slice_make(el.p, k), "trailers"))
            msg->has_te_trailers = 1;
    }
}

/* Applies what field `idx` means; sets msg->hop[idx]. */
static int http_field_apply(struct http_msg *msg, size_t idx, size_t s, size_t vpos)
{
    struct http_slice v = msg->headers[idx].value;
    int is_request = !(msg->pflags & HTTP_PF_RESPONSE);
    msg->hop[idx] = 0;
    switch (http_field_kind(msg->headers[idx].name)) {
    case HTTP_FK_OTHER:
        return 0;
    case HTTP_FK_HOP:
        msg->hop[idx] = 1;
        return 0;
    case HTTP_FK_HOST:
        if (!is_request)
            return 0;
        if (msg->pflags & HTTP_PF_HOST)
            return http_fail(msg, 400, "duplicate Host", s);
        msg->pflags |= HTTP_PF_HOST;
        if (v.len && !http_host_valid(v.p, v.len, 0))
            return http_fail(msg, 400, "invalid Host", vpos);
        if (!msg->absolute_form)
            msg->host = v;
        return 0;
    case HTTP_FK_CONTENT_LENGTH:
        msg->hop[idx] = 1;
        if (msg->has_content_length)
            return http_fail(msg, 400, "duplicate Content-Length", s);
        if (!http_parse_length(v, &msg->content_length))
            return http_fail(msg, 400, "invalid Content-Length", vpos);
        msg->has_content_length = 1;
        return 0;
    case HTTP_FK_TRANSFER_ENCODING:
        msg->hop[idx] = 1;
        return http_field_transfer_encoding(msg, v, vpos);
    case HTTP_FK_CONNECTION:
        msg->hop[idx] = 1;
        return http_field_connection(msg, v, vpos);
    case HTTP_FK_UPGRADE:
        msg->hop[idx] = 1;
        if (!(msg->pflags & HTTP_PF_UPGRADE)) {
            msg->pflags |= HTTP_PF_UPGRADE;
            msg->upgrade_proto = v;
        }
        return 0;
    case HTTP_FK_EXPECT:
        /* RFC 9110 10.1.1: a 1.0 request's expectation is ignored */
        if (!is_request || msg->version_minor == 0 || v.len == 0)
            return 0;
        if (!HTTP_TOKEN_IS(v, "100-continue"))
            return http_fail(msg, 417, "unsupported expectation", vpos);
        msg->expect_continue = 1;
        return 0;
    case HTTP_FK_TE:
        msg->hop[idx] = 1;
        http_field_te(msg, v);
        return 0;
    }
    return 0;
}

/* field-line = field-name ":" OWS field-value OWS (RFC 9112 5) */
static int http_parse_field_line(const char *buf, size_t s, size_t e, struct http_msg *msg,
                                 size_t max_headers)
{
    if (msg->n_headers >= max_headers)
        return http_fail(msg, 431, "too many header fields", s);
    if (HTTP_IS_WS(buf[s]))
        return http_fail(msg, 400, "obsolete line folding", s);
    size_t i = s;
    while (i < e && HTTP_IS(buf[i], C_TCHAR))
        i++;
    if (i == e)
        return http_fail(msg, 400, "field line without ':'", i);
    if (buf[i] != ':') {
        if (HTTP_IS_WS(buf[i]))
            return http_fail(msg, 400, "whitespace before ':'", i);
        return http_fail(msg, 400, "invalid byte in field name", i);
    }
    if (i == s)
        return http_fail(msg, 400, "empty field name", i);
    size_t v = i + 1;
    while (v < e && HTTP_IS_WS(buf[v]))
        v++;
    size_t bad = http_value_scan((const unsigned char *)buf, v, e);
    if (bad < e)
        return http_fail(msg, 400, "invalid byte in field value", bad);
    size_t ve = e;
    while (ve > v && HTTP_IS_WS(buf[ve - 1]))
        ve--;
    size_t idx = msg->n_headers++;
    msg->headers[idx].name = http_slice_make(buf + s, i - s);
    msg->headers[idx].value = http_slice_make(buf + v, ve - v);
    return http_field_apply(msg, idx, s, v);
}

/* Marks every field that a Connection field names as hop-by-hop
 * (RFC 9110 7.6.1), except Host, which the proxy always needs. */
static void http_mark_connection_options(struct http_msg *msg)
{
    for (size_t i = 0; i < msg->n_headers; i++) {
        if (!msg->hop[i] || !HTTP_TOKEN_IS(msg->headers[i].name, "connection"))
            continue;
        struct http_slice v = msg->headers[i].value, el;
        size_t pos = 0;
        while (http_list_next(v.p, v.len, &pos, &el)) {
            if (el.len == 0 || HTTP_TOKEN_IS(el, "close") || HTTP_TOKEN_IS(el, "host"))
                continue;
            for (size_t j = 0; j < msg->n_headers; j++) {
                struct http_slice n = msg->headers[j].name;
                if (n.len == el.len && http_ascii_eq_nocase(n.p, el.p, n.len))
                    msg->hop[j] = 1;
            }
        }
    }
}

/* Persistence (RFC 9112 9.3) and upgrade (RFC 9110 7.8). */
static void http_finish_connection(struct http_msg *msg)
{
    unsigned f = msg->pflags;
    if (msg->version_minor == 1)
        msg->keep_alive = !(f & HTTP_PF_CONN_CLOSE);
    else
        msg->keep_alive = (f & HTTP_PF_CONN_KEEP_ALIVE) && !(f & HTTP_PF_CONN_CLOSE);
    msg->upgrade = (f & HTTP_PF_CONN_UPGRADE) && (f & HTTP_PF_UPGRADE);
    if (f & HTTP_PF_CONN_OTHER)
        http_mark_connection_options(msg);
}

/* Request framing (RFC 9112 6.1, 6.3). `pos` is the empty line. */
static int http_finish_request(struct http_msg *msg, size_t pos)
{
    unsigned f = msg->pflags;
    if (!(f & HTTP_PF_HOST) && msg->version_minor == 1)
        return http_fail(msg, 400, "missing Host", pos);
    msg->body_kind = HTTP_BODY_NONE;
    if (f & HTTP_PF_TE) {
        if (msg->version_minor == 0)
            return http_fail(msg, 400, "Transfer-Encoding in an HTTP/1.0 request", pos);
        if (msg->has_content_length)
            return http_fail(msg, 400, "both Content-Length and Transfer-Encoding", pos);
        if (msg->te_chunked > 1)
            return http_fail(msg, 400, "chunked applied more than once", pos);
        if (!(f & HTTP_PF_TE_LAST_CHUNKED))
            return http_fail(msg, 400, "final transfer coding is not chunked", pos);
        if (f & HTTP_PF_TE_OTHER)
            return http_fail(msg, 501, "unsupported transfer coding", pos);
        msg->body_kind = HTTP_BODY_CHUNKED;
    } else if (msg->has_content_length && msg->content_length > 0) {
        msg->body_kind = HTTP_BODY_LENGTH;
    }
    http_finish_connection(msg);
    return 0;
}

/* Response framing (RFC 9112 6.3). */
static int http_finish_response(struct http_msg *msg, size_t pos, enum http_method req_method)
{
    unsigned f = msg->pflags;
    if (f & HTTP_PF_TE) {
        /* RFC 9112 6.1: Transfer-Encoding in 1.0 means faulty framing */
        if (msg->version_minor == 0)
            return http_fail(msg, 502, "Transfer-Encoding in an HTTP/1.0 response", pos);
        if (msg->has_content_length)
            return http_fail(msg, 502, "both Content-Length and Transfer-Encoding", pos);
        if (msg->te_chunked > 1)
            return http_fail(msg, 502, "chunked applied more than once", pos);
        msg->te_other_codings = (f & HTTP_PF_TE_OTHER) != 0;
    }
    http_finish_connection(msg);
    int st = msg->status;
    if (req_method == HTTP_METHOD_HEAD || st < 200 || st == 204 || st == 304 ||
        (req_method == HTTP_METHOD_CONNECT && st < 300)) {
        msg->body_kind = HTTP_BODY_NONE;
    } else if (f & HTTP_PF_TE) {
        msg->body_kind = (f & HTTP_PF_TE_LAST_CHUNKED) ? HTTP_BODY_CHUNKED : HTTP_BODY_UNTIL_CLOSE;
    } else if (msg->has_content_length) {
        msg->body_kind = msg->content_length ? HTTP_BODY_LENGTH : HTTP_BODY_NONE;
    } else {
        msg->body_kind = HTTP_BODY_UNTIL_CLOSE;
    }
    if (msg->body_kind == HTTP_BODY_UNTIL_CLOSE)
        msg->keep_alive = 0;
    return 0;
}

/* The size limits, judged on buf[0..len) alone: the start line (after any
 * empty lines) longer than max_request_line, or the head from the start line
 * on longer than max_header_bytes, as far as the bytes present prove it.
 * Both only grow with len, so checking every prefix or only the last one
 * gives the same answer; when both are broken, the one whose first
 * offending byte comes first wins (431 on a tie), which is what a caller
 * fed one byte at a time sees first. */
static int http_check_limits(const char *buf, size_t len, struct http_msg *msg,
                             const struct http_limits *lim)
{
    size_t hs = 0;
    while (len - hs >= 2 && buf[hs] == '\r' && buf[hs + 1] == '\n')
        hs += 2;
    size_t max_line = lim->max_request_line;
    int over_head = len - hs > lim->max_header_bytes;
    int over_line = 0;
    if (len - hs > max_line) {
        /* the start line's LF, if any, is within max_line + 2 bytes */
        size_t win = len - hs;
        if (win - max_line > 2)
            win = max_line + 2;
        const char *lf = memchr(buf + hs, '\n', win);
        size_t e;
        if (lf) {
            size_t i = (size_t)(lf - buf);
            e = (i > hs && buf[i - 1] == '\r') ? i - 1 : i;
        } else if (win < len - hs) {
            e = hs + win;
        } else {
            e = buf[len - 1] == '\r' ? len - 1 : len; /* a CR may still get its LF */
        }
        over_line = e - hs > max_line;
    }
    size_t line_pos = hs + max_line;
    size_t head_pos = hs + lim->max_header_bytes;
    if (over_line && (!over_head || line_pos < head_pos))
        return http_fail(msg, 414, "start line too long", line_pos);
    if (over_head)
        return http_fail(msg, 431, "header section too large", head_pos);
    return 0;
}

/* Parses the complete lines of buf[0..end) from the start: empty lines,
 * the start line, field lines, up to the empty line that ends the head.
 * Returns the head length, HTTP_PARSE_ERROR, or HTTP_PARSE_PARTIAL when
 * every line was an empty line before the start line. */
static int http_parse_lines(const char *buf, size_t end, struct http_msg *msg,
                            size_t max_headers, enum http_method req_method)
{
    int is_response = (msg->pflags & HTTP_PF_RESPONSE) != 0;
    size_t s = 0;
    msg->pstate = HTTP_PS_START;
    msg->empty_lines = 0;
    msg->n_headers = 0;
    while (s < end) {
        const char *lf = memchr(buf + s, '\n', end - s);
        if (!lf)
            break;
        size_t i = (size_t)(lf - buf);
        size_t e = (i > s && buf[i - 1] == '\r') ? i - 1 : i;
        int rc;
        if (e == i)
            return http_fail(msg, 400, "bare LF", i);
        if (e == s) {
            if (msg->pstate == HTTP_PS_START) {
                /* RFC 9112 2.2: ignore a few empty lines before the start line */
                if (++msg->empty_lines > HTTP_MAX_EMPTY_LINES)
                    return http_fail(msg, 400, "too many empty lines before the start line", s);
                s = i + 1;
                continue;
            }
            rc = is_response ? http_finish_response(msg, s, req_method)
                             : http_finish_request(msg, s);
            if (rc)
                return rc;
            msg->pstate = HTTP_PS_DONE;
            msg->scan_pos = i + 1;
            return (int)(i + 1);
        }
        if (msg->pstate == HTTP_PS_START) {
            rc = is_response ? http_parse_status_line(buf, s, e, msg)
                             : http_parse_request_line(buf, s, e, msg);
            if (rc == 0)
                msg->pstate = HTTP_PS_FIELDS;
        } else {
            rc = http_parse_field_line(buf, s, e, msg, max_headers);
        }
        if (rc)
            return rc;
        s = i + 1;
    }
    return HTTP_PARSE_PARTIAL;
}

/* Looks for the end of the head from msg->scan_pos on: an LF that ends an
 * empty line (or a bare LF, which is an error). Only then are the lines
 * parsed, once, from the start of buf; so msg->scan_pos is the only state
 * carried between calls and a caller may re-initialise msg and restore just
 * scan_pos. Empty lines before the start line also trigger a parse (there
 * are at most HTTP_MAX_EMPTY_LINES + 1 of those). */
static int http_parse_head(const char *buf, size_t len, struct http_msg *msg,
                           const struct http_limits *lim, enum http_method req_method)
{
    static const struct http_limits defaults = {HTTP_DEFAULT_MAX_REQUEST_LINE,
                                                HTTP_DEFAULT_MAX_HEADER_BYTES,
                                                HTTP_DEFAULT_MAX_HEADERS};
    if (msg->pstate == HTTP_PS_DONE)
        return (int)msg->scan_pos;
    if (msg->pstate == HTTP_PS_ERROR)
        return HTTP_PARSE_ERROR;
    if (!lim)
        lim = &defaults;
    size_t max_headers = lim->max_headers;
    if (max_headers > HTTP_MAX_HEADERS_HARD)
        max_headers = HTTP_MAX_HEADERS_HARD;
    size_t pos = msg->scan_pos;
    if (pos > len) /* misuse: the buffer shrank; start over */
        pos = 0;
    while (pos < len) {
        const char *lf = memchr(buf + pos, '\n', len - pos);
        if (!lf)
            break;
        size_t t = (size_t)(lf - buf);
        pos = t + 1;
        /* the end of a non-empty line: parse later. "\r\r\n" stops the search
         * too: its line holds a bare CR, so the parse fails right away */
        if (t >= 2 && buf[t - 1] == '\r' && buf[t - 2] != '\n' && buf[t - 2] != '\r')
            continue;
        if (http_check_limits(buf, t + 1, msg, lim))
            return HTTP_PARSE_ERROR;
        int rc = http_parse_lines(buf, t + 1, msg, max_headers, req_method);
        if (rc != HTTP_PARSE_PARTIAL)
            return rc;
    }
    msg->scan_pos = len;
    if (http_check_limits(buf, len, msg, lim))
        return HTTP_PARSE_ERROR;
    return HTTP_PARSE_PARTIAL;
}

void http_msg_init(struct http_msg *msg)
{
    const struct http_slice none = {NULL, 0};
    msg->method = HTTP_METHOD_OTHER;
    msg->method_str = none;
    msg->target = none;
    msg->path = none;
    msg->query = none;
    msg->host = none;
    msg->status = 0;
    msg->reason = none;
    msg->version_minor = 0;
    msg->n_headers = 0;
    msg->body_kind = HTTP_BODY_NONE;
    msg->content_length = 0;
    msg->keep_alive = 0;
    msg->expect_continue = 0;
    msg->upgrade = 0;
    msg->has_te_trailers = 0;
    msg->has_content_length = 0;
    msg->absolute_form = 0;
    msg->te_other_codings = 0;
    msg->upgrade_proto = none;
    msg->error_status = 0;
    msg->error = NULL;
    msg->error_pos = 0;
    msg->scan_pos = 0;
    msg->pflags = 0;
    msg->pstate = HTTP_PS_START;
    msg->empty_lines = 0;
    msg->te_chunked = 0;
    msg->conn_options = 0;
}

int http_parse_request(const char *buf, size_t len, struct http_msg *msg,
                       const struct http_limits *lim)
{
    return http_parse_head(buf, len, msg, lim, HTTP_METHOD_OTHER);
}

int http_parse_response(const char *buf, size_t len, struct http_msg *msg,
                        const struct http_limits *lim, enum http_method req_method)
{
    msg->pflags |= HTTP_PF_RESPONSE;
    return http_parse_head(buf, len, msg, lim, req_method);
}

/* ---- chunked body (RFC 9112 7.1) ---- */

#define HTTP_CHUNK_LINE_MAX 4096     /* bytes of a size or trailer line before its CRLF */
#define HTTP_CHUNK_MAX_DIGITS 16
#define HTTP_CHUNK_MAX_TRAILERS 128

/* c->state */
enum http_chunk_state {
    HTTP_CK_SIZE_START,    /* first HEXDIG of chunk-size */
    HTTP_CK_SIZE,          /* HEXDIG, or BWS / ';' / CR */
    HTTP_CK_EXT_BWS,       /* BWS before ';' */
    HTTP_CK_EXT_NAME_START, /* after ';': BWS, then chunk-ext-name */
    HTTP_CK_EXT_NAME,      /* chunk-ext-name, then BWS / '=' / ';' / CR */
    HTTP_CK_EXT_NAME_BWS,  /* BWS after the name: '=' or ';' */
    HTTP_CK_EXT_VAL_START, /* after '=': BWS, then token or quoted-string */
    HTTP_CK_EXT_VAL_TOKEN, /* token value, then BWS / ';' / CR */
    HTTP_CK_EXT_VAL_QUOTED, /* inside the quoted-string */
    HTTP_CK_EXT_VAL_ESCAPE, /* after a backslash in it */
    HTTP_CK_EXT_VAL_END,   /* after the closing quote: BWS / ';' / CR */
    HTTP_CK_SIZE_LF,       /* LF ending the size line */
    HTTP_CK_DATA,          /* c->remaining bytes of data */
    HTTP_CK_DATA_CR,       /* CRLF after the data */
    HTTP_CK_DATA_LF,
    HTTP_CK_TRAILER_START, /* a trailer field, or CR of the final CRLF */
    HTTP_CK_TRAILER_NAME,  /* field-name up to ':' */
    HTTP_CK_TRAILER_VALUE, /* field-value up to CR */
    HTTP_CK_TRAILER_LF,
    HTTP_CK_END_LF,        /* LF of the final CRLF */
    HTTP_CK_DONE,
    HTTP_CK_ERROR,
};

void http_chunked_init(struct http_chunked *c)
{
    c->state = HTTP_CK_SIZE_START;
    c->remaining = 0;
    c->line_len = 0;
    c->digits = 0;
    c->trailer_lines = 0;
    c->keep_trailers = 0;
    c->error = NULL;
}

int http_chunked_done(const struct http_chunked *c)
{
    return c->state == HTTP_CK_DONE;
}

/* Inside a trailer field line (its bytes are handed out with keep_trailers). */
static int http_chunk_in_trailer_field(int state)
{
    return state == HTTP_CK_TRAILER_NAME || state == HTTP_CK_TRAILER_VALUE || state == HTTP_CK_TRAILER_LF;
}

/* Hands out the trailer bytes buf[from..to) read so far by this call. */
static enum http_chunk_result http_chunk_trailer_span(size_t from, size_t to, size_t *consumed,
                                                      size_t *data_off, size_t *data_len)
{
    *data_off = from;
    *data_len = to - from;
    *consumed = to;
    return HTTP_CHUNK_TRAILER;
}

static enum http_chunk_result http_chunk_fail(struct http_chunked *c, const char *why, size_t i,
                                              size_t *consumed)
{
    c->error = why;
    c->state = HTTP_CK_ERROR;
    *consumed = i;
    return HTTP_CHUNK_ERROR;
}

static int http_hex_value(char ch)
{
    if (HTTP_IS_DIGIT(ch))
        return ch - '0';
    if (HTTP_IS(ch, C_HEX))
        return (ch | 0x20) - 'a' + 10;
    return -1;
}

/* qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text */
static int http_is_qdtext(char ch)
{
    return HTTP_IS(ch, C_VALUE) && ch != '"' && ch != '\\';
}

/* After a chunk-ext-name or value: ';' opens another, BWS may precede it,
 * CR ends the line. Returns the next state or -1. */
static int http_chunk_after_ext(char ch)
{
    if (ch == ';')
        return HTTP_CK_EXT_NAME_START;
    if (HTTP_IS_WS(ch))
        return HTTP_CK_EXT_BWS;
    if (ch == '\r')
        return HTTP_CK_SIZE_LF;
    return -1;
}

enum http_chunk_result http_chunked_next(struct http_chunked *c, const char *buf, size_t len,
                                         size_t *consumed, size_t *data_off, size_t *data_len)
{
    size_t i = 0;
    int next, d;
    size_t tstart = SIZE_MAX; /* keep_trailers: where this call's trailer bytes start */
    *data_off = 0;
    *data_len = 0;
    if (c->state == HTTP_CK_DONE) {
        *consumed = 0;
        return HTTP_CHUNK_DONE;
    }
    if (c->state == HTTP_CK_ERROR) {
        *consumed = 0;
        return HTTP_CHUNK_ERROR;
    }
    if (c->keep_trailers && http_chunk_in_trailer_field(c->state))
        tstart = 0;
/* a syntax error on an LF byte is always a bare LF */
#define CK_FAIL(why) return http_chunk_fail(c, ch == '\n' ? "bare LF in chunked body" : (why), i, consumed)
    for (; i < len; i++) {
        char ch = buf[i];
        if (tstart != SIZE_MAX && c->state == HTTP_CK_TRAILER_START && ch == '\r')
            return http_chunk_trailer_span(tstart, i, consumed, data_off, data_len); /* the section ends */
        if (c->state == HTTP_CK_DATA) {
            size_t n = len - i;
            if (n > c->remaining)
                n = (size_t)c->remaining;
            c->remaining -= n;
            if (c->remaining == 0)
                c->state = HTTP_CK_DATA_CR;
            *data_off = i;
            *data_len = n;
            *consumed = i + n;
            return HTTP_CHUNK_DATA;
        }
        if (c->state != HTTP_CK_DATA_CR && c->state != HTTP_CK_DATA_LF &&
            ++c->line_len > HTTP_CHUNK_LINE_MAX + 2)
            return http_chunk_fail(c, "chunk line too long", i, consumed);
        switch (c->state) {
        case HTTP_CK_DATA_CR:
            if (ch != '\r')
                CK_FAIL("chunk data not followed by CRLF");
            c->state = HTTP_CK_DATA_LF;
            break;
        case HTTP_CK_DATA_LF:
            if (ch != '\n')
                CK_FAIL("chunk data not followed by CRLF");
            c->state = HTTP_CK_SIZE_START;
            c->line_len = 0;
            break;
        case HTTP_CK_SIZE_START:
            if ((d = http_hex_value(ch)) < 0)
                CK_FAIL("invalid chunk size");
            c->remaining = (uint64_t)d;
            c->digits = 1;
            c->state = HTTP_CK_SIZE;
            break;
        case HTTP_CK_SIZE:
            if ((d = http_hex_value(ch)) >= 0) {
                if (++c->digits > HTTP_CHUNK_MAX_DIGITS)
                    CK_FAIL("chunk size has too many digits");
                c->remaining = (c->remaining << 4) | (uint64_t)d;
                if (c->remaining > HTTP_MAX_LENGTH)
                    CK_FAIL("chunk size too large");
                break;
            }
            if ((next = http_chunk_after_ext(ch)) < 0)
                CK_FAIL("invalid chunk size");
            c->state = next;
            break;
        case HTTP_CK_EXT_BWS:
            if (ch == ';')
                c->state = HTTP_CK_EXT_NAME_START;
            else if (!HTTP_IS_WS(ch))
                CK_FAIL("invalid chunk extension");
            break;
        case HTTP_CK_EXT_NAME_START:
            if (HTTP_IS(ch, C_TCHAR))
                c->state = HTTP_CK_EXT_NAME;
            else if (!HTTP_IS_WS(ch))
                CK_FAIL("invalid chunk extension name");
            break;
        case HTTP_CK_EXT_NAME:
            if (HTTP_IS(ch, C_TCHAR))
                break;
            if (ch == '=')
                c->state = HTTP_CK_EXT_VAL_START;
            else if (HTTP_IS_WS(ch))
                c->state = HTTP_CK_EXT_NAME_BWS;
            else if ((next = http_chunk_after_ext(ch)) >= 0)
                c->state = next;
            else
                CK_FAIL("invalid chunk extension name");
            break;
        case HTTP_CK_EXT_NAME_BWS:
            if (ch == '=')
                c->state = HTTP_CK_EXT_VAL_START;
            else if (ch == ';')
                c->state = HTTP_CK_EXT_NAME_START;
            else if (!HTTP_IS_WS(ch))
                CK_FAIL("invalid chunk extension");
            break;
        case HTTP_CK_EXT_VAL_START:
            if (ch == '"')
                c->state = HTTP_CK_EXT_VAL_QUOTED;
            else if (HTTP_IS(ch, C_TCHAR))
                c->state = HTTP_CK_EXT_VAL_TOKEN;
            else if (!HTTP_IS_WS(ch))
                CK_FAIL("invalid chunk extension value");
            break;
        case HTTP_CK_EXT_VAL_TOKEN:
            if (HTTP_IS(ch, C_TCHAR))
                break;
            if ((next = http_chunk_after_ext(ch)) < 0)
                CK_FAIL("invalid chunk extension value");
            c->state = next;
            break;
        case HTTP_CK_EXT_VAL_QUOTED:
            if (ch == '"')
                c->state = HTTP_CK_EXT_VAL_END;
            else if (ch == '\\')
                c->state = HTTP_CK_EXT_VAL_ESCAPE;
            else if (!http_is_qdtext(ch))
                CK_FAIL("invalid byte in chunk extension value");
            break;
        case HTTP_CK_EXT_VAL_ESCAPE:
            if (!HTTP_IS(ch, C_VALUE))
                CK_FAIL("invalid byte in chunk extension value");
            c->state = HTTP_CK_EXT_VAL_QUOTED;
            break;
        case HTTP_CK_EXT_VAL_END:
            if ((next = http_chunk_after_ext(ch)) < 0)
                CK_FAIL("invalid chunk extension value");
            c->state = next;
            break;
        case HTTP_CK_SIZE_LF:
            if (ch != '\n')
                CK_FAIL("CR not followed by LF in chunk size line");
            c->line_len = 0;
            c->state = c->remaining ? HTTP_CK_DATA : HTTP_CK_TRAILER_START;
            break;
        case HTTP_CK_TRAILER_START:
            if (ch == '\r') {
                c->state = HTTP_CK_END_LF;
            } else if (HTTP_IS(ch, C_TCHAR)) {
                if (++c->trailer_lines > HTTP_CHUNK_MAX_TRAILERS)
                    CK_FAIL("too many trailer fields");
                if (c->keep_trailers && tstart == SIZE_MAX)
                    tstart = i;
                c->state = HTTP_CK_TRAILER_NAME;
            } else if (HTTP_IS_WS(ch)) {
                CK_FAIL("obsolete line folding in trailer");
            } else {
                CK_FAIL("invalid trailer field");
            }
            break;
        case HTTP_CK_TRAILER_NAME:
            if (ch == ':')
                c->state = HTTP_CK_TRAILER_VALUE;
            else if (!HTTP_IS(ch, C_TCHAR))
                CK_FAIL("invalid trailer field name");
            break;
        case HTTP_CK_TRAILER_VALUE:
            if (ch == '\r')
                c->state = HTTP_CK_TRAILER_LF;
            else if (!HTTP_IS(ch, C_VALUE))
                CK_FAIL("invalid byte in trailer field value");
            break;
        case HTTP_CK_TRAILER_LF:
            if (ch != '\n')
                CK_FAIL("CR not followed by LF in trailer");
            c->line_len = 0;
            c->state = HTTP_CK_TRAILER_START;
            break;
        case HTTP_CK_END_LF:
            if (ch != '\n')
                CK_FAIL("CR not followed by LF after trailers");
            c->state = HTTP_CK_DONE;
            *consumed = i + 1;
            return HTTP_CHUNK_DONE;
        default:
            CK_FAIL("chunked decoder in a bad state");
        }
    }
#undef CK_FAIL
    if (tstart != SIZE_MAX && len > tstart)
        return http_chunk_trailer_span(tstart, len, consumed, data_off, data_len);
    *consumed = len;
    return HTTP_CHUNK_MORE;
}

/* ---- helpers ---- */

int http_slice_eq_nocase(struct http_slice s, const char *lit)
{
    size_t n = strlen(lit);
    return s.len == n && http_ascii_eq_nocase(s.p, lit, n);
}

int http_msg_find(const struct http_msg *msg, const char *name)
{
    for (size_t i = 0; i < msg->n_headers; i++) {
        if (msg->hop[i] != HTTP_HOP_REMOVED && http_slice_eq_nocase(msg->headers[i].name, name))
            return (int)i;
    }
    return -1;
}

const char *http_method_name(enum http_method m)
{
#define HTTP_METHOD_NAME(e, s) [e] = s,
    static const char *const names[] = {HTTP_METHOD_LIST(HTTP_METHOD_NAME)};
#undef HTTP_METHOD_NAME
    if ((unsigned)m < sizeof(names) / sizeof(names[0]))
        return names[m];
    return "OTHER";
}

const char *http_status_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 103: return "Early Hints";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 203: return "Non-Authoritative Information";
    case 204: return "No Content";
    case 205: return "Reset Content";
    case 206: return "Partial Content";
    case 300: return "Multiple Choices";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 305: return "Use Proxy";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 407: return "Proxy Authentication Required";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 418: return "I'm a teapot";
    case 421: return "Misdirected Request";
    case 422: return "Unprocessable Content";
    case 425: return "Too Early";
    case 426: return "Upgrade Required";
    case 428: return "Precondition Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}
