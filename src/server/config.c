/* config: the section table and the server's own keys (see config.h).
 *
 *   root map -- workers, drain_timeout
 *            |- log map
 *            |- listeners list -- listener map -- routes list (http/route_cfg.c)
 *            |                                 |- redis_cluster (resp/redis_cfg.c)
 *            |                                 |- cluster, sni, proxy_protocol,
 *            |                                 |  accept_proxy (l4/l4_cfg.c)
 *            |                                 `- limits / timeouts maps
 *            |- clusters        (upstream/cluster_cfg.c)
 *            |- redis_clusters  (resp/redis_cfg.c)
 *            |- stores          (store/store_cfg.c)
 *            |- admin           (admin/admin_cfg.c)
 *            |- caches          (cache/cache_cfg.c)
 *            |- data_dir, queues (queue/queue_cfg.c), topics (queue/topic_cfg.c)
 *            `- sqs_auth        (queue/sigv4_cfg.c)
 *
 * Each top-level key is a row of cfg_sections: core's composer
 * (core/config.c) parses every row present, then runs every row's resolve in
 * table order (cross-references: listeners to redis clusters, routes to
 * clusters), and on failure frees through the rows. The listener keeps the
 * http and redis keys side by side for now; their parsers are the modules'
 * (route_cfg_parse_routes, redis_cfg_parse_listener_cluster).
 *
 * Defaults are written here once (and in docs/configuration.md). Nothing here
 * opens sockets or logs. */
#include "server/config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config_parse.h"
#include "core/log.h"
#include "core/units.h"
#include "tls/tls.h"

#define CFG_MAX_LISTENERS 1024
#define CFG_MAX_WORKERS 256

/* ---- defaults: the one place they are written (docs/configuration.md) ---- */

static const struct cfg cfg_defaults = {
    .workers = 0, /* auto */
    .drain_timeout_ms = 30000,
    .log = { .level = LOG_LVL_INFO },
};
#define CFG_DEFAULT_LOG_ERROR "stderr"
#define CFG_DEFAULT_LOG_ACCESS "off"

static const struct cfg_listener cfg_listener_defaults = {
    .protocol = CFG_PROTOCOL_HTTP,
    .max_request_line = 8 << 10,
    .max_header_bytes = 32 << 10,
    .max_headers = 100,
    .max_body_bytes = 0,
    .max_connections = 10000,
    .header_timeout_ms = 10000,
    .idle_timeout_ms = 60000,
    .body_timeout_ms = 30000,
};

/* ---- enum names ---- */

#define CFG_ENUM_NAME(e, s) s,
static const char *const cfg_protocol_names[] = { CFG_PROTOCOL_LIST(CFG_ENUM_NAME) };
#undef CFG_ENUM_NAME

const char *cfg_protocol_name(enum cfg_protocol p)
{
    return (unsigned)p < CFG_PROTOCOL_COUNT ? cfg_protocol_names[p] : "?";
}

/* ---- log ---- */

static int cfg_parse_log_level(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    const char *names[LOG_LVL_COUNT];

    for (int i = 0; i < LOG_LVL_COUNT; i++)
        names[i] = log_level_name(i);
    return cfg_parse_enum(ctx, v, "log level", names, LOG_LVL_COUNT,
                          &((struct cfg_log *)obj)->level);
}

/* A log destination: one of the words in `words` (NULL-terminated) or a file
 * path, which must contain a '/' so a misspelt word is not taken for a file. */
static int cfg_parse_log_sink(struct cfg_ctx *ctx, yaml_node_t *v, const char *what,
                              const char *const *words, const char *expected, char **out)
{
    char q[CFG_QUOTE_SIZE];
    const char *s;

    int rc = cfg_text(ctx, v, what, &s);
    if (rc < 0)
        return rc;
    bool ok = strchr(s, '/') != NULL;
    for (size_t i = 0; !ok && words[i] != NULL; i++)
        ok = strcmp(s, words[i]) == 0;
    if (!ok)
        return cfg_fail(ctx, v, "expected %s or a file path (containing '/') for %s, got %s",
                        expected, what, cfg_quote(s, q));
    return cfg_strdup(ctx, s, out);
}

static int cfg_parse_log_error(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    static const char *const words[] = { "stderr", NULL };
    return cfg_parse_log_sink(ctx, v, "'error'", words, "'stderr'",
                              &((struct cfg_log *)obj)->error);
}

static int cfg_parse_log_access(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    static const char *const words[] = { "off", "stdout", NULL };
    return cfg_parse_log_sink(ctx, v, "'access'", words, "'off', 'stdout'",
                              &((struct cfg_log *)obj)->access);
}

static const struct cfg_key cfg_log_keys[] = {
    CFG_FUNC("level", cfg_parse_log_level, false),
    CFG_FUNC("error", cfg_parse_log_error, false),
    CFG_FUNC("access", cfg_parse_log_access, false),
};
CFG_MAP_DEFINE(cfg_log_map, "log", cfg_log_keys);

/* workers: auto (0 here, resolved by cfg_resolve_workers) or 1..CFG_MAX_WORKERS. */
static int cfg_parse_workers(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cfg *cfg = obj;
    char q[CFG_QUOTE_SIZE];
    const char *s;
    uint64_t n = 0;

    int rc = cfg_scalar(ctx, v, "'workers'", &s);
    if (rc < 0)
        return rc;
    if (strcmp(s, "auto") == 0) {
        cfg->workers = 0;
        return 0;
    }
    if (units_parse_uint(s, CFG_MAX_WORKERS, &n) < 0 || n == 0)
        return cfg_fail(ctx, v, "expected 'auto' or a number 1..%d for 'workers', got %s",
                        CFG_MAX_WORKERS, cfg_quote(s, q));
    cfg->workers = (unsigned)n;
    return 0;
}

static int cfg_parse_log(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    return cfg_parse_map(ctx, v, &cfg_log_map, &((struct cfg *)obj)->log, NULL);
}

static int cfg_parse_drain_timeout(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    static const struct cfg_key key = CFG_FIELD("drain_timeout", CFG_KIND_DURATION, struct cfg,
                                                drain_timeout_ms, 0, CFG_MAX_DURATION_MS);
    return cfg_parse_key(ctx, &key, v, obj);
}

/* workers: auto -> the online CPUs. */
static int cfg_resolve_workers(struct cfg_ctx *ctx, void *root)
{
    struct cfg *cfg = root;

    if (cfg->workers == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        cfg->workers = n < 1 ? 1 : n > CFG_MAX_WORKERS ? CFG_MAX_WORKERS : (unsigned)n;
    }
    return 0;
}

/* The log destinations not written default to stderr and off. */
static int cfg_resolve_log(struct cfg_ctx *ctx, void *root)
{
    struct cfg *cfg = root;

    if (cfg->log.error == NULL && cfg_strdup(ctx, CFG_DEFAULT_LOG_ERROR, &cfg->log.error) < 0)
        return -ENOMEM;
    if (cfg->log.access == NULL && cfg_strdup(ctx, CFG_DEFAULT_LOG_ACCESS, &cfg->log.access) < 0)
        return -ENOMEM;
    return 0;
}

static void cfg_free_log(void *root)
{
    struct cfg *cfg = root;

    free(cfg->log.error);
    free(cfg->log.access);
    cfg->log.error = cfg->log.access = NULL;
}

/* ---- listeners ---- */

static const struct cfg_key cfg_limits_keys[] = {
    CFG_FIELD("request_line", CFG_KIND_SIZE, struct cfg_listener, max_request_line, 16, 1 << 20),
    CFG_FIELD("header_size", CFG_KIND_SIZE, struct cfg_listener, max_header_bytes, 64, 16 << 20),
    CFG_FIELD("headers", CFG_KIND_UINT, struct cfg_listener, max_headers, 1, CFG_MAX_HEADERS),
    CFG_FIELD("body", CFG_KIND_SIZE, struct cfg_listener, max_body_bytes, 0, UINT64_MAX),
    CFG_FIELD("connections", CFG_KIND_UINT, struct cfg_listener, max_connections, 1,
              CFG_MAX_CONNECTIONS),
};
CFG_MAP_DEFINE(cfg_limits_map, "limits", cfg_limits_keys);

static const struct cfg_key cfg_listener_timeout_keys[] = {
    CFG_FIELD("client_header", CFG_KIND_DURATION, struct cfg_listener, header_timeout_ms, 1,
              CFG_MAX_DURATION_MS),
    CFG_FIELD("client_idle", CFG_KIND_DURATION, struct cfg_listener, idle_timeout_ms, 1,
              CFG_MAX_DURATION_MS),
    CFG_FIELD("client_body", CFG_KIND_DURATION, struct cfg_listener, body_timeout_ms, 1,
              CFG_MAX_DURATION_MS),
};
CFG_MAP_DEFINE(cfg_listener_timeout_map, "listener timeouts", cfg_listener_timeout_keys);

static int cfg_parse_limits(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    return cfg_parse_map(ctx, v, &cfg_limits_map, obj, NULL);
}

static int cfg_parse_listener_timeouts(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    return cfg_parse_map(ctx, v, &cfg_listener_timeout_map, obj, NULL);
}

static int cfg_parse_listener_name(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cfg_listener *l = obj;
    return cfg_parse_name(ctx, v, &l->name, &l->name_mark);
}

static int cfg_parse_listen(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cfg_listener *l = obj;

    l->listen_mark = cfg_mark_of(v);
    return cfg_parse_address(ctx, v, "'listen'", &l->listen, &l->addr, &l->addrlen);
}

static int cfg_parse_protocol(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    int p = 0;
    int rc = cfg_parse_enum(ctx, v, "protocol", cfg_protocol_names, CFG_PROTOCOL_COUNT, &p);
    ((struct cfg_listener *)obj)->protocol = (enum cfg_protocol)p;
    return rc;
}

static int cfg_parse_listener_tls(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cfg_listener *l = obj;
    l->tls_mark = cfg_mark_of(v);
    return tls_cfg_parse_server(ctx, v, &l->tls);
}

struct cfg_hsts {
    uint32_t max_age_s;
    int subdomains, preload;
};

static int cfg_parse_hsts_subdomains(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    return cfg_parse_bool(ctx, v, "'include_subdomains'", &((struct cfg_hsts *)obj)->subdomains);
}

static int cfg_parse_hsts_preload(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    return cfg_parse_bool(ctx, v, "'preload'", &((struct cfg_hsts *)obj)->preload);
}

static const struct cfg_key cfg_hsts_keys[] = {
    CFG_FIELD("max_age", CFG_KIND_UINT, struct cfg_hsts, max_age_s, 0, 1u << 30),
    CFG_FUNC("include_subdomains", cfg_parse_hsts_subdomains, false),
    CFG_FUNC("preload", cfg_parse_hsts_preload, false),
};
CFG_MAP_DEFINE(cfg_hsts_map, "hsts", cfg_hsts_keys);

/* hsts: the Strict-Transport-Security value (RFC 6797 6.1), made once. */
static int cfg_parse_hsts(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cfg_listener *l = obj;
    struct cfg_hsts h = { .max_age_s = 31536000 };
    int rc = cfg_parse_map(ctx, v, &cfg_hsts_map, &h, NULL);
    if (rc < 0)
        return rc;
    char value[96];
    snprintf(value, sizeof(value), "max-age=%u%s%s", h.max_age_s, h.subdomains ? "; includeSubDomains" : "",
             h.preload ? "; preload" : "");
    free(l->hsts);
    l->hsts = NULL;
    return cfg_strdup(ctx, value, &l->hsts);
}

/* redirect_https: true (port 443) or the HTTPS port to send clients to. */
static int cfg_parse_redirect_https(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cfg_listener *l = obj;
    int on = 0;
    const char *s;
    int rc = cfg_scalar(ctx, v, "'redirect_https'", &s);
    if (rc < 0)
        return rc;
    if (strspn(s, "0123456789") == strlen(s) && *s) {
        static const struct cfg_key port = CFG_FIELD("redirect_https", CFG_KIND_UINT, struct cfg_listener,
                                                     redirect_https_port, 1, 65535);
        return cfg_parse_key(ctx, &port, v, l);
    }
    rc = cfg_parse_bool(ctx, v, "'redirect_https' (true, false or a port)", &on);
    l->redirect_https_port = on ? 443 : 0;
    return rc;
}

static const struct cfg_key cfg_listener_keys[] = {
    CFG_FUNC("name", cfg_parse_listener_name, true),
    CFG_FUNC("listen", cfg_parse_listen, true),
    CFG_FUNC("protocol", cfg_parse_protocol, false),
    CFG_FUNC("routes", route_cfg_parse_routes, false), /* http needs it: cfg_resolve_listeners */
    CFG_FUNC("redis_cluster", redis_cfg_parse_listener_cluster, false),
    CFG_FUNC("cluster", l4_cfg_parse_cluster, false),     /* tcp: l4/l4_cfg.c */
    CFG_FUNC("sni", l4_cfg_parse_sni, false),
    CFG_FUNC("proxy_protocol", l4_cfg_parse_proxy_protocol, false),
    CFG_FUNC("accept_proxy", l4_cfg_parse_accept_proxy, false), /* any protocol */
    CFG_FUNC("limits", cfg_parse_limits, false),
    CFG_FUNC("timeouts", cfg_parse_listener_timeouts, false),
    CFG_FUNC("tls", cfg_parse_listener_tls, false),
    CFG_FUNC("hsts", cfg_parse_hsts, false),
    CFG_FUNC("redirect_https", cfg_parse_redirect_https, false),
    CFG_FUNC("http2", h2_cfg_parse_listener, false),
};
CFG_MAP_DEFINE(cfg_listener_map, "listener", cfg_listener_keys);

/* Listener i against the ones before it: names and addresses are unique. */
static int cfg_check_listener_unique(struct cfg_ctx *ctx, const struct cfg *cfg, size_t i)
{
    const struct cfg_listener *l = &cfg->listeners[i];
    char q[CFG_QUOTE_SIZE], q2[CFG_QUOTE_SIZE];

    for (size_t j = 0; j < i; j++) {
        const struct cfg_listener *o = &cfg->listeners[j];
        if (strcmp(o->name, l->name) == 0)
            return cfg_fail_mark(ctx, l->name_mark, "duplicate listener name %s (first defined "
                                 "at %d:%d)", cfg_quote(l->name, q), o->name_mark.line,
                                 o->name_mark.col);
        if (cfg_same_addr(&o->addr, o->addrlen, &l->addr, l->addrlen))
            return cfg_fail_mark(ctx, l->listen_mark, "duplicate listen address %s (also used "
                                 "by listener %s at %d:%d)", cfg_quote(l->listen, q),
                                 cfg_quote(o->name, q2), o->listen_mark.line, o->listen_mark.col);
    }
    return 0;
}

static int cfg_parse_listener(struct cfg_ctx *ctx, yaml_node_t *node, void *obj, size_t i)
{
    struct cfg *cfg = obj;
    struct cfg_listener *l = &cfg->listeners[i];

    *l = cfg_listener_defaults;
    l->line = cfg_mark_of(node).line;
    l->col = cfg_mark_of(node).col;
    yaml_node_t *values[CFG_MAP_MAX_KEYS];
    int rc = cfg_parse_map(ctx, node, &cfg_listener_map, l, values);
    if (rc < 0)
        return rc;
    yaml_node_t *hsts = values[cfg_key_index(&cfg_listener_map, "hsts")];
    yaml_node_t *redirect = values[cfg_key_index(&cfg_listener_map, "redirect_https")];
    if (l->tls && l->protocol != CFG_PROTOCOL_HTTP && l->protocol != CFG_PROTOCOL_TCP)
        return cfg_fail_mark(ctx, l->tls_mark, "tls is for http and tcp listeners for now");
    if (hsts && !l->tls)
        return cfg_fail(ctx, hsts, "hsts is sent only on a listener with tls");
    if (redirect && l->tls)
        return cfg_fail(ctx, redirect, "redirect_https is for a plain listener (this one has tls)");
    if (l->http2 && l->protocol != CFG_PROTOCOL_HTTP)
        return cfg_fail(ctx, values[cfg_key_index(&cfg_listener_map, "http2")], "http2 is for http listeners");
    if (l->http2 && l->tls)
        tls_server_offer_h2(l->tls);
    if (l->tls && l->protocol == CFG_PROTOCOL_TCP)
        tls_server_no_alpn(l->tls); /* no http/1.1 claim for bytes weir does not read */
    if (l->tls && l->name && tls_server_set_listener(l->tls, l->name) < 0)
        return cfg_nomem(ctx);
    return cfg_check_listener_unique(ctx, cfg, i);
}

static int cfg_parse_listeners(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cfg *cfg = obj;
    void *items;

    static const struct cfg_list list = { "'listeners'", "listener",
                                          sizeof(struct cfg_listener), CFG_MAX_LISTENERS };
    int rc = cfg_list_new(ctx, v, &list, &items, &cfg->n_listeners);
    if (rc < 0)
        return rc;
    cfg->listeners = items;
    return cfg_list_each(ctx, v, cfg_parse_listener, cfg);
}

/* Checks the protocol-specific listener keys, points every redis listener at
 * its redis cluster, and asks for clusters when any listener is http. */
static int cfg_resolve_listeners(struct cfg_ctx *ctx, struct cfg *cfg)
{
    char q[CFG_QUOTE_SIZE];
    bool any_http = false;

    for (size_t i = 0; i < cfg->n_listeners; i++) {
        struct cfg_listener *l = &cfg->listeners[i];
        struct cfg_mark at = { l->line, l->col };
        int rc = l4_cfg_resolve_listener(ctx, cfg, l);
        if (rc < 0)
            return rc;
        if (l->protocol == CFG_PROTOCOL_TCP) {
            any_http = true; /* its cluster must exist: checked above */
            continue;
        }
        if (l->protocol == CFG_PROTOCOL_SQS) {
            if (l->n_routes > 0 || l->redis_cluster_name)
                return cfg_fail_mark(ctx, at, "listener %s has protocol sqs: it takes neither "
                                     "'routes' nor 'redis_cluster'", cfg_quote(l->name, q));
            continue;
        }
        if (l->protocol != CFG_PROTOCOL_REDIS) {
            any_http = true;
            if (l->redis_cluster_name)
                return cfg_fail_mark(ctx, l->redis_cluster_mark, "'redis_cluster' is used only "
                                     "with protocol redis");
            if (l->n_routes == 0)
                return cfg_fail_mark(ctx, at, "listener is missing required key 'routes'");
            continue;
        }
        if (l->n_routes > 0)
            return cfg_fail_mark(ctx, at, "listener %s has protocol redis: it takes "
                                 "'redis_cluster', not 'routes'", cfg_quote(l->name, q));
        if (!l->redis_cluster_name)
            return cfg_fail_mark(ctx, at, "listener is missing required key 'redis_cluster' "
                                 "(protocol redis)");
        l->redis_cluster = redis_cfg_find(cfg, l->redis_cluster_name);
        if (!l->redis_cluster)
            return cfg_fail_mark(ctx, l->redis_cluster_mark, "listener names redis cluster %s "
                                 "which is not defined in 'redis_clusters'",
                                 cfg_quote(l->redis_cluster_name, q));
    }
    if (any_http && cfg->n_clusters == 0) {
        yaml_node_t *root = yaml_document_get_root_node(ctx->doc);
        return cfg_fail(ctx, root, "configuration is missing required key 'clusters'");
    }
    return 0;
}

static void cfg_free_listener(struct cfg_listener *l)
{
    free(l->name);
    free(l->listen);
    free(l->redis_cluster_name);
    l4_cfg_free_listener(l);
    tls_server_free(l->tls);
    h2_cfg_free(l->http2);
    free(l->hsts);
    for (size_t i = 0; i < l->n_routes; i++)
        route_cfg_free(&l->routes[i]);
    free(l->routes);
}

/* The listeners row resolves its own keys first (protocols, redis clusters,
 * "clusters" asked for), then the routes: route_cfg_resolve() needs both. */
static int cfg_resolve_listeners_and_routes(struct cfg_ctx *ctx, void *root)
{
    int rc = cfg_resolve_listeners(ctx, root);
    return rc < 0 ? rc : route_cfg_resolve(ctx, root);
}

static void cfg_free_listeners(void *root)
{
    struct cfg *cfg = root;

    for (size_t i = 0; i < cfg->n_listeners; i++)
        cfg_free_listener(&cfg->listeners[i]);
    free(cfg->listeners);
    cfg->listeners = NULL;
    cfg->n_listeners = 0;
}

/* ---- tls: session tickets (src/tls/) ---- */

static int cfg_parse_tls(struct cfg_ctx *ctx, yaml_node_t *v, void *root)
{
    return tls_cfg_parse_tickets(ctx, v, &((struct cfg *)root)->tls);
}

/* Every TLS listener seals its tickets with the configuration's keys. */
static int cfg_resolve_tls(struct cfg_ctx *ctx, void *root)
{
    struct cfg *cfg = root;
    for (size_t i = 0; i < cfg->n_listeners; i++)
        if (cfg->listeners[i].tls && cfg->tls)
            tls_server_use_tickets(cfg->listeners[i].tls, cfg->tls);
    return 0;
}

static void cfg_free_tls(void *root)
{
    struct cfg *cfg = root;
    tls_tickets_free(cfg->tls);
    cfg->tls = NULL;
}

/* ---- the section table ---- */

/* One row per top-level key, in the order messages list them. */
static const struct cfg_section cfg_sections[] = {
    { "workers", false, cfg_parse_workers, cfg_resolve_workers, NULL },
    { "drain_timeout", false, cfg_parse_drain_timeout, NULL, NULL },
    { "log", false, cfg_parse_log, cfg_resolve_log, cfg_free_log },
    { "listeners", true, cfg_parse_listeners, cfg_resolve_listeners_and_routes,
      cfg_free_listeners },
    { "clusters", false, cluster_cfg_parse, NULL, cluster_cfg_free }, /* required with http */
    { "redis_clusters", false, redis_cfg_parse, NULL, redis_cfg_free },
    { "stores", false, store_cfg_parse, NULL, store_cfg_free },
    { "admin", false, admin_cfg_parse, admin_cfg_resolve, admin_cfg_free },
    { "caches", false, cache_cfg_parse, cache_cfg_resolve, cache_cfg_free },
    { "data_dir", false, queue_cfg_parse_data_dir, NULL, queue_cfg_free_data_dir },
    { "queues", false, queue_cfg_parse, queue_cfg_resolve, queue_cfg_free },
    { "tls", false, cfg_parse_tls, cfg_resolve_tls, cfg_free_tls },
    { "topics", false, topic_cfg_parse, topic_cfg_resolve, topic_cfg_free },
    { "sqs_auth", false, sigv4_cfg_parse, NULL, sigv4_cfg_free },
};

static const struct cfg_schema cfg_schema = {
    .what = "configuration",
    .empty = "a map with listeners and clusters",
    .sections = cfg_sections,
    .n_sections = CFG_ARRAY_SIZE(cfg_sections),
};

/* ---- loading ---- */

int cfg_load_string(const char *name, const char *text, size_t len, struct cfg **out, char *err,
                    size_t err_size)
{
    struct cfg_ctx ctx;

    int rc = cfg_load_begin(&ctx, name, len, err, err_size);
    if (rc < 0)
        return rc;
    struct cfg *cfg = cfg_calloc_fn(1, sizeof(*cfg));
    if (cfg == NULL)
        return cfg_nomem(&ctx);
    *cfg = cfg_defaults;
    atomic_init(&cfg->refs, 1);
    rc = cfg_strdup(&ctx, ctx.name, &cfg->path);
    if (rc == 0)
        rc = cfg_load_sections(&ctx, text, len, &cfg_schema, cfg);
    if (rc < 0) { /* the sections are freed already */
        free(cfg->path);
        free(cfg);
        return rc;
    }
    *out = cfg;
    return 0;
}

int cfg_load(const char *path, struct cfg **out, char *err, size_t err_size)
{
    char *text = NULL;
    size_t len = 0;

    int rc = cfg_read_file(path, &text, &len, err, err_size);
    if (rc < 0)
        return rc;
    rc = cfg_load_string(path, text, len, out, err, err_size);
    free(text);
    return rc;
}

void cfg_free(struct cfg *cfg)
{
    if (cfg == NULL)
        return;
    cfg_free_sections(&cfg_schema, cfg);
    free(cfg->path);
    free(cfg);
}

void cfg_ref(struct cfg *cfg)
{
    atomic_fetch_add_explicit(&cfg->refs, 1, memory_order_relaxed);
}

void cfg_unref(struct cfg *cfg)
{
    if (cfg && atomic_fetch_sub_explicit(&cfg->refs, 1, memory_order_acq_rel) == 1)
        cfg_free(cfg);
}

struct cfg_cluster *cfg_find_cluster(const struct cfg *cfg, const char *name)
{
    if (cfg == NULL || name == NULL)
        return NULL;
    for (size_t i = 0; i < cfg->n_clusters; i++)
        if (cfg->clusters[i].name != NULL && strcmp(cfg->clusters[i].name, name) == 0)
            return &cfg->clusters[i];
    return NULL;
}
