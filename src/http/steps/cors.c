/* cors: the CORS protocol (Fetch standard, "CORS protocol" section) on a
 * route, so backends need not implement it.
 *
 *   cors: { origins: [https://app.example.com, "https://[*].example.com"],
 *           methods: [PUT, DELETE], headers: [Content-Type, X-Token],
 *           expose_headers: [X-Request-Id], credentials: true, max_age: 10m }
 *   ("[*]" stands for a bare star here: C comments cannot hold slash-star.)
 *
 *   request with Origin ── origin allowed? (exact, or one-label wildcard)
 *     OPTIONS + Access-Control-Request-Method = a preflight, answered here:
 *       origin, method (CORS-safelisted GET/HEAD/POST or listed) and every
 *       Access-Control-Request-Headers name listed -> 204 with
 *       Access-Control-Allow-Origin/-Credentials/-Methods/-Headers/-Max-Age;
 *       otherwise 403 without them. The backend never sees a preflight.
 *     any other request goes on; on its answer (backend's or weir's):
 *       allowed -> Access-Control-Allow-Origin (the origin echoed; `*` only
 *       for `origins: ["*"]` without credentials), -Allow-Credentials,
 *       -Expose-Headers; not allowed -> those fields removed, so a backend's
 *       own cannot contradict the route. Vary: Origin on every answer whose
 *       fields depend on the Origin (Fetch: "CORS protocol and HTTP caches").
 *
 * The configuration is parsed once into lowercase patterns and the field
 * values weir writes; a request costs one Origin parse and, when allowed,
 * a copy of the origin into the arena (the request head may be gone when
 * the answer comes). */
#include "http/steps/cors.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/config_parse.h"
#include "core/log.h"
#include "http/http_edit.h"
#include "http/txn.h"

#define CORS_MAX_ORIGINS 256
#define CORS_MAX_NAMES 64
#define CORS_MAX_ORIGIN_BYTES 512
#define CORS_PREFLIGHT_FIELDS 7

struct cors_cfg {
    struct cors_origin *origins;   /* slices into origin_text[i] */
    char **origin_text;
    size_t n_origins;
    int any_origin;                /* origins: ["*"] */
    struct http_slice *methods, *headers, *expose;
    size_t n_methods, n_headers, n_expose;
    int credentials;
    uint64_t max_age_ms;           /* CORS_NO_MAX_AGE when not set */
    /* field values, made at load */
    char *allow_methods, *allow_headers, *expose_value, *max_age_value;
};

#define CORS_NO_MAX_AGE UINT64_MAX

struct cors_state {
    struct http_slice origin;      /* arena copy of an allowed origin, or "*" */
    uint8_t ran;                   /* on_request ran */
    uint8_t answered;              /* a preflight weir answered: its fields are complete */
};

#define CORS_SLICE(s) { (s), sizeof(s) - 1 }
static const struct http_slice cors_acao = CORS_SLICE("Access-Control-Allow-Origin");
static const struct http_slice cors_acac = CORS_SLICE("Access-Control-Allow-Credentials");
static const struct http_slice cors_acam = CORS_SLICE("Access-Control-Allow-Methods");
static const struct http_slice cors_acah = CORS_SLICE("Access-Control-Allow-Headers");
static const struct http_slice cors_acma = CORS_SLICE("Access-Control-Max-Age");
static const struct http_slice cors_aceh = CORS_SLICE("Access-Control-Expose-Headers");
static const struct http_slice cors_vary = CORS_SLICE("Vary");
static const struct http_slice cors_true = CORS_SLICE("true");
static const struct http_slice cors_star = CORS_SLICE("*");
static const struct http_slice cors_vary_origin = CORS_SLICE("Origin");
static const struct http_slice cors_vary_preflight =
    CORS_SLICE("Origin, Access-Control-Request-Method, Access-Control-Request-Headers");
static const char cors_refused_body[] = "403 Forbidden\n";
static const struct http_header cors_refused_headers[] = {
    { CORS_SLICE("Content-Type"), CORS_SLICE("text/plain") },
    { CORS_SLICE("Vary"),
      CORS_SLICE("Origin, Access-Control-Request-Method, Access-Control-Request-Headers") },
};

/* ---- origins ---- */

static int cors_is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int cors_is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* A host: a bracketed IPv6 literal, or letters, digits, '-', '_' and '.'
 * with no empty label. */
static int cors_host_ok(const char *p, size_t n)
{
    if (n == 0)
        return 0;
    if (p[0] == '[') {
        if (n < 3 || p[n - 1] != ']')
            return 0;
        for (size_t i = 1; i + 1 < n; i++)
            if (!strchr("0123456789abcdefABCDEF:.", p[i]))
                return 0;
        return 1;
    }
    if (p[0] == '.' || p[n - 1] == '.')
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (!(cors_is_alpha(c) || cors_is_digit(c) || c == '-' || c == '_' || c == '.'))
            return 0;
        if (c == '.' && p[i + 1] == '.')
            return 0;
    }
    return 1;
}

static uint32_t cors_default_port(struct http_slice scheme)
{
    if (http_slice_eq_nocase(scheme, "http"))
        return 80;
    if (http_slice_eq_nocase(scheme, "https"))
        return 443;
    return 0;
}

int cors_origin_parse(const char *p, size_t n, int pattern, struct cors_origin *out)
{
    struct cors_origin o = { 0 };
    size_t i = 0;
    /* scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) (RFC 3986 3.1) */
    if (n == 0 || !cors_is_alpha(p[0]))
        return -EINVAL;
    while (i < n && (cors_is_alpha(p[i]) || cors_is_digit(p[i]) || strchr("+-.", p[i])))
        i++;
    if (n - i < 3 || memcmp(p + i, "://", 3) != 0)
        return -EINVAL;
    o.scheme = (struct http_slice){ p, i };
    i += 3;
    size_t host_start = i, host_end;
    if (i < n && p[i] == '[') {
        const char *close = memchr(p + i, ']', n - i);
        if (close == NULL)
            return -EINVAL;
        host_end = (size_t)(close - p) + 1;
    } else {
        host_end = i;
        while (host_end < n && p[host_end] != ':')
            host_end++;
    }
    if (pattern && n - host_start >= 2 && p[host_start] == '*' && p[host_start + 1] == '.') {
        o.wildcard = 1;
        host_start++; /* keep the "." */
        const char *rest = p + host_start + 1;
        size_t rest_len = host_end - host_start - 1;
        /* at least two labels after the "*.": "*.com" would allow a whole TLD */
        if (!cors_host_ok(rest, rest_len) || rest[0] == '[' || !memchr(rest, '.', rest_len))
            return -EINVAL;
    } else if (!cors_host_ok(p + host_start, host_end - host_start)) {
        return -EINVAL;
    }
    o.host = (struct http_slice){ p + host_start, host_end - host_start };
    o.port = cors_default_port(o.scheme);
    if (host_end < n) {
        if (p[host_end] != ':' || host_end + 1 == n || n - host_end - 1 > 5)
            return -EINVAL;
        uint32_t port = 0;
        for (size_t k = host_end + 1; k < n; k++) {
            if (!cors_is_digit(p[k]))
                return -EINVAL;
            port = port * 10 + (uint32_t)(p[k] - '0');
        }
        if (port == 0 || port > 65535)
            return -EINVAL;
        o.port = port;
    }
    *out = o;
    return 0;
}

int cors_origin_match(const struct cors_origin *allowed, const struct cors_origin *origin)
{
    if (allowed->port != origin->port || allowed->scheme.len != origin->scheme.len ||
        strncasecmp(allowed->scheme.p, origin->scheme.p, origin->scheme.len) != 0)
        return 0;
    struct http_slice a = allowed->host, h = origin->host;
    if (!allowed->wildcard)
        return a.len == h.len && strncasecmp(a.p, h.p, h.len) == 0;
    /* "*" + ".example.com": one non-empty label, then the suffix */
    if (h.len <= a.len || strncasecmp(h.p + h.len - a.len, a.p, a.len) != 0)
        return 0;
    return memchr(h.p, '.', h.len - a.len) == NULL && h.p[0] != '[';
}

/* ---- configuration ---- */

static int cors_parse_origin_item(struct cfg_ctx *ctx, yaml_node_t *v, void *obj, size_t i)
{
    struct cors_cfg *cc = obj;
    const char *s;
    char q[CFG_QUOTE_SIZE];
    int rc = cfg_text(ctx, v, "an origin", &s);
    if (rc < 0)
        return rc;
    if (strcmp(s, "*") == 0) {
        cc->any_origin = 1;
        return 0;
    }
    if (strcmp(s, "null") == 0)
        return cfg_fail(ctx, v, "origin 'null' is what sandboxed and file pages send: any site "
                                "can make it, so it cannot be allowed");
    if ((rc = cfg_strdup(ctx, s, &cc->origin_text[i])) < 0)
        return rc;
    size_t n = strlen(s);
    if (n > CORS_MAX_ORIGIN_BYTES ||
        cors_origin_parse(cc->origin_text[i], n, 1, &cc->origins[i]) != 0)
        return cfg_fail(ctx, v, "bad origin %s (expected scheme://host[:port] without a path, "
                                "like https://app.example.com, or a pattern whose first label "
                                "is *, like https://*.example.com, or \"*\" for any origin)",
                        cfg_quote(s, q));
    return 0;
}

static int cors_parse_origins(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cors_cfg *cc = obj;
    static const struct cfg_list list = { "'origins'", "origin", sizeof(struct cors_origin),
                                          CORS_MAX_ORIGINS };
    void *items;
    int rc = cfg_list_new(ctx, v, &list, &items, &cc->n_origins);
    if (rc < 0)
        return rc;
    cc->origins = items;
    if ((cc->origin_text = cfg_calloc_fn(cc->n_origins, sizeof(char *))) == NULL)
        return cfg_nomem(ctx);
    if ((rc = cfg_list_each(ctx, v, cors_parse_origin_item, cc)) < 0)
        return rc;
    if (cc->any_origin && cc->n_origins > 1)
        return cfg_fail(ctx, v, "\"*\" allows any origin: list it alone");
    return 0;
}

/* Parses a list of tokens (methods or field names) into *out. */
static int cors_parse_names(struct cfg_ctx *ctx, yaml_node_t *v, const char *what,
                            struct http_slice **out, size_t *n)
{
    const struct cfg_list list = { what, "name", sizeof(struct http_slice), CORS_MAX_NAMES };
    void *items;
    int rc = cfg_list_new(ctx, v, &list, &items, n);
    if (rc < 0)
        return rc;
    struct http_slice *names = items;
    *out = names;
    char q[CFG_QUOTE_SIZE];
    for (size_t i = 0; i < *n; i++) {
        yaml_node_t *item = cfg_node(ctx, v->data.sequence.items.start[i]);
        const char *s;
        char *dup;
        if ((rc = cfg_visit(ctx, item)) < 0 || (rc = cfg_text(ctx, item, "a name", &s)) < 0)
            return rc;
        if (!cfg_is_token(s) || strcmp(s, "*") == 0)
            return cfg_fail(ctx, item, "bad name %s in %s (a token; \"*\" is not supported: "
                                       "list the names)", cfg_quote(s, q), what);
        if ((rc = cfg_strdup(ctx, s, &dup)) < 0)
            return rc;
        names[i] = (struct http_slice){ dup, strlen(dup) };
    }
    return 0;
}

static int cors_parse_methods(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cors_cfg *cc = obj;
    return cors_parse_names(ctx, v, "'methods'", &cc->methods, &cc->n_methods);
}

static int cors_parse_headers(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cors_cfg *cc = obj;
    return cors_parse_names(ctx, v, "'headers'", &cc->headers, &cc->n_headers);
}

static int cors_parse_expose(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cors_cfg *cc = obj;
    return cors_parse_names(ctx, v, "'expose_headers'", &cc->expose, &cc->n_expose);
}

static int cors_parse_credentials(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    return cfg_parse_bool(ctx, v, "'credentials'", &((struct cors_cfg *)obj)->credentials);
}

static const struct cfg_key cors_keys[] = {
    CFG_FUNC("origins", cors_parse_origins, true),
    CFG_FUNC("methods", cors_parse_methods, false),
    CFG_FUNC("headers", cors_parse_headers, false),
    CFG_FUNC("expose_headers", cors_parse_expose, false),
    CFG_FUNC("credentials", cors_parse_credentials, false),
    CFG_FIELD("max_age", CFG_KIND_DURATION, struct cors_cfg, max_age_ms, 0, CFG_MAX_DURATION_MS),
};
CFG_MAP_DEFINE(cors_map, "cors", cors_keys);

/* Joins names with ", " into a new string (*out; NULL when there are none). */
static int cors_join(struct cfg_ctx *ctx, const struct http_slice *names, size_t n, char **out)
{
    if (n == 0)
        return 0;
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += names[i].len + 2;
    char *s = cfg_calloc_fn(1, len + 1);
    if (s == NULL)
        return cfg_nomem(ctx);
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        if (i) {
            memcpy(s + at, ", ", 2);
            at += 2;
        }
        memcpy(s + at, names[i].p, names[i].len);
        at += names[i].len;
    }
    *out = s;
    return 0;
}

static int cors_parse(struct cfg_ctx *ctx, yaml_node_t *v, void **out)
{
    struct cors_cfg *cc = cfg_calloc_fn(1, sizeof(*cc));
    if (cc == NULL)
        return cfg_nomem(ctx);
    *out = cc;
    cc->max_age_ms = CORS_NO_MAX_AGE;
    int rc = cfg_parse_map(ctx, v, &cors_map, cc, NULL);
    if (rc < 0)
        return rc;
    if ((rc = cors_join(ctx, cc->methods, cc->n_methods, &cc->allow_methods)) < 0 ||
        (rc = cors_join(ctx, cc->headers, cc->n_headers, &cc->allow_headers)) < 0 ||
        (rc = cors_join(ctx, cc->expose, cc->n_expose, &cc->expose_value)) < 0)
        return rc;
    if (cc->max_age_ms != CORS_NO_MAX_AGE) {
        char secs[24];
        snprintf(secs, sizeof(secs), "%llu", (unsigned long long)(cc->max_age_ms / 1000));
        if ((rc = cfg_strdup(ctx, secs, &cc->max_age_value)) < 0)
            return rc;
    }
    return 0;
}

static void cors_free_names(struct http_slice *names, size_t n)
{
    for (size_t i = 0; names && i < n; i++)
        free((char *)names[i].p);
    free(names);
}

static void cors_free(void *p)
{
    struct cors_cfg *cc = p;
    for (size_t i = 0; cc->origin_text && i < cc->n_origins; i++)
        free(cc->origin_text[i]);
    free(cc->origin_text);
    free(cc->origins);
    cors_free_names(cc->methods, cc->n_methods);
    cors_free_names(cc->headers, cc->n_headers);
    cors_free_names(cc->expose, cc->n_expose);
    free(cc->allow_methods);
    free(cc->allow_headers);
    free(cc->expose_value);
    free(cc->max_age_value);
    free(cc);
}

/* ---- per request ---- */

static int cors_origin_allowed(const struct cors_cfg *cc, struct http_slice value)
{
    struct cors_origin o;
    if (cors_origin_parse(value.p, value.len, 0, &o) != 0)
        return 0; /* "null" and anything malformed */
    if (cc->any_origin)
        return 1;
    for (size_t i = 0; i < cc->n_origins; i++)
        if (cors_origin_match(&cc->origins[i], &o))
            return 1;
    return 0;
}

static int cors_name_listed(const struct http_slice *names, size_t n, const char *p, size_t len,
                            int nocase)
{
    for (size_t i = 0; i < n; i++)
        if (names[i].len == len &&
            (nocase ? strncasecmp(names[i].p, p, len) : memcmp(names[i].p, p, len)) == 0)
            return 1;
    return 0;
}

/* Whether a preflight's method and field names are all allowed. */
static int cors_preflight_ok(const struct cors_cfg *cc, const struct http_msg *req, int acrm)
{
    struct http_slice m = req->headers[acrm].value;
    /* CORS-safelisted methods need no listing (Fetch: "CORS-preflight fetch" step 7) */
    int safe = (m.len == 3 && memcmp(m.p, "GET", 3) == 0) ||
               (m.len == 4 && (memcmp(m.p, "HEAD", 4) == 0 || memcmp(m.p, "POST", 4) == 0));
    if (m.len == 0 || (!safe && !cors_name_listed(cc->methods, cc->n_methods, m.p, m.len, 0)))
        return 0;
    for (size_t i = 0; i < req->n_headers; i++) {
        if (req->hop[i] == HTTP_HOP_REMOVED ||
            !http_slice_eq_nocase(req->headers[i].name, "Access-Control-Request-Headers"))
            continue;
        const char *p = req->headers[i].value.p, *end = p + req->headers[i].value.len;
        while (p < end) {
            while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
                p++;
            const char *s = p;
            while (p < end && *p != ',' && *p != ' ' && *p != '\t')
                p++;
            if (p > s && !cors_name_listed(cc->headers, cc->n_headers, s, (size_t)(p - s), 1))
                return 0;
        }
    }
    return 1;
}

static enum step_result cors_refuse(struct txn *t, struct cors_state *st)
{
    st->answered = 1;
    txn_respond(t, 403, cors_refused_headers, 2, cors_refused_body, sizeof(cors_refused_body) - 1);
    return STEP_RESPOND;
}

static enum step_result cors_preflight(struct txn *t, const struct cors_cfg *cc,
                                       struct cors_state *st)
{
    struct http_header *h = (struct http_header *)txn_alloc(t, CORS_PREFLIGHT_FIELDS * sizeof(*h));
    if (h == NULL) {
        log_warn("route %s: no room to answer a CORS preflight", txn_route_name(t));
        return STEP_ERROR;
    }
    size_t n = 0;
    h[n++] = (struct http_header){ cors_acao, st->origin };
    if (cc->credentials)
        h[n++] = (struct http_header){ cors_acac, cors_true };
    if (cc->allow_methods)
        h[n++] = (struct http_header){ cors_acam, { cc->allow_methods, strlen(cc->allow_methods) } };
    if (cc->allow_headers)
        h[n++] = (struct http_header){ cors_acah, { cc->allow_headers, strlen(cc->allow_headers) } };
    if (cc->max_age_value)
        h[n++] = (struct http_header){ cors_acma, { cc->max_age_value, strlen(cc->max_age_value) } };
    if (!(cc->any_origin && !cc->credentials))
        h[n++] = (struct http_header){ cors_vary, cors_vary_preflight };
    st->answered = 1;
    txn_respond(t, 204, h, n, NULL, 0);
    return STEP_RESPOND;
}

static enum step_result cors_on_request(struct txn *t, const void *cfg, void *state)
{
    const struct cors_cfg *cc = cfg;
    struct cors_state *st = state;
    const struct http_msg *req = t->req;
    st->ran = 1;
    int oi = http_msg_find(req, "Origin");
    if (oi < 0)
        return STEP_NEXT; /* not a CORS request */
    struct http_slice origin = req->headers[oi].value;
    int allowed = cors_origin_allowed(cc, origin);
    if (allowed) {
        st->origin = cc->any_origin && !cc->credentials ? cors_star : txn_copy(t, origin.p, origin.len);
        if (st->origin.p == NULL) {
            log_warn("route %s: no room to keep a request's Origin", txn_route_name(t));
            return STEP_ERROR;
        }
    }
    int acrm = req->method == HTTP_METHOD_OPTIONS
                   ? http_msg_find(req, "Access-Control-Request-Method") : -1;
    if (acrm < 0)
        return STEP_NEXT; /* an actual request: fields added to its answer */
    if (!allowed || !cors_preflight_ok(cc, req, acrm))
        return cors_refuse(t, st);
    return cors_preflight(t, cc, st);
}

/* Whether a Vary field already names Origin (or "*"). */
static int cors_vary_has_origin(const struct http_msg *resp)
{
    for (size_t i = 0; i < resp->n_headers; i++) {
        if (resp->hop[i] == HTTP_HOP_REMOVED || !http_slice_eq_nocase(resp->headers[i].name, "Vary"))
            continue;
        const char *p = resp->headers[i].value.p, *end = p + resp->headers[i].value.len;
        while (p < end) {
            while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
                p++;
            const char *s = p;
            while (p < end && *p != ',' && *p != ' ' && *p != '\t')
                p++;
            size_t len = (size_t)(p - s);
            if ((len == 1 && *s == '*') || (len == 6 && strncasecmp(s, "Origin", 6) == 0))
                return 1;
        }
    }
    return 0;
}

static void cors_on_response_head(struct txn *t, const void *cfg, void *state,
                                  struct http_msg *resp)
{
    const struct cors_cfg *cc = cfg;
    struct cors_state *st = state;
    if (st->answered)
        return; /* a preflight answer weir made whole */
    int ok = 0;
    if (st->origin.p != NULL) {
        ok = http_edit_set(resp, cors_acao, st->origin) == 0;
        if (ok && cc->credentials)
            ok = http_edit_set(resp, cors_acac, cors_true) == 0;
        else if (ok)
            http_edit_remove(resp, cors_acac.p, cors_acac.len);
        if (ok && cc->expose_value)
            ok = http_edit_set(resp, cors_aceh,
                               (struct http_slice){ cc->expose_value, strlen(cc->expose_value) }) == 0;
        else if (ok)
            http_edit_remove(resp, cors_aceh.p, cors_aceh.len);
    }
    if (!ok) {
        /* not allowed (or no room): nothing the backend said may allow it */
        http_edit_remove(resp, cors_acao.p, cors_acao.len);
        http_edit_remove(resp, cors_acac.p, cors_acac.len);
        http_edit_remove(resp, cors_aceh.p, cors_aceh.len);
    }
    if (!(cc->any_origin && !cc->credentials) && !cors_vary_has_origin(resp) &&
        http_edit_add(resp, cors_vary, cors_vary_origin) != 0)
        log_warn("route %s: no room for Vary: Origin", txn_route_name(t));
}

const struct step_type step_cors = {
    .key = "cors",
    .phase = STEP_PHASE_ACCESS,
    .parse = cors_parse,
    .free_cfg = cors_free,
    .state_size = sizeof(struct cors_state),
    .on_request = cors_on_request,
    .on_response_head = cors_on_response_head,
};
