/* tls_conn: a TLS connection as a struct sio (core/sio.h).
 *
 *   sio_read ──> handshake done? ──no──> SSL_do_handshake ─┐
 *                     │yes                                  │ WANT_READ / WANT_WRITE
 *                     ▼                                     ▼
 *                  SSL_read ────────────────────────> -EAGAIN, rd_want / wr_want
 *
 * The handshake runs inside the first read or write (or tls_handshake),
 * one non-blocking step per call, so a worker never waits on a peer: only
 * the handshake's own CPU (the private key operation included) is spent
 * in the worker. Its end is counted once (result, version, resumption). A
 * shutdown sends close_notify without waiting for the peer's. */
#include "tls/tls_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"

struct tls_conn {
    SSL *ssl;
    struct metric_series *m_handshakes, *m_versions, *m_resumed; /* the context's */
    unsigned done : 1, failed : 1, client : 1;
    char *subject;                 /* the verified peer's subject, malloc'd */
};

static const struct sio_ops tls_sio_ops;

/* Maps an SSL error after a call that returned r. */
static int tls_map_error(struct sio *s, struct tls_conn *t, int r, int for_read)
{
    int e = SSL_get_error(t->ssl, r);
    switch (e) {
    case SSL_ERROR_WANT_READ:
        if (for_read)
            s->rd_want = SIO_WANT_READ;
        else
            s->wr_want = SIO_WANT_READ;
        return -EAGAIN;
    case SSL_ERROR_WANT_WRITE:
        if (for_read)
            s->rd_want = SIO_WANT_WRITE;
        else
            s->wr_want = SIO_WANT_WRITE;
        return -EAGAIN;
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    case SSL_ERROR_SYSCALL:
        ERR_clear_error();
        return errno ? -errno : 0; /* 0: the peer closed without close_notify */
    default:
        ERR_clear_error();
        return -EPROTO;
    }
}

static void tls_count_done(struct tls_conn *t)
{
    metrics_add(t->m_handshakes, 0, 1);
    metrics_add(t->m_versions, SSL_version(t->ssl) == TLS1_3_VERSION ? 1 : 0, 1);
    if (SSL_session_reused(t->ssl))
        metrics_add(t->m_resumed, 0, 1);
    X509 *peer = t->client ? NULL : SSL_get0_peer_certificate(t->ssl);
    if (peer && SSL_get_verify_result(t->ssl) == X509_V_OK)
        t->subject = X509_NAME_oneline(X509_get_subject_name(peer), NULL, 0);
}

static void tls_log_failure(struct tls_conn *t)
{
    char e[256];
    long v = SSL_get_verify_result(t->ssl);
    if (v != X509_V_OK)
        snprintf(e, sizeof(e), "certificate verify failed: %s", X509_verify_cert_error_string(v));
    else
        tls_error_string(e, sizeof(e), "connection closed");
    if (t->client)
        log_warn("TLS handshake with an upstream failed: %s", e);
    else
        log_debug("TLS handshake with a client failed: %s", e);
}

int tls_handshake(struct sio *s)
{
    if (s->ops != &tls_sio_ops)
        return 0;
    struct tls_conn *t = s->impl;
    if (t->done)
        return 0;
    if (t->failed)
        return -EPROTO;
    ERR_clear_error();
    errno = 0;
    int r = SSL_do_handshake(t->ssl);
    if (r == 1) {
        t->done = 1;
        s->rd_want = SIO_WANT_READ;
        s->wr_want = SIO_WANT_WRITE;
        tls_count_done(t);
        return 0;
    }
    int e = SSL_get_error(t->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        s->rd_want = s->wr_want = e == SSL_ERROR_WANT_READ ? SIO_WANT_READ : SIO_WANT_WRITE;
        return -EAGAIN;
    }
    t->failed = 1;
    metrics_add(t->m_handshakes, 1, 1);
    tls_log_failure(t);
    ERR_clear_error();
    return -EPROTO;
}

static ssize_t tls_sio_read(struct sio *s, void *buf, size_t len)
{
    struct tls_conn *t = s->impl;
    int r = tls_handshake(s);
    if (r < 0)
        return r;
    ERR_clear_error();
    errno = 0; /* SSL_ERROR_SYSCALL with errno 0 is an end without close_notify */
    r = SSL_read(t->ssl, buf, len > INT32_MAX ? INT32_MAX : (int)len);
    if (r > 0) {
        s->rd_want = SIO_WANT_READ;
        return r;
    }
    return tls_map_error(s, t, r, 1);
}

static ssize_t tls_sio_writev(struct sio *s, const struct iovec *iov, int iovcnt)
{
    struct tls_conn *t = s->impl;
    int r = tls_handshake(s);
    if (r < 0)
        return r;
    ssize_t total = 0;
    for (int i = 0; i < iovcnt; i++) {
        if (iov[i].iov_len == 0)
            continue;
        ERR_clear_error();
        errno = 0;
        r = SSL_write(t->ssl, iov[i].iov_base, iov[i].iov_len > INT32_MAX ? INT32_MAX : (int)iov[i].iov_len);
        if (r <= 0) {
            int rc = tls_map_error(s, t, r, 0);
            return total > 0 ? total : (rc == 0 ? -EPIPE : rc);
        }
        s->wr_want = SIO_WANT_WRITE;
        total += r;
        if ((size_t)r < iov[i].iov_len)
            break;
    }
    return total;
}

static int tls_sio_shutdown(struct sio *s)
{
    struct tls_conn *t = s->impl;
    if (t->done && !t->failed) {
        ERR_clear_error();
        (void)SSL_shutdown(t->ssl); /* close_notify; the peer's is not awaited */
        ERR_clear_error();
    }
    return shutdown(s->fd, SHUT_WR) == -1 ? -errno : 0;
}

static void tls_sio_close(struct sio *s)
{
    struct tls_conn *t = s->impl;
    if (t) {
        if (t->done && !t->failed && !(SSL_get_shutdown(t->ssl) & SSL_SENT_SHUTDOWN)) {
            ERR_clear_error();
            (void)SSL_shutdown(t->ssl);
        }
        ERR_clear_error();
        SSL_free(t->ssl);
        OPENSSL_free(t->subject);
        free(t);
    }
    s->impl = NULL;
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
}

static const struct sio_ops tls_sio_ops = {
    .read = tls_sio_read,
    .writev = tls_sio_writev,
    .shutdown = tls_sio_shutdown,
    .close = tls_sio_close,
};

/* A tls_conn over fd in *out; out owns fd, also on failure. */
static struct tls_conn *tls_conn_new(SSL_CTX *ctx, int fd, struct sio *out)
{
    sio_init_plain(out, fd);
    struct tls_conn *t = calloc(1, sizeof(*t));
    if (t && !(t->ssl = SSL_new(ctx))) {
        free(t);
        t = NULL;
    }
    if (t && SSL_set_fd(t->ssl, fd) != 1) {
        SSL_free(t->ssl);
        free(t);
        t = NULL;
    }
    if (!t) {
        ERR_clear_error();
        sio_close(out);
        return NULL;
    }
    out->ops = &tls_sio_ops;
    out->impl = t;
    return t;
}

int tls_accept_sio(struct tls_server *srv, int fd, struct sio *out)
{
    struct tls_conn *t = tls_conn_new(srv->ctxs[0], fd, out);
    if (!t)
        return -ENOMEM;
    t->m_handshakes = srv->m_handshakes;
    t->m_versions = srv->m_versions;
    t->m_resumed = srv->m_resumed;
    SSL_set_accept_state(t->ssl);
    return 0;
}

/* Whether s is an IP address literal (no SNI for those, RFC 6066 3). */
static int tls_is_ip(const char *s)
{
    unsigned char b[16];
    return inet_pton(AF_INET, s, b) == 1 || inet_pton(AF_INET6, s, b) == 1;
}

int tls_connect_sio(struct tls_client *cl, int fd, const struct sockaddr *addr, socklen_t addrlen,
                    const char *host, struct sio *out)
{
    struct tls_conn *t = tls_conn_new(cl->ctx, fd, out);
    if (!t)
        return -ENOMEM;
    t->client = 1;
    t->m_handshakes = cl->m_handshakes;
    t->m_versions = cl->m_versions;
    t->m_resumed = cl->m_resumed;
    SSL_set_connect_state(t->ssl);
    const char *sni = cl->sni ? cl->sni : (host && !tls_is_ip(host) ? host : NULL);
    if (sni)
        SSL_set_tlsext_host_name(t->ssl, sni);
    const char *vname = cl->verify_name ? cl->verify_name : sni;
    if (cl->verify) {
        if (vname) {
            SSL_set1_host(t->ssl, vname);
        } else {
            char ip[INET6_ADDRSTRLEN] = "";
            if (addr->sa_family == AF_INET)
                inet_ntop(AF_INET, &((const struct sockaddr_in *)addr)->sin_addr, ip, sizeof(ip));
            else if (addr->sa_family == AF_INET6)
                inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)addr)->sin6_addr, ip, sizeof(ip));
            X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), ip);
        }
    }
    uint64_t key = tls_client_addr_key(addr, addrlen);
    SSL_set_ex_data(t->ssl, tls_client_slot_ex_index(), (void *)(uintptr_t)key);
    SSL_SESSION *sess = tls_client_session(cl, key);
    if (sess) {
        SSL_set_session(t->ssl, sess);
        SSL_SESSION_free(sess);
    }
    ERR_clear_error();
    return 0;
}

int tls_is_tls(const struct sio *s)
{
    return s->ops == &tls_sio_ops;
}

const char *tls_peer_subject(const struct sio *s)
{
    return tls_is_tls(s) ? ((const struct tls_conn *)s->impl)->subject : NULL;
}

const char *tls_version(const struct sio *s)
{
    if (!tls_is_tls(s) || !((const struct tls_conn *)s->impl)->done)
        return NULL;
    return SSL_get_version(((const struct tls_conn *)s->impl)->ssl);
}

int tls_alpn_is_h2(const struct sio *s)
{
    if (!tls_is_tls(s) || !((const struct tls_conn *)s->impl)->done)
        return 0;
    const unsigned char *p;
    unsigned len;
    SSL_get0_alpn_selected(((const struct tls_conn *)s->impl)->ssl, &p, &len);
    return len == 2 && p[0] == 'h' && p[1] == '2';
}

int tls_sio_offer_h2(struct sio *s)
{
    static const unsigned char h2[] = { 2, 'h', '2' };
    if (!tls_is_tls(s))
        return -EINVAL;
    /* SSL_set_alpn_protos returns 0 on success (unlike most of OpenSSL) */
    return SSL_set_alpn_protos(((struct tls_conn *)s->impl)->ssl, h2, sizeof(h2)) == 0 ? 0 : -ENOMEM;
}

int tls_server_name(const struct sio *s, char *out, size_t out_size)
{
    if (!tls_is_tls(s))
        return 0;
    const struct tls_conn *t = s->impl;
    const char *name = SSL_get_servername(t->ssl, TLSEXT_NAMETYPE_host_name);
    size_t len = name ? strlen(name) : 0;
    if (!len || len >= out_size)
        return 0;
    for (size_t i = 0; i <= len; i++)
        out[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] + 32 : name[i]);
    return 1;
}

int tls_read_pending(const struct sio *s)
{
    return tls_is_tls(s) && SSL_pending(((const struct tls_conn *)s->impl)->ssl) > 0;
}
