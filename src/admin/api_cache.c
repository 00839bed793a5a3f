/* api_cache: cache invalidation through the admin API.
 *
 *   POST /api/v1/caches/NAME/purge   {"url": "HOST/PATH?Q"} | {"prefix": "HOST/PATH"}
 *                                    | {"tag": "T"} | {"all": true}
 *
 * Answers 200 {"cache", "purged": N, "l2": S}. The objects go from memory
 * at once, on every worker (the store is shared), and N counts them; with a
 * Redis L2 tier, its copies go in the background on the admin thread's
 * store client (S: "purging", "failed" when it could not start, or "none"
 * without L2; see docs/operations.md). */
#include <errno.h>
#include <string.h>

#include "admin/admin_internal.h"
#include "cache/cache_cfg.h"
#include "cache/store.h"
#include "http/steps/cache_l2_purge.h"
#include "server/server.h"
#include "server/snapshot.h"
#include "core/log.h"

/* Starts the purge in the cache's L2 tier, when it has one. Returns what
 * the answer says of it. */
static const char *admin_api_cache_l2(struct admin_req *r, enum cache_purge_kind kind,
                                      const char *arg)
{
    const struct cfg_cache *cc = cache_cfg_find(r->a->srv->snap->cfg, r->seg[3]);
    if (cc == NULL || cc->l2_store == NULL)
        return "none";
    struct cache *c = cache_acquire(cc);
    int rc = c ? cache_l2_purge(r->a->loop, c, cc, kind, arg, strlen(arg)) : -ENOMEM;
    cache_release(c);
    return rc == 0 ? "purging" : "failed";
}

void admin_api_cache_purge(struct admin_req *r)
{
    if (r->msg->method != HTTP_METHOD_POST) {
        r->allow = "POST";
        admin_reply_error(r, 405, "method not allowed", r->allow);
        return;
    }
    json_error_t jerr;
    json_t *j = json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!j || !json_is_object(j) || json_object_size(j) != 1) {
        admin_reply_error(r, 400, "the body is one of {\"url\": ...}, {\"prefix\": ...}, "
                                  "{\"tag\": ...}, {\"all\": true}", j ? NULL : jerr.text);
        json_decref(j);
        return;
    }
    static const char *const kinds[] = { "url", "prefix", "tag", "all" };
    enum cache_purge_kind kind = CACHE_PURGE_KIND_COUNT;
    const char *arg = "";
    for (int k = 0; k < CACHE_PURGE_KIND_COUNT; k++) {
        json_t *v = json_object_get(j, kinds[k]);
        if (!v)
            continue;
        kind = (enum cache_purge_kind)k;
        if (k == CACHE_PURGE_ALL ? !json_is_true(v) : !json_is_string(v) || !json_string_length(v))
            kind = CACHE_PURGE_KIND_COUNT;
        else if (k != CACHE_PURGE_ALL)
            arg = json_string_value(v);
    }
    if (kind == CACHE_PURGE_KIND_COUNT) {
        admin_reply_error(r, 400, "the body is one of {\"url\": ...}, {\"prefix\": ...}, "
                                  "{\"tag\": ...}, {\"all\": true}", NULL);
        json_decref(j);
        return;
    }
    long n = cache_purge(r->seg[3], kind, arg);
    const char *l2 = n >= 0 ? admin_api_cache_l2(r, kind, arg) : "none";
    if (n == -ENOENT) {
        admin_reply_error(r, 404, "no such cache", r->seg[3]);
    } else if (n < 0) {
        admin_reply_error(r, 500, "the purge failed", NULL);
    } else {
        log_info("admin: cache %s: purged %ld object(s) (%s %s)", r->seg[3], n, kinds[kind], arg);
        admin_reply_json(r, 200, json_pack("{s:s, s:I, s:s}", "cache", r->seg[3], "purged",
                                           (json_int_t)n, "l2", l2));
    }
    json_decref(j);
}
