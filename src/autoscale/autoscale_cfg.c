/* autoscale_cfg: parses a cluster's `autoscale:` block (autoscale_cfg.h).
 *
 *   autoscale map -- command | hooks {up, down}
 *                 |- ports, host, min, max, period, tolerance, max_step, ...
 *                 |- stabilization {up, down}
 *                 `- metrics {queue_visible, in_flight, latency_p95, cpu}
 *
 * A command is split into arguments here, once, without a shell
 * (autoscale_cmd_split), so a bad quote is a load error with its line and
 * column, and nothing is interpreted at run time but the placeholders.
 * Checks that span keys (command or hooks, min <= max, a port range wide
 * enough for max, at least one metric) run once the map is parsed. */
#include "autoscale/autoscale_cfg.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/config_parse.h"
#include "core/units.h"

static const struct cfg_autoscale autoscale_cfg_defaults = {
    .min = 1,
    .max = 1,
    .period_ms = 15000,
    .tolerance = 0.1,
    .up_window_ms = 0,
    .down_window_ms = 300000,
    .grace_ms = 30000,
    .start_timeout_ms = 30000,
};

#define AUTOSCALE_ENUM_NAME(e, s) s,
static const char *const autoscale_metric_names[] = {AUTOSCALE_METRIC_LIST(AUTOSCALE_ENUM_NAME)};
#undef AUTOSCALE_ENUM_NAME

const char *autoscale_metric_name(enum autoscale_metric m)
{
    return (unsigned)m < AUTOSCALE_METRIC_COUNT ? autoscale_metric_names[m] : "?";
}

/* ---- command splitting ---- */

void autoscale_cmd_free(struct cfg_autoscale_cmd *cmd)
{
    for (size_t i = 0; cmd->argv && i < cmd->argc; i++)
        free(cmd->argv[i]);
    free(cmd->argv);
    cmd->argv = NULL;
    cmd->argc = 0;
}

/* Appends the argument word[0..n) to cmd. */
static int autoscale_cmd_push(struct cfg_autoscale_cmd *cmd, const char *word, size_t n)
{
    if (cmd->argc + 1 >= AUTOSCALE_MAX_ARGS)
        return -EINVAL;
    char *a = strndup(word, n);
    if (!a)
        return -ENOMEM;
    cmd->argv[cmd->argc++] = a;
    cmd->argv[cmd->argc] = NULL;
    return 0;
}

int autoscale_cmd_split(const char *s, struct cfg_autoscale_cmd *cmd)
{
    size_t len = strlen(s);
    char *word = malloc(len + 1);
    cmd->argc = 0;
    cmd->argv = calloc(AUTOSCALE_MAX_ARGS, sizeof(*cmd->argv));
    if (!word || !cmd->argv) {
        free(word);
        autoscale_cmd_free(cmd);
        return -ENOMEM;
    }
    int rc = 0;
    size_t n = 0;
    int in_word = 0;
    for (const char *p = s; *p && rc == 0; p++) {
        if (*p == ' ' || *p == '\t' || *p == '\n') {
            if (in_word)
                rc = autoscale_cmd_push(cmd, word, n);
            in_word = 0;
            n = 0;
        } else if (*p == '\'') {
            const char *end = strchr(p + 1, '\'');
            if (!end) {
                rc = -EINVAL;
                break;
            }
            memcpy(word + n, p + 1, (size_t)(end - p - 1));
            n += (size_t)(end - p - 1);
            in_word = 1;
            p = end;
        } else if (*p == '"') {
            in_word = 1;
            for (p++; *p && *p != '"'; p++) {
                if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
                    p++;
                word[n++] = *p;
            }
            if (!*p) {
                rc = -EINVAL; /* unclosed: stop here, at the NUL */
                break;
            }
        } else if (*p == '\\') {
            if (!p[1]) {
                rc = -EINVAL;
                break;
            }
            word[n++] = *++p;
            in_word = 1;
        } else {
            word[n++] = *p;
            in_word = 1;
        }
    }
    if (rc == 0 && in_word)
        rc = autoscale_cmd_push(cmd, word, n);
    if (rc == 0 && cmd->argc == 0)
        rc = -EINVAL;
    free(word);
    if (rc < 0)
        autoscale_cmd_free(cmd);
    return rc;
}

/* A command value: a string split into arguments. */
static int autoscale_cfg_cmd(struct cfg_ctx *ctx, yaml_node_t *v, const char *what,
                             struct cfg_autoscale_cmd *cmd)
{
    const char *s;
    int rc = cfg_scalar(ctx, v, what, &s);
    if (rc < 0)
        return rc;
    autoscale_cmd_free(cmd);
    rc = autoscale_cmd_split(s, cmd);
    if (rc == -ENOMEM)
        return cfg_nomem(ctx);
    if (rc < 0)
        return cfg_fail(ctx, v,
                        "%s: expected a command and its arguments (at most %d; quote "
                        "with '...' or \"...\", every quote closed)",
                        what, AUTOSCALE_MAX_ARGS - 1);
    return 0;
}

static int autoscale_cfg_command(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cfg_autoscale *c = obj;
    return autoscale_cfg_cmd(ctx, v, "command", &c->command);
}

static int autoscale_cfg_hook_up(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cfg_autoscale *c = obj;
    return autoscale_cfg_cmd(ctx, v, "hooks.up", &c->hook_up);
}

static int autoscale_cfg_hook_down(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cfg_autoscale *c = obj;
    return autoscale_cfg_cmd(ctx, v, "hooks.down", &c->hook_down);
}

static const struct cfg_key autoscale_cfg_hook_keys[] = {
    CFG_FUNC("up", autoscale_cfg_hook_up, true),
    CFG_FUNC("down", autoscale_cfg_hook_down, true),
};
CFG_MAP_DEFINE(autoscale_cfg_hook_map, "autoscale hooks", autoscale_cfg_hook_keys);

static int autoscale_cfg_hooks(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    return cfg_parse_map(ctx, v, &autoscale_cfg_hook_map, obj, NULL);
}

/* ports: "20000-20100" */
static int autoscale_cfg_ports(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cfg_autoscale *c = obj;
    const char *s;
    int rc = cfg_scalar(ctx, v, "ports", &s);
    if (rc < 0)
        return rc;
    char lo[8] = "", q[CFG_QUOTE_SIZE];
    const char *dash = strchr(s, '-');
    uint64_t a, b;
    if (!dash || (size_t)(dash - s) >= sizeof(lo) || dash == s)
        goto bad;
    memcpy(lo, s, (size_t)(dash - s));
    lo[dash - s] = 0;
    if (units_parse_uint(lo, 65535, &a) != 0 || units_parse_uint(dash + 1, 65535, &b) != 0 ||
        a == 0 || b < a)
        goto bad;
    c->port_lo = (uint16_t)a;
    c->port_hi = (uint16_t)b;
    return 0;
bad:
    return cfg_fail(ctx, v,
                    "ports: expected a range LOW-HIGH of ports 1..65535, like "
                    "20000-20100, got %s",
                    cfg_quote(s, q));
}

static int autoscale_cfg_host(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cfg_autoscale *c = obj;
    const char *s;
    int rc = cfg_scalar(ctx, v, "host", &s);
    if (rc < 0)
        return rc;
    char buf[80], q[CFG_QUOTE_SIZE];
    struct sockaddr_storage ss;
    socklen_t len;
    snprintf(buf, sizeof(buf), strchr(s, ':') ? "[%s]:1" : "%s:1", s);
    if (units_parse_addr(buf, &ss, &len) != 0)
        return cfg_fail(ctx, v, "host: expected a numeric IP address, got %s", cfg_quote(s, q));
    free(c->host);
    return cfg_strdup(ctx, s, &c->host);
}

/* tolerance: "0.1" or "10%", 0..1 */
static int autoscale_cfg_tolerance(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cfg_autoscale *c = obj;
    const char *s;
    int rc = cfg_scalar(ctx, v, "tolerance", &s);
    if (rc < 0)
        return rc;
    char *end;
    double d = strtod(s, &end);
    if (end != s && *end == '%' && end[1] == 0) {
        d /= 100;
        end++;
    }
    char q[CFG_QUOTE_SIZE];
    if (end == s || *end || !(d >= 0 && d < 1))
        return cfg_fail(ctx, v,
                        "tolerance: expected a fraction 0..0.99 or a percentage like "
                        "10%%, got %s",
                        cfg_quote(s, q));
    c->tolerance = d;
    return 0;
}

static int autoscale_cfg_to_zero(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct cfg_autoscale *c = obj;
    return cfg_parse_bool(ctx, v, "scale_to_zero", &c->scale_to_zero);
}

static int autoscale_cfg_output(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    static const char *const names[] = {"inherit", "null"};
    struct cfg_autoscale *c = obj;
    return cfg_parse_enum(ctx, v, "output", names, 2, &c->output_null);
}

static const struct cfg_key autoscale_cfg_stab_keys[] = {
    CFG_FIELD("up", CFG_KIND_DURATION, struct cfg_autoscale, up_window_ms, 0, CFG_MAX_DURATION_MS),
    CFG_FIELD("down", CFG_KIND_DURATION, struct cfg_autoscale, down_window_ms, 0,
              CFG_MAX_DURATION_MS),
};
CFG_MAP_DEFINE(autoscale_cfg_stab_map, "autoscale stabilization", autoscale_cfg_stab_keys);

static int autoscale_cfg_stabilization(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    return cfg_parse_map(ctx, v, &autoscale_cfg_stab_map, obj, NULL);
}

/* ---- metrics ---- */

/* One metric's map: {target: T} (and queue for queue_visible). The
 * scratch object of the metric maps. */
struct autoscale_cfg_metric {
    struct cfg_autoscale *c;
    enum autoscale_metric m;
};

static int autoscale_cfg_target(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct autoscale_cfg_metric *mm = obj;
    const char *s;
    char q[CFG_QUOTE_SIZE];
    int rc = cfg_scalar(ctx, v, "target", &s);
    if (rc < 0)
        return rc;
    if (mm->m == AUTOSCALE_METRIC_LATENCY_P95) {
        uint64_t ms;
        if (units_parse_duration_ms(s, &ms) != 0 || ms == 0 || ms > CFG_MAX_DURATION_MS)
            return cfg_fail(ctx, v,
                            "latency_p95.target: expected a duration like 200ms, got "
                            "%s",
                            cfg_quote(s, q));
        mm->c->target[mm->m] = (double)ms;
        return 0;
    }
    if (mm->m == AUTOSCALE_METRIC_CPU) {
        uint32_t pct;
        if ((rc = cfg_parse_percent(ctx, v, "cpu.target", 1, &pct)) < 0)
            return rc;
        mm->c->target[mm->m] = pct;
        return 0;
    }
    uint64_t n;
    if (units_parse_uint(s, 1000000, &n) != 0 || n == 0)
        return cfg_fail(ctx, v, "%s.target: expected a number 1..1000000 per instance, got %s",
                        autoscale_metric_name(mm->m), cfg_quote(s, q));
    mm->c->target[mm->m] = (double)n;
    return 0;
}

static int autoscale_cfg_queue(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    struct autoscale_cfg_metric *mm = obj;
    const char *s;
    int rc = cfg_scalar(ctx, v, "queue_visible.queue", &s);
    if (rc < 0)
        return rc;
    free(mm->c->queue);
    return cfg_strdup(ctx, s, &mm->c->queue);
}

static const struct cfg_key autoscale_cfg_target_keys[] = {
    CFG_FUNC("target", autoscale_cfg_target, true),
};
CFG_MAP_DEFINE(autoscale_cfg_target_map, "autoscale metric", autoscale_cfg_target_keys);

static const struct cfg_key autoscale_cfg_queue_keys[] = {
    CFG_FUNC("queue", autoscale_cfg_queue, true),
    CFG_FUNC("target", autoscale_cfg_target, true),
};
CFG_MAP_DEFINE(autoscale_cfg_queue_map, "autoscale queue_visible", autoscale_cfg_queue_keys);

static int autoscale_cfg_metric(struct cfg_ctx *ctx, struct cfg_autoscale *c, yaml_node_t *v,
                                enum autoscale_metric m)
{
    struct autoscale_cfg_metric mm = {c, m};
    const struct cfg_map *map =
        m == AUTOSCALE_METRIC_QUEUE_VISIBLE ? &autoscale_cfg_queue_map : &autoscale_cfg_target_map;
    int rc = cfg_parse_map(ctx, v, map, &mm, NULL);
    if (rc == 0)
        c->present[m] = 1;
    return rc;
}

#define AUTOSCALE_METRIC_FN(e, s)                                                                  \
    static int autoscale_cfg_metric_##e(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)            \
    {                                                                                              \
        return autoscale_cfg_metric(ctx, obj, v, e);                                               \
    }
AUTOSCALE_METRIC_LIST(AUTOSCALE_METRIC_FN)
#undef AUTOSCALE_METRIC_FN

#define AUTOSCALE_METRIC_KEY(e, s) CFG_FUNC(s, autoscale_cfg_metric_##e, false),
static const struct cfg_key autoscale_cfg_metric_keys[] = {
    AUTOSCALE_METRIC_LIST(AUTOSCALE_METRIC_KEY)};
#undef AUTOSCALE_METRIC_KEY
CFG_MAP_DEFINE(autoscale_cfg_metric_map, "autoscale metrics", autoscale_cfg_metric_keys);

static int autoscale_cfg_metrics(struct cfg_ctx *ctx, yaml_node_t *v, void *obj)
{
    return cfg_parse_map(ctx, v, &autoscale_cfg_metric_map, obj, NULL);
}

/* ---- the block ---- */

static const struct cfg_key autoscale_cfg_keys[] = {
    CFG_FUNC("command", autoscale_cfg_command, false),
    CFG_FUNC("hooks", autoscale_cfg_hooks, false),
    CFG_FUNC("ports", autoscale_cfg_ports, false),
    CFG_FUNC("host", autoscale_cfg_host, false),
    CFG_FIELD("min", CFG_KIND_UINT, struct cfg_autoscale, min, 0, AUTOSCALE_MAX_INSTANCES),
    CFG_FIELD("max", CFG_KIND_UINT, struct cfg_autoscale, max, 1, AUTOSCALE_MAX_INSTANCES),
    CFG_FIELD("period", CFG_KIND_DURATION, struct cfg_autoscale, period_ms, 10, 3600000),
    CFG_FUNC("tolerance", autoscale_cfg_tolerance, false),
    CFG_FUNC("stabilization", autoscale_cfg_stabilization, false),
    CFG_FIELD("max_step", CFG_KIND_UINT, struct cfg_autoscale, max_step, 0,
              AUTOSCALE_MAX_INSTANCES),
    CFG_FUNC("scale_to_zero", autoscale_cfg_to_zero, false),
    CFG_FIELD("grace", CFG_KIND_DURATION, struct cfg_autoscale, grace_ms, 0, 3600000),
    CFG_FIELD("start_timeout", CFG_KIND_DURATION, struct cfg_autoscale, start_timeout_ms, 10,
              3600000),
    CFG_FIELD("drain_timeout", CFG_KIND_DURATION, struct cfg_autoscale, drain_timeout_ms, 0,
              3600000),
    CFG_FUNC("output", autoscale_cfg_output, false),
    CFG_FUNC("metrics", autoscale_cfg_metrics, true),
};
CFG_MAP_DEFINE(autoscale_cfg_map, "autoscale", autoscale_cfg_keys);

/* The checks across keys, once the map is parsed. */
static int autoscale_cfg_check(struct cfg_ctx *ctx, yaml_node_t *node,
                               const struct cfg_autoscale *c, yaml_node_t *const *values)
{
    yaml_node_t *ports = values[cfg_key_index(&autoscale_cfg_map, "ports")];
    int has_cmd = c->command.argc > 0, has_hooks = c->hook_up.argc > 0;
    if (has_cmd == has_hooks)
        return cfg_fail(ctx, node,
                        "autoscale needs exactly one of 'command' (weir starts local "
                        "processes) or 'hooks' (commands that start and stop them)");
    if (has_cmd && !ports)
        return cfg_fail(ctx, node,
                        "autoscale: 'command' needs 'ports' (a range like "
                        "20000-20100 weir picks each instance's {port} from)");
    if (ports && (uint32_t)(c->port_hi - c->port_lo) + 1 < c->max)
        return cfg_fail(ctx, ports, "autoscale: the port range holds fewer ports than max (%u)",
                        c->max);
    if (c->min > c->max)
        return cfg_fail(ctx, node, "autoscale: min (%u) is above max (%u)", c->min, c->max);
    if (c->min == 0 && !c->scale_to_zero)
        return cfg_fail(ctx, node, "autoscale: min 0 needs scale_to_zero: true");
    size_t n = 0;
    for (int m = 0; m < AUTOSCALE_METRIC_COUNT; m++)
        n += (size_t)c->present[m];
    if (n == 0)
        return cfg_fail(ctx, values[cfg_key_index(&autoscale_cfg_map, "metrics")],
                        "autoscale: metrics needs at least one of queue_visible, in_flight, "
                        "latency_p95, cpu");
    return 0;
}

int autoscale_cfg_parse(struct cfg_ctx *ctx, yaml_node_t *v, struct cfg_autoscale **out)
{
    yaml_node_t *values[CFG_MAP_MAX_KEYS];
    struct cfg_autoscale *c = malloc(sizeof(*c));
    *out = NULL;
    if (!c)
        return cfg_nomem(ctx);
    *c = autoscale_cfg_defaults;
    int rc = cfg_parse_map(ctx, v, &autoscale_cfg_map, c, values);
    if (rc == 0 && !values[cfg_key_index(&autoscale_cfg_map, "max")] && c->min > c->max)
        c->max = c->min; /* max defaults to min */
    if (rc == 0)
        rc = autoscale_cfg_check(ctx, v, c, values);
    if (rc == 0 && !c->host)
        rc = cfg_strdup(ctx, "127.0.0.1", &c->host);
    if (rc == 0 && !values[cfg_key_index(&autoscale_cfg_map, "drain_timeout")])
        c->drain_timeout_ms = c->grace_ms;
    if (rc < 0) {
        autoscale_cfg_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

void autoscale_cfg_free(struct cfg_autoscale *c)
{
    if (!c)
        return;
    autoscale_cmd_free(&c->command);
    autoscale_cmd_free(&c->hook_up);
    autoscale_cmd_free(&c->hook_down);
    free(c->host);
    free(c->queue);
    free(c);
}
