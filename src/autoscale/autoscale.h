/* autoscale: runs the `autoscale:` block of each cluster on the main
 * thread's loop: every period it reads the metrics, asks decide.c how many
 * instances should run, and starts or drains instances (instance.c) to
 * get there; instances join and leave the cluster as run-time endpoints
 * (upstream/topology.h). See autoscale.c for the design, docs/autoscale.md
 * for the operator's view. Main thread only. */
#ifndef WEIR_AUTOSCALE_AUTOSCALE_H
#define WEIR_AUTOSCALE_AUTOSCALE_H

#include <ev.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "autoscale/autoscale_cfg.h"
#include "autoscale/decide.h"
#include "core/config_parse.h"
#include "core/metrics.h"
#include "queue/qbackend.h"

struct server;
struct snapshot;
struct metric_series;

/* An instance's life: enum and API names from one list. */
#define AUTOSCALE_STATE_LIST(X)                                                                    \
    X(AUTOSCALE_STARTING, "starting") /* spawned (or up hook running), not ready yet */            \
    X(AUTOSCALE_READY, "ready")       /* in the cluster, taking requests */                        \
    X(AUTOSCALE_BACKOFF, "backoff")   /* crashed or failed to start: waits, then starts again */   \
    X(AUTOSCALE_DRAINING, "draining") /* no new requests; waiting for those in flight */           \
    X(AUTOSCALE_STOPPING, "stopping") /* SIGTERM sent (or down hook running), waiting */
#define AUTOSCALE_ENUM_MEMBER(e, s) e,
enum autoscale_state { AUTOSCALE_STATE_LIST(AUTOSCALE_ENUM_MEMBER) AUTOSCALE_STATE_COUNT };
#undef AUTOSCALE_ENUM_MEMBER

const char *autoscale_state_name(enum autoscale_state s);

struct autoscale_scaler;

/* One instance: a process weir started (command) or one the up hook
 * reported (hooks). */
struct autoscale_instance {
    struct autoscale_scaler *sc;
    unsigned id; /* {instance}: the lowest free number, from 1 */
    enum autoscale_state state;
    uint64_t state_since_ms;
    uint64_t deadline_ms; /* the state's timeout (start, drain, grace, backoff) */
    pid_t pid;            /* the instance (command) or the hook running, 0 none */
    int pid_is_hook;      /* pid is a hook, not the instance */
    ev_child child;
    uint16_t port;
    char address[96]; /* "127.0.0.1:20001", "" before it is known */
    struct sockaddr_storage addr;
    socklen_t addrlen;
    int in_pool;    /* a topology item of the cluster */
    int probe_fd;   /* readiness probe in flight, -1 none */
    int probe_sent; /* the HTTP probe's request is written */
    int out_fd;     /* up hook's stdout, -1 none */
    char out[128];  /* what it printed (its first line is the address) */
    size_t out_len;
    unsigned crashes;   /* in a row, reset after a healthy run */
    unsigned restarts;  /* all of this instance's restarts */
    int last_status;    /* wait status of the last exit, -1 none */
    uint64_t cpu_ticks; /* utime + stime at the last sample, /proc/PID/stat */
    uint64_t cpu_at_ms;
    double cpu_pct; /* the last sample's CPU %, -1 none yet */
    int killed;     /* SIGKILL sent */
};

/* One cluster's scaler. */
struct autoscale_scaler {
    struct autoscale *as;
    char name[CFG_MAX_NAME + 1];
    struct cfg *root;                /* the configuration cfg belongs to (one reference) */
    const struct cfg_autoscale *cfg; /* this cluster's block in root */
    struct autoscale_instance **inst;
    size_t n_inst, cap_inst;
    /* admin API overrides (-1: the file's), kept until a reload */
    int min_override, max_override;
    int paused;
    uint64_t next_decide_ms;
    struct autoscale_history *history;
    struct autoscale_decision last; /* last.current == UINT32_MAX: none yet */
    struct autoscale_reading readings[AUTOSCALE_METRIC_COUNT];
    uint64_t last_at_ms; /* wall clock ms of `last` */
    int have_last;
    uint64_t hist_prev[METRICS_MAX_BUCKETS + 1]; /* the response histogram at the last period */
    int hist_primed;
    unsigned port_cursor;
    unsigned restarts; /* weir_autoscale_restarts_total, this scaler's */
    int crash_loop;    /* an instance crashed AUTOSCALE_CRASH_LOOP times in a row */
    int queue_missing_logged;
    /* queue_visible of a queue kept in Redis: read by a counts call on
     * this loop's store client; the decision uses the last answer */
    struct qcall qcount;
    size_t qcount_visible;
    int qcount_have;
    struct metric_series *m_restarts;
    struct metric_series *m_decisions[AUTOSCALE_DIRECTION_COUNT][AUTOSCALE_REASON_COUNT];
    int gone; /* the cluster left the configuration: stop everything */
};

struct autoscale {
    struct ev_loop *loop;
    struct server *srv;
    struct cfg *cfg; /* the configuration followed (one reference) */
    ev_timer tick;
    struct autoscale_scaler **sc;
    size_t n_sc;
    struct snapshot **snaps; /* snapshots that may still carry requests (drain) */
    size_t n_snaps, cap_snaps;
    int dirty;    /* the topology changed: rebuild at the end of the tick */
    int stopping; /* weir is shutting down: no decisions, no restarts */
};

/* Starts the scalers of srv's configuration on loop. Returns the object,
 * or NULL when memory is short (logged). The admin API finds it with
 * autoscale_current(). */
struct autoscale *autoscale_new(struct ev_loop *loop, struct server *srv);
/* weir is stopping: no more decisions or restarts; instances keep
 * serving the requests being drained. */
void autoscale_stop(struct autoscale *as);
/* Stops every instance (SIGTERM to its process group, SIGKILL after its
 * grace when `wait`, blocking; at once without), runs the down hooks of
 * hook instances (waiting for them when `wait`), frees as. NULL ignored. */
void autoscale_free(struct autoscale *as, int wait);
/* The running autoscaler, or NULL. */
struct autoscale *autoscale_current(void);
/* The scaler of cluster `name`, or NULL. */
struct autoscale_scaler *autoscale_find(struct autoscale *as, const char *name);
/* The effective min and max (overrides applied). */
uint32_t autoscale_min(const struct autoscale_scaler *sc);
uint32_t autoscale_max(const struct autoscale_scaler *sc);
/* Admin API: changes min / max (-1: unchanged) and paused (-1: unchanged).
 * Returns 0, or -EINVAL with err filled (nothing changed). */
int autoscale_set(struct autoscale_scaler *sc, int min, int max, int paused, char *err,
                  size_t err_size);

/* ---- instance.c: one instance's life, driven by autoscale.c ---- */

#define AUTOSCALE_CRASH_LOOP 5

/* A new instance numbered id, not started (the caller lists it in sc,
 * then starts it), or NULL on ENOMEM. */
struct autoscale_instance *autoscale_instance_new(struct autoscale_scaler *sc, unsigned id,
                                                  uint64_t now_ms);
/* Starts (or restarts) in: a port and the command, or the up hook. It is
 * STARTING then, or BACKOFF when the start failed at once (logged). */
void autoscale_instance_start(struct autoscale_instance *in, uint64_t now_ms);
/* Moves in along its states at now_ms (probes, timeouts, drain done,
 * backoff over). Returns 1 when in is finished and may be freed. */
int autoscale_instance_step(struct autoscale_instance *in, uint64_t now_ms);
/* Begins taking in out: drain when it is in the pool, else stop at once. */
void autoscale_instance_retire(struct autoscale_instance *in, uint64_t now_ms);
/* Takes in out of service now, without a drain: out of the pool, then
 * SIGTERM to its process (STOPPING), or the down hook for a hook instance. */
void autoscale_instance_stop(struct autoscale_instance *in, uint64_t now_ms);
/* Signals in's process group (SIGTERM or SIGKILL); nothing for hooks. */
void autoscale_instance_signal(struct autoscale_instance *in, int sig);
/* Frees in (its watchers stopped, fds closed; the process is not waited for). */
void autoscale_instance_free(struct autoscale_instance *in);
/* Reads /proc/PID/stat: in->cpu_pct from the ticks since the last call. */
void autoscale_instance_sample_cpu(struct autoscale_instance *in, uint64_t now_ms);

/* autoscale.c, for instance.c: the topology of in's cluster changed. */
int autoscale_pool_add(struct autoscale_instance *in);
void autoscale_pool_drain(struct autoscale_instance *in);
void autoscale_pool_remove(struct autoscale_instance *in);
/* Requests in flight on in's address over every snapshot that may carry
 * them, and whether every worker runs the newest snapshot. */
int autoscale_pool_in_flight(const struct autoscale_instance *in, int *adopted);
/* A crash was counted (restarts metric). */
void autoscale_count_restart(struct autoscale_scaler *sc);
/* The cluster's health_check, or NULL: its configuration (for probes). */
const struct cfg_health_check *autoscale_health_check(const struct autoscale_scaler *sc);

#endif
