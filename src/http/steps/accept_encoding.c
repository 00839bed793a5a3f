/* accept_encoding: see accept_encoding.h.
 *
 *   Accept-Encoding = #( codings [ weight ] )
 *   codings = content-coding / "identity" / "*"
 *   weight  = OWS ";" OWS "q=" qvalue
 *   qvalue  = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )
 *
 * Lenient where it costs nothing: empty list elements are skipped, other
 * parameters after the weight are ignored, and an element that does not
 * parse is dropped alone (the rest of the field still counts). A coding
 * weir does not make is skipped. Weights are kept in thousandths. */
#include "http/steps/accept_encoding.h"

#include <string.h>
#include <strings.h>

#define AE_NAME(e, s) s,
const char *const ae_coding_names[AE_CODING_COUNT] = { AE_CODING_LIST(AE_NAME) };
#undef AE_NAME

/* What an element names, when it is none of the codings. */
enum { AE_OTHER = -1, AE_IDENTITY = -2, AE_STAR = -3 };

void accept_encoding_init(struct accept_encoding *ae)
{
    for (size_t i = 0; i < AE_CODING_COUNT; i++)
        ae->q[i] = AE_Q_UNSET;
    ae->identity = ae->star = AE_Q_UNSET;
}

static int ae_is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return 1;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int ae_is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* Which coding the token p[0..n) names (AE_OTHER when none weir knows). */
static int ae_lookup(const char *p, size_t n)
{
    if (n == 1 && p[0] == '*')
        return AE_STAR;
    if (n == 8 && strncasecmp(p, "identity", 8) == 0)
        return AE_IDENTITY;
    if (n == 6 && strncasecmp(p, "x-gzip", 6) == 0)
        return AE_CODING_GZIP;
    for (int i = 0; i < AE_CODING_COUNT; i++)
        if (strlen(ae_coding_names[i]) == n && strncasecmp(p, ae_coding_names[i], n) == 0)
            return i;
    return AE_OTHER;
}

/* Parses a qvalue p[0..n) into thousandths. Returns 0..1000 or -1. */
static int ae_qvalue(const char *p, size_t n)
{
    if (n == 0 || (p[0] != '0' && p[0] != '1') || n > 5 || (n >= 2 && p[1] != '.'))
        return -1;
    int q = (p[0] - '0') * 1000, scale = 100;
    for (size_t i = 2; i < n; i++, scale /= 10) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        q += (p[i] - '0') * scale;
    }
    return q > 1000 ? -1 : q;
}

/* Parses the parameters of one element, p[0..n) from just after the
 * coding. Returns the weight (1000 when none) or -1. */
static int ae_weight(const char *p, size_t n)
{
    size_t i = 0;
    int q = 1000, seen = 0;
    for (;;) {
        while (i < n && ae_is_ows(p[i]))
            i++;
        if (i == n)
            return q;
        if (p[i] != ';')
            return -1;
        i++;
        while (i < n && ae_is_ows(p[i]))
            i++;
        size_t name = i;
        while (i < n && ae_is_tchar((unsigned char)p[i]))
            i++;
        if (i == name || i == n || p[i] != '=')
            return -1;
        size_t name_len = i - name;
        size_t val = ++i;
        while (i < n && ae_is_tchar((unsigned char)p[i]))
            i++;
        if (name_len == 1 && (p[name] == 'q' || p[name] == 'Q') && !seen) {
            seen = 1;
            if ((q = ae_qvalue(p + val, i - val)) < 0)
                return -1;
        }
    }
}

/* Records one element p[0..n) (OWS trimmed by the caller). Returns 1 when
 * understood, 0 when skipped. */
static int ae_element(struct accept_encoding *ae, const char *p, size_t n)
{
    size_t t = 0;
    while (t < n && ae_is_tchar((unsigned char)p[t]))
        t++;
    if (t == 0)
        return 0;
    int q = ae_weight(p + t, n - t);
    if (q < 0)
        return 0;
    int which = ae_lookup(p, t);
    int16_t *slot = which >= 0 ? &ae->q[which] : which == AE_IDENTITY ? &ae->identity
                  : which == AE_STAR ? &ae->star : NULL;
    if (slot == NULL)
        return 1;
    if (*slot == AE_Q_UNSET)
        *slot = (int16_t)q;
    return 1;
}

int accept_encoding_parse(struct accept_encoding *ae, const char *p, size_t n)
{
    int understood = 0;
    size_t i = 0;
    while (i < n) {
        size_t start = i;
        while (i < n && p[i] != ',')
            i++;
        size_t a = start, b = i;
        while (a < b && ae_is_ows(p[a]))
            a++;
        while (b > a && ae_is_ows(p[b - 1]))
            b--;
        if (b > a)
            understood += ae_element(ae, p + a, b - a);
        i++; /* past the comma */
    }
    return understood;
}

int accept_encoding_choose(const struct accept_encoding *ae, const enum ae_coding *prefs, size_t n)
{
    int best = -1, best_q = 0;
    for (size_t i = 0; i < n; i++) {
        int q = ae->q[prefs[i]] != AE_Q_UNSET ? ae->q[prefs[i]] : ae->star;
        if (q > best_q) {
            best_q = q;
            best = (int)prefs[i];
        }
    }
    int identity_q = ae->identity != AE_Q_UNSET ? ae->identity : ae->star;
    if (best < 0 || identity_q > best_q)
        return -1;
    return best;
}
