/*
 * One core loads its share of a snapshot at start-up, before the listener accepts: the data
 * files C with C % ncores == its id (so any core count reads a snapshot of any other). This
 * file takes the files one after the other (open, stat, header, then the body) and ends the
 * core's load; kv_snap_load_read.c reads, checks and parses a body, kv_snap_load_take.c turns
 * its records into items. kv_snap_load_int.h says how a file is loaded as a whole.
 *
 * The core's future settles once its files are done and every batch it sent was loaded.
 */
#include "kv_snap_load_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the end ---- */

static void loader_free(struct loader *l)
{
    kv_load_drop_pending(l);
    kv_load_buffers_free(l);
    free(l->out);
    XXH3_freeState(l->hash);
    free(l->hdr);
    free(l);
}

void kv_load_maybe_finish(struct loader *l)
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
    kv_load_maybe_finish(l);
}

/* ---- one file ---- */

void kv_load_file_free(struct loader *l)
{
    kv_load_drop_pending(l);
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

void kv_load_file_failed(struct loader *l, const char *why)
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
    kv_load_file_free(l);
    kv_load_next_file(l);
}

void kv_load_file_error(struct loader *l, const char *what, int err)
{
    if (err == -ECANCELED) { /* the reactor stops: no message, no more files */
        l->err = err;
        kv_load_file_free(l);
        all_files_done(l);
        return;
    }
    char why[KV_SNAP_WHY_MAX];
    snprintf(why, sizeof why, "%s: %s", what, sn_strerror(err));
    kv_load_file_failed(l, why);
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
        kv_load_file_error(l, "cannot read it", err);
        return;
    }
    if (kv_snap_header_decode((const uint8_t *)l->hdr, value, l->size, &l->h, why) < 0) {
        kv_load_file_failed(l, why);
        return;
    }
    const struct kv_snap_manifest *m = &l->job->m;
    if (l->h.generation != m->generation || l->h.ncores != m->ncores ||
        l->h.core != l->next_file - 1) {
        snprintf(why, sizeof why,
                 "belongs to another snapshot (generation %" PRIu64 ", core %" PRIu32 " of %" PRIu32
                 ")",
                 l->h.generation, l->h.core, l->h.ncores);
        kv_load_file_failed(l, why);
        return;
    }
    reserve(l);
    l->link_early = l->all_mine && mc_store_mark(l->store, &l->mark);
    if (l->h.cas_seq > l->res->cas_seq)
        l->res->cas_seq = l->h.cas_seq;
    if (l->h.flush_at > l->res->flush_at)
        l->res->flush_at = l->h.flush_at;
    int rc = kv_load_body_start(l);
    if (rc < 0)
        kv_load_file_error(l, "cannot read it", rc);
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
        kv_load_file_error(l, "cannot stat it", err);
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
        kv_load_file_error(l, err == -ENOENT ? "missing" : "cannot open it", err);
        return;
    }
    l->fd = (int)value;
    struct stat_req *sr = calloc(1, sizeof *sr);
    if (!sr) {
        kv_load_file_error(l, "cannot stat it", -ENOMEM);
        return;
    }
    sr->l = l;
    sn_done(sn_file_fstat(l->fd, &sr->st), stat_done, sr);
}

void kv_load_next_file(struct loader *l)
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
        kv_load_file_error(l, "cannot name it", rc);
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
    kv_load_next_file(l);
    return f;
}
