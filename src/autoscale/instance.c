/* instance: one autoscaled instance's life, on the main thread.
 *
 *              spawn (posix_spawn, own session)         probe passes
 *   new ──> STARTING ─────────────────────────────────────────────> READY
 *              │ exit / start_timeout              exit (crash)      │ retire
 *              ▼                                  ┌──────────────────┤
 *           BACKOFF ──(1 s, 2 s, 4 s ... 60 s)──> STARTING     DRAINING
 *                                                                    │ in flight 0
 *                                                                    ▼ (or drain_timeout)
 *                                 exit, or SIGKILL after grace ── STOPPING (SIGTERM)
 *
 * With hooks instead of a command, STARTING runs the up hook and reads the
 * address it prints, and STOPPING runs the down hook; weir watches no
 * process of the instance itself. A process is started without a shell
 * (the argv split at load, placeholders replaced), in its own session so
 * a signal reaches its whole process group, with stdin on /dev/null, no
 * fd of weir's but stdout/stderr, and default signal handling. Exits are
 * learnt through libev's child watchers (the default loop reaps every
 * child on SIGCHLD). The probe is a non-blocking connect (and an HTTP
 * request when the cluster has an http health_check), advanced each tick:
 * never a blocking call on the main thread. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "autoscale/autoscale.h"
#include "core/log.h"
#include "core/units.h"
#include "upstream/cluster_cfg.h"
#include "upstream/endpoint.h"

extern char **environ;

#define INSTANCE_BACKOFF_BASE_MS 1000
#define INSTANCE_BACKOFF_MAX_MS 60000
#define INSTANCE_HEALTHY_RUN_MS 30000 /* ready this long: the crash streak is over */

static void instance_child_cb(struct ev_loop *loop, ev_child *w, int revents);

static void instance_set(struct autoscale_instance *in, enum autoscale_state s, uint64_t now_ms,
                         uint64_t timeout_ms)
{
    in->state = s;
    in->state_since_ms = now_ms;
    in->deadline_ms = timeout_ms ? now_ms + timeout_ms : 0;
}

/* ---- spawning ---- */

/* arg with {port}, {instance}, {count}, {address}, {cluster} replaced, in
 * a new string (NULL on ENOMEM). */
static char *instance_expand(const char *arg, const struct autoscale_instance *in)
{
    char port[8], id[16], count[16];
    snprintf(port, sizeof(port), "%u", in->port);
    snprintf(id, sizeof(id), "%u", in->id);
    snprintf(count, sizeof(count), "%zu", in->sc->n_inst);
    const char *const keys[] = {"{port}", "{instance}", "{count}", "{address}", "{cluster}"};
    const char *const vals[] = {port, id, count, in->address, in->sc->name};
    size_t cap = strlen(arg) + 1;
    for (size_t k = 0; k < 5; k++)
        for (const char *p = strstr(arg, keys[k]); p; p = strstr(p + 1, keys[k]))
            cap += strlen(vals[k]);
    char *out = malloc(cap), *o = out;
    if (!out)
        return NULL;
    for (const char *p = arg; *p;) {
        size_t k = 0;
        while (k < 5 && strncmp(p, keys[k], strlen(keys[k])) != 0)
            k++;
        if (k < 5) {
            o = stpcpy(o, vals[k]);
            p += strlen(keys[k]);
        } else {
            *o++ = *p++;
        }
    }
    *o = 0;
    return out;
}

static void instance_argv_free(char **argv)
{
    for (size_t i = 0; argv && argv[i]; i++)
        free(argv[i]);
    free(argv);
}

static char **instance_argv(const struct cfg_autoscale_cmd *cmd,
                            const struct autoscale_instance *in)
{
    char **argv = calloc(cmd->argc + 1, sizeof(*argv));
    for (size_t i = 0; argv && i < cmd->argc; i++) {
        if (!(argv[i] = instance_expand(cmd->argv[i], in))) {
            instance_argv_free(argv);
            return NULL;
        }
    }
    return argv;
}

/* Starts cmd for in: in->pid and its child watcher; with `out`, its stdout
 * is a pipe whose read end goes to in->out_fd. Returns 0 or a negative
 * errno (logged). */
static int instance_spawn(struct autoscale_instance *in, const struct cfg_autoscale_cmd *cmd,
                          int out, int is_hook)
{
    const struct cfg_autoscale *c = in->sc->cfg;
    int pfd[2] = {-1, -1};
    char **argv = instance_argv(cmd, in);
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    sigset_t none, dfl;
    int rc = -ENOMEM;
    if (!argv)
        return rc;
    if (out && pipe2(pfd, O_CLOEXEC) != 0) {
        rc = -errno;
        goto free_argv;
    }
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&at);
    sigemptyset(&none);
    sigemptyset(&dfl);
    const int dfl_sigs[] = {SIGPIPE, SIGHUP, SIGTERM, SIGINT, SIGQUIT, SIGCHLD, SIGUSR1, SIGUSR2};
    for (size_t i = 0; i < sizeof(dfl_sigs) / sizeof(dfl_sigs[0]); i++)
        sigaddset(&dfl, dfl_sigs[i]);
    posix_spawnattr_setflags(&at,
                             POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &dfl);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    if (out)
        posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
    else if (c->output_null)
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    if (c->output_null)
        posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    pid_t pid;
    int err = posix_spawnp(&pid, argv[0], &fa, &at, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    if (pfd[1] >= 0)
        close(pfd[1]);
    if (err != 0) {
        log_error("autoscale: cluster %s: instance %u: cannot start %s: %s", in->sc->name, in->id,
                  argv[0], strerror(err));
        if (pfd[0] >= 0)
            close(pfd[0]);
        rc = -err;
        goto free_argv;
    }
    if (out) {
        fcntl(pfd[0], F_SETFL, O_NONBLOCK);
        in->out_fd = pfd[0];
        in->out_len = 0;
    }
    in->pid = pid;
    in->pid_is_hook = is_hook;
    in->killed = 0;
    ev_child_init(&in->child, instance_child_cb, pid, 0);
    in->child.data = in;
    ev_child_start(in->sc->as->loop, &in->child);
    rc = 0;
free_argv:
    instance_argv_free(argv);
    return rc;
}

/* A free port of the range for in (none of the scaler's, bindable now),
 * or 0. */
static uint16_t instance_pick_port(struct autoscale_instance *in)
{
    struct autoscale_scaler *sc = in->sc;
    const struct cfg_autoscale *c = sc->cfg;
    unsigned span = (unsigned)(c->port_hi - c->port_lo) + 1;
    for (unsigned i = 0; i < span; i++) {
        uint16_t port = (uint16_t)(c->port_lo + (sc->port_cursor + i) % span);
        int used = 0;
        for (size_t k = 0; k < sc->n_inst && !used; k++)
            used = sc->inst[k] != in && sc->inst[k]->port == port;
        char text[80];
        struct sockaddr_storage ss;
        socklen_t len;
        snprintf(text, sizeof(text), strchr(c->host, ':') ? "[%s]:%u" : "%s:%u", c->host, port);
        if (used || units_parse_addr(text, &ss, &len) != 0)
            continue;
        int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return 0;
        int ok = bind(fd, (struct sockaddr *)&ss, len) == 0;
        close(fd);
        if (!ok)
            continue;
        sc->port_cursor = (sc->port_cursor + i + 1) % span;
        snprintf(in->address, sizeof(in->address), "%s", text);
        in->addr = ss;
        in->addrlen = len;
        return port;
    }
    return 0;
}

/* Backs off after a crash or a failed start (or gives up while weir stops). */
static void instance_crashed(struct autoscale_instance *in, uint64_t now_ms, const char *what)
{
    struct autoscale_scaler *sc = in->sc;
    if (in->in_pool)
        autoscale_pool_remove(in);
    in->crashes++;
    in->restarts++;
    autoscale_count_restart(sc);
    uint64_t backoff = INSTANCE_BACKOFF_BASE_MS;
    for (unsigned i = 1; i < in->crashes && backoff < INSTANCE_BACKOFF_MAX_MS; i++)
        backoff *= 2;
    if (backoff > INSTANCE_BACKOFF_MAX_MS)
        backoff = INSTANCE_BACKOFF_MAX_MS;
    log_warn("autoscale: cluster %s: instance %u (%s) %s; restart %u in %llu ms", sc->name, in->id,
             in->address[0] ? in->address : "no address", what, in->restarts,
             (unsigned long long)backoff);
    if (in->crashes == AUTOSCALE_CRASH_LOOP) {
        sc->crash_loop = 1;
        log_error("autoscale: cluster %s: instance %u is in a crash loop (%u failures in a row); "
                  "weir keeps restarting it, at most every %d s: check its command and its log",
                  sc->name, in->id, in->crashes, INSTANCE_BACKOFF_MAX_MS / 1000);
    }
    instance_set(in, AUTOSCALE_BACKOFF, now_ms, backoff);
}

void autoscale_instance_start(struct autoscale_instance *in, uint64_t now_ms)
{
    const struct cfg_autoscale *c = in->sc->cfg;
    in->address[0] = 0;
    in->addrlen = 0;
    in->cpu_pct = -1;
    in->cpu_ticks = 0;
    in->cpu_at_ms = 0;
    instance_set(in, AUTOSCALE_STARTING, now_ms, c->start_timeout_ms);
    if (c->command.argc) {
        if (!(in->port = instance_pick_port(in))) {
            log_error("autoscale: cluster %s: no free port in %u-%u for instance %u", in->sc->name,
                      c->port_lo, c->port_hi, in->id);
            instance_crashed(in, now_ms, "could not start (no free port)");
            return;
        }
        if (instance_spawn(in, &c->command, 0, 0) != 0) {
            instance_crashed(in, now_ms, "could not start");
            return;
        }
        log_info("autoscale: cluster %s: instance %u started (pid %d, %s)", in->sc->name, in->id,
                 (int)in->pid, in->address);
        return;
    }
    if (instance_spawn(in, &c->hook_up, 1, 1) != 0) {
        instance_crashed(in, now_ms, "up hook could not start");
        return;
    }
    log_info("autoscale: cluster %s: instance %u: up hook running (pid %d)", in->sc->name, in->id,
             (int)in->pid);
}

struct autoscale_instance *autoscale_instance_new(struct autoscale_scaler *sc, unsigned id,
                                                  uint64_t now_ms)
{
    struct autoscale_instance *in = calloc(1, sizeof(*in));
    if (!in)
        return NULL;
    in->sc = sc;
    in->id = id;
    in->probe_fd = in->out_fd = -1;
    in->last_status = -1;
    in->cpu_pct = -1;
    in->state_since_ms = now_ms;
    return in;
}

/* ---- readiness probe ---- */

static void instance_probe_close(struct autoscale_instance *in)
{
    if (in->probe_fd >= 0)
        close(in->probe_fd);
    in->probe_fd = -1;
    in->probe_sent = 0;
}

/* Advances the probe of in without blocking. Returns 1 when in is ready,
 * 0 not yet (a failed attempt starts again at the next tick). */
static int instance_probe(struct autoscale_instance *in)
{
    const struct cfg_health_check *hc = autoscale_health_check(in->sc);
    int http = hc && hc->enabled && hc->type == CFG_HC_HTTP;
    if (in->probe_fd < 0) {
        int fd = socket(in->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return 0;
        if (connect(fd, (struct sockaddr *)&in->addr, in->addrlen) != 0 && errno != EINPROGRESS) {
            close(fd);
            return 0;
        }
        in->probe_fd = fd;
    }
    struct pollfd p = {.fd = in->probe_fd, .events = in->probe_sent ? POLLIN : POLLOUT};
    if (poll(&p, 1, 0) <= 0)
        return 0;
    int soerr = 0;
    socklen_t sl = sizeof(soerr);
    if (getsockopt(in->probe_fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr != 0) {
        instance_probe_close(in);
        return 0;
    }
    if (!http) {
        instance_probe_close(in);
        return 1;
    }
    if (!in->probe_sent) {
        char req[512];
        int n = snprintf(req, sizeof(req),
                         "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n"
                         "User-Agent: weir-autoscale\r\n\r\n",
                         hc->method ? hc->method : "GET", hc->path ? hc->path : "/health",
                         hc->host ? hc->host : in->address);
        if (n <= 0 || (size_t)n >= sizeof(req) ||
            send(in->probe_fd, req, (size_t)n, MSG_NOSIGNAL) != n)
            instance_probe_close(in);
        else
            in->probe_sent = 1;
        return 0;
    }
    char buf[32];
    ssize_t n = recv(in->probe_fd, buf, sizeof(buf) - 1, MSG_PEEK);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
    if (n > 0 && n < 12)
        return 0; /* the status line is still coming */
    int status = 0;
    if (n >= 12 && strncmp(buf, "HTTP/1.", 7) == 0) {
        buf[n] = 0;
        status = atoi(buf + 9);
    }
    instance_probe_close(in);
    return status >= 100 && cfg_status_in(&hc->expect_status, status);
}

/* ---- hooks ---- */

/* Reads what the up hook printed so far (its first line is the address). */
static void instance_read_hook(struct autoscale_instance *in)
{
    while (in->out_fd >= 0 && in->out_len < sizeof(in->out) - 1) {
        ssize_t n = read(in->out_fd, in->out + in->out_len, sizeof(in->out) - 1 - in->out_len);
        if (n > 0) {
            in->out_len += (size_t)n;
            continue;
        }
        if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
            close(in->out_fd);
            in->out_fd = -1;
        }
        break;
    }
    in->out[in->out_len] = 0;
}

/* The up hook exited with status: take the address it printed. */
static void instance_up_hook_done(struct autoscale_instance *in, int status, uint64_t now_ms)
{
    instance_read_hook(in);
    if (in->out_fd >= 0) {
        close(in->out_fd);
        in->out_fd = -1;
    }
    char *nl = strpbrk(in->out, "\r\n");
    if (nl)
        *nl = 0;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        instance_crashed(in, now_ms, "up hook failed");
        return;
    }
    if (strlen(in->out) >= sizeof(in->address) ||
        units_parse_addr(in->out, &in->addr, &in->addrlen) != 0) {
        log_error("autoscale: cluster %s: instance %u: the up hook must print the instance's "
                  "address (IP:PORT) on its first line; it printed \"%.64s\"",
                  in->sc->name, in->id, in->out);
        instance_crashed(in, now_ms, "up hook gave no address");
        return;
    }
    memcpy(in->address, in->out, strlen(in->out) + 1); /* fits: checked above */
    log_info("autoscale: cluster %s: instance %u: up hook reported %s", in->sc->name, in->id,
             in->address);
}

/* ---- exits ---- */

static void instance_describe_status(int status, char *buf, size_t size)
{
    if (WIFEXITED(status))
        snprintf(buf, size, "exited with status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(buf, size, "was killed by signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    else
        snprintf(buf, size, "ended (wait status %d)", status);
}

static void instance_child_cb(struct ev_loop *loop, ev_child *w, int revents)
{
    struct autoscale_instance *in = w->data;
    uint64_t now_ms = endpoint_now_ms();
    int status = w->rstatus;
    ev_child_stop(loop, w);
    int was_hook = in->pid_is_hook;
    in->pid = 0;
    in->pid_is_hook = 0;
    in->last_status = status;
    if (was_hook) {
        if (in->state == AUTOSCALE_STARTING)
            instance_up_hook_done(in, status, now_ms);
        return; /* a down hook: STOPPING sees pid 0 and finishes */
    }
    char how[96];
    instance_describe_status(status, how, sizeof(how));
    if (in->state == AUTOSCALE_STOPPING) {
        log_info("autoscale: cluster %s: instance %u (%s) stopped: %s", in->sc->name, in->id,
                 in->address, how);
        return;
    }
    instance_probe_close(in);
    if (in->state == AUTOSCALE_DRAINING || in->sc->as->stopping || in->sc->gone) {
        log_warn("autoscale: cluster %s: instance %u (%s) %s while being taken out", in->sc->name,
                 in->id, in->address, how);
        if (in->in_pool)
            autoscale_pool_remove(in);
        instance_set(in, AUTOSCALE_STOPPING, now_ms, 0);
        return;
    }
    instance_crashed(in, now_ms, how);
}

/* ---- states ---- */

void autoscale_instance_signal(struct autoscale_instance *in, int sig)
{
    if (in->pid > 0 && kill(-in->pid, sig) != 0 && errno == ESRCH)
        kill(in->pid, sig); /* not a group leader (yet): the process alone */
    if (sig == SIGKILL)
        in->killed = 1;
}

void autoscale_instance_stop(struct autoscale_instance *in, uint64_t now_ms)
{
    const struct cfg_autoscale *c = in->sc->cfg;
    instance_probe_close(in);
    if (in->in_pool)
        autoscale_pool_remove(in);
    if (in->pid > 0) {
        /* the instance, or an up hook still running: either way, stop it */
        autoscale_instance_signal(in, SIGTERM);
        instance_set(in, AUTOSCALE_STOPPING, now_ms, c->grace_ms ? c->grace_ms : 1);
        return;
    }
    instance_set(in, AUTOSCALE_STOPPING, now_ms, c->grace_ms ? c->grace_ms : 1);
    if (c->hook_down.argc && in->address[0]) {
        if (instance_spawn(in, &c->hook_down, 0, 1) == 0)
            log_info("autoscale: cluster %s: instance %u (%s): down hook running (pid %d)",
                     in->sc->name, in->id, in->address, (int)in->pid);
    }
}

void autoscale_instance_retire(struct autoscale_instance *in, uint64_t now_ms)
{
    if (in->state == AUTOSCALE_READY && in->in_pool) {
        autoscale_pool_drain(in);
        instance_set(in, AUTOSCALE_DRAINING, now_ms, in->sc->cfg->drain_timeout_ms);
        if (!in->deadline_ms)
            in->deadline_ms = now_ms;
        log_info("autoscale: cluster %s: instance %u (%s) draining", in->sc->name, in->id,
                 in->address);
        return;
    }
    if (in->state == AUTOSCALE_DRAINING || in->state == AUTOSCALE_STOPPING)
        return;
    if (in->state == AUTOSCALE_BACKOFF) {
        instance_set(in, AUTOSCALE_STOPPING, now_ms, 1);
        return;
    }
    autoscale_instance_stop(in, now_ms);
}

static void instance_step_starting(struct autoscale_instance *in, uint64_t now_ms)
{
    if (in->pid_is_hook) {
        instance_read_hook(in);
    } else if (in->address[0] && instance_probe(in)) {
        if (autoscale_pool_add(in) != 0) {
            log_error("autoscale: cluster %s: instance %u: out of memory adding it", in->sc->name,
                      in->id);
            return;
        }
        log_info("autoscale: cluster %s: instance %u (%s) ready after %llu ms; added to the "
                 "cluster",
                 in->sc->name, in->id, in->address,
                 (unsigned long long)(now_ms - in->state_since_ms));
        instance_set(in, AUTOSCALE_READY, now_ms, 0);
        return;
    }
    if (in->deadline_ms && now_ms >= in->deadline_ms) {
        instance_probe_close(in);
        if (in->pid > 0) {
            autoscale_instance_signal(in, SIGKILL);
            ev_child_stop(in->sc->as->loop, &in->child);
            in->pid = 0; /* libev reaps it; nobody waits for this one */
        }
        instance_crashed(in, now_ms, "was not ready within start_timeout");
    }
}

int autoscale_instance_step(struct autoscale_instance *in, uint64_t now_ms)
{
    switch (in->state) {
    case AUTOSCALE_STARTING:
        instance_step_starting(in, now_ms);
        return 0;
    case AUTOSCALE_READY:
        if (in->crashes && now_ms - in->state_since_ms >= INSTANCE_HEALTHY_RUN_MS)
            in->crashes = 0;
        return 0;
    case AUTOSCALE_BACKOFF:
        if (now_ms >= in->deadline_ms && !in->sc->as->stopping && !in->sc->gone)
            autoscale_instance_start(in, now_ms);
        return 0;
    case AUTOSCALE_DRAINING: {
        int adopted = 0;
        int busy = autoscale_pool_in_flight(in, &adopted);
        if ((adopted && busy == 0) || now_ms >= in->deadline_ms) {
            if (busy || !adopted)
                log_warn("autoscale: cluster %s: instance %u (%s): drain_timeout with %d "
                         "request(s) in flight; stopping it anyway",
                         in->sc->name, in->id, in->address, busy);
            autoscale_instance_stop(in, now_ms);
        }
        return 0;
    }
    case AUTOSCALE_STOPPING:
        if (in->pid == 0)
            return 1;
        if (now_ms >= in->deadline_ms && !in->killed) {
            log_warn("autoscale: cluster %s: instance %u (%s): still running %llu ms after "
                     "SIGTERM; SIGKILL",
                     in->sc->name, in->id, in->address,
                     (unsigned long long)(now_ms - in->state_since_ms));
            autoscale_instance_signal(in, SIGKILL);
        }
        return 0;
    default:
        return 0;
    }
}

void autoscale_instance_free(struct autoscale_instance *in)
{
    if (!in)
        return;
    if (in->pid > 0)
        ev_child_stop(in->sc->as->loop, &in->child);
    instance_probe_close(in);
    if (in->out_fd >= 0)
        close(in->out_fd);
    free(in);
}

void autoscale_instance_sample_cpu(struct autoscale_instance *in, uint64_t now_ms)
{
    char path[64], buf[1024];
    if (in->pid <= 0 || in->pid_is_hook)
        return;
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)in->pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return;
    buf[n] = 0;
    /* the name (field 2) may hold blanks and parentheses: count from the last ')' */
    char *p = strrchr(buf, ')');
    unsigned long long utime = 0, stime = 0;
    if (!p ||
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) != 2)
        return;
    uint64_t ticks = utime + stime;
    long hz = sysconf(_SC_CLK_TCK);
    if (in->cpu_at_ms && now_ms > in->cpu_at_ms && hz > 0 && ticks >= in->cpu_ticks)
        in->cpu_pct = (double)(ticks - in->cpu_ticks) * 1000.0 * 100.0 /
                      ((double)hz * (double)(now_ms - in->cpu_at_ms));
    in->cpu_ticks = ticks;
    in->cpu_at_ms = now_ms;
}
