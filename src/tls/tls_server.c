/* tls_server: a TLS listener's contexts and the choices made during a
 * handshake.
 *
 *   ClientHello ─SNI─> exact name ─> wildcard "*.rest" ─> default (first set)
 *                          └──────────── SSL_set_SSL_CTX ───────┘
 *   then, in the chosen context: the certificate for the client's signature
 *   algorithms (RSA and ECDSA side by side), ALPN (h2 when the listener
 *   has http2, and http/1.1), the OCSP
 *   response stapled for that certificate, client certificate checks.
 *
 * Certificates with the same names share one SSL_CTX (one RSA and one
 * ECDSA key each at most); every context gets the same settings, since
 * the SNI switch keeps the first context's options and verify mode. The
 * stateful session cache is off: resumption is by tickets (tls_keys.c). */
#include "tls/tls_internal.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"

#define TLS_DEFAULT_CIPHERS                                                                          \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"       \
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

static int tls_ocsp_index = -1;
static int tls_owner_index = -1;
static pthread_once_t tls_index_once = PTHREAD_ONCE_INIT;

/* The OCSP response kept on a certificate: DER bytes and their length. */
struct tls_ocsp {
    size_t len;
    unsigned char der[];
};

static void tls_ocsp_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    free(ptr);
}

static void tls_make_indexes(void)
{
    tls_ocsp_index = X509_get_ex_new_index(0, NULL, NULL, NULL, tls_ocsp_free);
    tls_owner_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

int tls_ctx_owner_index(void)
{
    pthread_once(&tls_index_once, tls_make_indexes);
    return tls_owner_index;
}

const char *tls_error_string(char *buf, size_t size, const char *fallback)
{
    unsigned long e = ERR_peek_last_error();
    if (e)
        ERR_error_string_n(e, buf, size);
    else
        snprintf(buf, size, "%s", fallback);
    ERR_clear_error();
    return buf;
}

/* ---- handshake callbacks ---------------------------------------------- */

static const unsigned char tls_alpn_http11[] = { 8, 'h', 't', 't', 'p', '/', '1', '.', '1' };
static const unsigned char tls_alpn_h2_http11[] = { 2, 'h', '2', 8, 'h', 't', 't', 'p', '/', '1', '.', '1' };

/* ALPN (RFC 7301): h2 when the listener has http2 and the client offers
 * it, else http/1.1 when offered; a client offering only other protocols
 * goes on without ALPN, as nginx does, and gets HTTP/1.1. arg: the
 * struct tls_server. */
static int tls_alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
                       unsigned int inlen, void *arg)
{
    const struct tls_server *srv = arg;
    const unsigned char *ours = srv->offer_h2 ? tls_alpn_h2_http11 : tls_alpn_http11;
    unsigned ours_len = srv->offer_h2 ? sizeof(tls_alpn_h2_http11) : sizeof(tls_alpn_http11);
    unsigned char *sel;
    (void)ssl;
    if (srv->no_alpn)
        return SSL_TLSEXT_ERR_NOACK;
    if (SSL_select_next_proto(&sel, outlen, ours, ours_len, in, inlen) != OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

/* Whether name (lower case) is matched by pattern: equal, or "*.rest"
 * standing for exactly one label in front of rest (RFC 6125 6.4.3). */
static int tls_name_matches(const char *pattern, const char *name)
{
    if (pattern[0] != '*')
        return strcasecmp(pattern, name) == 0;
    const char *dot = strchr(name, '.');
    return dot && dot != name && strcasecmp(pattern + 1, dot) == 0;
}

static SSL_CTX *tls_server_pick(const struct tls_server *srv, const char *name)
{
    for (size_t i = 0; i < srv->n_names; i++) /* exact names first */
        if (srv->names[i].name[0] != '*' && strcasecmp(srv->names[i].name, name) == 0)
            return srv->names[i].ctx;
    for (size_t i = 0; i < srv->n_names; i++)
        if (srv->names[i].name[0] == '*' && tls_name_matches(srv->names[i].name, name))
            return srv->names[i].ctx;
    return NULL;
}

static int tls_sni_cb(SSL *ssl, int *alert, void *arg)
{
    const struct tls_server *srv = arg;
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (!name)
        return SSL_TLSEXT_ERR_NOACK; /* the default context answers */
    SSL_CTX *ctx = tls_server_pick(srv, name);
    if (ctx && ctx != SSL_get_SSL_CTX(ssl))
        SSL_set_SSL_CTX(ssl, ctx);
    return SSL_TLSEXT_ERR_OK;
}

/* Staples the OCSP response of the certificate the handshake uses. */
static int tls_status_cb(SSL *ssl, void *arg)
{
    X509 *x = SSL_get_certificate(ssl);
    const struct tls_ocsp *o = x ? X509_get_ex_data(x, tls_ocsp_index) : NULL;
    if (!o)
        return SSL_TLSEXT_ERR_NOACK;
    unsigned char *copy = OPENSSL_malloc(o->len);
    if (!copy)
        return SSL_TLSEXT_ERR_NOACK;
    memcpy(copy, o->der, o->len);
    SSL_set_tlsext_status_ocsp_resp(ssl, copy, (long)o->len);
    return SSL_TLSEXT_ERR_OK;
}

/* ---- building ------------------------------------------------------------ */

struct tls_server *tls_server_new(void)
{
    pthread_once(&tls_index_once, tls_make_indexes);
    struct tls_server *srv = calloc(1, sizeof(*srv));
    if (srv)
        tls_metrics_get(TLS_SIDE_SERVER, NULL, &srv->m_handshakes, &srv->m_versions, &srv->m_resumed);
    return srv;
}

void tls_server_free(struct tls_server *srv)
{
    if (!srv)
        return;
    /* a connection may outlive srv (its SSL holds the context): its
     * callbacks must not find srv any more */
    for (size_t i = 0; i < srv->n_ctxs; i++) {
        SSL_CTX_set_ex_data(srv->ctxs[i], tls_owner_index, NULL);
        SSL_CTX_free(srv->ctxs[i]);
    }
    for (size_t i = 0; i < srv->n_names; i++)
        free(srv->names[i].name);
    free(srv->ctxs);
    free(srv->names);
    tls_metrics_put(srv->m_handshakes, srv->m_versions, srv->m_resumed);
    free(srv);
}

void tls_server_use_tickets(struct tls_server *srv, const struct tls_tickets *t)
{
    srv->tickets = t;
}

/* Loads the PEM certificates in text into store. Returns how many, or -1. */
static int tls_load_cas(X509_STORE *store, STACK_OF(X509_NAME) *names, const char *pem, size_t len)
{
    BIO *b = BIO_new_mem_buf(pem, (int)len);
    if (!b)
        return -1;
    int n = 0;
    X509 *x;
    while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
        if (X509_STORE_add_cert(store, x) != 1)
            n = -1000;
        if (names)
            sk_X509_NAME_push(names, X509_NAME_dup(X509_get_subject_name(x)));
        X509_free(x);
        n++;
    }
    ERR_clear_error(); /* the end of the text reads as an error */
    BIO_free(b);
    return n > 0 ? n : -1;
}

/* A new context with the listener's common settings. */
static SSL_CTX *tls_server_ctx_new(struct tls_server *srv, const struct tls_server_opts *o, char *err,
                                   size_t err_size)
{
    char e[256];
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        snprintf(err, err_size, "cannot make a TLS context: %s", tls_error_string(e, sizeof(e), "?"));
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, o->min_version);
    SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_ENABLE_PARTIAL_WRITE);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"weir", 4);
    SSL_CTX_set_timeout(ctx, 7200);
    SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, tls_ticket_cb);
    SSL_CTX_set_ex_data(ctx, tls_owner_index, srv);
    SSL_CTX_set_alpn_select_cb(ctx, tls_alpn_cb, srv);
    SSL_CTX_set_tlsext_servername_callback(ctx, tls_sni_cb);
    SSL_CTX_set_tlsext_servername_arg(ctx, srv);
    SSL_CTX_set_tlsext_status_cb(ctx, tls_status_cb);
    if (SSL_CTX_set_cipher_list(ctx, o->ciphers ? o->ciphers : TLS_DEFAULT_CIPHERS) != 1 ||
        (o->ciphersuites && SSL_CTX_set_ciphersuites(ctx, o->ciphersuites) != 1)) {
        snprintf(err, err_size, "no cipher of the list is known: %s", tls_error_string(e, sizeof(e), "?"));
        goto fail;
    }
    if (o->client_ca) {
        STACK_OF(X509_NAME) *names = sk_X509_NAME_new_null();
        if (!names || tls_load_cas(SSL_CTX_get_cert_store(ctx), names, o->client_ca, o->client_ca_len) < 0) {
            sk_X509_NAME_pop_free(names, X509_NAME_free);
            snprintf(err, err_size, "client_ca: no certificate could be read: %s",
                     tls_error_string(e, sizeof(e), "not PEM"));
            goto fail;
        }
        SSL_CTX_set_client_CA_list(ctx, names);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | (o->client_verify_required ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
                           NULL);
        SSL_CTX_set_verify_depth(ctx, 8);
    }
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

/* The DNS names of x (its subjectAltName, else its CN) into names[],
 * lower case, malloc'd. Returns how many, or -ENOMEM. */
static int tls_cert_names(X509 *x, char **names, int max)
{
    int n = 0;
    GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens) && n < max; i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        if (g->type != GEN_DNS)
            continue;
        const char *s = (const char *)ASN1_STRING_get0_data(g->d.dNSName);
        if (!(names[n] = strndup(s, (size_t)ASN1_STRING_length(g->d.dNSName))))
            break;
        n++;
    }
    GENERAL_NAMES_free(gens);
    if (n == 0) {
        char cn[256];
        if (X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof(cn)) > 0 &&
            (names[0] = strdup(cn)))
            n = 1;
    }
    for (int i = 0; i < n; i++)
        for (char *p = names[i]; *p; p++)
            *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
    return n;
}

/* The context already serving exactly these names (as a set), or NULL. */
static SSL_CTX *tls_server_find_ctx(const struct tls_server *srv, char **names, int n)
{
    for (size_t c = 0; c < srv->n_ctxs; c++) {
        int count = 0, all = 1;
        for (size_t i = 0; i < srv->n_names; i++)
            if (srv->names[i].ctx == srv->ctxs[c])
                count++;
        for (int i = 0; i < n && all; i++) {
            all = 0;
            for (size_t j = 0; j < srv->n_names; j++)
                if (srv->names[j].ctx == srv->ctxs[c] && strcmp(srv->names[j].name, names[i]) == 0)
                    all = 1;
        }
        if (all && count == n)
            return srv->ctxs[c];
    }
    return NULL;
}

static int tls_server_add_ctx(struct tls_server *srv, SSL_CTX *ctx, char **names, int n)
{
    SSL_CTX **ctxs = realloc(srv->ctxs, (srv->n_ctxs + 1) * sizeof(*ctxs));
    if (!ctxs)
        return -ENOMEM;
    srv->ctxs = ctxs;
    struct tls_sni *sni = realloc(srv->names, (srv->n_names + (size_t)n) * sizeof(*sni));
    if (!sni)
        return -ENOMEM;
    srv->names = sni;
    srv->ctxs[srv->n_ctxs++] = ctx;
    for (int i = 0; i < n; i++) {
        srv->names[srv->n_names].name = names[i];
        srv->names[srv->n_names++].ctx = ctx;
        names[i] = NULL;
    }
    return 0;
}

/* Loads cert (leaf then chain) and key into ctx's slot for the key type. */
static int tls_ctx_use(SSL_CTX *ctx, X509 *leaf, BIO *chain, EVP_PKEY *key, char *err, size_t err_size)
{
    char e[256];
    if (SSL_CTX_use_certificate(ctx, leaf) != 1) {
        snprintf(err, err_size, "certificate not usable: %s", tls_error_string(e, sizeof(e), "?"));
        return -EINVAL;
    }
    SSL_CTX_clear_chain_certs(ctx);
    X509 *ca;
    while ((ca = PEM_read_bio_X509(chain, NULL, NULL, NULL)) != NULL)
        SSL_CTX_add0_chain_cert(ctx, ca);
    ERR_clear_error();
    if (SSL_CTX_use_PrivateKey(ctx, key) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
        snprintf(err, err_size, "the key does not match the certificate: %s",
                 tls_error_string(e, sizeof(e), "?"));
        return -EINVAL;
    }
    return 0;
}

int tls_server_add_cert(struct tls_server *srv, const struct tls_server_opts *o, const struct tls_cert_src *src,
                        char *err, size_t err_size)
{
    char e[256];
    char *names[TLS_MAX_NAMES] = { 0 };
    int rc = -EINVAL, n = 0;
    BIO *cb = BIO_new_mem_buf(src->cert, (int)src->cert_len);
    BIO *kb = BIO_new_mem_buf(src->key, (int)src->key_len);
    X509 *leaf = cb ? PEM_read_bio_X509_AUX(cb, NULL, NULL, NULL) : NULL;
    EVP_PKEY *key = kb ? PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL) : NULL;
    if (!leaf) {
        snprintf(err, err_size, "cert: no PEM certificate: %s", tls_error_string(e, sizeof(e), "?"));
        goto out;
    }
    if (!key) {
        snprintf(err, err_size, "key: no PEM private key: %s", tls_error_string(e, sizeof(e), "?"));
        goto out;
    }
    for (size_t i = 0; i < src->n_names && n < TLS_MAX_NAMES; i++)
        if ((names[n] = strdup(src->names[i])))
            n++;
    if (src->n_names == 0)
        n = tls_cert_names(leaf, names, TLS_MAX_NAMES);
    if (n <= 0) {
        snprintf(err, err_size, "cert: the certificate names no DNS name; give 'names'");
        goto out;
    }
    if (src->ocsp) {
        const unsigned char *p = (const unsigned char *)src->ocsp;
        OCSP_RESPONSE *r = d2i_OCSP_RESPONSE(NULL, &p, (long)src->ocsp_len);
        struct tls_ocsp *o2 = r ? malloc(sizeof(*o2) + src->ocsp_len) : NULL;
        OCSP_RESPONSE_free(r);
        if (!o2) {
            snprintf(err, err_size, "ocsp: not a DER OCSP response");
            goto out;
        }
        o2->len = src->ocsp_len;
        memcpy(o2->der, src->ocsp, src->ocsp_len);
        X509_set_ex_data(leaf, tls_ocsp_index, o2);
    }
    SSL_CTX *ctx = tls_server_find_ctx(srv, names, n);
    int fresh = ctx == NULL;
    if (fresh && !(ctx = tls_server_ctx_new(srv, o, err, err_size)))
        goto out;
    rc = tls_ctx_use(ctx, leaf, cb, key, err, err_size);
    if (rc == 0 && fresh && (rc = tls_server_add_ctx(srv, ctx, names, n)) < 0)
        snprintf(err, err_size, "out of memory");
    if (rc < 0 && fresh)
        SSL_CTX_free(ctx);
out:
    for (int i = 0; i < n; i++)
        free(names[i]);
    X509_free(leaf);
    EVP_PKEY_free(key);
    BIO_free(cb);
    BIO_free(kb);
    return rc;
}

void tls_server_offer_h2(struct tls_server *srv)
{
    srv->offer_h2 = 1;
}

int tls_server_set_listener(struct tls_server *srv, const char *name)
{
    struct metric_series *h, *v, *r;
    tls_metrics_get(TLS_SIDE_SERVER, name, &h, &v, &r);
    if (!h || !v || !r) {
        tls_metrics_put(h, v, r);
        return -ENOMEM;
    }
    tls_metrics_put(srv->m_handshakes, srv->m_versions, srv->m_resumed);
    srv->m_handshakes = h;
    srv->m_versions = v;
    srv->m_resumed = r;
    return 0;
}

void tls_server_no_alpn(struct tls_server *srv)
{
    srv->no_alpn = 1;
}
