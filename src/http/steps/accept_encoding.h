/* accept_encoding: the Accept-Encoding request field (RFC 9110 12.5.3) as
 * the compress step reads it: which of the codings weir makes a client
 * takes, with which weight, and the choice among them. */
#ifndef WEIR_HTTP_STEPS_ACCEPT_ENCODING_H
#define WEIR_HTTP_STEPS_ACCEPT_ENCODING_H

#include <stddef.h>
#include <stdint.h>

/* The content codings weir makes (compress_codec.c has one row each). */
#define AE_CODING_LIST(X) \
    X(AE_CODING_BR, "br") \
    X(AE_CODING_ZSTD, "zstd") \
    X(AE_CODING_GZIP, "gzip")
#define AE_ENUM_MEMBER(e, s) e,
enum ae_coding { AE_CODING_LIST(AE_ENUM_MEMBER) AE_CODING_COUNT };
#undef AE_ENUM_MEMBER

extern const char *const ae_coding_names[AE_CODING_COUNT];

#define AE_Q_UNSET (-1)   /* the element was not in the field */

/* What the client sent, weights in thousandths (q=0.5 -> 500). */
struct accept_encoding {
    int16_t q[AE_CODING_COUNT];
    int16_t identity, star;
};

/* Sets every weight to AE_Q_UNSET (no field: nothing but identity). */
void accept_encoding_init(struct accept_encoding *ae);
/* Adds the elements of one field value p[0..n) (several fields combine).
 * A coding named twice keeps its first weight; "x-gzip" is gzip; names are
 * case-insensitive; an element that does not parse (bad token, bad qvalue,
 * q with more than 3 decimals) is skipped, the others still count.
 * Returns how many elements were understood. Reads no byte past p + n. */
int accept_encoding_parse(struct accept_encoding *ae, const char *p, size_t n);
/* The coding to use among prefs[0..n) (weir's order): the one the client
 * weighs highest, ties going to the first in prefs; a coding not named
 * takes `*`'s weight. None when the best weight is 0, or when the client
 * named identity (or `*`, identity unnamed) with a greater weight than the
 * best coding. Returns the coding or -1 (send identity). */
int accept_encoding_choose(const struct accept_encoding *ae, const enum ae_coding *prefs, size_t n);

#endif
