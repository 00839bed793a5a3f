/* weir: command line. `weir [run] -c FILE` runs, `weir check -c FILE`
 * validates, `weir version` prints the version. Exit status: 0 fine, 1 a
 * run-time failure (a port that cannot be bound), 2 a bad command line or
 * configuration. Only this file exits. */
#include <ev.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "admin/admin.h"
#include "autoscale/autoscale.h"
#include "server/config.h"
#include "core/log.h"
#include "core/metrics.h"
#include "protocols.h"
#include "server/server.h"

#ifndef WEIR_VERSION
#define WEIR_VERSION "0.1.0"
#endif

struct main_state {
    struct server srv;
    struct admin *admin;
    struct autoscale *autoscale;   /* the clusters' autoscalers (autoscale/autoscale.h) */
    const char *config_path;
    int started;                   /* server_start returned (it may run the loop: DNS) */
    int stop_early;                /* a stop signal came before that */
    int stopping;
    int forced;
    ev_timer drain_timer;
};

static void main_usage(FILE *out)
{
    fprintf(out,
            "usage: weir [run] -c FILE    start weir with the configuration FILE\n"
            "       weir check -c FILE    validate FILE and exit (0 valid, 2 invalid)\n"
            "       weir version          print the version\n"
            "       weir --help           this text\n"
            "signals: SIGHUP reloads FILE; SIGTERM/SIGINT stop accepting, finish requests\n"
            "in flight (up to drain_timeout) and exit 0; a second SIGTERM/SIGINT exits at once.\n");
}

static void main_drain_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct main_state *st = w->data;
    log_warn("drain_timeout reached with requests still in flight; exiting anyway");
    st->forced = 1;
    ev_break(loop, EVBREAK_ALL);
}

static void main_signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    struct main_state *st = w->data;
    if (!st->started) {
        if (w->signum == SIGHUP)
            log_warn("SIGHUP while starting: ignored");
        else
            st->stop_early = 1;
        return;
    }
    if (w->signum == SIGHUP) {
        char err[1024];
        if (st->stopping)
            return;
        log_info("SIGHUP: reloading %s", st->config_path);
        if (server_reload(&st->srv, st->config_path, err, sizeof(err)) != 0)
            log_error("reload rejected, the running configuration stays: %s", err);
        else if (admin_apply(st->admin, err, sizeof(err)) != 0)
            log_error("%s", err);
        return;
    }
    if (st->stopping) {
        log_warn("second stop signal: exiting now");
        st->forced = 1;
        ev_break(loop, EVBREAK_ALL);
        return;
    }
    st->stopping = 1;
    autoscale_stop(st->autoscale);
    log_info("%s: draining (up to %.1f s), then exiting", strsignal(w->signum),
             st->drain_timer.repeat);
    ev_timer_again(loop, &st->drain_timer);
    server_stop(&st->srv);
}

static int main_check(const char *path)
{
    struct cfg *cfg;
    char err[1024];
    if (cfg_load(path, &cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    printf("%s: configuration is valid (%zu listener(s), %zu cluster(s))\n", path, cfg->n_listeners,
           cfg->n_clusters);
    cfg_free(cfg);
    return 0;
}

static int main_run(const char *path)
{
    static struct main_state st;
    struct cfg *cfg;
    char err[1024];
    if (cfg_load(path, &cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    struct ev_loop *loop = ev_default_loop(EVFLAG_NOENV);
    st.config_path = path;
    /* Handlers first: a signal that arrives while the sockets are being
     * bound waits for the loop instead of killing the process. They stay
     * installed until exit, so a late second SIGTERM is handled too. */
    static ev_signal sigs[3];
    const int signums[3] = { SIGHUP, SIGTERM, SIGINT };
    for (int i = 0; i < 3; i++) {
        ev_signal_init(&sigs[i], main_signal_cb, signums[i]);
        sigs[i].data = &st;
        ev_signal_start(loop, &sigs[i]);
    }
    double drain_s = (double)cfg->drain_timeout_ms / 1000.0;
    ev_init(&st.drain_timer, main_drain_timeout_cb);
    st.drain_timer.repeat = drain_s > 0 ? drain_s : 0.001;
    st.drain_timer.data = &st;
    const struct cfg_admin *ac = cfg->admin;
    if (metrics_init((cfg->workers ? cfg->workers : 1) + 1, ac && ac->n_buckets ? ac->buckets : NULL,
                     ac ? ac->n_buckets : 0) != 0) {
        log_error("out of memory starting the metrics registry");
        return 1;
    }
    if (server_start(&st.srv, loop, protocols, cfg, err, sizeof(err)) != 0) {
        log_error("%s", err);
        return 1;
    }
    st.started = 1;
    st.admin = admin_new(loop, &st.srv, path, WEIR_VERSION);
    if (!st.admin || admin_apply(st.admin, err, sizeof(err)) != 0) {
        log_error("%s", st.admin ? err : "out of memory starting the admin listener");
        admin_free(st.admin);
        server_stop(&st.srv);
        return 1;
    }
    st.autoscale = autoscale_new(loop, &st.srv);
    if (st.stop_early) {
        st.stopping = 1;
        autoscale_stop(st.autoscale);
        log_info("stop signal while starting: draining, then exiting");
        ev_timer_again(loop, &st.drain_timer);
        server_stop(&st.srv);
    }
    ev_run(loop, 0);
    if (st.forced) {
        autoscale_free(st.autoscale, 0); /* SIGTERM to the instances, no wait */
        return 0; /* workers still hold connections: the process exit ends them */
    }
    ev_timer_stop(loop, &st.drain_timer);
    autoscale_free(st.autoscale, 1); /* requests are done: stop the instances */
    admin_free(st.admin);
    server_free(&st.srv);
    metrics_shutdown();
    log_info("stopped");
    return 0;
}

int main(int argc, char **argv)
{
    const char *cmd = "run";
    const char *path = NULL;
    int i = 1;
    if (argc > 1 && argv[1][0] != '-') {
        cmd = argv[1];
        i = 2;
    }
    for (; i < argc; i++) {
        if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) && i + 1 < argc) {
            path = argv[++i];
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            main_usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "-v") == 0 || strcmp(argv[i], "--version") == 0) {
            cmd = "version";
        } else {
            fprintf(stderr, "weir: unexpected argument '%s'\n", argv[i]);
            main_usage(stderr);
            return 2;
        }
    }
    if (strcmp(cmd, "version") == 0) {
        printf("weir %s\n", WEIR_VERSION);
        return 0;
    }
    if (strcmp(cmd, "help") == 0) {
        main_usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "run") != 0 && strcmp(cmd, "check") != 0) {
        fprintf(stderr, "weir: unknown command '%s'\n", cmd);
        main_usage(stderr);
        return 2;
    }
    if (!path) {
        fprintf(stderr, "weir: %s needs -c FILE\n", cmd);
        main_usage(stderr);
        return 2;
    }
    return strcmp(cmd, "check") == 0 ? main_check(path) : main_run(path);
}
