/* compress: compresses a route's answers on their way to the client.
 *
 *   compress:
 *     algorithms: [br, zstd, gzip]          # weir's preference, for ties
 *     level: { gzip: 6, br: 4, zstd: 3 }
 *     min_size: 256                        # bytes, when the length is known
 *     content_types: [text/[*], application/json, ...]   ("[*]": a star)
 *
 *   request:  on_request reads what the answer must know later (the head
 *             may be gone by then): the coding Accept-Encoding chooses
 *             (accept_encoding.c), HEAD, a Range field.
 *   answer:   on_response_head, for a backend's answer or weir's own:
 *     never for HEAD, 1xx/204/304, 206 or an answer to a Range request,
 *     an answer already carrying Content-Encoding, Cache-Control:
 *     no-transform, a body with transfer codings weir does not decode, a
 *     Content-Type not in content_types (or none);
 *     otherwise the answer is compressible: Vary: Accept-Encoding is
 *     added (also when this client gets it plain), and unless the length
 *     is known and below min_size or the client takes no coding, the
 *     body goes through an encoder (compress_codec.c, a body transform:
 *     txn_set_body_xform), with Content-Encoding set and a strong ETag
 *     made weak (W/"..."): the bytes differ from the plain variant's.
 *
 * The encoder is allocated for the one response and freed when its
 * transaction ends; memory per response is in compress_codec.c. */
#include "http/steps/compress.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/config_parse.h"
#include "core/log.h"
#include "http/http_edit.h"
#include "http/steps/accept_encoding.h"
#include "http/steps/compress_codec.h"
#include "http/txn.h"

#define COMPRESS_MAX_TYPES 64
#define COMPRESS_DEFAULT_MIN_SIZE 256

static const char *const compress_default_types[] = {
    "text/*", "application/json", "application/javascript", "application/xml",
    "application/xhtml+xml", "application/rss+xml", "application/atom+xml",
    "application/ld+json", "application/manifest+json", "application/wasm",
    "image/svg+xml", "font/ttf", "font/otf",
};

struct compress_cfg {
    enum ae_coding algorithms[AE_CODING_COUNT];
    size_t n_algorithms;
    int level[AE_CODING_COUNT];
    uint64_t min_size;
    char **types;
    size_t n_types;
};

struct compress_state {
    int8_t coding;                 /* what the client takes (enum ae_coding), -1 none */
    uint8_t ran, head, range;
};

static const struct http_slice compress_vary = { "Vary", 4 };
static const struct http_slice compress_vary_value = { "Accept-Encoding", 15 };
static const struct http_slice compress_ce = { "Content-Encoding", 16 };
static const struct http_slice compress_etag = { "ETag", 4 };

/* ---- configuration ---- */

static int compress_parse_algorithm(struct cfg_ctx *ctx, yaml_node_t *v, void *obj, size_t i)
{
    struct compress_cfg *cc = obj;
    int which;
    int rc = cfg_parse_enum(ctx, v, "an algorithm", ae_coding_names, AE_CODING_COUNT, &which);
    if (rc < 0)
        return rc;
    for (size_t j = 0; j < cc->n_algorithms; j++)
        if ((int)cc->algorithms[j] == which)
            return cfg_fail(ctx, v, "algorithm %s is listed twice", ae_coding_names[which]);
    cc->algorithms[cc->n_algorithms++] = (enum ae_coding)which;
    return 0;
}

static int compress_parse_algorithms(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct compress_cfg *cc = obj;
    int rc = cfg_expect(ctx, v, YAML_SEQUENCE_NODE, "'algorithms' (a list)");
    if (rc < 0)
        return rc;
    size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
    if (n == 0 || n > AE_CODING_COUNT)
        return cfg_fail(ctx, v, "'algorithms' lists 1 to %d of br, zstd, gzip", AE_CODING_COUNT);
    cc->n_algorithms = 0;
    return cfg_list_each(ctx, v, compress_parse_algorithm, cc);
}

static int compress_parse_level(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct compress_cfg *cc = obj;
    int rc = cfg_expect(ctx, v, YAML_MAPPING_NODE, "'level' (a map of algorithm: level)");
    if (rc < 0)
        return rc;
    for (yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top; p++) {
        yaml_node_t *k = cfg_node(ctx, p->key), *val = cfg_node(ctx, p->value);
        int which;
        const char *s;
        if ((rc = cfg_visit(ctx, val)) < 0 ||
            (rc = cfg_parse_enum(ctx, k, "an algorithm", ae_coding_names, AE_CODING_COUNT, &which)) < 0 ||
            (rc = cfg_scalar(ctx, val, "a level", &s)) < 0)
            return rc;
        const struct compress_codec *codec = compress_codec_get((enum ae_coding)which);
        char *end;
        long level = strtol(s, &end, 10);
        if (*s == '\0' || *end != '\0' || level < codec->level_min || level > codec->level_max)
            return cfg_fail(ctx, val, "%s level must be %d to %d", codec->name, codec->level_min,
                            codec->level_max);
        cc->level[which] = (int)level;
    }
    return 0;
}

/* Checks a content type pattern: "type/subtype" or "type/" + "*". */
static int compress_type_ok(const char *s)
{
    const char *slash = strchr(s, '/');
    if (slash == NULL || slash == s || slash[1] == '\0')
        return 0;
    for (const char *p = s; *p; p++) {
        if (p == slash)
            continue;
        if (*p == '*' && p == slash + 1 && p[1] == '\0')
            continue;
        char one[2] = { *p, 0 };
        if (!cfg_is_token(one))
            return 0;
    }
    return 1;
}

static int compress_parse_type(struct cfg_ctx *ctx, yaml_node_t *v, void *obj, size_t i)
{
    struct compress_cfg *cc = obj;
    const char *s;
    char q[CFG_QUOTE_SIZE];
    int rc = cfg_text(ctx, v, "a content type", &s);
    if (rc < 0)
        return rc;
    if (!compress_type_ok(s))
        return cfg_fail(ctx, v, "bad content type %s (expected type/subtype or type/*)", cfg_quote(s, q));
    if ((rc = cfg_strdup(ctx, s, &cc->types[i])) < 0)
        return rc;
    cc->n_types = i + 1;
    return 0;
}

static int compress_parse_types(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct compress_cfg *cc = obj;
    static const struct cfg_list list = { "'content_types'", "content type", sizeof(char *),
                                          COMPRESS_MAX_TYPES };
    void *arr;
    size_t n;
    int rc = cfg_list_new(ctx, v, &list, &arr, &n);
    if (rc < 0)
        return rc;
    cc->types = arr;
    return cfg_list_each(ctx, v, compress_parse_type, cc);
}

static const struct cfg_key compress_keys[] = {
    CFG_FUNC("algorithms", compress_parse_algorithms, false),
    CFG_FUNC("level", compress_parse_level, false),
    CFG_FIELD("min_size", CFG_KIND_SIZE, struct compress_cfg, min_size, 0, UINT64_MAX),
    CFG_FUNC("content_types", compress_parse_types, false),
};
CFG_MAP_DEFINE(compress_map, "compress", compress_keys);

static void compress_free(void *p)
{
    struct compress_cfg *cc = p;
    for (size_t i = 0; cc->types && i < cc->n_types; i++)
        free(cc->types[i]);
    free(cc->types);
    free(cc);
}

static int compress_default_types_set(struct cfg_ctx *ctx, struct compress_cfg *cc)
{
    size_t n = CFG_ARRAY_SIZE(compress_default_types);
    cc->types = cfg_calloc_fn(n, sizeof(char *));
    if (cc->types == NULL)
        return cfg_nomem(ctx);
    for (size_t i = 0; i < n; i++) {
        int rc = cfg_strdup(ctx, compress_default_types[i], &cc->types[i]);
        if (rc < 0)
            return rc;
        cc->n_types = i + 1;
    }
    return 0;
}

/* The value is a map, `{}` for the defaults. */
static int compress_parse(struct cfg_ctx *ctx, yaml_node_t *v, void **out)
{
    struct compress_cfg *cc = cfg_calloc_fn(1, sizeof(*cc));
    if (cc == NULL)
        return cfg_nomem(ctx);
    *out = cc;
    cc->n_algorithms = AE_CODING_COUNT;
    for (int i = 0; i < AE_CODING_COUNT; i++) {
        cc->algorithms[i] = (enum ae_coding)i; /* br, zstd, gzip */
        cc->level[i] = compress_codec_get((enum ae_coding)i)->level_default;
    }
    cc->min_size = COMPRESS_DEFAULT_MIN_SIZE;
    int rc = cfg_parse_map(ctx, v, &compress_map, cc, NULL);
    if (rc < 0)
        return rc;
    if (cc->types == NULL)
        return compress_default_types_set(ctx, cc);
    return 0;
}

/* ---- per request ---- */

static enum step_result compress_on_request(struct txn *t, const void *cfg, void *state)
{
    const struct compress_cfg *cc = cfg;
    struct compress_state *st = state;
    const struct http_msg *req = t->req;
    st->ran = 1;
    st->head = req->method == HTTP_METHOD_HEAD;
    st->range = http_msg_find(req, "Range") >= 0;
    struct accept_encoding ae;
    accept_encoding_init(&ae);
    for (size_t i = 0; i < req->n_headers; i++)
        if (req->hop[i] != HTTP_HOP_REMOVED && http_slice_eq_nocase(req->headers[i].name, "Accept-Encoding"))
            (void)accept_encoding_parse(&ae, req->headers[i].value.p, req->headers[i].value.len);
    st->coding = (int8_t)accept_encoding_choose(&ae, cc->algorithms, cc->n_algorithms);
    return STEP_NEXT;
}

int compress_type_match(const char *pattern, struct http_slice ct)
{
    size_t n = 0;
    while (n < ct.len && ct.p[n] != ';' && ct.p[n] != ' ' && ct.p[n] != '\t')
        n++;
    size_t plen = strlen(pattern);
    if (plen >= 2 && pattern[plen - 1] == '*' && pattern[plen - 2] == '/')
        return n > plen - 1 && strncasecmp(ct.p, pattern, plen - 1) == 0;
    return n == plen && strncasecmp(ct.p, pattern, n) == 0;
}

/* Whether a list field (all fields named `name`) holds `token`
 * (case-insensitive), or "*" when star counts. */
static int compress_list_has(const struct http_msg *m, const char *name, const char *token, int star)
{
    size_t tlen = strlen(token);
    for (size_t i = 0; i < m->n_headers; i++) {
        if (m->hop[i] == HTTP_HOP_REMOVED || !http_slice_eq_nocase(m->headers[i].name, name))
            continue;
        const char *p = m->headers[i].value.p, *end = p + m->headers[i].value.len;
        while (p < end) {
            while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
                p++;
            const char *s = p;
            while (p < end && *p != ',' && *p != ' ' && *p != '\t' && *p != '=')
                p++;
            size_t len = (size_t)(p - s);
            if ((star && len == 1 && *s == '*') || (len == tlen && strncasecmp(s, token, len) == 0))
                return 1;
            while (p < end && *p != ',')
                p++;
        }
    }
    return 0;
}

/* Whether the answer is one compress may touch at all (see the top). */
static int compress_compressible(const struct compress_cfg *cc, const struct compress_state *st,
                                 const struct http_msg *resp)
{
    if (st->head || st->range || resp->status < 200 || resp->status == 204 ||
        resp->status == 206 || resp->status == 304 || resp->te_other_codings)
        return 0;
    int ce = http_msg_find(resp, "Content-Encoding");
    if (ce >= 0 && !(resp->headers[ce].value.len == 8 &&
                     strncasecmp(resp->headers[ce].value.p, "identity", 8) == 0))
        return 0;
    if (compress_list_has(resp, "Cache-Control", "no-transform", 0))
        return 0;
    int ct = http_msg_find(resp, "Content-Type");
    if (ct < 0)
        return 0;
    for (size_t i = 0; i < cc->n_types; i++)
        if (compress_type_match(cc->types[i], resp->headers[ct].value))
            return 1;
    return 0;
}

/* Makes a strong ETag weak: W/ before it, in the arena. */
static void compress_weaken_etag(struct txn *t, struct http_msg *resp)
{
    int i = http_msg_find(resp, "ETag");
    if (i < 0 || resp->headers[i].value.len == 0 || resp->headers[i].value.p[0] != '"')
        return;
    struct http_slice v = resp->headers[i].value;
    char *w = txn_alloc(t, v.len + 2);
    if (w == NULL) {
        http_edit_remove(resp, compress_etag.p, compress_etag.len); /* never a wrong strong one */
        return;
    }
    memcpy(w, "W/", 2);
    memcpy(w + 2, v.p, v.len);
    resp->headers[i].value = (struct http_slice){ w, v.len + 2 };
}

static void compress_on_response_head(struct txn *t, const void *cfg, void *state,
                                      struct http_msg *resp)
{
    const struct compress_cfg *cc = cfg;
    const struct compress_state *st = state;
    if (!st->ran || !compress_compressible(cc, st, resp))
        return;
    if (!compress_list_has(resp, "Vary", "Accept-Encoding", 1) &&
        http_edit_add(resp, compress_vary, compress_vary_value) != 0) {
        log_warn("route %s: no room for Vary: Accept-Encoding; not compressing", txn_route_name(t));
        return;
    }
    if (st->coding < 0 || resp->body_kind == HTTP_BODY_NONE ||
        (resp->body_kind == HTTP_BODY_LENGTH && resp->content_length < cc->min_size))
        return;
    enum ae_coding c = (enum ae_coding)st->coding;
    const struct compress_codec *codec = compress_codec_get(c);
    struct http_slice name = { codec->name, strlen(codec->name) };
    if (http_edit_set(resp, compress_ce, name) != 0)
        return;
    void *enc = compress_codec_open(c, cc->level[c]);
    if (enc == NULL || txn_set_body_xform(t, &compress_codec_xform, enc) != 0) {
        log_warn("route %s: cannot start a %s encoder; sending the body as is", txn_route_name(t),
                 codec->name);
        http_edit_remove(resp, compress_ce.p, compress_ce.len);
        return;
    }
    compress_weaken_etag(t, resp);
}

const struct step_type step_compress = {
    .key = "compress",
    .phase = STEP_PHASE_HEADERS,
    .parse = compress_parse,
    .free_cfg = compress_free,
    .state_size = sizeof(struct compress_state),
    .on_request = compress_on_request,
    .on_response_head = compress_on_response_head,
};
