/* tls_internal: the types the files of src/tls/ share. Not for others. */
#ifndef WEIR_TLS_TLS_INTERNAL_H
#define WEIR_TLS_TLS_INTERNAL_H

#include <openssl/ssl.h>
#include <pthread.h>

#include "core/metrics.h"
#include "tls/tls.h"

#define TLS_TICKET_KEYS_MAX 8
#define TLS_SESSION_SLOTS 64

/* One session ticket key: the layout of nginx's and HAProxy's 80-byte keys. */
struct tls_ticket_key {
    unsigned char name[16];
    unsigned char hmac[32];
    unsigned char aes[32];
};

/* A ring of ticket keys; keys[0] encrypts, all decrypt. */
struct tls_keyring {
    pthread_mutex_t lock;
    struct tls_ticket_key keys[TLS_TICKET_KEYS_MAX];
    unsigned n;
    uint64_t rotated_ms;           /* when keys[0] was made (random rings) */
};

/* What a configuration's servers encrypt tickets with. */
struct tls_tickets {
    struct tls_keyring *ring;      /* the process's random ring, or `own` */
    struct tls_keyring own;        /* the key file's keys */
    uint64_t rotate_ms;            /* 0: never (a key file's keys) */
};

/* One SNI choice: a name (lower case; "*.example.com" for a wildcard) and
 * the context with its certificates. */
struct tls_sni {
    char *name;
    SSL_CTX *ctx;
};

struct tls_server {
    SSL_CTX **ctxs;                /* one per certificate name set; [0] is the default */
    size_t n_ctxs;
    struct tls_sni *names;
    size_t n_names;
    const struct tls_tickets *tickets;
    struct metric_series *m_handshakes, *m_versions, *m_resumed;
    int offer_h2;                  /* ALPN offers h2 before http/1.1 (listener http2) */
    int no_alpn;                   /* ALPN answers nothing (tcp listeners) */
};

struct tls_session_slot {
    uint64_t key;                  /* hash of the upstream address */
    SSL_SESSION *sess;
};

struct tls_client {
    SSL_CTX *ctx;
    uint64_t tag;                  /* unique in the process: tls_client_tag() */
    char *sni;                     /* tls.sni, or NULL: the endpoint's host name */
    char *verify_name;             /* name the certificate must carry, NULL: the SNI */
    int verify;                    /* tls.verify, default on */
    pthread_mutex_t lock;          /* the sessions: workers and health checks share them */
    struct tls_session_slot sessions[TLS_SESSION_SLOTS];
    struct metric_series *m_handshakes, *m_versions, *m_resumed;
};

#define TLS_MAX_NAMES 64
#define TLS_MAX_CERTS 32

/* A listener's settings common to all its certificates (tls_cfg.c). */
struct tls_server_opts {
    int min_version;               /* TLS1_2_VERSION or TLS1_3_VERSION */
    char *ciphers, *ciphersuites;  /* NULL: the defaults */
    char *client_ca;               /* PEM text, NULL: no client certificates asked */
    size_t client_ca_len;
    int client_verify_required;
};

/* One certificate entry as read from the files. */
struct tls_cert_src {
    char *cert, *key, *ocsp;
    size_t cert_len, key_len, ocsp_len;
    char **names;                  /* NULL: the certificate's own names */
    size_t n_names;
};

/* tls_server.c */
struct tls_server *tls_server_new(void);
/* Adds a certificate: to the context serving the same names, else to a
 * new one (the first made is the default). Returns 0 or negative with err
 * filled. */
int tls_server_add_cert(struct tls_server *srv, const struct tls_server_opts *o,
                        const struct tls_cert_src *src, char *err, size_t err_size);

/* tls_client.c */
struct tls_client_opts {
    int min_version;
    int verify;
    char *ca;                      /* PEM text, NULL: the system's CAs */
    size_t ca_len;
    char *cert, *key;              /* a client certificate, or NULL */
    size_t cert_len, key_len;
    char *sni, *verify_name;       /* taken by tls_client_new */
    char *ciphers;
};
/* Builds a client context. Returns NULL with err filled. */
struct tls_client *tls_client_new(struct tls_client_opts *o, char *err, size_t err_size);
/* The session key of an upstream address (never 0). */
uint64_t tls_client_addr_key(const struct sockaddr *addr, socklen_t addrlen);
/* The session kept for key, with a reference for the caller, or NULL. */
SSL_SESSION *tls_client_session(struct tls_client *cl, uint64_t key);
/* ex_data index on SSL holding a connection's session key. */
int tls_client_slot_ex_index(void);

/* tls_keys.c */
extern const struct tls_tickets tls_tickets_default;
int tls_ticket_cb(SSL *ssl, unsigned char key_name[16], unsigned char iv[16], EVP_CIPHER_CTX *cctx,
                  EVP_MAC_CTX *hctx, int enc);
/* Parses a key file's text: one key per line, base64 of 80 bytes; blank
 * lines and lines starting with '#' are skipped. The first key encrypts.
 * Returns the number of keys (>= 1) in ring, or negative with *err_line
 * set to the 1-based line at fault (0: no key at all). Never allocates. */
int tls_keys_parse(const char *text, size_t len, struct tls_ticket_key *keys, unsigned max,
                   unsigned *err_line);

/* tls_metrics.c */
enum tls_side { TLS_SIDE_SERVER, TLS_SIDE_CLIENT };
/* The series of a side; listener: the listener's name (server side), NULL
 * or "" for the client side. */
void tls_metrics_get(enum tls_side side, const char *listener, struct metric_series **handshakes,
                     struct metric_series **versions, struct metric_series **resumed);
void tls_metrics_put(struct metric_series *handshakes, struct metric_series *versions,
                     struct metric_series *resumed);
/* ex_data index on SSL_CTX pointing at the tls_server / tls_client. */
int tls_ctx_owner_index(void);
/* Fills buf with OpenSSL's last error (or `fallback`) and clears the queue. */
const char *tls_error_string(char *buf, size_t size, const char *fallback);

#endif
