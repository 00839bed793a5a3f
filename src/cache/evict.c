/* evict: the table of eviction policies and the list every policy uses.
 * The policies themselves are evict_<name>.c. */
#include "cache/evict.h"

#include <errno.h>
#include <string.h>

static const struct evict_ops *const evict_table[] = {
#define EVICT_ROW(e, s, ops) &ops,
    EVICT_POLICY_LIST(EVICT_ROW)
#undef EVICT_ROW
};

const struct evict_ops *evict_ops_of(enum evict_policy p)
{
    return (unsigned)p < EVICT_POLICY_COUNT ? evict_table[p] : NULL;
}

int evict_policy_find(const char *name)
{
    for (int i = 0; i < EVICT_POLICY_COUNT; i++)
        if (strcmp(evict_table[i]->name, name) == 0)
            return i;
    return -ENOENT;
}

const char *evict_policy_name(enum evict_policy p)
{
    return (unsigned)p < EVICT_POLICY_COUNT ? evict_table[p]->name : "?";
}

void evict_list_push(struct evict_list *l, struct evict_node *n)
{
    n->prev = NULL;
    n->next = l->head;
    if (l->head)
        l->head->prev = n;
    else
        l->tail = n;
    l->head = n;
    l->count++;
}

void evict_list_unlink(struct evict_list *l, struct evict_node *n)
{
    if (n->prev)
        n->prev->next = n->next;
    else
        l->head = n->next;
    if (n->next)
        n->next->prev = n->prev;
    else
        l->tail = n->prev;
    n->prev = n->next = NULL;
    l->count--;
}
