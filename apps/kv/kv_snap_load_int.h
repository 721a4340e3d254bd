/*
 * Internals of one core's snapshot load, shared by kv_snap_load.c (the files one after the
 * other, the end of the core's load), kv_snap_load_read.c (reading, checking and parsing a
 * file's body) and kv_snap_load_take.c (what its records become).
 *
 * How a file loads. Reading and parsing overlap: the body is read in 1 MiB chunks, hashed in
 * file order as they arrive, and the hashed part is parsed at once. But a file loads whole or
 * not at all: whatever it would change is kept apart or undone until the whole file checks
 * out (body checksum, record count, every record readable).
 *   - When the snapshot's cores and partitioner are this run's (all_mine), every record of the
 *     core's one file is its own, and the store starts empty: items are linked a batch at a
 *     time as they are parsed (no lookup: a file never holds a key twice, see
 *     mc_store_walk_next), after mc_store_mark; a file that fails is undone (mc_store_undo).
 *   - Otherwise an item this core owns is staged (allocated, not linked: mc_store_stage), and
 *     one of another core is copied into a batch for its owner that is held back. Once the
 *     file checked out the staged items are linked, oldest first (a piece per turn), and the
 *     batches sent (each owner loads its batch with mc_store_load). Staged items beyond the
 *     store's memory limit drop the oldest ones, as linking them would evict them anyway.
 * A file that fails any check loads nothing, and its one-line message says why (with
 * --snapshot-strict the core's load fails instead). All of it runs on the loading core.
 */
#ifndef KV_SNAP_LOAD_INT_H
#define KV_SNAP_LOAD_INT_H

#include "kv_snap_int.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

#define FWD_BYTES         ((size_t)256 << 10) /* a batch for another core */
#define PIECE_ITEMS       20000               /* records parsed or linked per loop turn at most */
#define WINDOW            (2 * KV_SNAP_QUEUE) /* chunks read ahead of the parser at most */
#define KV_SNAP_HUGE_PAGE ((size_t)2 << 20)
#define HASH_SLICE        ((size_t)64 << 10) /* body bytes hashed just ahead of the parser */

/* Records for one owner core: the owner loads them, then frees it all. */
struct fwd {
    char *data;
    size_t len, cap;
    unsigned owner;
    struct fwd *next;           /* held back until the file checks out */
    struct kv_snap_result *res; /* the job's results: the owner counts into its own slot */
};

struct loader {
    const struct kv_snap_load_job *job;
    struct kv_snap_result *res;
    struct mc_store *store;
    unsigned self;
    /* The snapshot's cores and partitioner are this run's: file C holds only keys core C owns
     * (each core writes its own store, which holds only its own keys), and core C reads it. */
    bool all_mine;
    uint32_t next_file; /* index + 1 of the file being loaded (0: none yet) */
    /* the current file */
    char path[PATH_MAX];
    int fd;
    uint64_t size;
    struct kv_snap_header h;
    char *hdr;
    char **chunk; /* the parser's arrays: reads fill them, the parser frees what it passed */
    bool *ready;
    unsigned nchunks, next_read, reads_inflight, hashed; /* hashed: the chunk being hashed */
    size_t hashed_off;                                   /* bytes of it hashed */
    uint64_t hashed_bytes;
    int read_err;
    char *region;       /* WINDOW chunk buffers in huge pages (kv_snap_load_read.c) */
    char *pool[WINDOW]; /* buffers of the region free for the next reads */
    unsigned npool;
    XXH3_state_t *hash;
    struct kv_snap_parser parser;
    bool parsing;              /* the parser holds the current file's chunks */
    bool yielding;             /* a piece of work waits for the next loop turn */
    char bad[KV_SNAP_WHY_MAX]; /* a record that cannot be read: the file fails once reads end */
    /* what the file would load */
    struct mc_item *staged, *staged_tail; /* chained through hnext, oldest first */
    size_t staged_bytes, nstaged;
    /* Linking as the file is read (the store was empty at its start, and no other core sends
     * items: all_mine): its items are linked a batch at a time while they are still in the
     * cache, and all unlinked again (mc_store_undo) when the file turns out bad. */
    bool link_early;
    struct mc_store_mark mark;
    uint64_t early_items;          /* items this file linked early */
    struct fwd **out;              /* [ncores]: the batch being filled for each owner */
    struct fwd *held, **held_tail; /* full batches, held back, oldest first */
    unsigned fwd_inflight;
    bool files_done;
    int err; /* fatal: the core's load fails */
    struct sn_promise *done;
};

/* ---- kv_snap_load.c ---- */

/* The next file of this core, or the end of its files. */
void kv_load_next_file(struct loader *l);

/* Closes the current file and drops whatever it holds or would load. */
void kv_load_file_free(struct loader *l);

/* A file that cannot be loaded: says why, then goes on without it (or fails, when strict). */
void kv_load_file_failed(struct loader *l, const char *why);

/* kv_load_file_failed with "<what>: <error>"; -ECANCELED (the reactor stops) ends the load. */
void kv_load_file_error(struct loader *l, const char *what, int err);

/* Ends the core's load once its files are done and no batch it sent is in flight. */
void kv_load_maybe_finish(struct loader *l);

/* ---- kv_snap_load_read.c ---- */

/* Reads, checks and parses the body of the current file (its header is read): 0, or a
 * negative errno when it cannot begin. */
int kv_load_body_start(struct loader *l);

/* Frees the chunk buffers kept for the next reads. */
void kv_load_buffers_free(struct loader *l);

/* ---- kv_snap_load_take.c ---- */

/* One record the parser returned: staged or linked here, or held for its owner. 0 or
 * -ENOMEM. */
int kv_load_take_record(struct loader *l, const struct mc_item_image *im);

/* The file checked out: links what it staged (a piece per turn), sends what it held, then
 * goes on with the next file. */
void kv_load_link_piece(struct loader *l);

/* Drops what the current file staged, linked early and held back (it failed, or the load
 * ends). */
void kv_load_drop_pending(struct loader *l);

#endif
