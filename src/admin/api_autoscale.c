/* api_autoscale: the autoscalers' state and run-time settings.
 *
 *   GET   /api/v1/autoscale            every autoscaled cluster
 *   GET   /api/v1/autoscale/CLUSTER    one: state, last decision with its inputs, instances
 *   PATCH /api/v1/autoscale/CLUSTER    {"min"?, "max"?, "paused"?}
 *
 * Reads and changes autoscale/autoscale.h's scalers on the main thread.
 * min and max set here hold until the next reload (the file wins then);
 * paused stops decisions, not crash restarts. */
#include <errno.h>
#include <string.h>

#include "admin/admin_internal.h"
#include "autoscale/autoscale.h"
#include "upstream/endpoint.h"

static json_t *api_autoscale_readings(const struct autoscale_scaler *sc)
{
    json_t *o = json_object();
    for (int m = 0; o && m < AUTOSCALE_METRIC_COUNT; m++) {
        if (!sc->cfg->present[m])
            continue;
        const struct autoscale_reading *r = &sc->readings[m];
        json_object_set_new(o, autoscale_metric_name(m),
                            json_pack("{s:o, s:f}", "value",
                                      r->present ? json_real(r->value) : json_null(), "target",
                                      sc->cfg->target[m]));
    }
    return o;
}

static json_t *api_autoscale_decision(const struct autoscale_scaler *sc)
{
    if (!sc->have_last)
        return json_null();
    const struct autoscale_decision *d = &sc->last;
    return json_pack("{s:I, s:i, s:i, s:i, s:s, s:s, s:s?, s:f, s:o}", "at_ms",
                     (json_int_t)sc->last_at_ms, "current", (json_int_t)d->current, "proposed",
                     (json_int_t)d->proposed, "desired", (json_int_t)d->desired, "direction",
                     autoscale_direction_name(d->direction), "reason",
                     autoscale_reason_name(d->reason), "metric",
                     d->metric >= 0 ? autoscale_metric_name(d->metric) : NULL, "ratio", d->ratio,
                     "inputs", api_autoscale_readings(sc));
}

static json_t *api_autoscale_instance(const struct autoscale_instance *in, uint64_t now_ms)
{
    return json_pack("{s:i, s:s, s:s, s:i, s:i, s:I, s:i, s:i, s:b, s:o}", "id", (json_int_t)in->id,
                     "state", autoscale_state_name(in->state), "address", in->address, "port",
                     (json_int_t)in->port, "pid", (json_int_t)(in->pid_is_hook ? 0 : in->pid),
                     "state_ms", (json_int_t)(now_ms - in->state_since_ms), "restarts",
                     (json_int_t)in->restarts, "crashes_in_a_row", (json_int_t)in->crashes,
                     "in_pool", in->in_pool != 0, "cpu_percent",
                     in->cpu_pct >= 0 ? json_real(in->cpu_pct) : json_null());
}

static json_t *api_autoscale_json(const struct autoscale_scaler *sc)
{
    uint64_t now_ms = endpoint_now_ms();
    json_t *inst = json_array();
    size_t counted = 0;
    for (size_t i = 0; inst && i < sc->n_inst; i++) {
        json_array_append_new(inst, api_autoscale_instance(sc->inst[i], now_ms));
        counted +=
            sc->inst[i]->state != AUTOSCALE_DRAINING && sc->inst[i]->state != AUTOSCALE_STOPPING;
    }
    return json_pack("{s:s, s:s, s:i, s:i, s:b, s:i, s:I, s:i, s:b, s:o, s:o}", "cluster", sc->name,
                     "mode", sc->cfg->command.argc ? "command" : "hooks", "min",
                     (json_int_t)autoscale_min(sc), "max", (json_int_t)autoscale_max(sc), "paused",
                     sc->paused != 0, "current", (json_int_t)counted, "period_ms",
                     (json_int_t)sc->cfg->period_ms, "restarts", (json_int_t)sc->restarts,
                     "crash_loop", sc->crash_loop != 0, "last_decision", api_autoscale_decision(sc),
                     "instances", inst);
}

/* PATCH: {"min"?, "max"?, "paused"?} */
static void api_autoscale_patch(struct admin_req *r, struct autoscale_scaler *sc)
{
    json_error_t jerr;
    json_t *j = json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, &jerr);
    int min = -1, max = -1, paused = -1;
    const char *key;
    json_t *v;
    char err[128];
    if (!j || !json_is_object(j)) {
        admin_reply_error(r, 400, "the body must be a JSON object", j ? NULL : jerr.text);
        goto out;
    }
    json_object_foreach(j, key, v)
    {
        int is_count = strcmp(key, "min") == 0 || strcmp(key, "max") == 0;
        if (is_count && (!json_is_integer(v) || json_integer_value(v) < 0 ||
                         json_integer_value(v) > AUTOSCALE_MAX_INSTANCES)) {
            admin_reply_error(r, 400, "min and max are integers 0..1000", key);
            goto out;
        } else if (strcmp(key, "min") == 0) {
            min = (int)json_integer_value(v);
        } else if (strcmp(key, "max") == 0) {
            max = (int)json_integer_value(v);
        } else if (strcmp(key, "paused") == 0 && json_is_boolean(v)) {
            paused = json_is_true(v);
        } else {
            admin_reply_error(
                r, 400, strcmp(key, "paused") == 0 ? "paused is true or false" : "unknown field",
                key);
            goto out;
        }
    }
    if (autoscale_set(sc, min, max, paused, err, sizeof(err)) != 0) {
        admin_reply_error(r, 400, "invalid change", err);
        goto out;
    }
    admin_reply_json(r, 200, api_autoscale_json(sc));
out:
    json_decref(j);
}

void admin_api_autoscale(struct admin_req *r)
{
    struct autoscale *as = autoscale_current();
    int get = r->msg->method == HTTP_METHOD_GET || r->msg->method == HTTP_METHOD_HEAD;
    if (r->n_seg == 3) {
        if (!get) {
            r->allow = "GET, HEAD";
            admin_reply_error(r, 405, "method not allowed", r->allow);
            return;
        }
        json_t *list = json_array();
        for (size_t i = 0; as && list && i < as->n_sc; i++)
            if (!as->sc[i]->gone)
                json_array_append_new(list, api_autoscale_json(as->sc[i]));
        admin_reply_json(r, 200, json_pack("{s:o}", "clusters", list));
        return;
    }
    struct autoscale_scaler *sc = autoscale_find(as, r->seg[3]);
    if (!sc) {
        admin_reply_error(r, 404, "no autoscaled cluster of that name", r->seg[3]);
        return;
    }
    if (get)
        admin_reply_json(r, 200, api_autoscale_json(sc));
    else if (r->msg->method == HTTP_METHOD_PATCH)
        api_autoscale_patch(r, sc);
    else {
        r->allow = "GET, HEAD, PATCH";
        admin_reply_error(r, 405, "method not allowed", r->allow);
    }
}
