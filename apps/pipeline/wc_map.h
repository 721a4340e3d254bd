/*
 * One core's part of the distributed word count: its shard (the table of the words it owns,
 * the combiner of its range, the read buffers, the batches in flight) and the map + shuffle
 * of its byte range. Private to apps/pipeline (wc_dist.c drives it).
 */
#ifndef WC_MAP_H
#define WC_MAP_H

#include "wc_dist.h"
#include "wc_table.h"
#include "wc_token.h"

struct wc_batch;

/*
 * Words of the chunk being tokenized whose table slots are being prefetched (wc_map.c,
 * on_word): 16 words are ~0.3 us of scanning, a few memory latencies; 8 did less well.
 */
#define WC_PENDING 16
struct wc_pending {
    const char *word;
    size_t len;
    uint64_t hash;
};

struct wc_core {
    struct wc_job *job;
    unsigned id, n;
    struct wc_table table;    /* counts of the words this core owns (but see `local`) */
    struct wc_table local;    /* combiner: this range's counts; at the end, our words' */
    struct wc_table shipping; /* a combiner being shipped, a slice per task */
    size_t ship_pos;          /* next slot of `shipping` (of `local` when in place) */
    size_t ship_mask;         /* local's mask when the in-place ship (re)started */
    bool combine;             /* count in `local`, ship per distinct word */
    size_t combine_max;       /* ship `local` when it holds this many words */
    bool ship_active, ship_paused;
    bool ship_in_place; /* the final ship: other cores' words leave `local`, ours stay */
    bool final_shipped; /* that final ship is done */
    struct wc_pending pending[WC_PENDING]; /* a ring; pend_next is the oldest when full */
    unsigned npending, pend_next;
    struct wc_scan scan;
    char *buf[2];
    unsigned cur;      /* buffer the next read goes into */
    uint64_t read_off; /* offset of the read in flight, or of the next one */
    size_t read_len, tail_len;
    bool reading;       /* a read is in flight */
    bool read_wanted;   /* the next read waits for acknowledgements */
    bool piece_active;  /* a piece is being scanned */
    bool has_next;      /* next_piece is claimed and waits */
    bool claim_pending; /* a claim is on its way to core 0 */
    bool no_more;       /* core 0 has no more pieces */
    uint64_t next_piece;
    uint64_t pieces;         /* pieces this core scanned */
    uint64_t map_t0, map_ns; /* when this core's map began, and how long it took */
    uint64_t read_ns;        /* from map_t0 to the end of its reading (then it ships) */
    uint64_t cpu_t0, cpu_ns; /* this thread's CPU time at the map's start, and during it */
    uint64_t wait_since;     /* idle, waiting for a claim, since then (0: not waiting) */
    uint64_t claim_wait_ns;  /* total time idle waiting for claims */
    bool reading_done;       /* the map is over here: no piece left (or a failure) */
    bool flushed;            /* the last open batches are sent */
    unsigned busy;           /* inside a callback: advance() waits for its end */
    struct wc_batch **open;  /* per destination core, the batch being filled */
    struct wc_batch *free_batches;
    unsigned inflight; /* batches sent, not yet acknowledged */
    struct sn_promise *done;
    int err;
    /* The reduce's input: this core's summary and its first K (or all) items. */
    struct wc_item *items;
    size_t nitems;
    struct wc_summary sum;
};

/* This thread's CPU time in ns (CLOCK_THREAD_CPUTIME_ID). */
uint64_t wc_thread_cpu_ns(void);

/*
 * After the map: this core's result into items/nitems/sum: the first `limit` items of the
 * words it owns in result order (wc_table_items). 0 or -ENOMEM. Owner core only.
 */
int wc_core_items(struct wc_core *c, size_t limit);

/* sn_sharded init/fini: makes / frees one core's shard (arg: the struct wc_job). */
void *wc_core_new(void *arg, unsigned core);
void wc_core_free(void *instance, void *arg);

/*
 * sn_shard_fn: maps and shuffles pieces of job->fd (job->size bytes): piece `core` with
 * static ranges, else the pieces core 0 hands out one at a time. The future settles when
 * every word of this core's pieces has been counted by its owner (every batch this core sent
 * was acknowledged), or fails with the first error. Owner core only.
 */
struct sn_future *wc_core_scan(void *instance, void *arg);

#endif
