/* api_cache: cache invalidation through the admin API.
 *
 *   POST /api/v1/caches/NAME/purge   {"url": "HOST/PATH?Q"} | {"prefix": "HOST/PATH"}
 *                                    | {"tag": "T"} | {"all": true}
 *
 * Answers 200 {"cache", "purged": N}. The objects go from memory at once,
 * on every worker (the store is shared); a Redis L2 tier forgets an exact
 * URL only (see docs/operations.md). */
#include <errno.h>
#include <string.h>

#include "admin/admin_internal.h"
#include "cache/store.h"
#include "core/log.h"

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
    if (n == -ENOENT) {
        admin_reply_error(r, 404, "no such cache", r->seg[3]);
    } else if (n < 0) {
        admin_reply_error(r, 500, "the purge failed", NULL);
    } else {
        log_info("admin: cache %s: purged %ld object(s) (%s %s)", r->seg[3], n, kinds[kind], arg);
        admin_reply_json(r, 200, json_pack("{s:s, s:I}", "cache", r->seg[3], "purged", (json_int_t)n));
    }
    json_decref(j);
}
