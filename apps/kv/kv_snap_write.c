/*
 * One core writes its snapshot file (sn-kv.G.C.snap) while it goes on serving: it takes its
 * items from the store's walk (mc_store_walk_*, oldest first) into 1 MiB chunks, one chunk
 * per loop turn, and writes each chunk at its place in the file while it fills the next (up to
 * KV_SNAP_QUEUE chunks in flight). A record that does not fit the rest of a chunk goes on in
 * the next one (copied aside first, since the item may change before the next turn). When the
 * walk is over and every chunk is written, the header (item count, body length and checksum,
 * the store's cas sequence and pending flush_all) goes to offset 0, then fsync and close.
 * The file becomes part of a snapshot only when core 0 commits the manifest (kv_snap.c).
 */
#include "kv_snap_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

struct writer {
    const struct kv_snap_save_job *job;
    struct kv_snap_result *res;
    struct mc_store *store;
    char path[PATH_MAX];
    int fd;
    char *buf[KV_SNAP_QUEUE];
    bool busy[KV_SNAP_QUEUE];
    unsigned inflight; /* chunk writes not completed */
    bool yielding;     /* waiting for the next loop turn */
    bool filled;       /* the walk is over and nothing is left aside */
    char *carry;       /* a record that crossed the end of a chunk */
    size_t carry_len, carry_off;
    uint64_t chunks; /* chunks submitted */
    int err;
    struct kv_snap_header h;
    XXH3_state_t *hash; /* XXH3_createState: the state wants 64-byte alignment */
    struct sn_promise *done;
};

static void pump(struct writer *w);

char *kv_snap_alloc(size_t len)
{
    void *p = NULL;
    return posix_memalign(&p, KV_SNAP_ALIGN, len) == 0 ? p : NULL;
}

static void writer_free(struct writer *w)
{
    for (int i = 0; i < KV_SNAP_QUEUE; i++)
        free(w->buf[i]);
    free(w->carry);
    XXH3_freeState(w->hash);
    free(w);
}

/* The end: the promise settles with the item count, or fails with the first error. */
static void finish(struct writer *w, int err)
{
    if (err && !w->err)
        w->err = err;
    w->res->err = w->err;
    if (w->err) {
        mc_store_walk_end(w->store);
        if (w->err != -ECANCELED) {
            char why[KV_SNAP_WHY_MAX + 32];
            snprintf(why, sizeof why, "cannot write it: %s", sn_strerror(w->err));
            kv_snap_complain(w->path, why);
        }
        sn_promise_fail(w->done, w->err);
    } else {
        sn_promise_set(w->done, w->h.items);
    }
    writer_free(w);
}

static void closed(void *arg, int err, uint64_t value)
{
    (void)value;
    finish(arg, err);
}

/* Closes the file (also after a failure: through libsn if it still runs, else directly). */
static void close_file(struct writer *w, int err)
{
    if (err && !w->err)
        w->err = err;
    if (w->fd < 0) {
        finish(w, 0);
        return;
    }
    int fd = w->fd;
    w->fd = -1;
    if (sn_stopping()) {
        close(fd);
        finish(w, 0);
        return;
    }
    sn_done(sn_file_close(fd), closed, w);
}

static void synced(void *arg, int err, uint64_t value)
{
    (void)value;
    close_file(arg, err);
}

static void header_written(void *arg, int err, uint64_t value)
{
    (void)value;
    struct writer *w = arg;
    if (err) {
        close_file(w, err);
        return;
    }
    sn_done(sn_file_fsync(w->fd), synced, w);
}

/* Every chunk is on its way to disk and written: the header makes the file complete. */
static void write_header(struct writer *w)
{
    w->h.body_hash = XXH3_64bits_digest(w->hash);
    w->h.cas_seq = mc_store_cas_seq(w->store);
    w->h.flush_at = mc_store_pending_flush(w->store);
    w->res->items = w->h.items;
    w->res->bytes = kv_snap_file_size(w->h.body_bytes);
    kv_snap_header_encode(&w->h, (uint8_t *)w->buf[0]);
    sn_done(sn_file_write(w->fd, w->buf[0], KV_SNAP_ALIGN, 0), header_written, w);
}

struct chunk_write {
    struct writer *w;
    int b;
};

static void chunk_written(void *arg, int err, uint64_t value)
{
    (void)value;
    struct chunk_write *cw = arg;
    struct writer *w = cw->w;
    w->busy[cw->b] = false;
    free(cw);
    w->inflight--;
    if (err && !w->err)
        w->err = err;
    if (!w->yielding)
        pump(w);
}

/* Copies what is left of the aside record into buf[0..room): the bytes used. */
static size_t drain_carry(struct writer *w, char *buf, size_t room)
{
    size_t n = w->carry_len - w->carry_off;
    if (n > room)
        n = room;
    memcpy(buf, w->carry + w->carry_off, n);
    w->carry_off += n;
    if (w->carry_off == w->carry_len) {
        free(w->carry);
        w->carry = NULL;
    }
    return n;
}

/* Fills buf with the next records (a whole chunk unless the walk ends): the bytes used. */
static size_t fill(struct writer *w, char *buf)
{
    size_t used = w->carry ? drain_carry(w, buf, KV_SNAP_CHUNK) : 0;
    while (used < KV_SNAP_CHUNK && !w->carry) {
        const struct mc_item *it = mc_store_walk_next(w->store);
        if (!it) {
            w->filled = true;
            break;
        }
        size_t r = kv_snap_record_size(it);
        w->h.items++;
        if (r <= KV_SNAP_CHUNK - used) {
            kv_snap_record_put(buf + used, it);
            used += r;
            continue;
        }
        w->carry = malloc(r);
        if (!w->carry) {
            w->err = -ENOMEM;
            break;
        }
        kv_snap_record_put(w->carry, it);
        w->carry_len = r;
        w->carry_off = 0;
        used += drain_carry(w, buf + used, KV_SNAP_CHUNK - used);
    }
    return used;
}

/* Fills a free chunk and writes it at its place; zero-pads the last one for direct I/O. */
static void fill_and_write(struct writer *w, int b)
{
    size_t used = fill(w, w->buf[b]);
    if (w->err || used == 0)
        return;
    XXH3_64bits_update(w->hash, w->buf[b], used);
    w->h.body_bytes += used;
    size_t len = (used + KV_SNAP_ALIGN - 1) / KV_SNAP_ALIGN * KV_SNAP_ALIGN;
    memset(w->buf[b] + used, 0, len - used);
    struct chunk_write *cw = malloc(sizeof *cw);
    if (!cw) {
        w->err = -ENOMEM;
        return;
    }
    *cw = (struct chunk_write){w, b};
    w->busy[b] = true;
    w->inflight++;
    uint64_t at = KV_SNAP_ALIGN + w->chunks++ * KV_SNAP_CHUNK;
    sn_done(sn_file_write(w->fd, w->buf[b], len, at), chunk_written, cw);
}

static void yielded(void *arg, int err, uint64_t value)
{
    (void)value;
    struct writer *w = arg;
    w->yielding = false;
    if (err && !w->err)
        w->err = err; /* -ECANCELED: the reactor stops under a periodic snapshot */
    pump(w);
}

/*
 * Fills one chunk when a buffer is free, then lets the loop turn (its network, and the
 * write just queued) before the next; a write that completes calls it again. Ends with the
 * header once everything is written, or with the first error once nothing is in flight.
 */
static void pump(struct writer *w)
{
    if (!w->err && !w->filled) {
        int b = 0;
        while (b < KV_SNAP_QUEUE && w->busy[b])
            b++;
        if (b == KV_SNAP_QUEUE)
            return; /* a write completion comes back here */
        fill_and_write(w, b);
        if (!w->err && !w->filled) {
            w->yielding = true;
            sn_done(sn_yield(), yielded, w);
            return;
        }
    }
    if (w->inflight > 0)
        return;
    if (w->err)
        close_file(w, 0);
    else
        write_header(w);
}

static void opened(void *arg, int err, uint64_t value)
{
    struct writer *w = arg;
    if (err) {
        finish(w, err);
        return;
    }
    w->fd = (int)value;
    mc_store_walk_begin(w->store);
    pump(w);
}

struct sn_future *kv_snap_write_core(void *arg)
{
    const struct kv_snap_save_job *job = arg;
    unsigned id = sn_core_id();
    struct writer *w = calloc(1, sizeof *w);
    if (!w)
        return sn_failed(-ENOMEM);
    w->job = job;
    w->res = &job->res[id];
    w->store = kv_srv.cores[id]->store;
    w->fd = -1;
    w->h = (struct kv_snap_header){.core = id,
                                   .ncores = kv_srv.ncores,
                                   .generation = job->generation,
                                   .created = job->created};
    w->hash = XXH3_createState();
    int rc = w->hash ? kv_snap_data_path(w->path, sizeof w->path, job->dir, job->generation, id)
                     : -ENOMEM;
    if (rc == 0)
        XXH3_64bits_reset(w->hash);
    for (int i = 0; rc == 0 && i < KV_SNAP_QUEUE; i++)
        if (!(w->buf[i] = kv_snap_alloc(KV_SNAP_CHUNK)))
            rc = -ENOMEM;
    if (rc < 0) {
        w->res->err = rc;
        writer_free(w);
        return sn_failed(rc);
    }
    struct sn_future *f;
    w->done = sn_promise_new(&f);
    sn_done(kv_snap_open(w->path, O_WRONLY | O_CREAT | O_TRUNC, job->direct), opened, w);
    return f;
}
