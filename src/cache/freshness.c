/* freshness: see freshness.h. Pure functions of their arguments.
 *
 * The Cache-Control reader walks one field value once, left to right:
 *
 *   OWS [ token [ "=" ( token | quoted-string ) ] ] OWS ( "," | end )
 *
 * never reading past the given length and never allocating. A directive it
 * does not know is skipped (RFC 9111 5.2.3); a list element that is not a
 * directive is skipped up to the next comma outside a quoted string and
 * marks the result CACHE_CC_SYNTAX. Freshness directives given twice or
 * with a value that is not delta-seconds mark CACHE_CC_INVALID: the
 * response is then stale (RFC 9111 4.2.1), never fresher than the origin
 * meant. */
#include "cache/freshness.h"

#include <errno.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static const char *const cache_verdict_names[] = {
#define CACHE_VERDICT_NAME(e, s) s,
    CACHE_VERDICT_LIST(CACHE_VERDICT_NAME)
#undef CACHE_VERDICT_NAME
};

static const char *const cache_cc_names[] = {
#define CACHE_CC_NAME(e, s) s,
    CACHE_CC_FLAG_LIST(CACHE_CC_NAME)
#undef CACHE_CC_NAME
};

const char *cache_verdict_name(enum cache_verdict v)
{
    return (unsigned)v < CACHE_VERDICT_COUNT ? cache_verdict_names[v] : "?";
}

void cache_cc_init(struct cache_cc *cc)
{
    cc->flags = 0;
    cc->max_age = cc->s_maxage = cc->max_stale = cc->min_fresh = CACHE_ABSENT;
    cc->stale_while_revalidate = cc->stale_if_error = CACHE_ABSENT;
}

/* ---- Cache-Control ---- */

static int cache_is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return 1;
    return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static size_t cache_skip_ows(const char *p, size_t n, size_t i)
{
    while (i < n && (p[i] == ' ' || p[i] == '\t'))
        i++;
    return i;
}

/* delta-seconds (RFC 9111 1.2.2): digits only, saturating. Returns the
 * value or CACHE_ABSENT when v is not digits. */
static int64_t cache_delta(const char *v, size_t n)
{
    if (n == 0)
        return CACHE_ABSENT;
    int64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return CACHE_ABSENT;
        if (x < CACHE_DELTA_MAX)
            x = x * 10 + (v[i] - '0');
    }
    return x < CACHE_DELTA_MAX ? x : CACHE_DELTA_MAX;
}

/* Sets a delta-seconds directive; a second occurrence or a bad value
 * makes the message's freshness invalid. */
static void cache_cc_delta(struct cache_cc *cc, int64_t *field, const char *v, size_t vn,
                           int has_value)
{
    int64_t x = has_value ? cache_delta(v, vn) : CACHE_ABSENT;
    if (x == CACHE_ABSENT || *field != CACHE_ABSENT) {
        cc->flags |= CACHE_CC_INVALID;
        if (*field == CACHE_ABSENT)
            *field = 0;
        return;
    }
    *field = x;
}

static int cache_name_is(const char *name, size_t nn, const char *lit)
{
    return strlen(lit) == nn && strncasecmp(name, lit, nn) == 0;
}

/* Applies one directive (name, optional value already unquoted). */
static void cache_cc_apply(struct cache_cc *cc, const char *name, size_t nn, const char *v,
                           size_t vn, int has_value)
{
    if (cache_name_is(name, nn, "max-age"))
        cache_cc_delta(cc, &cc->max_age, v, vn, has_value);
    else if (cache_name_is(name, nn, "s-maxage"))
        cache_cc_delta(cc, &cc->s_maxage, v, vn, has_value);
    else if (cache_name_is(name, nn, "min-fresh"))
        cache_cc_delta(cc, &cc->min_fresh, v, vn, has_value);
    else if (cache_name_is(name, nn, "stale-while-revalidate"))
        cache_cc_delta(cc, &cc->stale_while_revalidate, v, vn, has_value);
    else if (cache_name_is(name, nn, "stale-if-error"))
        cache_cc_delta(cc, &cc->stale_if_error, v, vn, has_value);
    else if (cache_name_is(name, nn, "max-stale")) {
        /* without a value: any staleness (RFC 9111 5.2.1.2) */
        if (!has_value && cc->max_stale == CACHE_ABSENT)
            cc->max_stale = CACHE_DELTA_MAX;
        else
            cache_cc_delta(cc, &cc->max_stale, v, vn, has_value);
    } else {
        for (unsigned i = 0; i < CACHE_CC_FLAG_COUNT; i++) {
            if (!cache_name_is(name, nn, cache_cc_names[i]))
                continue;
            cc->flags |= 1u << i;
            /* private="f" / no-cache="f" (5.2.2.4, 5.2.2.7): weir keeps the
             * stricter meaning of the bare directive and notes it */
            if (has_value && (i == CACHE_CC_PRIVATE_BIT || i == CACHE_CC_NO_CACHE_BIT))
                cc->flags |= CACHE_CC_FIELDS;
            return;
        }
    }
}

/* Reads a quoted-string starting at p[i] == '"'. Returns the index after
 * the closing quote (value = inside, escapes kept), or n when unterminated. */
static size_t cache_quoted(const char *p, size_t n, size_t i, size_t *vstart, size_t *vlen)
{
    size_t j = i + 1;
    *vstart = j;
    while (j < n && p[j] != '"') {
        if (p[j] == '\\' && j + 1 < n)
            j++;
        j++;
    }
    *vlen = (j < n ? j : n) - *vstart;
    return j < n ? j + 1 : n;
}

/* Skips to after the next comma outside quotes; returns n at the end. */
static size_t cache_skip_element(const char *p, size_t n, size_t i)
{
    int quoted = 0;
    for (; i < n; i++) {
        if (quoted && p[i] == '\\' && i + 1 < n)
            i++;
        else if (p[i] == '"')
            quoted = !quoted;
        else if (!quoted && p[i] == ',')
            return i + 1;
    }
    return n;
}

int cache_cc_parse(const char *p, size_t n, struct cache_cc *cc)
{
    int rc = 0;
    size_t i = 0;
    while (i < n) {
        i = cache_skip_ows(p, n, i);
        if (i < n && p[i] == ',') {
            i++;
            continue;
        }
        if (i >= n)
            break;
        size_t name = i;
        while (i < n && cache_is_tchar((unsigned char)p[i]))
            i++;
        size_t nn = i - name, vs = 0, vn = 0;
        int has_value = 0, bad = nn == 0;
        if (!bad && i < n && p[i] == '=') {
            has_value = 1;
            i++;
            if (i < n && p[i] == '"') {
                i = cache_quoted(p, n, i, &vs, &vn);
            } else {
                vs = i;
                while (i < n && cache_is_tchar((unsigned char)p[i]))
                    i++;
                vn = i - vs;
            }
        }
        i = cache_skip_ows(p, n, i);
        if (!bad && i < n && p[i] != ',')
            bad = 1;
        if (bad) {
            rc = -EINVAL;
            cc->flags |= CACHE_CC_SYNTAX;
            i = cache_skip_element(p, n, i);
            continue;
        }
        cache_cc_apply(cc, p + name, nn, p + vs, vn, has_value);
    }
    return rc;
}

/* ---- HTTP-date (RFC 9110 5.6.7) ---- */

static int cache_month(const char *p)
{
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    for (int m = 0; m < 12; m++)
        if (strncmp(p, months + 3 * m, 3) == 0)
            return m;
    return -1;
}

static int cache_digits(const char *p, size_t n, int *out)
{
    int x = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -EINVAL;
        x = x * 10 + (p[i] - '0');
    }
    *out = x;
    return 0;
}

/* "HH:MM:SS" at p. */
static int cache_clock(const char *p, struct tm *tm)
{
    if (p[2] != ':' || p[5] != ':')
        return -EINVAL;
    if (cache_digits(p, 2, &tm->tm_hour) || cache_digits(p + 3, 2, &tm->tm_min) ||
        cache_digits(p + 6, 2, &tm->tm_sec))
        return -EINVAL;
    return tm->tm_hour < 24 && tm->tm_min < 60 && tm->tm_sec < 61 ? 0 : -EINVAL;
}

/* Days since the epoch of a proleptic Gregorian date (no timegm: pure). */
static int64_t cache_days(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int cache_date_finish(struct tm *tm, int64_t *out)
{
    static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    if (tm->tm_mon < 0 || tm->tm_mday < 1 || tm->tm_mday > mdays[tm->tm_mon])
        return -EINVAL;
    int64_t days = cache_days(tm->tm_year, tm->tm_mon + 1, tm->tm_mday);
    *out = days * 86400 + tm->tm_hour * 3600 + tm->tm_min * 60 + tm->tm_sec;
    return 0;
}

/* "Sun, 06 Nov 1994 08:49:37 GMT" */
static int cache_date_imf(const char *p, size_t n, struct tm *tm)
{
    if (n != 29 || p[3] != ',' || p[4] != ' ' || p[7] != ' ' || p[11] != ' ' || p[16] != ' ' ||
        memcmp(p + 25, " GMT", 4) != 0)
        return -EINVAL;
    if (cache_digits(p + 5, 2, &tm->tm_mday) || cache_digits(p + 12, 4, &tm->tm_year))
        return -EINVAL;
    tm->tm_mon = cache_month(p + 8);
    return cache_clock(p + 17, tm);
}

/* "Sunday, 06-Nov-94 08:49:37 GMT": two-digit years 70..99 are 19xx (RFC
 * 9110 5.6.7 says to read them as the most recent past year with those
 * digits; weir has no clock here, so the usual 1970 pivot). */
static int cache_date_850(const char *p, size_t n, struct tm *tm)
{
    const char *c = memchr(p, ',', n < 11 ? n : 11);
    if (c == NULL)
        return -EINVAL;
    size_t i = (size_t)(c - p) + 1;
    if (n - i != 23 || p[i] != ' ' || p[i + 3] != '-' || p[i + 7] != '-' || p[i + 10] != ' ' ||
        memcmp(p + i + 19, " GMT", 4) != 0)
        return -EINVAL;
    if (cache_digits(p + i + 1, 2, &tm->tm_mday) || cache_digits(p + i + 8, 2, &tm->tm_year))
        return -EINVAL;
    tm->tm_year += tm->tm_year < 70 ? 2000 : 1900;
    tm->tm_mon = cache_month(p + i + 4);
    return cache_clock(p + i + 11, tm);
}

/* "Sun Nov  6 08:49:37 1994" */
static int cache_date_asctime(const char *p, size_t n, struct tm *tm)
{
    if (n != 24 || p[3] != ' ' || p[7] != ' ' || p[10] != ' ' || p[19] != ' ')
        return -EINVAL;
    char day[2] = { p[8] == ' ' ? '0' : p[8], p[9] };
    if (cache_digits(day, 2, &tm->tm_mday) || cache_digits(p + 20, 4, &tm->tm_year))
        return -EINVAL;
    tm->tm_mon = cache_month(p + 4);
    return cache_clock(p + 11, tm);
}

int cache_date_parse(const char *p, size_t n, int64_t *out)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    int rc;
    if (n == 29 && p[3] == ',')
        rc = cache_date_imf(p, n, &tm);
    else if (n == 24 && p[3] == ' ')
        rc = cache_date_asctime(p, n, &tm);
    else
        rc = cache_date_850(p, n, &tm);
    return rc < 0 ? rc : cache_date_finish(&tm, out);
}

int cache_date_format(int64_t t, char *dst)
{
    static const char wd[] = "ThuFriSatSunMonTueWed", mo[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    int64_t days = t >= 0 ? t / 86400 : (t - 86399) / 86400;
    int64_t secs = t - days * 86400;
    /* civil date from days (inverse of cache_days) */
    int64_t z = days + 719468, era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097, yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
    int d = (int)(doy - (153 * mp + 2) / 5 + 1), m = (int)(mp < 10 ? mp + 3 : mp - 9);
    int64_t y = yoe + era * 400 + (m <= 2);
    int w = (int)(((days % 7) + 7) % 7);
    int h = (int)(secs / 3600), mi = (int)(secs / 60 % 60), s = (int)(secs % 60);
    memcpy(dst, wd + 3 * w, 3);
    memcpy(dst + 3, ", ", 2);
    dst[5] = (char)('0' + d / 10), dst[6] = (char)('0' + d % 10), dst[7] = ' ';
    memcpy(dst + 8, mo + 3 * (m - 1), 3);
    dst[11] = ' ';
    int64_t yy = y < 0 ? 0 : y % 10000;
    for (int i = 3; i >= 0; i--, yy /= 10)
        dst[12 + i] = (char)('0' + yy % 10);
    dst[16] = ' ';
    dst[17] = (char)('0' + h / 10), dst[18] = (char)('0' + h % 10), dst[19] = ':';
    dst[20] = (char)('0' + mi / 10), dst[21] = (char)('0' + mi % 10), dst[22] = ':';
    dst[23] = (char)('0' + s / 10), dst[24] = (char)('0' + s % 10);
    memcpy(dst + 25, " GMT", 4);
    dst[29] = 0;
    return 29;
}

/* ---- responses ---- */

void cache_resp_init(struct cache_resp *r, int status)
{
    memset(r, 0, sizeof(*r));
    r->status = status;
    cache_cc_init(&r->cc);
    r->date = r->expires = r->last_modified = r->age = CACHE_ABSENT;
}

static int cache_field_is(const char *name, size_t nn, const char *lit)
{
    return cache_name_is(name, nn, lit);
}

void cache_resp_field(struct cache_resp *r, const char *name, size_t nn, const char *v, size_t vn)
{
    int64_t t;
    if (cache_field_is(name, nn, "cache-control")) {
        (void)cache_cc_parse(v, vn, &r->cc);
    } else if (cache_field_is(name, nn, "date")) {
        if (cache_date_parse(v, vn, &t) == 0)
            r->date = t;
    } else if (cache_field_is(name, nn, "expires")) {
        /* invalid, "0", or repeated: already expired (RFC 9111 5.3) */
        if (r->expires != CACHE_ABSENT || r->expires_invalid || cache_date_parse(v, vn, &t) < 0)
            r->expires_invalid = 1;
        else
            r->expires = t;
    } else if (cache_field_is(name, nn, "last-modified")) {
        if (cache_date_parse(v, vn, &t) == 0)
            r->last_modified = t;
    } else if (cache_field_is(name, nn, "age")) {
        int64_t a = cache_delta(v, vn);
        if (a != CACHE_ABSENT)
            r->age = a;
    } else if (cache_field_is(name, nn, "etag")) {
        r->has_etag = 1;
    } else if (cache_field_is(name, nn, "set-cookie")) {
        r->set_cookie = 1;
    } else if (cache_field_is(name, nn, "vary")) {
        for (size_t i = 0; i < vn; i++)
            if (v[i] == '*')
                r->vary_star = 1;
    }
}

int cache_status_heuristic(int status)
{
    switch (status) {
    case 200: case 203: case 204: case 206: case 300: case 301: case 308:
    case 404: case 405: case 410: case 414: case 501:
        return 1;
    default:
        return 0;
    }
}

int cache_status_understood(int status)
{
    return cache_status_heuristic(status) || status == 302 || status == 303 || status == 307;
}

static int cache_has_freshness(const struct cache_resp *r)
{
    return r->cc.max_age != CACHE_ABSENT || r->cc.s_maxage != CACHE_ABSENT ||
           r->expires != CACHE_ABSENT || r->expires_invalid;
}

enum cache_verdict cache_storable(int is_get, const struct cache_cc *req, int has_auth,
                                  const struct cache_resp *r)
{
    const uint32_t f = r->cc.flags;
    if (!is_get)
        return CACHE_STORE_METHOD;
    /* final, understood; 206 and 304 are not whole representations */
    if (r->status < 200 || r->status == 206 || r->status == 304 ||
        !cache_status_understood(r->status))
        return CACHE_STORE_STATUS;
    if (req->flags & CACHE_CC_FLAG(CACHE_CC_NO_STORE))
        return CACHE_STORE_REQ_NO_STORE;
    /* must-understand overrides no-store for a status weir understands (5.2.2.3) */
    if ((f & CACHE_CC_FLAG(CACHE_CC_NO_STORE)) && !(f & CACHE_CC_FLAG(CACHE_CC_MUST_UNDERSTAND)))
        return CACHE_STORE_NO_STORE;
    if (f & CACHE_CC_FLAG(CACHE_CC_PRIVATE))
        return CACHE_STORE_PRIVATE;
    if (has_auth && !(f & (CACHE_CC_FLAG(CACHE_CC_PUBLIC) | CACHE_CC_FLAG(CACHE_CC_MUST_REVALIDATE))) &&
        r->cc.s_maxage == CACHE_ABSENT)
        return CACHE_STORE_AUTHORIZATION;
    if (r->vary_star)
        return CACHE_STORE_VARY_STAR;
    if (r->set_cookie)
        return CACHE_STORE_SET_COOKIE;
    int explicit = cache_has_freshness(r) || (f & CACHE_CC_FLAG(CACHE_CC_PUBLIC));
    if (!explicit && !cache_status_heuristic(r->status))
        return CACHE_STORE_STATUS;
    /* it must be reusable some day: fresh for a while, validatable, or
     * usable stale (RFC 5861) */
    int stale_use = r->cc.stale_while_revalidate > 0 || r->cc.stale_if_error > 0;
    if (cache_freshness_lifetime(r) <= 0 && !r->has_etag && r->last_modified == CACHE_ABSENT &&
        !stale_use)
        return CACHE_STORE_NOT_CACHEABLE;
    return CACHE_STORE_OK;
}

int64_t cache_freshness_lifetime(const struct cache_resp *r)
{
    const struct cache_cc *cc = &r->cc;
    if (cc->flags & CACHE_CC_INVALID)
        return 0;
    if (cc->s_maxage != CACHE_ABSENT)
        return cc->s_maxage;
    if (cc->max_age != CACHE_ABSENT)
        return cc->max_age;
    if (r->expires_invalid)
        return 0;
    if (r->expires != CACHE_ABSENT) {
        int64_t d = r->expires - (r->date != CACHE_ABSENT ? r->date : r->expires);
        return d > 0 ? d : 0;
    }
    int heuristic = cache_status_heuristic(r->status) || (cc->flags & CACHE_CC_FLAG(CACHE_CC_PUBLIC));
    if (heuristic && r->last_modified != CACHE_ABSENT && r->date != CACHE_ABSENT &&
        r->date > r->last_modified)
        return (r->date - r->last_modified) / 10;
    return 0;
}

int64_t cache_current_age(const struct cache_resp *r, int64_t request_time, int64_t response_time,
                          int64_t now)
{
    int64_t date = r->date != CACHE_ABSENT ? r->date : response_time;
    int64_t apparent_age = response_time - date > 0 ? response_time - date : 0;
    int64_t response_delay = response_time - request_time > 0 ? response_time - request_time : 0;
    int64_t corrected_age_value = (r->age != CACHE_ABSENT ? r->age : 0) + response_delay;
    int64_t corrected_initial_age =
        apparent_age > corrected_age_value ? apparent_age : corrected_age_value;
    int64_t resident_time = now - response_time > 0 ? now - response_time : 0;
    return corrected_initial_age + resident_time;
}

/* No stale answer at all: must-revalidate, proxy-revalidate, s-maxage
 * (which implies proxy-revalidate, 5.2.2.10), or an invalid freshness. */
static int cache_no_stale(const struct cache_resp *r)
{
    return (r->cc.flags & (CACHE_CC_FLAG(CACHE_CC_MUST_REVALIDATE) |
                           CACHE_CC_FLAG(CACHE_CC_PROXY_REVALIDATE))) ||
           r->cc.s_maxage != CACHE_ABSENT;
}

enum cache_reuse cache_reuse(const struct cache_cc *req, const struct cache_resp *r,
                             int64_t lifetime, int64_t age)
{
    if (r->cc.flags & CACHE_CC_FLAG(CACHE_CC_NO_CACHE))
        return CACHE_REUSE_REVALIDATE;
    int fresh = lifetime > age;
    /* immutable (RFC 8246): a fresh response is not revalidated on a reload */
    int immutable = fresh && (r->cc.flags & CACHE_CC_FLAG(CACHE_CC_IMMUTABLE));
    if ((req->flags & CACHE_CC_FLAG(CACHE_CC_NO_CACHE)) && !immutable)
        return CACHE_REUSE_REVALIDATE;
    if (req->max_age != CACHE_ABSENT && age > req->max_age && !immutable)
        return CACHE_REUSE_REVALIDATE;
    if (req->min_fresh != CACHE_ABSENT && lifetime - age < req->min_fresh)
        fresh = 0;
    if (fresh)
        return CACHE_REUSE_FRESH;
    if (cache_no_stale(r))
        return CACHE_REUSE_REVALIDATE;
    int64_t staleness = age - lifetime;
    if (req->max_stale != CACHE_ABSENT && (staleness <= req->max_stale || req->max_stale == CACHE_DELTA_MAX))
        return CACHE_REUSE_STALE_OK;
    if (r->cc.stale_while_revalidate != CACHE_ABSENT && staleness <= r->cc.stale_while_revalidate)
        return CACHE_REUSE_SWR;
    return CACHE_REUSE_REVALIDATE;
}

int cache_stale_if_error(const struct cache_cc *req, const struct cache_resp *r, int64_t lifetime,
                         int64_t age)
{
    if (cache_no_stale(r) || (r->cc.flags & CACHE_CC_FLAG(CACHE_CC_NO_CACHE)))
        return 0;
    int64_t staleness = age - lifetime;
    if (staleness < 0)
        staleness = 0;
    int64_t window = r->cc.stale_if_error;
    if (req->stale_if_error != CACHE_ABSENT)
        window = req->stale_if_error;
    return window != CACHE_ABSENT && staleness <= window;
}

/* ---- validators and ranges (RFC 9110 13.1.2, 14.1.2) ---- */

/* Strips W/ from an entity-tag. */
static void cache_etag_strong(const char **p, size_t *n)
{
    if (*n >= 2 && (*p)[0] == 'W' && (*p)[1] == '/') {
        *p += 2;
        *n -= 2;
    }
}

int cache_etag_match(const char *p, size_t n, const char *etag, size_t elen)
{
    cache_etag_strong(&etag, &elen);
    size_t i = 0;
    while (i < n) {
        while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == ','))
            i++;
        if (i == n)
            break;
        if (p[i] == '*')
            return 1;
        size_t s = i;
        if (n - i >= 2 && p[i] == 'W' && p[i + 1] == '/')
            i += 2;
        if (i >= n || p[i] != '"')
            return 0;
        const char *close = memchr(p + i + 1, '"', n - i - 1);
        if (close == NULL)
            return 0;
        i = (size_t)(close - p) + 1;
        const char *m = p + s;
        size_t mn = i - s;
        cache_etag_strong(&m, &mn);
        if (elen > 0 && mn == elen && memcmp(m, etag, elen) == 0)
            return 1;
    }
    return 0;
}

/* Reads digits at *p (at most 2^62); returns 1 when there were some. */
static int cache_range_num(const char **p, const char *end, uint64_t *out, int *overflow)
{
    const char *start = *p;
    uint64_t x = 0;
    for (; *p < end && **p >= '0' && **p <= '9'; (*p)++) {
        x = x * 10 + (uint64_t)(**p - '0');
        if (x > (1ULL << 62))
            *overflow = 1;
    }
    *out = x;
    return *p > start;
}

int cache_range_parse(const char *v, size_t n, uint64_t len, uint64_t *from, uint64_t *to)
{
    if (n < 7 || strncasecmp(v, "bytes=", 6) != 0 || memchr(v, ',', n))
        return 0;
    const char *p = v + 6, *end = v + n;
    uint64_t a = 0, b = 0;
    int overflow = 0;
    int has_a = cache_range_num(&p, end, &a, &overflow);
    if (p == end || *p++ != '-')
        return 0;
    int has_b = cache_range_num(&p, end, &b, &overflow);
    if (p != end || overflow || (!has_a && !has_b))
        return 0;
    if (!has_a) { /* the last b bytes */
        if (b == 0 || len == 0)
            return -1;
        *from = b >= len ? 0 : len - b;
        *to = len - 1;
        return 1;
    }
    if (has_b && b < a)
        return 0;
    if (a >= len)
        return -1;
    *from = a;
    *to = has_b && b < len ? b : len - 1;
    return 1;
}
