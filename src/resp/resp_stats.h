/* resp_stats: the Redis proxy's counters of every worker, for INFO.
 *
 *   worker 0 --writes--> slot[0] \
 *   worker 1 --writes--> slot[1]  >--read by any worker (INFO), summed
 *   ...                          /
 *
 * Each worker owns one slot (its id) and is its only writer: plain
 * increments made of a relaxed load and store, no lock and no atomic
 * read-modify-write on the hot path. Any worker reads all slots racily
 * (relaxed loads): a sum is the state of each worker at some moment during
 * the INFO, as Redis's own counters are at the moment of its INFO. Slots
 * live for the whole process, so a reader never meets freed memory. */
#ifndef WEIR_RESP_STATS_H
#define WEIR_RESP_STATS_H

#include <stdatomic.h>
#include <stdint.h>

#define RESP_STATS_SLOTS 256 /* CFG_MAX_WORKERS */
#define RESP_STATS_SAMPLES 16 /* instantaneous_ops_per_sec: 16 samples 100 ms apart, as Redis */

struct resp_stats {
    _Atomic uint64_t commands;        /* total_commands_processed */
    _Atomic uint64_t connections;     /* total_connections_received */
    _Atomic uint64_t errors;          /* error replies made by weir */
    _Atomic uint64_t clients;         /* connected now */
    _Atomic uint64_t blocked;         /* waiting in a blocking command now */
    _Atomic uint64_t sample_ms[RESP_STATS_SAMPLES]; /* when each sample was taken (0: none) */
    _Atomic uint64_t sample_cmds[RESP_STATS_SAMPLES];
    _Atomic uint32_t sample_next;
};

/* The slot of worker `id` (< RESP_STATS_SLOTS), NULL past the last. */
struct resp_stats *resp_stats_slot(unsigned id);
/* Records the proxy's start (uptime_in_seconds); later calls do nothing. */
void resp_stats_start(uint64_t now_ms);

static inline void resp_stat_add(_Atomic uint64_t *v, int64_t d)
{
    atomic_store_explicit(v, atomic_load_explicit(v, memory_order_relaxed) + (uint64_t)d,
                          memory_order_relaxed);
}

/* Takes a sample of st's commands when the last is 100 ms old or more
 * (called by st's worker as it goes round its loop). */
void resp_stats_tick(struct resp_stats *st, uint64_t now_ms);

/* Every worker's counters added up. */
struct resp_stats_sum {
    uint64_t commands, connections, errors, clients, blocked;
    uint64_t ops_per_sec;             /* over the samples of the last 1.6 s */
    uint64_t uptime_s;
};

void resp_stats_sum(struct resp_stats_sum *out, uint64_t now_ms);

#endif
