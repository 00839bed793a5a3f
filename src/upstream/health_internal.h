/* health_internal: what the check types (health.c's table) share with
 * the driver in health.c. Not for others. */
#ifndef WEIR_UPSTREAM_HEALTH_INTERNAL_H
#define WEIR_UPSTREAM_HEALTH_INTERNAL_H

#include <ev.h>
#include <stddef.h>
#include <stdint.h>

#include "core/sio.h"
#include "upstream/cluster.h"

#define HEALTH_READ_MAX 4096
#define HEALTH_REQ_MAX 512

enum health_phase { HP_IDLE, HP_CONNECTING, HP_SENDING, HP_READING };

struct health;

struct health_probe {
    ev_timer timer; /* the next check, then this check's timeout */
    ev_io io;
    struct sio sio;         /* the check's connection, closed (fd -1) between checks */
    struct tls_client *tls; /* the cluster's TLS context, or NULL */
    enum health_phase phase;
    struct health *h;
    struct endpoint *ep;
    const struct cfg_health_check *cfg;
    const struct health_type *type;
    void *state; /* the type's per-check state (grpc: its session), or NULL */
    uint32_t ok_streak, fail_streak;
    size_t req_len, sent, got;
    char req[HEALTH_REQ_MAX];
    char buf[HEALTH_READ_MAX + 1];
};

/* One row per health_check.type. */
struct health_type {
    /* ALPN protocol list (RFC 7301 wire format) offered over TLS, or NULL */
    const unsigned char *alpn;
    unsigned alpn_len;
    /* At health_new: builds what every check of p sends (p->req). */
    void (*prepare)(struct health_probe *p);
    /* The connect finished (and the TLS stream is set up, handshake not
     * done): advances the check on each readiness. Ends every path in
     * health_verdict() or health_watch(). */
    void (*step)(struct health_probe *p);
    /* The check ended (verdict or shutdown): releases p->state. May be NULL. */
    void (*reset)(struct health_probe *p);
};

extern const struct health_type health_type_http, health_type_http2, health_type_tcp; /* health_http.c */
extern const struct health_type health_type_grpc;                  /* health_grpc.c */

/* Ends the check in flight with a verdict (reason: why, for the log);
 * closes its connection (the type's reset runs) and schedules the next. */
void health_verdict(struct health_probe *p, int ok, const char *reason);
/* Makes the probe's watcher wait for `events` (EV_READ | EV_WRITE) on its fd. */
void health_watch(struct health_probe *p, int events);

#endif
