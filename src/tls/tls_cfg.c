/* tls_cfg: the `tls:` maps of a listener, of a cluster and of the root,
 * parsed into ready contexts (tls_server.c, tls_client.c, tls_keys.c).
 *
 * The files named are read relative to the configuration file and loaded
 * at once, so a certificate that does not parse, a key that does not
 * match or a key file that is not valid fails the load with the position
 * of the value at fault, and a reload that fails keeps the running
 * contexts. The parse fills a scratch `src` (the map's keys may come in
 * any order), then builds. */
#include "tls/tls_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define TLS_MAX_FILE_BYTES (1u << 20)

static const char *const tls_version_names[] = { "tls1.2", "tls1.3" };

static int tls_cfg_version(struct cfg_ctx *ctx, yaml_node_t *v, int *out)
{
    int i = 0;
    int rc = cfg_parse_enum(ctx, v, "min_version", tls_version_names, 2, &i);
    *out = i == 1 ? TLS1_3_VERSION : TLS1_2_VERSION;
    return rc;
}

static int tls_cfg_file(struct cfg_ctx *ctx, yaml_node_t *v, const char *what, char **out, size_t *len)
{
    const char *path;
    int rc = cfg_text(ctx, v, what, &path);
    if (rc < 0)
        return rc;
    free(*out);
    *out = NULL;
    return cfg_read_near(ctx, v, path, TLS_MAX_FILE_BYTES, out, len);
}

/* ---- listener ------------------------------------------------------------ */

struct tls_cfg_server {
    struct tls_server_opts o;
    struct tls_cert_src certs[TLS_MAX_CERTS];
    yaml_node_t *cert_nodes[TLS_MAX_CERTS];
    size_t n_certs;
    yaml_node_t *verify_node;
    int verify_given;
};

static int tls_cfg_cert_file(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct tls_cert_src *c = obj;
    return tls_cfg_file(ctx, v, "'cert'", &c->cert, &c->cert_len);
}

static int tls_cfg_key_file(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct tls_cert_src *c = obj;
    return tls_cfg_file(ctx, v, "'key'", &c->key, &c->key_len);
}

static int tls_cfg_ocsp_file(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct tls_cert_src *c = obj;
    return tls_cfg_file(ctx, v, "'ocsp'", &c->ocsp, &c->ocsp_len);
}

static int tls_cfg_name_item(struct cfg_ctx *ctx, yaml_node_t *node, void *obj, size_t i)
{
    struct tls_cert_src *c = obj;
    const char *s;
    int rc = cfg_text(ctx, node, "a certificate name", &s);
    if (rc < 0)
        return rc;
    if (i >= TLS_MAX_NAMES)
        return cfg_fail(ctx, node, "at most %d names per certificate", TLS_MAX_NAMES);
    rc = cfg_strdup(ctx, s, &c->names[i]);
    if (rc == 0) {
        for (char *p = c->names[i]; *p; p++)
            *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
        c->n_names = i + 1;
    }
    return rc;
}

static int tls_cfg_names(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct tls_cert_src *c = obj;
    int rc = cfg_expect(ctx, v, YAML_SEQUENCE_NODE, "'names'");
    if (rc < 0)
        return rc;
    if (!c->names && !(c->names = calloc(TLS_MAX_NAMES, sizeof(char *))))
        return cfg_nomem(ctx);
    return cfg_list_each(ctx, v, tls_cfg_name_item, c);
}

static const struct cfg_key tls_cfg_cert_keys[] = {
    CFG_FUNC("cert", tls_cfg_cert_file, true),
    CFG_FUNC("key", tls_cfg_key_file, true),
    CFG_FUNC("ocsp", tls_cfg_ocsp_file, false),
    CFG_FUNC("names", tls_cfg_names, false),
};
CFG_MAP_DEFINE(tls_cfg_cert_map, "certificate", tls_cfg_cert_keys);

static int tls_cfg_cert_item(struct cfg_ctx *ctx, yaml_node_t *node, void *obj, size_t i)
{
    struct tls_cfg_server *s = obj;
    if (i >= TLS_MAX_CERTS)
        return cfg_fail(ctx, node, "at most %d certificates per listener", TLS_MAX_CERTS);
    s->cert_nodes[i] = node;
    s->n_certs = i + 1;
    return cfg_parse_map(ctx, node, &tls_cfg_cert_map, &s->certs[i], NULL);
}

static int tls_cfg_certificates(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    int rc = cfg_expect(ctx, v, YAML_SEQUENCE_NODE, "'certificates'");
    if (rc == 0 && v->data.sequence.items.start == v->data.sequence.items.top)
        rc = cfg_fail(ctx, v, "'certificates' needs at least one certificate");
    return rc < 0 ? rc : cfg_list_each(ctx, v, tls_cfg_cert_item, obj);
}

static int tls_cfg_server_version(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    return tls_cfg_version(ctx, v, &((struct tls_cfg_server *)obj)->o.min_version);
}

static int tls_cfg_server_ciphers(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    return cfg_dup_text(ctx, v, "'ciphers'", &((struct tls_cfg_server *)obj)->o.ciphers);
}

static int tls_cfg_server_suites(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    return cfg_dup_text(ctx, v, "'ciphersuites'", &((struct tls_cfg_server *)obj)->o.ciphersuites);
}

static int tls_cfg_client_ca(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct tls_cfg_server *s = obj;
    return tls_cfg_file(ctx, v, "'client_ca'", &s->o.client_ca, &s->o.client_ca_len);
}

static int tls_cfg_client_verify(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    static const char *const modes[] = { "optional", "required" };
    struct tls_cfg_server *s = obj;
    int i = 1;
    int rc = cfg_parse_enum(ctx, v, "client_verify", modes, 2, &i);
    s->o.client_verify_required = i;
    s->verify_node = v;
    return rc;
}

static const struct cfg_key tls_cfg_server_keys[] = {
    CFG_FUNC("certificates", tls_cfg_certificates, true),
    CFG_FUNC("min_version", tls_cfg_server_version, false),
    CFG_FUNC("ciphers", tls_cfg_server_ciphers, false),
    CFG_FUNC("ciphersuites", tls_cfg_server_suites, false),
    CFG_FUNC("client_ca", tls_cfg_client_ca, false),
    CFG_FUNC("client_verify", tls_cfg_client_verify, false),
};
CFG_MAP_DEFINE(tls_cfg_server_map, "listener tls", tls_cfg_server_keys);

static void tls_cfg_server_clear(struct tls_cfg_server *s)
{
    for (size_t i = 0; i < TLS_MAX_CERTS; i++) {
        struct tls_cert_src *c = &s->certs[i];
        free(c->cert);
        free(c->key);
        free(c->ocsp);
        for (size_t j = 0; c->names && j < TLS_MAX_NAMES; j++)
            free(c->names[j]);
        free(c->names);
    }
    free(s->o.ciphers);
    free(s->o.ciphersuites);
    free(s->o.client_ca);
}

int tls_cfg_parse_server(struct cfg_ctx *ctx, yaml_node_t *v, struct tls_server **out)
{
    char err[512];
    struct tls_cfg_server *s = calloc(1, sizeof(*s));
    if (!s)
        return cfg_nomem(ctx);
    s->o.min_version = TLS1_2_VERSION;
    s->o.client_verify_required = 1;
    int rc = cfg_parse_map(ctx, v, &tls_cfg_server_map, s, NULL);
    if (rc == 0 && s->verify_node && !s->o.client_ca)
        rc = cfg_fail(ctx, s->verify_node, "client_verify needs client_ca (the CAs client certificates "
                                           "must chain to)");
    if (rc == 0 && !(*out = tls_server_new()))
        rc = cfg_nomem(ctx);
    for (size_t i = 0; rc == 0 && i < s->n_certs; i++)
        if (tls_server_add_cert(*out, &s->o, &s->certs[i], err, sizeof(err)) < 0)
            rc = cfg_fail(ctx, s->cert_nodes[i], "certificate %zu: %s", i + 1, err);
    tls_cfg_server_clear(s);
    free(s);
    return rc;
}

/* ---- cluster ---------------------------------------------------------------- */

struct tls_cfg_client {
    struct tls_client_opts o;
    yaml_node_t *cert_node, *key_node;
};

static int tls_cfg_up_ca(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct tls_cfg_client *c = obj;
    return tls_cfg_file(ctx, v, "'ca'", &c->o.ca, &c->o.ca_len);
}

static int tls_cfg_up_cert(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct tls_cfg_client *c = obj;
    c->cert_node = v;
    return tls_cfg_file(ctx, v, "'cert'", &c->o.cert, &c->o.cert_len);
}

static int tls_cfg_up_key(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct tls_cfg_client *c = obj;
    c->key_node = v;
    return tls_cfg_file(ctx, v, "'key'", &c->o.key, &c->o.key_len);
}

static int tls_cfg_up_verify(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    return cfg_parse_bool(ctx, v, "'verify'", &((struct tls_cfg_client *)obj)->o.verify);
}

static int tls_cfg_up_sni(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    return cfg_dup_text(ctx, v, "'sni'", &((struct tls_cfg_client *)obj)->o.sni);
}

static int tls_cfg_up_verify_name(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    return cfg_dup_text(ctx, v, "'verify_name'", &((struct tls_cfg_client *)obj)->o.verify_name);
}

static int tls_cfg_up_version(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    return tls_cfg_version(ctx, v, &((struct tls_cfg_client *)obj)->o.min_version);
}

static int tls_cfg_up_ciphers(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    return cfg_dup_text(ctx, v, "'ciphers'", &((struct tls_cfg_client *)obj)->o.ciphers);
}

static const struct cfg_key tls_cfg_client_keys[] = {
    CFG_FUNC("ca", tls_cfg_up_ca, false),
    CFG_FUNC("verify", tls_cfg_up_verify, false),
    CFG_FUNC("sni", tls_cfg_up_sni, false),
    CFG_FUNC("verify_name", tls_cfg_up_verify_name, false),
    CFG_FUNC("cert", tls_cfg_up_cert, false),
    CFG_FUNC("key", tls_cfg_up_key, false),
    CFG_FUNC("min_version", tls_cfg_up_version, false),
    CFG_FUNC("ciphers", tls_cfg_up_ciphers, false),
};
CFG_MAP_DEFINE(tls_cfg_client_map, "cluster tls", tls_cfg_client_keys);

int tls_cfg_parse_client(struct cfg_ctx *ctx, yaml_node_t *v, struct tls_client **out)
{
    char err[512];
    struct tls_cfg_client c = { .o = { .min_version = TLS1_2_VERSION, .verify = 1 } };
    int rc = cfg_parse_map(ctx, v, &tls_cfg_client_map, &c, NULL);
    if (rc == 0 && (!c.o.cert) != (!c.o.key))
        rc = cfg_fail(ctx, c.cert_node ? c.cert_node : c.key_node, "a client certificate needs both "
                                                                   "'cert' and 'key'");
    if (rc == 0 && !(*out = tls_client_new(&c.o, err, sizeof(err))))
        rc = cfg_fail(ctx, v, "cluster tls: %s", err);
    free(c.o.ca);
    free(c.o.cert);
    free(c.o.key);
    free(c.o.sni);
    free(c.o.verify_name);
    free(c.o.ciphers);
    return rc;
}

/* ---- root: session tickets ------------------------------------------------- */

static int tls_cfg_key_file_keys(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct tls_tickets *t = obj;
    char *text = NULL;
    size_t len = 0;
    unsigned line = 0;
    int rc = tls_cfg_file(ctx, v, "'ticket_key_file'", &text, &len);
    if (rc < 0)
        return rc;
    int n = tls_keys_parse(text, len, t->own.keys, TLS_TICKET_KEYS_MAX, &line);
    free(text);
    if (n < 0 && line)
        return cfg_fail(ctx, v, "ticket key file: line %u: expected the base64 of 80 random bytes "
                                "(openssl rand -base64 80), at most %d keys", line, TLS_TICKET_KEYS_MAX);
    if (n < 0)
        return cfg_fail(ctx, v, "ticket key file: no key in it");
    t->own.n = (unsigned)n;
    t->ring = &t->own;
    t->rotate_ms = 0;
    return 0;
}

static const struct cfg_key tls_cfg_tickets_keys[] = {
    CFG_FUNC("ticket_key_file", tls_cfg_key_file_keys, false),
    CFG_FIELD("ticket_rotate", CFG_KIND_DURATION, struct tls_tickets, rotate_ms, 60000, CFG_MAX_DURATION_MS),
};
CFG_MAP_DEFINE(tls_cfg_tickets_map, "tls", tls_cfg_tickets_keys);

int tls_cfg_parse_tickets(struct cfg_ctx *ctx, yaml_node_t *v, struct tls_tickets **out)
{
    struct tls_tickets *t = calloc(1, sizeof(*t));
    if (!t)
        return cfg_nomem(ctx);
    pthread_mutex_init(&t->own.lock, NULL);
    t->ring = tls_tickets_default.ring;
    t->rotate_ms = tls_tickets_default.rotate_ms;
    *out = t;
    int rc = cfg_parse_map(ctx, v, &tls_cfg_tickets_map, t, NULL);
    if (t->ring == &t->own)
        t->rotate_ms = 0;
    return rc;
}

void tls_tickets_free(struct tls_tickets *t)
{
    if (!t)
        return;
    pthread_mutex_destroy(&t->own.lock);
    OPENSSL_cleanse(t->own.keys, sizeof(t->own.keys));
    free(t);
}
