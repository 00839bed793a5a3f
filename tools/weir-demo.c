/*
 * weir-demo: a small, fast HTTP/1.1 backend for demos, tests and benchmarks.
 *
 *   usage: weir-demo [-l HOST:PORT] [-n NAME]      (default 127.0.0.1:9001)
 *
 * Every answer carries `X-Backend: NAME` (NAME defaults to the listen address).
 *   /, /sticky/...       200 "hello from NAME\n"
 *   /health              200 "ok\n" (503 while failing)
 *   /slow?ms=N           200 after N ms (default 1000, at most 60000)
 *   /echo, /echo/...     200, the request body back, X-Echo-Method, X-Echo-Path
 *                        (the full target) and X-Echo-Body-Bytes (see below)
 *   /headers             200, the request head exactly as received
 *   /fail?status=N       N (200..599, default 500) "failing\n"
 *   /bytes?n=N           200, N bytes of 'x' (default 1024, at most 1 GiB)
 *   /json                200, a fixed JSON document of about 10 KB
 *                        (application/json; compressible, for compression benches)
 *   POST /admin/fail?on=1|0   failing mode on/off (GET shows it); while on,
 *                        every path but /admin/... answers 500 (/health 503)
 *   anything else        404
 * HEAD gets the same heads without bodies. A connection with no I/O for
 * IDLE_TIMEOUT_S is closed.
 *
 * One thread, one libev loop. A client connection is a struct conn taken from
 * a free list; it owns two fixed buffers, so nothing is allocated per request
 * and memory per connection is bounded whatever the client sends.
 *
 *   socket --read()--> in[IN_CAP] --parse--> out[OUT_CAP] --writev()--> socket
 *                      |  in_pos   in_len    |  out_pos  hold  out_len  (+ a static
 *                      consumed | unread     sent | sendable | held     block of 'x'
 *                                                                       for /bytes)
 *
 * Pipelined requests are answered in order: each complete head in `in` is
 * answered into `out` while `out` has room for the largest possible answer,
 * then one writev() sends the batch. A request body goes through a resumable
 * decoder (Content-Length or chunked, RFC 9112 section 7.1) and is either
 * discarded or, for /echo, copied into `out`. When `out` is full the connection
 * stops consuming `in`; when `in` is full it stops reading the socket. That is
 * the back-pressure that keeps a 64 MB echo or a 1 GB /bytes in two buffers.
 *
 * `hold` marks where an answer built ahead of its turn begins (it is built when
 * the head arrives, but may only leave once the request body has been read);
 * bytes before it, such as a 100 Continue, are sent at once.
 *
 * /echo: a request with Content-Length N is answered with Content-Length N and
 * the body streamed back as it arrives. A chunked request whose whole body
 * arrives within ECHO_DECIDE_BYTES is answered with a Content-Length; a longer
 * one is echoed back chunked as it arrives, and X-Echo-Body-Bytes then comes
 * in the trailer section (announced with `Trailer: X-Echo-Body-Bytes`).
 *
 * It is a demo server, not a strict one: it parses simply, answers what it
 * cannot parse with 400 and closes, and must never crash or grow without bound.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define IN_CAP (32 * 1024)
#define OUT_CAP (32 * 1024)
#define HEAD_MAX (16 * 1024)           /* larger heads get 431 */
#define RESP_RESERVE (HEAD_MAX + 1024) /* room needed in `out` before answering a head */
#define ECHO_DECIDE_BYTES (16 * 1024)  /* see /echo above */
#define XS_CAP (256 * 1024)            /* the static block /bytes sends from */
#define BYTES_MAX (1024ULL * 1024 * 1024)
#define SLOW_DEFAULT_MS 1000
#define SLOW_MAX_MS 60000
#define IDLE_TIMEOUT_S 120.0 /* no I/O for this long: close */
#define LINGER_TIMEOUT_S 2.0 /* after our last answer, wait this long for the peer's FIN */
#define FREE_LIST_MAX 256
#define HOLD_NONE SIZE_MAX
#define NAME_MAX_LEN 200

enum conn_state {
    ST_HEAD,   /* waiting for / parsing the next request head */
    ST_BODY,   /* reading the request body (discard or echo) */
    ST_SLOW,   /* /slow: waiting on the timer */
    ST_BYTES,  /* /bytes: streaming bytes_left 'x' after `out` */
    ST_LINGER, /* answered, write side shut: draining input until FIN or timeout */
};

enum body_mode {
    BODY_DISCARD,
    BODY_ECHO,          /* copy decoded bytes to `out` (chunk-framed when echo_chunked) */
    BODY_ECHO_UNDECIDED /* chunked /echo: looking for the body's end before answering */
};

enum after_body { AFTER_NONE, AFTER_SLOW, AFTER_BYTES };

/* Chunked decoder states (RFC 9112 section 7.1). */
enum chunk_state {
    CH_SIZE,    /* hex digits of chunk-size */
    CH_SIZE_WS, /* whitespace after the size (tolerated) */
    CH_EXT,     /* chunk-ext: skipped up to the line end */
    CH_SIZE_LF, /* saw CR after the size line, expect LF */
    CH_DATA,    /* `size` data bytes left in this chunk */
    CH_DATA_CR, /* CRLF after chunk data */
    CH_DATA_LF,
    CH_TRAILER,      /* start of a trailer line, or the final empty line */
    CH_TRAILER_LINE, /* inside a trailer field line: skipped */
    CH_TRAILER_LF,   /* CR of the final empty line seen, expect LF */
    CH_DONE,
};

struct chunk {
    enum chunk_state state;
    uint64_t size;
    unsigned digits;
    size_t line_bytes; /* bytes of the current extension or trailer line */
};

/* A parsed request head; every pointer is a slice of the connection's `in`. */
struct req {
    const char *method, *target, *path, *query;
    size_t method_len, target_len, path_len, query_len;
    const char *head;
    size_t head_len;
    int minor; /* HTTP/1.minor */
    int keep_alive;
    int chunked;
    int has_length;
    uint64_t content_length;
    int expect_continue;
    int conn_close, conn_keep; /* Connection: close / keep-alive seen */
};

struct conn {
    int fd;
    enum conn_state state;
    ev_io rd, wr;
    ev_timer idle; /* lazy: fires, then checks last_active against timeout_s */
    ev_timer slow;
    ev_tstamp last_active;
    double timeout_s;

    unsigned peer_eof : 1;     /* read() returned 0 */
    unsigned close_after : 1;  /* close once everything queued is sent */
    unsigned no_body : 1;      /* HEAD request: answers carry no body */
    unsigned body_chunked : 1; /* the request body is chunked (else Content-Length) */
    unsigned echo_chunked : 1; /* the echo answer is chunked */
    unsigned closing : 1;
    int minor;

    enum body_mode body_mode;
    enum after_body after;
    uint64_t body_left;  /* Content-Length bytes still to read */
    struct chunk chunk;  /* chunked request-body decoder */
    uint64_t echo_bytes; /* body bytes echoed so far */
    struct chunk dry;    /* look-ahead decoder for BODY_ECHO_UNDECIDED */
    size_t dry_off;      /* how far it got, relative to in_pos */
    uint64_t dry_total;  /* decoded bytes it has seen */
    uint64_t slow_ms;
    uint64_t bytes_left;

    size_t head_scan; /* how far the search for the head's end got, relative to in_pos */
    size_t in_pos, in_len;
    size_t out_pos, out_len, hold;

    struct conn *next_free;
    char in[IN_CAP];
    char out[OUT_CAP];
};

static struct ev_loop *g_loop;
static const char *g_name;
static char g_common[2 * NAME_MAX_LEN]; /* "Server: ...\r\nX-Backend: NAME\r\n" */
static size_t g_common_len;
static char g_hello[NAME_MAX_LEN + 32];
#define JSON_CAP (12 * 1024) /* below RESP_RESERVE: answered in one go */
static char g_json[JSON_CAP];
static size_t g_json_len;
static size_t g_hello_len;
static char g_date[64]; /* "Date: ...\r\n", refreshed once a second */
static size_t g_date_len;
static time_t g_date_sec = -1;
static int g_failing;
static struct conn *g_free, *g_dead;
static unsigned g_free_count;
static char g_xs[XS_CAP];
static ev_io g_accept_w;
static ev_timer g_accept_pause;

static void conn_run(struct conn *c);

/* ---- small helpers ---- */

static size_t min_size(size_t a, size_t b)
{
    return a < b ? a : b;
}

static int is_tchar(unsigned char ch)
{
    /* RFC 9110 section 5.6.2 token characters. */
    if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9'))
        return 1;
    return ch != 0 && strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

static int hex_val(unsigned char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Parses 1..18 decimal digits. Returns 0, or -1 if `s` is anything else. */
static int parse_u64(const char *s, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    if (n == 0 || n > 18)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = v;
    return 0;
}

static int slice_eq(const char *s, size_t n, const char *lit)
{
    size_t m = strlen(lit);
    return n == m && memcmp(s, lit, n) == 0;
}

static int slice_ieq(const char *s, size_t n, const char *lit)
{
    size_t m = strlen(lit);
    return n == m && strncasecmp(s, lit, n) == 0;
}

/* Looks `name` up in a query string. Returns 1 and sets *out when present and
 * numeric, 0 when absent, -1 when present but not a number. */
static int query_u64(const char *q, size_t qn, const char *name, uint64_t *out)
{
    size_t name_len = strlen(name);
    size_t i = 0;
    while (i < qn) {
        const char *amp = memchr(q + i, '&', qn - i);
        size_t end = amp ? (size_t)(amp - q) : qn;
        const char *kv = q + i;
        size_t kv_len = end - i;
        if (kv_len > name_len && memcmp(kv, name, name_len) == 0 && kv[name_len] == '=')
            return parse_u64(kv + name_len + 1, kv_len - name_len - 1, out) == 0 ? 1 : -1;
        if (kv_len == name_len && memcmp(kv, name, name_len) == 0)
            return -1;
        i = end + 1;
    }
    return 0;
}

/* ---- chunked decoder ---- */

static void chunk_end_size_line(struct chunk *ch)
{
    ch->digits = 0;
    ch->line_bytes = 0;
    ch->state = ch->size == 0 ? CH_TRAILER : CH_DATA;
}

/* Decodes chunked framing in buf[0..len). Stops after one data slice of at
 * most max_data bytes (max_data > 0), at the end of the body, or at the end of
 * buf. *used is how many bytes of buf were consumed, including the slice, which
 * is returned in *data / *data_len (a pointer into buf; length 0 when none).
 * Returns 1 when the body (with its trailer section) is complete, 0 when more
 * input is needed or a slice was returned, -1 on malformed framing. */
static int chunk_step(struct chunk *ch, const char *buf, size_t len, size_t max_data, size_t *used,
                      const char **data, size_t *data_len)
{
    size_t i = 0;
    *data = NULL;
    *data_len = 0;
    while (i < len && ch->state != CH_DONE) {
        unsigned char b = (unsigned char)buf[i];
        switch (ch->state) {
        case CH_SIZE: {
            int v = hex_val(b);
            if (v >= 0) {
                if (++ch->digits > 15)
                    return -1;
                ch->size = ch->size * 16 + (uint64_t)v;
            } else if (ch->digits == 0) {
                return -1;
            } else if (b == ' ' || b == '\t') {
                ch->state = CH_SIZE_WS;
            } else if (b == ';') {
                ch->state = CH_EXT;
            } else if (b == '\r') {
                ch->state = CH_SIZE_LF;
            } else if (b == '\n') {
                chunk_end_size_line(ch);
            } else {
                return -1;
            }
            i++;
            break;
        }
        case CH_SIZE_WS:
            if (b == ';')
                ch->state = CH_EXT;
            else if (b == '\r')
                ch->state = CH_SIZE_LF;
            else if (b == '\n')
                chunk_end_size_line(ch);
            else if (b != ' ' && b != '\t')
                return -1;
            i++;
            break;
        case CH_EXT:
            if (b == '\n')
                chunk_end_size_line(ch);
            else if (++ch->line_bytes > 4096)
                return -1;
            i++;
            break;
        case CH_SIZE_LF:
            if (b != '\n')
                return -1;
            chunk_end_size_line(ch);
            i++;
            break;
        case CH_DATA: {
            size_t n = min_size(len - i, max_data);
            if (n > ch->size)
                n = (size_t)ch->size;
            *data = buf + i;
            *data_len = n;
            ch->size -= n;
            i += n;
            if (ch->size == 0)
                ch->state = CH_DATA_CR;
            *used = i;
            return 0;
        }
        case CH_DATA_CR:
            if (b == '\r')
                ch->state = CH_DATA_LF;
            else if (b == '\n')
                ch->state = CH_SIZE;
            else
                return -1;
            i++;
            break;
        case CH_DATA_LF:
            if (b != '\n')
                return -1;
            ch->state = CH_SIZE;
            i++;
            break;
        case CH_TRAILER:
            if (b == '\r')
                ch->state = CH_TRAILER_LF;
            else if (b == '\n')
                ch->state = CH_DONE;
            else
                ch->state = CH_TRAILER_LINE;
            i++;
            break;
        case CH_TRAILER_LINE:
            if (b == '\n') {
                ch->state = CH_TRAILER;
            } else if (++ch->line_bytes > HEAD_MAX) {
                return -1;
            }
            i++;
            break;
        case CH_TRAILER_LF:
            if (b != '\n')
                return -1;
            ch->state = CH_DONE;
            i++;
            break;
        case CH_DONE:
            break;
        }
    }
    *used = i;
    return ch->state == CH_DONE;
}

/* ---- request head ---- */

/* Finds the end of a head in p[0..len) ("\n\r\n" or "\n\n"), resuming at
 * *scan. Returns the head's length, or 0 when it is not complete yet. */
static size_t head_end(const char *p, size_t len, size_t *scan)
{
    size_t i = *scan;
    while (i < len) {
        const char *nl = memchr(p + i, '\n', len - i);
        if (!nl)
            break;
        size_t k = (size_t)(nl - p);
        if (k + 1 >= len) {
            *scan = k;
            return 0;
        }
        if (p[k + 1] == '\n')
            return k + 2;
        if (p[k + 1] == '\r') {
            if (k + 2 >= len) {
                *scan = k;
                return 0;
            }
            if (p[k + 2] == '\n')
                return k + 3;
        }
        i = k + 1;
    }
    *scan = len;
    return 0;
}

/* Splits the next line off p[*pos..end): sets *line and *n without the CRLF or LF.
 * Returns -1 if a CR appears anywhere but before the LF. */
static int next_line(const char *p, size_t end, size_t *pos, const char **line, size_t *n)
{
    const char *nl = *pos < end ? memchr(p + *pos, '\n', end - *pos) : NULL;
    if (!nl) /* cannot happen: the head ends with an empty line */
        return -1;
    size_t e = (size_t)(nl - p);
    size_t len = e - *pos;
    *line = p + *pos;
    if (len > 0 && (*line)[len - 1] == '\r')
        len--;
    if (memchr(*line, '\r', len))
        return -1;
    *n = len;
    *pos = e + 1;
    return 0;
}

static int parse_request_line(struct req *r, const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && is_tchar((unsigned char)s[i]))
        i++;
    if (i == 0 || i > 32 || i >= n || s[i] != ' ')
        return -1;
    r->method = s;
    r->method_len = i;
    size_t t = ++i;
    while (i < n && (unsigned char)s[i] > ' ' && s[i] != 0x7f)
        i++;
    if (i == t || i >= n || s[i] != ' ')
        return -1;
    r->target = s + t;
    r->target_len = i - t;
    i++;
    if (n - i != 8 || memcmp(s + i, "HTTP/1.", 7) != 0 || (s[i + 7] != '0' && s[i + 7] != '1'))
        return -1;
    r->minor = s[i + 7] - '0';
    const char *qm = memchr(r->target, '?', r->target_len);
    r->path = r->target;
    r->path_len = qm ? (size_t)(qm - r->target) : r->target_len;
    r->query = qm ? qm + 1 : r->target + r->target_len;
    r->query_len = qm ? r->target_len - r->path_len - 1 : 0;
    return 0;
}

/* Calls tok() for each comma-separated, whitespace-trimmed token of a header value. */
static void each_token(const char *v, size_t n, void (*tok)(struct req *, const char *, size_t),
                       struct req *r)
{
    size_t i = 0;
    while (i <= n) {
        const char *comma = memchr(v + i, ',', n - i);
        size_t e = comma ? (size_t)(comma - v) : n;
        size_t a = i, b = e;
        while (a < b && (v[a] == ' ' || v[a] == '\t'))
            a++;
        while (b > a && (v[b - 1] == ' ' || v[b - 1] == '\t'))
            b--;
        if (b > a)
            tok(r, v + a, b - a);
        i = e + 1;
    }
}

static void connection_token(struct req *r, const char *t, size_t n)
{
    if (slice_ieq(t, n, "close"))
        r->conn_close = 1;
    else if (slice_ieq(t, n, "keep-alive"))
        r->conn_keep = 1;
}

static void te_token(struct req *r, const char *t, size_t n)
{
    r->chunked = slice_ieq(t, n, "chunked"); /* only a final "chunked" frames the body */
}

/* Parses a complete head p[0..len). Returns 0, or -1 for a request to answer
 * with 400. Slices in *r point into p. */
static int parse_head(struct req *r, const char *p, size_t len)
{
    const char *line;
    size_t n, pos = 0;
    int te_seen = 0;
    memset(r, 0, sizeof *r);
    r->head = p;
    r->head_len = len;
    if (next_line(p, len, &pos, &line, &n) < 0 || parse_request_line(r, line, n) < 0)
        return -1;
    for (;;) {
        if (next_line(p, len, &pos, &line, &n) < 0)
            return -1;
        if (n == 0)
            break;
        size_t i = 0;
        while (i < n && is_tchar((unsigned char)line[i]))
            i++;
        if (i == 0 || i >= n || line[i] != ':') /* also rejects obs-fold and "name :" */
            return -1;
        const char *name = line;
        size_t name_len = i++;
        while (i < n && (line[i] == ' ' || line[i] == '\t'))
            i++;
        size_t e = n;
        while (e > i && (line[e - 1] == ' ' || line[e - 1] == '\t'))
            e--;
        const char *v = line + i;
        size_t vn = e - i;
        for (size_t k = 0; k < vn; k++) {
            unsigned char b = (unsigned char)v[k];
            if ((b < ' ' && b != '\t') || b == 0x7f)
                return -1;
        }
        if (slice_ieq(name, name_len, "content-length")) {
            uint64_t cl;
            if (parse_u64(v, vn, &cl) < 0 || (r->has_length && cl != r->content_length))
                return -1;
            r->has_length = 1;
            r->content_length = cl;
        } else if (slice_ieq(name, name_len, "transfer-encoding")) {
            te_seen = 1;
            each_token(v, vn, te_token, r);
        } else if (slice_ieq(name, name_len, "connection")) {
            each_token(v, vn, connection_token, r);
        } else if (slice_ieq(name, name_len, "expect")) {
            r->expect_continue = slice_ieq(v, vn, "100-continue");
        }
    }
    /* RFC 9112 section 6.1: a coding other than a final chunked, TE in HTTP/1.0,
     * or TE beside Content-Length cannot be framed safely. */
    if (te_seen && (!r->chunked || r->minor == 0 || r->has_length))
        return -1;
    r->keep_alive = r->minor == 1 ? !r->conn_close : (r->conn_keep && !r->conn_close);
    return 0;
}

/* ---- building answers into `out` ---- */

static void out_mem(struct conn *c, const void *p, size_t n)
{
    if (n > OUT_CAP - c->out_len) /* cannot happen with RESP_RESERVE; never overflow */
        n = OUT_CAP - c->out_len;
    memcpy(c->out + c->out_len, p, n);
    c->out_len += n;
}

#define out_lit(c, s) out_mem((c), (s), sizeof(s) - 1)

static void out_u64(struct conn *c, uint64_t v, int base)
{
    char tmp[24];
    size_t i = sizeof tmp;
    do {
        tmp[--i] = "0123456789abcdef"[v % (uint64_t)base];
        v /= (uint64_t)base;
    } while (v);
    out_mem(c, tmp + i, sizeof tmp - i);
}

static void out_compact(struct conn *c)
{
    if (c->out_pos == 0)
        return;
    memmove(c->out, c->out + c->out_pos, c->out_len - c->out_pos);
    c->out_len -= c->out_pos;
    if (c->hold != HOLD_NONE)
        c->hold -= c->out_pos;
    c->out_pos = 0;
}

static const char *status_reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return status < 300   ? "OK"
               : status < 400 ? "Redirect"
               : status < 500 ? "Client Error"
                              : "Server Error";
    }
}

static void date_refresh(void)
{
    time_t now = (time_t)ev_now(g_loop);
    struct tm tm;
    if (now == g_date_sec)
        return;
    g_date_sec = now;
    gmtime_r(&now, &tm);
    g_date_len = strftime(g_date, sizeof g_date, "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
}

/* Appends a status line and the common fields, without the empty line that
 * ends the head. content_length < 0 leaves Content-Length out. */
static void resp_head(struct conn *c, int status, const char *content_type, int64_t content_length)
{
    const char *reason = status_reason(status);
    out_lit(c, "HTTP/1.1 ");
    out_u64(c, (uint64_t)status, 10);
    out_lit(c, " ");
    out_mem(c, reason, strlen(reason));
    out_lit(c, "\r\n");
    out_mem(c, g_common, g_common_len);
    date_refresh();
    out_mem(c, g_date, g_date_len);
    if (content_type) {
        out_lit(c, "Content-Type: ");
        out_mem(c, content_type, strlen(content_type));
        out_lit(c, "\r\n");
    }
    if (content_length >= 0) {
        out_lit(c, "Content-Length: ");
        out_u64(c, (uint64_t)content_length, 10);
        out_lit(c, "\r\n");
    }
    if (c->close_after)
        out_lit(c, "Connection: close\r\n");
    else if (c->minor == 0)
        out_lit(c, "Connection: keep-alive\r\n");
}

static void resp_text_type(struct conn *c, int status, const char *type, const char *body, size_t n)
{
    resp_head(c, status, type, (int64_t)n);
    out_lit(c, "\r\n");
    if (!c->no_body)
        out_mem(c, body, n);
}

static void resp_text(struct conn *c, int status, const char *body, size_t n)
{
    resp_text_type(c, status, "text/plain", body, n);
}

/* The /json document: records like an API listing, about 10 KB. */
static void json_build(void)
{
    size_t n = 0;
    n += (size_t)snprintf(g_json + n, JSON_CAP - n, "{\"items\":[");
    for (int i = 0; i < 120 && n < JSON_CAP - 256; i++)
        n += (size_t)snprintf(g_json + n, JSON_CAP - n,
                              "%s{\"id\":%d,\"name\":\"item-%04d\",\"price\":%d.%02d,"
                              "\"tags\":[\"demo\",\"bench\"],\"in_stock\":%s}",
                              i ? "," : "", i, i, 10 + i * 7 % 90, i * 13 % 100, i % 3 ? "true" : "false");
    n += (size_t)snprintf(g_json + n, JSON_CAP - n, "],\"total\":120}\n");
    g_json_len = n;
}

#define resp_lit(c, status, s) resp_text((c), (status), (s), sizeof(s) - 1)

/* Answers an unparseable request and stops reading requests on this connection. */
static void resp_error(struct conn *c, int status, const char *body)
{
    c->close_after = 1;
    c->no_body = 0;
    c->minor = 1;
    resp_text(c, status, body, strlen(body));
}

/* ---- connections ---- */

static void conn_timeout_set(struct conn *c, double seconds)
{
    c->timeout_s = seconds;
    c->last_active = ev_now(g_loop);
    ev_timer_stop(g_loop, &c->idle);
    ev_timer_set(&c->idle, seconds, 0.);
    ev_timer_start(g_loop, &c->idle);
}

/* The one teardown path: stops every watcher and closes the socket now; the
 * memory goes back to the free list only after this loop turn (reap_cb), so a
 * caller further up the stack may still read `c->closing`. */
static void conn_close(struct conn *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    ev_io_stop(g_loop, &c->rd);
    ev_io_stop(g_loop, &c->wr);
    ev_timer_stop(g_loop, &c->idle);
    ev_timer_stop(g_loop, &c->slow);
    close(c->fd);
    c->fd = -1;
    c->next_free = g_dead;
    g_dead = c;
}

static void reap_cb(struct ev_loop *loop, ev_check *w, int revents)
{
    while (g_dead) {
        struct conn *c = g_dead;
        g_dead = c->next_free;
        if (g_free_count >= FREE_LIST_MAX) {
            free(c);
            continue;
        }
        c->next_free = g_free;
        g_free = c;
        g_free_count++;
    }
}

/* Our last answer is out: shut our side and read until the peer closes, so
 * unread request bytes in its direction do not turn our close into a reset
 * that could destroy the answer (RFC 9112 section 9.6). */
static void conn_linger(struct conn *c)
{
    if (c->peer_eof) {
        conn_close(c);
        return;
    }
    c->state = ST_LINGER;
    shutdown(c->fd, SHUT_WR);
    ev_io_stop(g_loop, &c->wr);
    ev_io_start(g_loop, &c->rd);
    conn_timeout_set(c, LINGER_TIMEOUT_S);
}

/* Enables reading while there is space in `in` and input is still wanted. */
static void conn_watch_read(struct conn *c)
{
    int want = !c->peer_eof && c->state != ST_LINGER && (c->in_len < IN_CAP || c->in_pos > 0);
    if (want && !ev_is_active(&c->rd))
        ev_io_start(g_loop, &c->rd);
    else if (!want && ev_is_active(&c->rd))
        ev_io_stop(g_loop, &c->rd);
}

/* Writes what `out` may send (up to `hold`) and, in ST_BYTES, the stream after
 * it. Returns bytes written (0 when nothing could be), or -1 when the
 * connection was closed or went lingering. Starts the write watcher when the
 * socket is full and stops it when nothing is left to send. */
static ssize_t conn_flush(struct conn *c)
{
    ssize_t total = 0;
    for (;;) {
        struct iovec iov[2];
        int n_iov = 0;
        size_t lim = min_size(c->out_len, c->hold);
        if (lim > c->out_pos) {
            iov[n_iov].iov_base = c->out + c->out_pos;
            iov[n_iov++].iov_len = lim - c->out_pos;
        }
        if (c->state == ST_BYTES && lim == c->out_len && c->bytes_left > 0) {
            iov[n_iov].iov_base = g_xs;
            iov[n_iov++].iov_len = (size_t)(c->bytes_left < XS_CAP ? c->bytes_left : XS_CAP);
        }
        if (n_iov == 0)
            break;
        ssize_t n = writev(c->fd, iov, n_iov);
        if (n == -1) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                ev_io_start(g_loop, &c->wr);
                return total;
            }
            conn_close(c);
            return -1;
        }
        total += n;
        c->last_active = ev_now(g_loop);
        size_t from_out = min_size((size_t)n, lim - c->out_pos);
        c->out_pos += from_out;
        c->bytes_left -= (size_t)n - from_out;
        if (c->out_pos == c->out_len) {
            if (c->hold != HOLD_NONE)
                c->hold -= c->out_pos;
            c->out_pos = c->out_len = 0;
        }
        if (c->state == ST_BYTES && c->bytes_left == 0 && c->out_len == 0)
            c->state = ST_HEAD;
    }
    ev_io_stop(g_loop, &c->wr);
    if (c->state == ST_HEAD && c->close_after && c->out_len == 0) {
        conn_linger(c);
        return -1;
    }
    return total;
}

static void slow_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct conn *c = w->data;
    char body[64];
    int n = snprintf(body, sizeof body, "slept %llu ms\n", (unsigned long long)c->slow_ms);
    out_compact(c);
    resp_text(c, 200, body, (size_t)n);
    c->state = ST_HEAD;
    conn_run(c);
}

/* The request body has been read: finish the echo, release the held answer
 * and move on to what the request still has to do. */
static void conn_body_done(struct conn *c)
{
    if (c->body_mode != BODY_DISCARD && c->echo_chunked && !c->no_body) {
        out_lit(c, "0\r\nX-Echo-Body-Bytes: ");
        out_u64(c, c->echo_bytes, 10);
        out_lit(c, "\r\n\r\n");
    }
    c->hold = HOLD_NONE;
    c->state = ST_HEAD;
    if (c->after == AFTER_SLOW) {
        c->state = ST_SLOW;
        ev_timer_set(&c->slow, (double)c->slow_ms / 1000.0, 0.);
        ev_timer_start(g_loop, &c->slow);
    } else if (c->after == AFTER_BYTES) {
        c->state = ST_BYTES;
    }
    c->after = AFTER_NONE;
}

static void echo_head(struct conn *c, const struct req *r)
{
    resp_head(c, 200, "application/octet-stream", -1);
    out_lit(c, "X-Echo-Method: ");
    out_mem(c, r->method, r->method_len);
    out_lit(c, "\r\nX-Echo-Path: ");
    out_mem(c, r->target, r->target_len);
    out_lit(c, "\r\n");
}

static void echo_length(struct conn *c, uint64_t n)
{
    out_lit(c, "Content-Length: ");
    out_u64(c, n, 10);
    out_lit(c, "\r\nX-Echo-Body-Bytes: ");
    out_u64(c, n, 10);
    out_lit(c, "\r\n\r\n");
}

static void route_echo(struct conn *c, const struct req *r)
{
    echo_head(c, r);
    c->echo_bytes = 0;
    c->echo_chunked = 0;
    if (r->chunked) {
        memset(&c->dry, 0, sizeof c->dry);
        c->dry_off = 0;
        c->dry_total = 0;
        c->body_mode = BODY_ECHO_UNDECIDED;
        return;
    }
    echo_length(c, r->content_length);
    c->hold = HOLD_NONE; /* the head is complete: it may leave before the body is read */
    c->body_mode = BODY_ECHO;
}

static void route_admin(struct conn *c, const struct req *r)
{
    uint64_t on;
    int q = query_u64(r->query, r->query_len, "on", &on);
    if (slice_eq(r->method, r->method_len, "GET") || slice_eq(r->method, r->method_len, "HEAD")) {
        if (g_failing)
            resp_lit(c, 200, "failing on\n");
        else
            resp_lit(c, 200, "failing off\n");
        return;
    }
    if (!slice_eq(r->method, r->method_len, "POST")) {
        resp_lit(c, 405, "use POST /admin/fail?on=1|0\n");
        return;
    }
    if (q != 1 || on > 1) {
        resp_lit(c, 400, "use POST /admin/fail?on=1|0\n");
        return;
    }
    g_failing = (int)on;
    fprintf(stderr, "weir-demo %s: failing %s\n", g_name, on ? "on" : "off");
    if (g_failing)
        resp_lit(c, 200, "failing on\n");
    else
        resp_lit(c, 200, "failing off\n");
}

static void route_fail(struct conn *c, const struct req *r)
{
    uint64_t status = 500;
    if (query_u64(r->query, r->query_len, "status", &status) < 0 || status < 200 || status > 599) {
        resp_lit(c, 400, "status must be 200..599\n");
        return;
    }
    if (status == 204 || status == 304) { /* no body allowed (RFC 9110 sections 15.3.5, 15.4.5) */
        resp_head(c, (int)status, NULL, -1);
        out_lit(c, "\r\n");
        return;
    }
    resp_lit(c, (int)status, "failing\n");
}

static void route_slow(struct conn *c, const struct req *r)
{
    uint64_t ms = SLOW_DEFAULT_MS;
    if (query_u64(r->query, r->query_len, "ms", &ms) < 0) {
        resp_lit(c, 400, "ms must be a number\n");
        return;
    }
    c->slow_ms = ms > SLOW_MAX_MS ? SLOW_MAX_MS : ms;
    c->after = AFTER_SLOW;
}

static void route_bytes(struct conn *c, const struct req *r)
{
    uint64_t n = 1024;
    if (query_u64(r->query, r->query_len, "n", &n) < 0) {
        resp_lit(c, 400, "n must be a number\n");
        return;
    }
    if (n > BYTES_MAX)
        n = BYTES_MAX;
    resp_head(c, 200, "application/octet-stream", (int64_t)n);
    out_lit(c, "\r\n");
    if (!c->no_body && n > 0) {
        c->bytes_left = n;
        c->after = AFTER_BYTES;
    }
}

/* Answers (or starts answering) one request whose head is in `r`. */
static void conn_dispatch(struct conn *c, const struct req *r)
{
    int has_body = r->chunked || r->content_length > 0;
    const char *p = r->path;
    size_t pn = r->path_len;

    c->minor = r->minor;
    c->no_body = slice_eq(r->method, r->method_len, "HEAD");
    c->close_after = !r->keep_alive;
    c->body_chunked = r->chunked;
    c->body_left = r->content_length;
    memset(&c->chunk, 0, sizeof c->chunk);
    c->body_mode = BODY_DISCARD;
    c->after = AFTER_NONE;
    c->hold = HOLD_NONE;
    if (has_body) {
        if (r->expect_continue && r->minor == 1)
            out_lit(c, "HTTP/1.1 100 Continue\r\n\r\n");
        c->hold = c->out_len;
    }

    if (slice_eq(p, pn, "/admin/fail"))
        route_admin(c, r);
    else if (pn >= 7 && memcmp(p, "/admin/", 7) == 0)
        resp_lit(c, 404, "not found\n");
    else if (g_failing && slice_eq(p, pn, "/health"))
        resp_lit(c, 503, "failing\n");
    else if (g_failing)
        resp_lit(c, 500, "failing\n");
    else if (slice_eq(p, pn, "/") || (pn >= 8 && memcmp(p, "/sticky/", 8) == 0))
        resp_text(c, 200, g_hello, g_hello_len);
    else if (slice_eq(p, pn, "/health"))
        resp_lit(c, 200, "ok\n");
    else if (slice_eq(p, pn, "/echo") || (pn > 5 && memcmp(p, "/echo/", 6) == 0))
        route_echo(c, r);
    else if (slice_eq(p, pn, "/headers"))
        resp_text(c, 200, r->head, r->head_len);
    else if (slice_eq(p, pn, "/slow"))
        route_slow(c, r);
    else if (slice_eq(p, pn, "/fail"))
        route_fail(c, r);
    else if (slice_eq(p, pn, "/bytes"))
        route_bytes(c, r);
    else if (slice_eq(p, pn, "/json"))
        resp_text_type(c, 200, "application/json", g_json, g_json_len);
    else
        resp_lit(c, 404, "not found\n");

    if (has_body)
        c->state = ST_BODY;
    else
        conn_body_done(c);
}

/* Parses and answers the next request head. Returns 1 if it consumed input,
 * 0 if it needs more input or room in `out`. */
static int conn_head(struct conn *c)
{
    struct req r;
    const char *p = c->in + c->in_pos;
    size_t avail = c->in_len - c->in_pos;

    /* RFC 9112 section 2.2: ignore empty lines before a request line. */
    while (avail > 0 && (p[0] == '\n' || (p[0] == '\r' && avail > 1 && p[1] == '\n'))) {
        size_t skip = p[0] == '\n' ? 1 : 2;
        c->in_pos += skip;
        p += skip;
        avail -= skip;
    }
    if (avail == 0) {
        if (c->in_pos == c->in_len)
            c->in_pos = c->in_len = 0;
        if (c->peer_eof)
            c->close_after = 1;
        return 0;
    }
    if (OUT_CAP - c->out_len < RESP_RESERVE) {
        out_compact(c);
        if (OUT_CAP - c->out_len < RESP_RESERVE)
            return 0;
    }
    size_t n = head_end(p, avail, &c->head_scan);
    if (n == 0 || n > HEAD_MAX) {
        if (n > HEAD_MAX || avail > HEAD_MAX) {
            resp_error(c, 431, "request head too large\n");
            return 1;
        }
        if (c->peer_eof)
            c->close_after = 1;
        return 0;
    }
    c->head_scan = 0;
    if (parse_head(&r, p, n) < 0) {
        resp_error(c, 400, "bad request\n");
        return 1;
    }
    c->in_pos += n;
    conn_dispatch(c, &r);
    return 1;
}

/* chunked /echo: answer with a Content-Length if the whole body is already
 * here, else start a chunked echo once enough of it is. Returns 1 when
 * decided, 0 when waiting for input, -1 on malformed framing. */
static int conn_echo_decide(struct conn *c)
{
    size_t avail = c->in_len - c->in_pos;
    while (c->dry_off < avail) {
        const char *d;
        size_t used, dn;
        int r = chunk_step(&c->dry, c->in + c->in_pos + c->dry_off, avail - c->dry_off, SIZE_MAX,
                           &used, &d, &dn);
        if (r < 0)
            return -1;
        c->dry_off += used;
        c->dry_total += dn;
        if (r == 1) {
            echo_length(c, c->dry_total);
            c->body_mode = BODY_ECHO;
            return 1;
        }
    }
    if (avail < ECHO_DECIDE_BYTES && !c->peer_eof)
        return 0;
    out_lit(c, "Transfer-Encoding: chunked\r\nTrailer: X-Echo-Body-Bytes\r\n\r\n");
    c->echo_chunked = 1;
    c->body_mode = BODY_ECHO;
    return 1;
}

/* Reads the request body as far as input and room in `out` allow. Returns 1
 * if it consumed input or finished, 0 if blocked, -1 if it closed. */
static int conn_body(struct conn *c)
{
    int progressed = 0;
    if (c->body_mode == BODY_ECHO_UNDECIDED) {
        int d = conn_echo_decide(c);
        if (d == 0)
            goto need_input;
        if (d < 0)
            goto malformed;
        c->hold = HOLD_NONE; /* the answer's head is complete: let it go */
        progressed = 1;
    }
    for (;;) {
        size_t avail = c->in_len - c->in_pos;
        size_t max = SIZE_MAX;
        const char *d = NULL;
        size_t dn = 0;
        int r;
        if (c->body_mode == BODY_ECHO) {
            if (OUT_CAP - c->out_len < 1024)
                out_compact(c);
            if (OUT_CAP - c->out_len < 1024)
                return progressed;           /* `out` full: wait for the socket */
            max = OUT_CAP - c->out_len - 32; /* room for the chunk framing */
        }
        if (avail == 0)
            goto need_input;
        if (c->body_chunked) {
            size_t used;
            r = chunk_step(&c->chunk, c->in + c->in_pos, avail, max, &used, &d, &dn);
            if (r < 0)
                goto malformed;
            c->in_pos += used;
        } else {
            dn = min_size(min_size(avail, max),
                          c->body_left < SIZE_MAX ? (size_t)c->body_left : SIZE_MAX);
            d = c->in + c->in_pos;
            c->in_pos += dn;
            c->body_left -= dn;
            r = c->body_left == 0;
        }
        progressed = 1;
        if (dn > 0 && c->body_mode == BODY_ECHO) {
            c->echo_bytes += dn;
            if (!c->no_body && c->echo_chunked) {
                out_u64(c, dn, 16);
                out_lit(c, "\r\n");
            }
            if (!c->no_body)
                out_mem(c, d, dn);
            if (!c->no_body && c->echo_chunked)
                out_lit(c, "\r\n");
        }
        if (r == 1) {
            conn_body_done(c);
            return 1;
        }
    }
need_input:
    if (c->in_pos == c->in_len)
        c->in_pos = c->in_len = 0;
    if (c->peer_eof) {
        conn_close(c); /* the body can never be completed */
        return -1;
    }
    return progressed;
malformed:
    if (c->hold != HOLD_NONE) { /* nothing of the answer left yet: replace it */
        c->out_len = c->hold;
        c->hold = HOLD_NONE;
        c->state = ST_HEAD;
        c->after = AFTER_NONE;
        resp_error(c, 400, "bad chunked body\n");
        return 1;
    }
    conn_close(c);
    return -1;
}

/* Consumes input as far as possible. Returns 1 if anything was consumed, 0 if
 * not, -1 if the connection was closed. */
static int conn_process(struct conn *c)
{
    int progressed = 0;
    for (;;) {
        int r;
        if (c->state == ST_HEAD) {
            if (c->close_after)
                return progressed;
            r = conn_head(c);
        } else if (c->state == ST_BODY) {
            r = conn_body(c);
        } else {
            return progressed;
        }
        if (r < 0)
            return -1;
        if (r == 0)
            return progressed;
        progressed = 1;
    }
}

/* Drives a connection after any event: answer what can be answered, send
 * what can be sent, until neither makes progress or the socket is full. */
static void conn_run(struct conn *c)
{
    for (;;) {
        int p = conn_process(c);
        if (p < 0 || c->closing)
            return;
        ssize_t w = conn_flush(c);
        if (w < 0 || c->closing || c->state == ST_LINGER)
            return;
        if (ev_is_active(&c->wr))
            break;
        if (p == 0 && w == 0)
            break;
    }
    conn_watch_read(c);
}

static void read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct conn *c = w->data;
    if (c->in_pos == c->in_len) {
        c->in_pos = c->in_len = 0;
    } else if (IN_CAP - c->in_len < 4096 && c->in_pos > 0) {
        memmove(c->in, c->in + c->in_pos, c->in_len - c->in_pos);
        c->in_len -= c->in_pos;
        c->in_pos = 0;
    }
    if (c->in_len == IN_CAP && c->state != ST_LINGER) {
        ev_io_stop(loop, w);
        return;
    }
    char *dst = c->in + c->in_len;
    size_t room = IN_CAP - c->in_len;
    if (c->state == ST_LINGER) { /* discard */
        dst = c->in;
        room = IN_CAP;
    }
    ssize_t n = read(c->fd, dst, room);
    if (n == -1) {
        if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
            return;
        conn_close(c);
        return;
    }
    if (c->state == ST_LINGER) {
        if (n == 0)
            conn_close(c);
        return;
    }
    c->last_active = ev_now(loop);
    if (n == 0) {
        c->peer_eof = 1;
        ev_io_stop(loop, w);
    } else {
        c->in_len += (size_t)n;
    }
    conn_run(c);
}

static void write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct conn *c = w->data;
    conn_run(c);
}

static void idle_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct conn *c = w->data;
    ev_tstamp left = c->last_active + c->timeout_s - ev_now(loop);
    if (c->state == ST_SLOW)
        left = c->timeout_s; /* the slow timer is bounded; don't cut it */
    if (left <= 0.) {
        conn_close(c);
        return;
    }
    ev_timer_set(w, left, 0.);
    ev_timer_start(loop, w);
}

static struct conn *conn_get(void)
{
    struct conn *c = g_free;
    if (c) {
        g_free = c->next_free;
        g_free_count--;
    } else {
        c = malloc(sizeof *c);
        if (!c)
            return NULL;
    }
    /* Everything before the buffers; the buffers need no clearing. */
    memset(c, 0, offsetof(struct conn, in));
    c->hold = HOLD_NONE;
    return c;
}

static void accept_resume_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    ev_io_start(loop, &g_accept_w);
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    for (int i = 0; i < 64; i++) {
        int fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd == -1) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            /* EMFILE and friends: pause accepting for a moment instead of spinning. */
            fprintf(stderr, "weir-demo %s: accept: %s (pausing 100ms)\n", g_name, strerror(errno));
            ev_io_stop(loop, w);
            ev_timer_set(&g_accept_pause, 0.1, 0.);
            ev_timer_start(loop, &g_accept_pause);
            return;
        }
        struct conn *c = conn_get();
        if (!c) {
            close(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        c->fd = fd;
        ev_io_init(&c->rd, read_cb, fd, EV_READ);
        ev_io_init(&c->wr, write_cb, fd, EV_WRITE);
        ev_init(&c->idle, idle_cb);
        ev_init(&c->slow, slow_cb);
        c->rd.data = c->wr.data = c->idle.data = c->slow.data = c;
        ev_io_start(loop, &c->rd);
        conn_timeout_set(c, IDLE_TIMEOUT_S);
    }
}

static void signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    ev_break(loop, EVBREAK_ALL);
}

/* ---- setup ---- */

/* Opens a listening socket on "HOST:PORT" ("[v6]:PORT" for IPv6). Returns the
 * fd, or -1 with a message on stderr. Writes the bound address to `bound`. */
static int listen_on(const char *spec, char *bound, size_t bound_size)
{
    char host[256];
    const char *colon = strrchr(spec, ':');
    struct addrinfo hints, *res = NULL;
    int fd = -1, one = 1, rc;

    if (!colon || colon == spec || strlen(spec) >= sizeof host || colon[1] == 0) {
        fprintf(stderr, "weir-demo: -l wants HOST:PORT, got '%s'\n", spec);
        return -1;
    }
    memcpy(host, spec, (size_t)(colon - spec));
    host[colon - spec] = 0;
    if (host[0] == '[' && host[strlen(host) - 1] == ']') {
        memmove(host, host + 1, strlen(host) - 2);
        host[strlen(host) - 2] = 0;
    }
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    rc = getaddrinfo(host, colon + 1, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "weir-demo: cannot resolve '%s': %s\n", spec, gai_strerror(rc));
        return -1;
    }
    fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1)
        goto fail;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, res->ai_addr, res->ai_addrlen) == -1 || listen(fd, 4096) == -1)
        goto fail;
    freeaddrinfo(res);

    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    char h[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
            inet_ntop(AF_INET6, &s6->sin6_addr, h, sizeof h);
            port = ntohs(s6->sin6_port);
            snprintf(bound, bound_size, "[%s]:%d", h, port);
        } else {
            struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
            inet_ntop(AF_INET, &s4->sin_addr, h, sizeof h);
            port = ntohs(s4->sin_port);
            snprintf(bound, bound_size, "%s:%d", h, port);
        }
    }
    return fd;
fail:
    fprintf(stderr, "weir-demo: cannot listen on %s: %s\n", spec, strerror(errno));
    if (fd != -1)
        close(fd);
    freeaddrinfo(res);
    return -1;
}

static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static void usage(FILE *f)
{
    fprintf(f, "usage: weir-demo [-l HOST:PORT] [-n NAME]\n"
               "  -l  address to listen on (default 127.0.0.1:9001; port 0 picks one)\n"
               "  -n  name in X-Backend and in the / answer (default: the listen address)\n"
               "paths: / /health /slow?ms=N /echo /headers /fail?status=N /bytes?n=N /json\n"
               "       POST /admin/fail?on=1|0\n");
}

int main(int argc, char **argv)
{
    const char *listen_spec = "127.0.0.1:9001";
    static char bound[300];
    int opt, fd;
    ev_signal sig_int, sig_term;
    ev_check reaper;

    while ((opt = getopt(argc, argv, "l:n:h")) != -1) {
        switch (opt) {
        case 'l':
            listen_spec = optarg;
            break;
        case 'n':
            g_name = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit();
    fd = listen_on(listen_spec, bound, sizeof bound);
    if (fd == -1)
        return 1;
    if (!g_name)
        g_name = bound;
    if (strlen(g_name) > NAME_MAX_LEN || strpbrk(g_name, "\r\n")) {
        fprintf(stderr, "weir-demo: -n NAME must be one line of at most %d bytes\n", NAME_MAX_LEN);
        return 2;
    }
    g_common_len = (size_t)snprintf(g_common, sizeof g_common,
                                    "Server: weir-demo\r\nX-Backend: %s\r\n", g_name);
    g_hello_len = (size_t)snprintf(g_hello, sizeof g_hello, "hello from %s\n", g_name);
    json_build();
    memset(g_xs, 'x', sizeof g_xs);

    g_loop = ev_default_loop(EVFLAG_AUTO);
    if (!g_loop) {
        fprintf(stderr, "weir-demo: cannot start libev\n");
        return 1;
    }
    ev_io_init(&g_accept_w, accept_cb, fd, EV_READ);
    ev_io_start(g_loop, &g_accept_w);
    ev_init(&g_accept_pause, accept_resume_cb);
    ev_check_init(&reaper, reap_cb);
    ev_check_start(g_loop, &reaper);
    ev_signal_init(&sig_int, signal_cb, SIGINT);
    ev_signal_start(g_loop, &sig_int);
    ev_signal_init(&sig_term, signal_cb, SIGTERM);
    ev_signal_start(g_loop, &sig_term);

    fprintf(stderr, "weir-demo %s listening on %s\n", g_name, bound);
    ev_run(g_loop, 0);
    close(fd);
    return 0;
}
