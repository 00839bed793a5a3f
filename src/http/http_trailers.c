/* http_trailers: see the header. The section bytes were checked by the
 * chunked decoder (token names, valid values, CRLF line ends), so writing
 * only splits lines and looks names up. */
#include "http/http_trailers.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* RFC 9110 6.5.1 (and 6.5.2's "Trailer" itself): fields a recipient would
 * act on before the content, so a trailer must not carry them. */
static const char *const http_trailer_forbidden_names[] = {
    /* framing and connection */
    "transfer-encoding", "content-length", "trailer", "connection", "keep-alive", "proxy-connection",
    "upgrade", "te",
    /* routing */
    "host",
    /* request modifiers: controls and conditionals */
    "cache-control", "expect", "max-forwards", "pragma", "range", "if-match", "if-none-match",
    "if-modified-since", "if-unmodified-since", "if-range",
    /* authentication and cookies */
    "authorization", "proxy-authorization", "www-authenticate", "proxy-authenticate",
    "authentication-info", "proxy-authentication-info", "cookie", "set-cookie",
    /* response control data */
    "age", "expires", "date", "location", "retry-after", "vary", "warning",
    /* content processing */
    "content-encoding", "content-type", "content-range",
};

int http_trailer_forbidden(const char *name, size_t n)
{
    size_t k = sizeof(http_trailer_forbidden_names) / sizeof(http_trailer_forbidden_names[0]);
    for (size_t i = 0; i < k; i++) {
        const char *f = http_trailer_forbidden_names[i];
        if (strlen(f) == n && strncasecmp(f, name, n) == 0)
            return 1;
    }
    return 0;
}

int http_trailers_add(struct http_trailers *t, const char *p, size_t n, size_t max)
{
    if (t->over || n == 0)
        return 0;
    if (n > max || t->len + n > max) {
        http_trailers_clear(t);
        t->over = 1;
        return 0;
    }
    if (!t->p) {
        t->p = malloc(max);
        if (!t->p)
            return -ENOMEM;
    }
    memcpy(t->p + t->len, p, n);
    t->len += (uint32_t)n;
    return 0;
}

size_t http_trailers_bound(const struct http_trailers *t)
{
    return 5 + t->len;
}

int http_trailers_write(const struct http_trailers *t, char *out, size_t cap)
{
    if (cap < http_trailers_bound(t))
        return -ENOSPC;
    size_t o = 0, i = 0;
    memcpy(out, "0\r\n", 3);
    o = 3;
    while (i < t->len) {
        const char *line = t->p + i;
        const char *lf = memchr(line, '\n', t->len - i);
        size_t len = lf ? (size_t)(lf - line) + 1 : t->len - i;
        const char *colon = memchr(line, ':', len);
        i += len;
        if (!lf || !colon || http_trailer_forbidden(line, (size_t)(colon - line)))
            continue; /* an unfinished line cannot come from the decoder: skipped all the same */
        memcpy(out + o, line, len);
        o += len;
    }
    memcpy(out + o, "\r\n", 2);
    return (int)(o + 2);
}

void http_trailers_clear(struct http_trailers *t)
{
    free(t->p);
    t->p = NULL;
    t->len = 0;
    t->over = 0;
}
