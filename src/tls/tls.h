/* tls: TLS on weir's streams with OpenSSL, apart from any protocol.
 *
 *   listener tls: ──parse──> struct tls_server (one SSL_CTX per certificate
 *                            name set; SNI picks one: exact, *.wildcard, default)
 *   cluster tls:  ──parse──> struct tls_client (one SSL_CTX: CA, SNI, client cert,
 *                            a session kept per upstream address)
 *   accepted / connected fd ──tls_accept_sio / tls_connect_sio──> struct sio
 *                            (core/sio.h: the handshake runs inside the first
 *                            reads and writes, or explicitly with tls_handshake)
 *
 * Contexts are built when the configuration is loaded, so a certificate
 * that does not load fails the load (and a reload keeps the old one). They
 * belong to the configuration, are shared read-only by every worker, and
 * each connection holds a reference to its SSL_CTX, so a reload never
 * pulls one from under a connection. Session tickets are encrypted with a
 * key ring shared by all workers (tls_keys.c): random and rotated, or read
 * from a file shared by several instances. Nothing here blocks: a
 * handshake step returns -EAGAIN with what the socket must become. */
#ifndef WEIR_TLS_TLS_H
#define WEIR_TLS_TLS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <yaml.h>

#include "core/config_parse.h"
#include "core/sio.h"

struct tls_server;
struct tls_client;
struct tls_tickets;

/* ---- configuration (tls_cfg.c) ---- */

/* A listener's `tls:` map: builds *out (the caller owns it; free with
 * tls_server_free, also after a failure). Returns 0 or negative with ctx's
 * error at the offending node (a certificate that does not load, a key
 * that does not match). */
int tls_cfg_parse_server(struct cfg_ctx *ctx, yaml_node_t *v, struct tls_server **out);
/* A cluster's `tls:` map, the same way. */
int tls_cfg_parse_client(struct cfg_ctx *ctx, yaml_node_t *v, struct tls_client **out);
/* The top-level `tls:` map (session ticket keys), the same way. */
int tls_cfg_parse_tickets(struct cfg_ctx *ctx, yaml_node_t *v, struct tls_tickets **out);

/* What pools key cl's connections by (NULL for NULL): unique per context
 * ever made, so a connection never goes back to another configuration's
 * cluster, even one whose context got the same address. */
const void *tls_client_tag(const struct tls_client *cl);

void tls_server_free(struct tls_server *srv);
void tls_client_free(struct tls_client *cl);
void tls_tickets_free(struct tls_tickets *t);

/* Makes srv encrypt its session tickets with t's keys (NULL: the process's
 * own random keys, rotated hourly). t must outlive srv. */
void tls_server_use_tickets(struct tls_server *srv, const struct tls_tickets *t);

/* ---- connections (tls_conn.c) ---- */

/* Makes *out a server-side TLS stream over the accepted fd. *out owns fd
 * afterwards, also on failure (then closed). Returns 0 or -ENOMEM. */
int tls_accept_sio(struct tls_server *srv, int fd, struct sio *out);
/* Makes *out a client-side TLS stream over the connected (or connecting)
 * fd to addr; `host` is the endpoint's host name or NULL (used for SNI and
 * verification unless the cluster names its own). *out owns fd
 * afterwards, also on failure. Returns 0 or -ENOMEM. */
int tls_connect_sio(struct tls_client *cl, int fd, const struct sockaddr *addr, socklen_t addrlen,
                    const char *host, struct sio *out);
/* One handshake step on a TLS stream: 0 when the handshake is done (at
 * once on a plain stream), -EAGAIN with s->rd_want telling what to wait
 * for, or -EPROTO (the reason is logged). */
int tls_handshake(struct sio *s);
/* Whether s is a TLS stream. */
int tls_is_tls(const struct sio *s);
/* The subject (one-line form) of the verified client certificate of a
 * server-side stream, or NULL. Borrowed from s. */
const char *tls_peer_subject(const struct sio *s);
/* The negotiated version ("TLSv1.3") or NULL before the handshake. */
const char *tls_version(const struct sio *s);
/* Whether the handshake of s (done) chose ALPN h2; 0 for a plain stream. */
int tls_alpn_is_h2(const struct sio *s);
/* Makes a client stream (before its handshake) offer only h2 in ALPN (a
 * cluster with protocol h2). 0, or -EINVAL for a plain stream, -ENOMEM. */
int tls_sio_offer_h2(struct sio *s);
/* Makes ALPN offer h2 before http/1.1 (a listener with http2). */
void tls_server_offer_h2(struct tls_server *srv);
/* Counts srv's handshakes under listener `name` (the listener label of
 * weir_tls_*). Returns 0 or -ENOMEM (then the unnamed series stay). */
int tls_server_set_listener(struct tls_server *srv, const char *name);
/* Makes srv answer no ALPN at all (a tcp listener: the bytes it carries
 * are not weir's to name). */
void tls_server_no_alpn(struct tls_server *srv);
/* The server name (SNI) the client of a server-side stream sent, lower
 * case, in out (out_size > 255); returns 1, or 0 when it sent none (or s
 * is plain, or the name does not fit). */
int tls_server_name(const struct sio *s, char *out, size_t out_size);
/* Whether s holds decrypted bytes a read would return without the socket
 * becoming readable again (0 for a plain stream). */
int tls_read_pending(const struct sio *s);

#endif
