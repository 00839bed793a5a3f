/* http_trailers: the trailer section of a chunked message kept between the
 * chunked decoder (which hands its bytes out, http_parser.h keep_trailers)
 * and the last-chunk weir writes on the other side.
 *
 *   decoder ──HTTP_CHUNK_TRAILER spans──> http_trailers_add ──> t->p (≤ max)
 *   body ends ──> http_trailers_write: "0\r\n" + allowed fields + "\r\n"
 *
 * The section is held whole (at most `max` bytes, HTTP_TRAILERS_MAX by
 * default): beyond it the whole section is dropped and the message ends with
 * an empty one (never a part of it: a field cut in the middle would be
 * worse than none). Fields that must not be trailers (RFC 9110 6.5.1:
 * framing, routing, request modifiers, authentication, response control,
 * content metadata, hop-by-hop) are left out when written. */
#ifndef WEIR_HTTP_TRAILERS_H
#define WEIR_HTTP_TRAILERS_H

#include <stddef.h>
#include <stdint.h>

#define HTTP_TRAILERS_MAX 16384

struct http_trailers {
    char *p;           /* malloc'd on the first byte, NULL while empty */
    uint32_t len;
    unsigned over : 1; /* more than max arrived: the section is dropped */
};

/* Appends n bytes of a trailer section (field lines, each with its CRLF, as
 * the chunked decoder hands them out). Past max the section is dropped and
 * t->over set. Returns 0, or -ENOMEM (t unchanged). */
int http_trailers_add(struct http_trailers *t, const char *p, size_t n, size_t max);

/* The bytes http_trailers_write writes at most. */
size_t http_trailers_bound(const struct http_trailers *t);

/* Writes the last-chunk and the trailer section ("0\r\n", the allowed
 * fields as received, "\r\n") to out[0..cap). Returns the bytes written, or
 * -ENOSPC when cap < http_trailers_bound(t) (nothing written). */
int http_trailers_write(const struct http_trailers *t, char *out, size_t cap);

/* 1 when the field named name[0..n) (any case) must not be sent as a trailer. */
int http_trailer_forbidden(const char *name, size_t n);

/* Frees the bytes; t is empty again. */
void http_trailers_clear(struct http_trailers *t);

#endif
