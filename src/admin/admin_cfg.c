/* admin_cfg: parses the `admin:` section.
 *
 *   admin map -- listen: HOST:PORT         (default 127.0.0.1:9901)
 *             |- token_file: PATH          (first line = the bearer token)
 *             |- histogram_buckets: [seconds, ...]
 *             `- limits map (connections, body)
 *
 * The token file is read at load, so a missing or empty file is a config
 * error with its position, and a reload picks up a new token. An admin
 * address that is not loopback needs a token: the API changes the
 * topology, and weir refuses to offer that to the network unauthenticated. */
#include "admin/admin_cfg.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "core/config_parse.h"
#include "core/units.h"
#include "server/config.h"

static int admin_cfg_listen(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cfg_admin *a = obj;
    free(a->listen);
    a->listen = NULL;
    a->listen_mark = cfg_mark_of(v);
    return cfg_parse_address(ctx, v, "'listen'", &a->listen, &a->addr, &a->addrlen);
}

static int admin_cfg_token_file(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cfg_admin *a = obj;
    const char *path;
    char *text;
    size_t len;
    int rc = cfg_text(ctx, v, "'token_file'", &path);
    if (rc < 0 || (rc = cfg_strdup(ctx, path, &a->token_file)) < 0)
        return rc;
    if ((rc = cfg_read_near(ctx, v, path, CFG_ADMIN_MAX_TOKEN, &text, &len)) < 0)
        return rc;
    /* the first line, without surrounding blanks */
    size_t s = strspn(text, " \t\r\n");
    size_t e = s + strcspn(text + s, "\r\n");
    while (e > s && (text[e - 1] == ' ' || text[e - 1] == '\t'))
        e--;
    if (e - s < 16) {
        free(text);
        return cfg_fail(ctx, v, "the token in 'token_file' must be at least 16 characters "
                                "on its first line");
    }
    memmove(text, text + s, e - s);
    text[e - s] = '\0';
    a->token = text;
    return 0;
}

static int admin_cfg_bucket(struct cfg_ctx *ctx, yaml_node_t *v, void *obj, size_t i)
{
    struct cfg_admin *a = obj;
    const char *s;
    char q[CFG_QUOTE_SIZE];
    int rc = cfg_scalar(ctx, v, "a histogram bucket", &s);
    if (rc < 0)
        return rc;
    char *end;
    errno = 0;
    double d = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(d) || d <= 0 || d > 1e6)
        return cfg_fail(ctx, v, "a histogram bucket is a number of seconds (0 < x <= 1000000), "
                                "got %s", cfg_quote(s, q));
    if (i > 0 && !(d > a->buckets[i - 1]))
        return cfg_fail(ctx, v, "histogram buckets must be in increasing order");
    a->buckets[i] = d;
    return 0;
}

static int admin_cfg_buckets(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cfg_admin *a = obj;
    void *items;
    static const struct cfg_list list = { "'histogram_buckets'", "bucket bound (seconds)",
                                          sizeof(double), CFG_ADMIN_MAX_BUCKETS };
    int rc = cfg_list_new(ctx, v, &list, &items, &a->n_buckets);
    if (rc < 0)
        return rc;
    free(items); /* fixed array in the section */
    return cfg_list_each(ctx, v, admin_cfg_bucket, a);
}

static const struct cfg_key admin_cfg_limit_keys[] = {
    CFG_FIELD("connections", CFG_KIND_UINT, struct cfg_admin, max_connections, 1, 100000),
    CFG_FIELD("body", CFG_KIND_SIZE, struct cfg_admin, max_body_bytes, 1, 64u << 20),
};
CFG_MAP_DEFINE(admin_cfg_limit_map, "admin limits", admin_cfg_limit_keys);

static int admin_cfg_limits(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    return cfg_parse_map(ctx, v, &admin_cfg_limit_map, obj, NULL);
}

static const struct cfg_key admin_cfg_keys[] = {
    CFG_FUNC("listen", admin_cfg_listen, false),
    CFG_FUNC("token_file", admin_cfg_token_file, false),
    CFG_FUNC("histogram_buckets", admin_cfg_buckets, false),
    CFG_FUNC("limits", admin_cfg_limits, false),
};
CFG_MAP_DEFINE(admin_cfg_map, "admin", admin_cfg_keys);

static int admin_cfg_loopback(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
        return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
    }
    return 0;
}

int admin_cfg_parse(struct cfg_ctx *ctx, yaml_node_t *v, void *root)
{
    struct cfg *cfg = root;
    yaml_node_t *vals[CFG_MAP_MAX_KEYS];
    struct cfg_admin *a = calloc(1, sizeof(*a));
    if (!a)
        return cfg_nomem(ctx);
    cfg->admin = a;
    a->max_connections = 64;
    a->max_body_bytes = 1u << 20;
    a->mark = cfg_mark_of(v);
    int rc = cfg_parse_map(ctx, v, &admin_cfg_map, a, vals);
    if (rc < 0)
        return rc;
    if (!a->listen) {
        if (!(a->listen = strdup("127.0.0.1:9901")))
            return cfg_nomem(ctx);
        if (units_parse_addr(a->listen, &a->addr, &a->addrlen) < 0)
            return cfg_fail(ctx, v, "internal: the default admin address does not parse");
        a->listen_mark = a->mark;
    }
    if (!a->token && !admin_cfg_loopback(&a->addr))
        return cfg_fail(ctx, vals[0] ? vals[0] : v,
                        "the admin API listens beyond loopback (%s): it needs a 'token_file'",
                        a->listen);
    return 0;
}

int admin_cfg_resolve(struct cfg_ctx *ctx, void *root)
{
    struct cfg *cfg = root;
    struct cfg_admin *a = cfg->admin;
    if (!a)
        return 0;
    for (size_t i = 0; i < cfg->n_listeners; i++) {
        if (cfg_same_addr(&cfg->listeners[i].addr, cfg->listeners[i].addrlen, &a->addr, a->addrlen))
            return cfg_fail_mark(ctx, a->listen_mark, "admin 'listen' %s is also listener %s's",
                                 a->listen, cfg->listeners[i].name);
    }
    return 0;
}

void admin_cfg_free(void *root)
{
    struct cfg *cfg = root;
    struct cfg_admin *a = cfg->admin;
    if (!a)
        return;
    free(a->listen);
    free(a->token_file);
    free(a->token);
    free(a);
    cfg->admin = NULL;
}
