/* freshness: the rules of RFC 9111 as pure functions. Nothing here reads a
 * clock, allocates or locks: times (seconds since the epoch) are arguments,
 * so every rule is tested against a controlled clock (test_cache_freshness.c).
 *
 *   Cache-Control value(s) --cache_cc_parse--> struct cache_cc
 *   response fields        --cache_resp_field--> struct cache_resp
 *   storable?   cache_storable()          (RFC 9111 3, 3.5)
 *   lifetime    cache_freshness_lifetime() (4.2.1, 4.2.2)
 *   age         cache_current_age()        (4.2.3)
 *   reuse?      cache_reuse()              (4.2, 5.2.1, 5.2.2; RFC 5861) */
#ifndef WEIR_CACHE_FRESHNESS_H
#define WEIR_CACHE_FRESHNESS_H

#include <stddef.h>
#include <stdint.h>

/* Directive flags, request and response (RFC 9111 5.2, RFC 8246). */
#define CACHE_CC_FLAG_LIST(X) \
    X(CACHE_CC_PUBLIC, "public") \
    X(CACHE_CC_PRIVATE, "private") \
    X(CACHE_CC_NO_STORE, "no-store") \
    X(CACHE_CC_NO_CACHE, "no-cache") \
    X(CACHE_CC_MUST_REVALIDATE, "must-revalidate") \
    X(CACHE_CC_PROXY_REVALIDATE, "proxy-revalidate") \
    X(CACHE_CC_MUST_UNDERSTAND, "must-understand") \
    X(CACHE_CC_IMMUTABLE, "immutable") \
    X(CACHE_CC_NO_TRANSFORM, "no-transform") \
    X(CACHE_CC_ONLY_IF_CACHED, "only-if-cached")
#define CACHE_CC_BIT(e, s) e##_BIT,
enum { CACHE_CC_FLAG_LIST(CACHE_CC_BIT) CACHE_CC_FLAG_COUNT };
#undef CACHE_CC_BIT
#define CACHE_CC_FLAG(e) (1u << e##_BIT)

/* Flags that are not directives. */
#define CACHE_CC_INVALID (1u << 20)      /* a freshness directive repeated or malformed */
#define CACHE_CC_FIELDS (1u << 21)       /* private or no-cache listed field names */
#define CACHE_CC_SYNTAX (1u << 22)       /* the list itself did not parse everywhere */

#define CACHE_ABSENT (-1)                /* an unset delta-seconds or date */
#define CACHE_DELTA_MAX 2147483648LL     /* delta-seconds saturate here (RFC 9111 1.2.2) */

/* Parsed Cache-Control (and CDN-Cache-Control, Surrogate-Control) fields. */
struct cache_cc {
    uint32_t flags;                      /* CACHE_CC_FLAG(x) | CACHE_CC_INVALID ... */
    int64_t max_age, s_maxage;           /* CACHE_ABSENT or seconds */
    int64_t max_stale;                   /* request: CACHE_ABSENT, seconds, CACHE_DELTA_MAX for any */
    int64_t min_fresh;                   /* request */
    int64_t stale_while_revalidate;      /* response (RFC 5861) */
    int64_t stale_if_error;              /* both (RFC 5861) */
};

/* Sets cc to "no directives". */
void cache_cc_init(struct cache_cc *cc);
/* Adds the directives of one field value p[0..n) to cc (a message may
 * carry several Cache-Control fields: call once per field). Unknown
 * directives are ignored (RFC 9111 5.2.3). A repeated or malformed
 * freshness directive sets CACHE_CC_INVALID (the response is then treated as
 * stale, 4.2.1). Returns 0, or -EINVAL when part of the value was not a
 * directive list (what could be read is kept). Never reads past p + n. */
int cache_cc_parse(const char *p, size_t n, struct cache_cc *cc);

/* Parses an HTTP-date (IMF-fixdate, RFC 850 or asctime, RFC 9110 5.6.7)
 * into seconds since the epoch. Returns 0 or -EINVAL. */
int cache_date_parse(const char *p, size_t n, int64_t *out);
/* Writes an IMF-fixdate for t into dst (at least 30 bytes). Returns 29. */
int cache_date_format(int64_t t, char *dst);

/* What the cache keeps of a response head to judge it later. */
struct cache_resp {
    int status;
    struct cache_cc cc;
    int64_t date, expires, last_modified, age; /* CACHE_ABSENT when missing */
    unsigned expires_invalid : 1;        /* Expires present but not a date: already stale */
    unsigned has_etag : 1;
    unsigned vary_star : 1;              /* Vary: * -- never matches a later request */
    unsigned set_cookie : 1;
};

/* Sets r to a response with `status` and no fields. */
void cache_resp_init(struct cache_resp *r, int status);
/* Takes in one response field (name, value). Fields that do not matter
 * to freshness are ignored. */
void cache_resp_field(struct cache_resp *r, const char *name, size_t name_len, const char *value,
                      size_t value_len);

/* Why a response is not stored, or CACHE_STORE_OK. */
#define CACHE_VERDICT_LIST(X) \
    X(CACHE_STORE_OK, "stored") \
    X(CACHE_STORE_METHOD, "method") \
    X(CACHE_STORE_STATUS, "status") \
    X(CACHE_STORE_REQ_NO_STORE, "request-no-store") \
    X(CACHE_STORE_NO_STORE, "no-store") \
    X(CACHE_STORE_PRIVATE, "private") \
    X(CACHE_STORE_AUTHORIZATION, "authorization") \
    X(CACHE_STORE_VARY_STAR, "vary-star") \
    X(CACHE_STORE_SET_COOKIE, "set-cookie") \
    X(CACHE_STORE_NOT_CACHEABLE, "no-freshness-or-validator")
#define CACHE_VERDICT_ENUM(e, s) e,
enum cache_verdict { CACHE_VERDICT_LIST(CACHE_VERDICT_ENUM) CACHE_VERDICT_COUNT };
#undef CACHE_VERDICT_ENUM
const char *cache_verdict_name(enum cache_verdict v);

/* Whether a status is final and cacheable by default (heuristically
 * cacheable, RFC 9110 15.1): 200 203 204 206 300 301 308 404 405 410 414 501. */
int cache_status_heuristic(int status);
/* Whether weir knows the caching rules of this status (must-understand). */
int cache_status_understood(int status);

/* Whether a shared cache may store the response r to a request with method
 * GET (is_get), request directives req and an Authorization field (has_auth)
 * (RFC 9111 3, 3.5, 5.2.2.3). A response with neither freshness nor a
 * validator is refused (it could never be reused). */
enum cache_verdict cache_storable(int is_get, const struct cache_cc *req, int has_auth,
                                  const struct cache_resp *r);

/* Seconds the response is fresh for (RFC 9111 4.2.1): s-maxage, max-age,
 * Expires - Date, else 10 % of Date - Last-Modified for heuristically
 * cacheable statuses or public responses (4.2.2). An invalid Expires or
 * freshness directive gives 0. r->date must be set (the caller puts the
 * response time there when the origin sent none). */
int64_t cache_freshness_lifetime(const struct cache_resp *r);

/* Current age per RFC 9111 4.2.3: request_time and response_time are when
 * the cache sent the request and got the response, now the present. */
int64_t cache_current_age(const struct cache_resp *r, int64_t request_time, int64_t response_time,
                          int64_t now);

enum cache_reuse {
    CACHE_REUSE_FRESH,       /* answer from cache */
    CACHE_REUSE_STALE_OK,    /* stale, but the client accepts it (max-stale) */
    CACHE_REUSE_SWR,         /* stale within stale-while-revalidate: answer, refresh behind */
    CACHE_REUSE_REVALIDATE,  /* must be validated (or fetched) first */
};

/* Whether a stored response of `lifetime` seconds and current `age` may
 * answer a request with directives req (RFC 9111 4.2, 5.2.1, 5.2.2,
 * RFC 5861 3, RFC 8246). */
enum cache_reuse cache_reuse(const struct cache_cc *req, const struct cache_resp *r,
                             int64_t lifetime, int64_t age);

/* Whether a stale response may answer instead of an error (RFC 5861 4):
 * within stale-if-error of the response or of the request, and no
 * must-revalidate / proxy-revalidate / s-maxage. */
int cache_stale_if_error(const struct cache_cc *req, const struct cache_resp *r, int64_t lifetime,
                         int64_t age);

/* Whether an If-None-Match value p[0..n) is "*" or lists the entity-tag
 * etag[0..elen) under the weak comparison (RFC 9110 8.8.3.2, 13.1.2: W/
 * ignored on both sides). A malformed member ends the list (no match
 * after it). An empty etag matches only "*". */
int cache_etag_match(const char *p, size_t n, const char *etag, size_t elen);

/* Reads a Range value p[0..n) against a representation of len bytes: one
 * "bytes=first-last", "bytes=first-" or "bytes=-suffix" (RFC 9110 14.1.2).
 * Returns 1 with [*from, *to] (inclusive, within len), -1 when it cannot
 * be satisfied (416), 0 when weir answers the whole representation
 * instead (other units, several ranges, invalid: RFC 9110 14.2 lets a
 * server ignore those). */
int cache_range_parse(const char *p, size_t n, uint64_t len, uint64_t *from, uint64_t *to);

#endif
