/*
 * One core loads its share of a snapshot at start-up, before the listener accepts: the data
 * files C with C % ncores == its id (so any core count reads a snapshot of any other).
 *
 * Reading and parsing overlap. A file is read in 1 MiB chunks, KV_SNAP_QUEUE reads in flight;
 * the chunks are hashed in file order as they arrive, and the records of the hashed part are
 * parsed at once (a record waits when its end has not arrived), a piece per loop turn. But
 * nothing changes any store before the whole file checks out (body checksum, record count,
 * every record readable): an item this core owns is staged (allocated, not linked:
 * mc_store_stage), an item of another core is copied into a batch for its owner that is held
 * back. Only then are the staged items linked, oldest first (a piece per turn), and the
 * batches sent (each owner loads its batch with mc_store_load). A file that fails any check
 * frees what it staged and held: it loads nothing, and its one-line message says why (with
 * --snapshot-strict the core's load fails instead). Staged items beyond the store's memory
 * limit drop the oldest ones, as linking them would evict them anyway.
 *
 * The core's future settles once its files are done and every batch it sent was loaded.
 */
#include "kv_snap_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#define FWD_BYTES   ((size_t)256 << 10) /* a batch for another core */
#define PIECE_ITEMS 20000               /* records parsed or linked per loop turn at most */
#define WINDOW      (2 * KV_SNAP_QUEUE) /* chunks read ahead of the parser at most */

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
    unsigned nchunks, next_read, reads_inflight, hashed;
    uint64_t hashed_bytes;
    int read_err;
    char *pool[WINDOW]; /* chunk buffers the parser is done with, for the next reads */
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

static void next_file(struct loader *l);
static void pump(struct loader *l);
static void read_more(struct loader *l);

/* ---- an owner loads what another core sent ---- */

static void count(struct kv_snap_result *res, enum mc_result r)
{
    switch (r) {
    case MC_STORED: res->items++; break;
    case MC_TOO_LARGE: res->too_large++; break;
    case MC_NO_MEMORY: res->no_memory++; break;
    default: res->expired++; break;
    }
}

static struct sn_future *fwd_load(void *arg)
{
    struct fwd *f = arg;
    struct kv_snap_result *res = &f->res[sn_core_id()];
    struct mc_store *s = kv_srv.cores[sn_core_id()]->store;
    char **chunk = malloc(sizeof *chunk);
    size_t *clen = malloc(sizeof *clen);
    if (!chunk || !clen) {
        free(chunk);
        free(clen);
        free(f->data);
        free(f);
        return sn_failed(-ENOMEM);
    }
    chunk[0] = f->data;
    clen[0] = f->len;
    free(f);
    struct kv_snap_parser p;
    struct mc_item_image im;
    char why[KV_SNAP_WHY_MAX];
    kv_snap_parser_init(&p, chunk, clen, 1);
    int rc;
    while ((rc = kv_snap_parse_next(&p, &im, why)) > 0)
        count(res, mc_store_load(s, &im));
    kv_snap_parser_free(&p);
    return rc < 0 ? sn_failed(rc) : SN_SUCCESS;
}

/* ---- the end ---- */

static void fwd_free(struct fwd *f)
{
    if (f)
        free(f->data);
    free(f);
}

/* Drops what the current file staged and held back (it failed, or the load ends). */
static void drop_pending(struct loader *l)
{
    while (l->staged) {
        struct mc_item *it = l->staged;
        l->staged = it->hnext;
        mc_store_unstage(l->store, it);
    }
    l->staged_tail = NULL;
    l->staged_bytes = l->nstaged = 0;
    if (l->link_early)
        mc_store_undo(l->store, &l->mark);
    l->link_early = false;
    l->early_items = 0;
    while (l->held) {
        struct fwd *f = l->held;
        l->held = f->next;
        fwd_free(f);
    }
    l->held_tail = &l->held;
    for (unsigned i = 0; l->out && i < kv_srv.ncores; i++) {
        fwd_free(l->out[i]);
        l->out[i] = NULL;
    }
}

static void loader_free(struct loader *l)
{
    drop_pending(l);
    while (l->npool)
        free(l->pool[--l->npool]);
    free(l->out);
    XXH3_freeState(l->hash);
    free(l->hdr);
    free(l);
}

static void maybe_finish(struct loader *l)
{
    if (!l->files_done || l->fwd_inflight > 0)
        return;
    l->res->err = l->err;
    if (l->err)
        sn_promise_fail(l->done, l->err);
    else
        sn_promise_set(l->done, l->res->items);
    loader_free(l);
}

static void all_files_done(struct loader *l)
{
    l->files_done = true;
    maybe_finish(l);
}

/* ---- forwarding ---- */

static void fwd_done(void *arg, int err, uint64_t value)
{
    (void)value;
    struct loader *l = arg;
    l->fwd_inflight--;
    if (err && !l->err)
        l->err = err;
    maybe_finish(l);
}

static void fwd_send(struct loader *l, struct fwd *f)
{
    l->fwd_inflight++;
    sn_done(sn_submit_to(f->owner, fwd_load, f), fwd_done, l);
}

/* The file checked out: every batch leaves for its owner. */
static void send_held(struct loader *l)
{
    while (l->held) {
        struct fwd *f = l->held;
        l->held = f->next;
        fwd_send(l, f);
    }
    l->held_tail = &l->held;
    for (unsigned i = 0; i < kv_srv.ncores; i++) {
        if (l->out[i])
            fwd_send(l, l->out[i]);
        l->out[i] = NULL;
    }
}

/* Appends the parser's last record to the batch for `owner`. */
static int forward(struct loader *l, unsigned owner, const struct mc_item_image *im)
{
    size_t need = KV_SNAP_REC_HDR + im->nkey + im->nbytes;
    struct fwd *f = l->out[owner];
    if (f && f->len + need > f->cap) {
        f->next = NULL;
        *l->held_tail = f;
        l->held_tail = &f->next;
        f = l->out[owner] = NULL;
    }
    if (!f) {
        f = calloc(1, sizeof *f);
        if (!f)
            return -ENOMEM;
        f->cap = need > FWD_BYTES ? need : FWD_BYTES;
        f->owner = owner;
        f->res = l->job->res;
        if (!(f->data = malloc(f->cap))) {
            free(f);
            return -ENOMEM;
        }
        l->out[owner] = f;
    }
    f->len += kv_snap_parser_copy(&l->parser, im, f->data + f->len);
    l->res->forwarded++;
    return 0;
}

/* ---- staging ---- */

/* Items staged before a batch is linked (link_early): few enough to be still in the cache. */
#define LINK_BATCH 64

static void link_batch(struct loader *l)
{
    l->early_items +=
        mc_store_link_staged_chain(l->store, &l->staged, SIZE_MAX, true, &l->res->no_memory);
    l->staged_tail = NULL;
    l->staged_bytes = l->nstaged = 0;
}

static int stage(struct loader *l, const struct mc_item_image *im)
{
    enum mc_result r;
    struct mc_item *it = mc_store_stage(l->store, im, &r);
    if (!it) {
        if (r == MC_NO_MEMORY)
            return -ENOMEM;
        count(l->res, r);
        return 0;
    }
    it->hnext = NULL;
    if (l->staged_tail)
        l->staged_tail->hnext = it;
    else
        l->staged = it;
    l->staged_tail = it;
    l->staged_bytes += mc_item_size(it->nkey, it->nbytes);
    if (l->link_early && ++l->nstaged == LINK_BATCH) {
        link_batch(l);
        return 0;
    }
    /* More than the store holds: the oldest would be evicted by the newer ones anyway. */
    while (l->staged_bytes > mc_store_mem_limit(l->store) && l->staged != l->staged_tail) {
        struct mc_item *old = l->staged;
        l->staged = old->hnext;
        l->staged_bytes -= mc_item_size(old->nkey, old->nbytes);
        mc_store_unstage(l->store, old);
        l->res->no_memory++;
    }
    return 0;
}

/* One record: staged here, or held for its owner. */
static int take_record(struct loader *l, const struct mc_item_image *im)
{
    unsigned owner = l->all_mine ? l->self : kv_owner(im->key, im->nkey);
    return owner == l->self ? stage(l, im) : forward(l, owner, im);
}

/* ---- one file ---- */

static void file_free(struct loader *l)
{
    drop_pending(l);
    if (l->parsing)
        kv_snap_parser_free(&l->parser); /* the chunk arrays and the chunks left */
    l->parsing = false;
    l->chunk = NULL;
    free(l->ready);
    l->ready = NULL;
    if (l->fd >= 0)
        kv_snap_close_fd(l->fd);
    l->fd = -1;
}

/* A file that cannot be loaded: say why, then go on without it (or fail, when strict). */
static void file_failed(struct loader *l, const char *why)
{
    char line[KV_SNAP_WHY_MAX + 64];
    if (l->job->strict) {
        snprintf(line, sizeof line, "%s; refusing to start (--snapshot-strict)", why);
        if (!l->err)
            l->err = -EBADMSG;
    } else {
        snprintf(line, sizeof line, "%s; its items are not loaded", why);
    }
    kv_snap_complain(l->path, line);
    l->res->bad_files++;
    file_free(l);
    next_file(l);
}

static void file_error(struct loader *l, const char *what, int err)
{
    if (err == -ECANCELED) { /* the reactor stops: no message, no more files */
        l->err = err;
        file_free(l);
        all_files_done(l);
        return;
    }
    char why[KV_SNAP_WHY_MAX];
    snprintf(why, sizeof why, "%s: %s", what, sn_strerror(err));
    file_failed(l, why);
}

/* The file checked out: links what it staged (a piece per turn), sends what it held. */
static void link_piece(struct loader *l);

static void linked_yielded(void *arg, int err, uint64_t value)
{
    (void)value;
    struct loader *l = arg;
    l->yielding = false;
    if (err)
        file_error(l, "cannot load it", err);
    else
        link_piece(l);
}

static void link_piece(struct loader *l)
{
    l->res->items += mc_store_link_staged_chain(l->store, &l->staged, PIECE_ITEMS, l->link_early,
                                                &l->res->no_memory);
    if (l->staged) {
        l->yielding = true;
        sn_done(sn_yield(), linked_yielded, l);
        return;
    }
    if (l->link_early) { /* the file checked out: what it linked stays */
        uint64_t gone = mc_store_keep(l->store, &l->mark);
        l->res->items += l->early_items - gone;
        l->res->no_memory += gone;
        l->link_early = false;
        l->early_items = 0;
    }
    l->staged_tail = NULL;
    l->staged_bytes = 0;
    send_held(l);
    l->res->files++;
    l->res->bytes += l->size;
    file_free(l);
    next_file(l);
}

/* Every record was read and every chunk hashed: the last checks, then the commit. */
static void file_read(struct loader *l)
{
    char why[KV_SNAP_WHY_MAX];
    if (XXH3_64bits_digest(l->hash) != l->h.body_hash) {
        file_failed(l, "body checksum mismatch: corrupted");
        return;
    }
    if (l->parser.records != l->h.items) {
        snprintf(why, sizeof why,
                 "%" PRIu64 " records where the header says %" PRIu64 ": corrupted",
                 l->parser.records, l->h.items);
        file_failed(l, why);
        return;
    }
    kv_snap_close_fd(l->fd);
    l->fd = -1;
    link_piece(l);
}

static void pump_yielded(void *arg, int err, uint64_t value)
{
    (void)value;
    struct loader *l = arg;
    l->yielding = false;
    if (err) {
        l->read_err = l->read_err ? l->read_err : err;
        snprintf(l->bad, sizeof l->bad, "cannot load it: %s", sn_strerror(err));
    }
    pump(l);
}

/* Parses what has arrived (a piece per turn); ends the file once nothing is in flight. */
static void pump(struct loader *l)
{
    if (l->yielding)
        return;
    int rc = 1;
    char why[KV_SNAP_WHY_MAX];
    for (unsigned n = 0; n < PIECE_ITEMS && rc > 0 && !l->bad[0] && !l->read_err; n++) {
        struct mc_item_image im;
        rc = kv_snap_parse_next(&l->parser, &im, why);
        if (rc > 0 && take_record(l, &im) < 0) {
            snprintf(l->bad, sizeof l->bad, "cannot load it: %s", sn_strerror(-ENOMEM));
            rc = -ENOMEM;
        } else if (rc < 0 && rc != -EAGAIN) {
            snprintf(l->bad, sizeof l->bad, "%s", why);
        }
    }
    if (l->bad[0] || l->read_err) { /* the file fails once its reads are back */
        l->next_read = l->nchunks;
        if (l->reads_inflight > 0)
            return;
        if (l->read_err == -ECANCELED)
            file_error(l, "cannot read it", l->read_err);
        else if (l->bad[0])
            file_failed(l, l->bad);
        else
            file_error(l, "cannot read it", l->read_err);
        return;
    }
    read_more(l); /* the parser may have moved on */
    if (rc > 0) {
        l->yielding = true;
        sn_done(sn_yield(), pump_yielded, l);
        return;
    }
    if (rc == 0)
        file_read(l);
    /* -EAGAIN: a read completion comes back here */
}

struct chunk_read {
    struct loader *l;
    unsigned i;
    size_t len;
};

static void chunk_read(void *arg, int err, uint64_t value)
{
    struct chunk_read *cr = arg;
    struct loader *l = cr->l;
    unsigned i = cr->i;
    size_t len = cr->len;
    free(cr);
    l->reads_inflight--;
    if (!err && value != len)
        err = -EIO; /* the file shrank under us */
    if (err && !l->read_err)
        l->read_err = err;
    if (!err)
        l->ready[i] = true;
    bool more = false;
    while (!l->read_err && l->hashed < l->nchunks && l->ready[l->hashed]) {
        size_t n = l->parser.clen[l->hashed];
        XXH3_64bits_update(l->hash, l->chunk[l->hashed], n);
        l->hashed_bytes += n;
        l->hashed++;
        more = true;
    }
    if (more)
        kv_snap_parser_avail(&l->parser, l->hashed_bytes);
    read_more(l);
    pump(l);
}

static void read_more(struct loader *l)
{
    uint64_t padded = l->size - KV_SNAP_ALIGN;
    /* Reused buffers, at most WINDOW chunks ahead of the parser: memory stays bounded and
     * warm (a fresh buffer costs a page fault per page). A record bigger than the window
     * (-I allows 1 GiB) reads on to its end, or the parser would wait for it forever. */
    while (!l->read_err && !l->bad[0] && l->next_read < l->nchunks &&
           l->reads_inflight < KV_SNAP_QUEUE &&
           (l->next_read < l->parser.ci + WINDOW ||
            (uint64_t)l->next_read * KV_SNAP_CHUNK < l->parser.want)) {
        unsigned i = l->next_read++;
        uint64_t at = (uint64_t)i * KV_SNAP_CHUNK;
        size_t len = padded - at < KV_SNAP_CHUNK ? (size_t)(padded - at) : KV_SNAP_CHUNK;
        struct chunk_read *cr = malloc(sizeof *cr);
        l->chunk[i] = l->npool ? l->pool[--l->npool] : kv_snap_alloc(KV_SNAP_CHUNK);
        if (!cr || !l->chunk[i]) {
            free(cr);
            l->read_err = -ENOMEM;
            return;
        }
        *cr = (struct chunk_read){l, i, len};
        l->reads_inflight++;
        sn_done(sn_file_read(l->fd, l->chunk[i], len, KV_SNAP_ALIGN + at), chunk_read, cr);
    }
}

/* The parser is done with a chunk: its buffer serves a later read. */
static void pool_put(void *arg, char *chunk)
{
    struct loader *l = arg;
    if (l->npool < WINDOW)
        l->pool[l->npool++] = chunk;
    else
        free(chunk);
}

/* The parser's arrays for the body: chunk i holds body bytes [i MiB, (i+1) MiB). */
static int prepare_body(struct loader *l)
{
    uint64_t padded = l->size - KV_SNAP_ALIGN;
    unsigned n = (unsigned)((padded + KV_SNAP_CHUNK - 1) / KV_SNAP_CHUNK);
    char **chunk = calloc(n ? n : 1, sizeof *chunk);
    size_t *clen = calloc(n ? n : 1, sizeof *clen);
    l->ready = calloc(n ? n : 1, sizeof *l->ready);
    if (!chunk || !clen || !l->ready) {
        free(chunk);
        free(clen);
        return -ENOMEM;
    }
    for (unsigned i = 0; i < n; i++) {
        uint64_t at = (uint64_t)i * KV_SNAP_CHUNK;
        clen[i] =
            l->h.body_bytes - at < KV_SNAP_CHUNK ? (size_t)(l->h.body_bytes - at) : KV_SNAP_CHUNK;
    }
    kv_snap_parser_init(&l->parser, chunk, clen, n);
    kv_snap_parser_avail(&l->parser, 0);
    l->parser.release = pool_put;
    l->parser.release_arg = l;
    l->parsing = true;
    l->chunk = chunk;
    l->nchunks = n;
    l->next_read = l->hashed = l->reads_inflight = 0;
    l->hashed_bytes = 0;
    l->read_err = 0;
    l->bad[0] = '\0';
    XXH3_64bits_reset(l->hash);
    return 0;
}

/*
 * Sizes the store's table for this core's share of the file's items: all of them when the
 * cores and partitioner are those of the snapshot; else the file's items spread over every
 * core, and this core reads `mine` of the files, so its share of the whole snapshot comes in
 * as it reads them. An estimate: the table still grows if more come.
 */
static void reserve(struct loader *l)
{
    const struct kv_snap_manifest *m = &l->job->m;
    uint32_t mine = 0;
    for (uint32_t j = l->self; j < m->ncores; j += kv_srv.ncores)
        mine++;
    uint64_t more = l->h.items * m->ncores / ((uint64_t)kv_srv.ncores * (mine ? mine : 1));
    (void)mc_store_reserve(l->store, (size_t)more); /* without it the table grows as usual */
}

/* Checks the header against the manifest, then reads and parses the body. */
static void header_read(void *arg, int err, uint64_t value)
{
    struct loader *l = arg;
    char why[KV_SNAP_WHY_MAX];
    if (err) {
        file_error(l, "cannot read it", err);
        return;
    }
    if (kv_snap_header_decode((const uint8_t *)l->hdr, value, l->size, &l->h, why) < 0) {
        file_failed(l, why);
        return;
    }
    const struct kv_snap_manifest *m = &l->job->m;
    if (l->h.generation != m->generation || l->h.ncores != m->ncores ||
        l->h.core != l->next_file - 1) {
        snprintf(why, sizeof why,
                 "belongs to another snapshot (generation %" PRIu64 ", core %" PRIu32 " of %" PRIu32
                 ")",
                 l->h.generation, l->h.core, l->h.ncores);
        file_failed(l, why);
        return;
    }
    reserve(l);
    l->link_early = l->all_mine && mc_store_mark(l->store, &l->mark);
    if (l->h.cas_seq > l->res->cas_seq)
        l->res->cas_seq = l->h.cas_seq;
    if (l->h.flush_at > l->res->flush_at)
        l->res->flush_at = l->h.flush_at;
    int rc = prepare_body(l);
    if (rc < 0) {
        file_error(l, "cannot read it", rc);
        return;
    }
    read_more(l);
    pump(l); /* an empty body is read already */
}

struct stat_req {
    struct loader *l;
    struct sn_file_stat st;
};

static void stat_done(void *arg, int err, uint64_t value)
{
    (void)value;
    struct stat_req *sr = arg;
    struct loader *l = sr->l;
    l->size = sr->st.size;
    free(sr);
    if (err) {
        file_error(l, "cannot stat it", err);
        return;
    }
    if (l->size < KV_SNAP_ALIGN) {
        header_read(l, 0, 0); /* too short: the decoder says so */
        return;
    }
    sn_done(sn_file_read(l->fd, l->hdr, KV_SNAP_ALIGN, 0), header_read, l);
}

static void opened(void *arg, int err, uint64_t value)
{
    struct loader *l = arg;
    if (err) {
        file_error(l, err == -ENOENT ? "missing" : "cannot open it", err);
        return;
    }
    l->fd = (int)value;
    struct stat_req *sr = calloc(1, sizeof *sr);
    if (!sr) {
        file_error(l, "cannot stat it", -ENOMEM);
        return;
    }
    sr->l = l;
    sn_done(sn_file_fstat(l->fd, &sr->st), stat_done, sr);
}

static void next_file(struct loader *l)
{
    const struct kv_snap_manifest *m = &l->job->m;
    uint32_t j = l->next_file ? l->next_file - 1 + kv_srv.ncores : l->self;
    if (l->err || j >= m->ncores) {
        all_files_done(l);
        return;
    }
    l->next_file = j + 1;
    int rc = kv_snap_data_path(l->path, sizeof l->path, l->job->dir, m->generation, j);
    if (rc < 0) {
        file_error(l, "cannot name it", rc);
        return;
    }
    sn_done(kv_snap_open(l->path, O_RDONLY, l->job->direct), opened, l);
}

struct sn_future *kv_snap_load_core(void *arg)
{
    const struct kv_snap_load_job *job = arg;
    struct loader *l = calloc(1, sizeof *l);
    if (!l)
        return sn_failed(-ENOMEM);
    l->job = job;
    l->self = sn_core_id();
    l->all_mine =
        job->m.ncores == kv_srv.ncores && strcmp(job->m.partitioner, kv_srv.opt.partitioner) == 0;
    l->res = &job->res[l->self];
    l->store = kv_srv.cores[l->self]->store;
    l->fd = -1;
    l->held_tail = &l->held;
    l->hash = XXH3_createState();
    l->hdr = kv_snap_alloc(KV_SNAP_ALIGN);
    l->out = calloc(kv_srv.ncores, sizeof *l->out);
    if (!l->hash || !l->hdr || !l->out) {
        loader_free(l);
        return sn_failed(-ENOMEM);
    }
    struct sn_future *f;
    l->done = sn_promise_new(&f);
    next_file(l);
    return f;
}
