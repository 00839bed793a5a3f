/* admin: the admin listener on the main thread — /metrics, the JSON admin
 * API (api.c) — bound from the `admin:` section of the running
 * configuration. It reads the server's state and asks the server to
 * reload; nothing in weir depends on it. */
#ifndef WEIR_ADMIN_ADMIN_H
#define WEIR_ADMIN_ADMIN_H

#include <ev.h>
#include <stddef.h>

struct server;
struct admin;

/* A new admin bound to nothing yet, serving srv on the main loop; `path`
 * is the configuration file (reloads read it again) and `version` weir's
 * version, both borrowed for the admin's life. Returns NULL when memory is
 * short. */
struct admin *admin_new(struct ev_loop *loop, struct server *srv, const char *path,
                        const char *version);
/* Follows the running configuration's `admin:` section: binds its
 * address (again when it changed), closes the listener when the section
 * is gone. Returns 0, or a negative errno with err filled (the admin keeps
 * its previous socket, if any). */
int admin_apply(struct admin *a, char *err, size_t err_size);
/* Closes the listener and every admin connection, and frees a. */
void admin_free(struct admin *a);

#endif
