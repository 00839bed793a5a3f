/* tls_client: a cluster's TLS context, for connections to its endpoints
 * (proxied requests and health checks).
 *
 *   connect ─> SSL_new(ctx) ─ SNI: tls.sni | the endpoint's host name
 *                           ─ verify: the CA, and the name (tls.verify_name |
 *                             the SNI | the endpoint's IP address)
 *                           ─ resume: the session last seen for this address
 *
 * Sessions are kept per upstream address in a small table of slots (a
 * slot per address hash; a collision only costs a full handshake),
 * filled by OpenSSL's new-session callback, so every worker's pooled and
 * new connections resume the same session. */
#include "tls/tls_internal.h"

#include <errno.h>
#include <openssl/err.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <string.h>

#include "core/hash.h"

static int tls_client_slot_index = -1;
static pthread_once_t tls_client_once = PTHREAD_ONCE_INIT;

static void tls_client_make_index(void)
{
    tls_client_slot_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

/* OpenSSL hands over a session it may resume later: keep it for the
 * connection's address. Returns 1 (the reference is ours). */
static int tls_client_new_session(SSL *ssl, SSL_SESSION *sess)
{
    struct tls_client *cl = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), tls_ctx_owner_index());
    uintptr_t key = (uintptr_t)SSL_get_ex_data(ssl, tls_client_slot_index);
    if (!cl || !key)
        return 0;
    struct tls_session_slot *slot = &cl->sessions[key % TLS_SESSION_SLOTS];
    pthread_mutex_lock(&cl->lock);
    SSL_SESSION *old = slot->sess;
    slot->sess = sess;
    slot->key = key;
    pthread_mutex_unlock(&cl->lock);
    SSL_SESSION_free(old);
    return 1;
}

uint64_t tls_client_addr_key(const struct sockaddr *addr, socklen_t addrlen)
{
    uint64_t k = hash_bytes(addr, addrlen);
    return k ? k : 1;
}

SSL_SESSION *tls_client_session(struct tls_client *cl, uint64_t key)
{
    struct tls_session_slot *slot = &cl->sessions[key % TLS_SESSION_SLOTS];
    SSL_SESSION *s = NULL;
    pthread_mutex_lock(&cl->lock);
    if (slot->key == key && slot->sess && SSL_SESSION_up_ref(slot->sess) == 1)
        s = slot->sess;
    pthread_mutex_unlock(&cl->lock);
    return s;
}

int tls_client_slot_ex_index(void)
{
    pthread_once(&tls_client_once, tls_client_make_index);
    return tls_client_slot_index;
}

/* Loads a PEM client certificate (with its chain) and key into ctx. */
static int tls_client_use_cert(SSL_CTX *ctx, const struct tls_client_opts *o, char *err, size_t err_size)
{
    char e[256];
    BIO *cb = BIO_new_mem_buf(o->cert, (int)o->cert_len);
    BIO *kb = BIO_new_mem_buf(o->key, (int)o->key_len);
    X509 *x = cb ? PEM_read_bio_X509(cb, NULL, NULL, NULL) : NULL;
    EVP_PKEY *k = kb ? PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL) : NULL;
    int rc = -EINVAL;
    if (!x || !k || SSL_CTX_use_certificate(ctx, x) != 1 || SSL_CTX_use_PrivateKey(ctx, k) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        snprintf(err, err_size, "client certificate and key not usable: %s",
                 tls_error_string(e, sizeof(e), "not PEM"));
    } else {
        X509 *ca;
        while ((ca = PEM_read_bio_X509(cb, NULL, NULL, NULL)) != NULL)
            SSL_CTX_add0_chain_cert(ctx, ca);
        ERR_clear_error();
        rc = 0;
    }
    X509_free(x);
    EVP_PKEY_free(k);
    BIO_free(cb);
    BIO_free(kb);
    return rc;
}

static int tls_client_load_ca(SSL_CTX *ctx, const struct tls_client_opts *o, char *err, size_t err_size)
{
    char e[256];
    if (!o->ca) {
        SSL_CTX_set_default_verify_paths(ctx);
        return 0;
    }
    BIO *b = BIO_new_mem_buf(o->ca, (int)o->ca_len);
    int n = 0;
    X509 *x;
    while (b && (x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
        if (X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), x) == 1)
            n++;
        X509_free(x);
    }
    ERR_clear_error();
    BIO_free(b);
    if (n == 0) {
        snprintf(err, err_size, "ca: no PEM certificate could be read: %s", tls_error_string(e, sizeof(e), "?"));
        return -EINVAL;
    }
    return 0;
}

struct tls_client *tls_client_new(struct tls_client_opts *o, char *err, size_t err_size)
{
    char e[256];
    pthread_once(&tls_client_once, tls_client_make_index);
    struct tls_client *cl = calloc(1, sizeof(*cl));
    SSL_CTX *ctx = cl ? SSL_CTX_new(TLS_client_method()) : NULL;
    if (!ctx) {
        snprintf(err, err_size, "cannot make a TLS context: %s", tls_error_string(e, sizeof(e), "out of memory"));
        free(cl);
        return NULL;
    }
    static _Atomic uint64_t next_tag = 1;
    cl->ctx = ctx;
    cl->tag = atomic_fetch_add(&next_tag, 1);
    pthread_mutex_init(&cl->lock, NULL);
    cl->verify = o->verify;
    cl->sni = o->sni;
    cl->verify_name = o->verify_name;
    o->sni = o->verify_name = NULL;
    tls_metrics_get(TLS_SIDE_CLIENT, NULL, &cl->m_handshakes, &cl->m_versions, &cl->m_resumed);
    SSL_CTX_set_ex_data(ctx, tls_ctx_owner_index(), cl);
    SSL_CTX_set_min_proto_version(ctx, o->min_version);
    SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_ENABLE_PARTIAL_WRITE);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, tls_client_new_session);
    SSL_CTX_set_verify(ctx, o->verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
    if (o->ciphers && SSL_CTX_set_cipher_list(ctx, o->ciphers) != 1) {
        snprintf(err, err_size, "ciphers: none known: %s", tls_error_string(e, sizeof(e), "?"));
        goto fail;
    }
    if (tls_client_load_ca(ctx, o, err, err_size) < 0)
        goto fail;
    if (o->cert && tls_client_use_cert(ctx, o, err, err_size) < 0)
        goto fail;
    return cl;
fail:
    tls_client_free(cl);
    return NULL;
}

const void *tls_client_tag(const struct tls_client *cl)
{
    return cl ? (const void *)(uintptr_t)cl->tag : NULL;
}

void tls_client_free(struct tls_client *cl)
{
    if (!cl)
        return;
    for (size_t i = 0; i < TLS_SESSION_SLOTS; i++)
        SSL_SESSION_free(cl->sessions[i].sess);
    /* a pooled connection may outlive cl (its SSL holds the context): the
     * new-session callback must not find cl any more */
    SSL_CTX_set_ex_data(cl->ctx, tls_ctx_owner_index(), NULL);
    SSL_CTX_free(cl->ctx);
    pthread_mutex_destroy(&cl->lock);
    free(cl->sni);
    free(cl->verify_name);
    tls_metrics_put(cl->m_handshakes, cl->m_versions, cl->m_resumed);
    free(cl);
}
