/* dashboard_assets: the dashboard's files (src/admin/dashboard/), embedded
 * at build time by tools/embed-assets.sh into a generated C source
 * (build/MODE/gen/dashboard_assets.c); served by dashboard.c. */
#ifndef WEIR_ADMIN_DASHBOARD_ASSETS_H
#define WEIR_ADMIN_DASHBOARD_ASSETS_H

#include <stddef.h>

struct dashboard_asset {
    const char *name;              /* the file's base name: "index.html" */
    const char *content_type;
    const char *etag;              /* quoted: "\"CRC-LENGTH\"" */
    const unsigned char *data;     /* len bytes (and a NUL after them) */
    size_t len;
};

extern const struct dashboard_asset dashboard_assets[];
extern const size_t dashboard_n_assets;

#endif
