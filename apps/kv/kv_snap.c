/*
 * sn-kv's snapshots, the run-wide steps on core 0 (format: kv_snap_format.h; one core's file:
 * kv_snap_write.c; one core's load: kv_snap_load.c).
 *
 * Save (kv_snap_save): every core writes DIR/sn-kv.G.C.snap for the next generation G in
 * parallel (sn_invoke_on_all), each fsyncs its file; then core 0 writes the manifest naming G
 * to DIR/sn-kv.manifest.tmp, fsyncs it, renames it over DIR/sn-kv.manifest (the commit) and
 * fsyncs DIR; only then are the files of other generations removed. A crash at any point
 * leaves the manifest naming a generation whose files are all on disk: the previous one
 * until the rename, the new one after it.
 *
 * Load (kv_snap_start): core 0 reads the manifest, then every core loads its share of G's
 * files (C % ncores == core), forwarding items to their owners; core 0 then raises every
 * store's cas sequence above the largest one saved (so new uniques differ from all loaded
 * ones) and restores a pending delayed flush_all.
 *
 * Blocking calls: the directory listing (opendir/readdir, a handful of names) at start-up and
 * after each snapshot; every read, write, fsync, rename and unlink goes through libsn's
 * io_uring files.
 */
#include "kv_snap.h"
#include "kv_snap_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MANIFEST_MAX 4096 /* a manifest is a few lines */

/* Core 0's state. */
static struct {
    uint64_t generation; /* the newest generation committed or seen in DIR */
    bool loaded;         /* the load is over: the stores may be saved */
    bool saving;
    bool timer_ready;
    struct sn_promise *after_save; /* kv_snap_stop waits for the save in progress */
    struct sn_timer timer;
} snap;

/* ---- small helpers shared with the writer and the loader ---- */

void kv_snap_complain(const char *path, const char *why)
{
    fprintf(stderr, "sn-kv: snapshot %s: %s\n", path, why);
}

void kv_snap_close_fd(int fd)
{
    if (sn_stopping())
        close(fd);
    else
        sn_ignore(sn_file_close(fd));
}

struct open_req {
    int flags;
    char path[];
};

static struct sn_future *open_again(void *arg, int err, uint64_t value)
{
    struct open_req *o = arg;
    struct sn_future *f = err == -EINVAL ? sn_file_open(o->path, o->flags, 0644)
                          : err          ? sn_failed(err)
                                         : sn_ready(value);
    free(o);
    return f;
}

struct sn_future *kv_snap_open(const char *path, int flags, bool direct)
{
    size_t n = strlen(path) + 1;
    struct open_req *o = direct ? malloc(sizeof *o + n) : NULL;
    if (!o)
        return sn_file_open(path, flags, 0644);
    o->flags = flags;
    memcpy(o->path, path, n);
    /* O_DIRECT where the file system has it (tmpfs before Linux 6.6 refuses it: EINVAL). */
    return sn_then_wrapped(sn_file_open(path, flags | O_DIRECT, 0644), open_again, o);
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    if (kv_srv.opt.quiet)
        return;
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    fflush(stdout);
}

static double since_s(uint64_t t0)
{
    return (double)(sn_now_ns() - t0) / 1e9;
}

static double mb_per_s(uint64_t bytes, double s)
{
    return s > 0 ? (double)bytes / 1e6 / s : 0;
}

/*
 * The data files in DIR: their number into *n and their names (malloc'd, NUL separated)
 * for those whose generation is not `keep`; the largest generation seen into *max.
 */
static char *list_other_files(const char *dir, uint64_t keep, unsigned *n, uint64_t *max)
{
    *n = 0;
    *max = 0;
    DIR *d = opendir(dir);
    if (!d)
        return NULL;
    size_t len = 0, cap = 0;
    char *names = NULL;
    struct dirent *e;
    while ((e = readdir(d))) {
        uint64_t g;
        if (!kv_snap_data_name(e->d_name, &g))
            continue;
        if (g > *max)
            *max = g;
        size_t nl = strlen(e->d_name) + 1;
        if (g == keep)
            continue;
        if (len + nl > cap) {
            size_t c = cap ? cap * 2 : 1024;
            char *bigger = realloc(names, c + nl);
            if (!bigger)
                break;
            names = bigger;
            cap = c + nl;
        }
        memcpy(names + len, e->d_name, nl);
        len += nl;
        (*n)++;
    }
    closedir(d);
    return names;
}

/* Unlinks the data files of every generation but `keep`; the future settles when done. */
static struct sn_future *remove_other_files(const char *dir, uint64_t keep)
{
    unsigned n;
    uint64_t max;
    char *names = list_other_files(dir, keep, &n, &max);
    struct sn_future **fs = n ? calloc(n, sizeof *fs) : NULL;
    if (!fs) {
        free(names);
        return sn_ready(0);
    }
    const char *name = names;
    for (unsigned i = 0; i < n; i++, name += strlen(name) + 1) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", dir, name);
        fs[i] = sn_file_unlink(path);
    }
    struct sn_future *all = sn_when_all(fs, n, NULL);
    free(fs);
    free(names);
    return all;
}

/* ---- save ---- */

enum save_step {
    SV_FILES,    /* every core wrote its file */
    SV_OPEN_TMP, /* the manifest's temporary file */
    SV_WRITE,
    SV_SYNC,
    SV_CLOSE,
    SV_RENAME, /* the commit */
    SV_OPEN_DIR,
    SV_SYNC_DIR,
    SV_CLOSE_DIR,
    SV_CLEANED, /* older files removed */
};

struct save {
    struct kv_snap_save_job job;
    enum save_step step;
    int fd;
    int err;
    uint64_t t0, t_durable; /* start; the commit made durable (the directory synced) */
    size_t text_len;
    char text[MANIFEST_MAX];
    char tmp[PATH_MAX], manifest[PATH_MAX];
    struct sn_promise *done;
};

static void save_end(struct save *s, int err)
{
    snap.saving = false;
    if (err)
        sn_promise_fail(s->done, err);
    else
        sn_promise_set(s->done, s->job.generation);
    if (snap.after_save) {
        struct sn_promise *p = snap.after_save;
        snap.after_save = NULL;
        sn_promise_set(p, 0);
    }
    free(s->job.res);
    free(s);
}

static void save_report(struct save *s)
{
    uint64_t items = 0, bytes = 0;
    for (unsigned i = 0; i < kv_srv.ncores; i++) {
        items += s->job.res[i].items;
        bytes += s->job.res[i].bytes;
    }
    double t = (double)(s->t_durable - s->t0) / 1e9;
    say("sn-kv: snapshot %" PRIu64 " in %s: %" PRIu64 " items, %.1f MB in %.3f s (%.0f MB/s)\n",
        s->job.generation, s->job.dir, items, (double)bytes / 1e6, t, mb_per_s(bytes, t));
}

static void new_files_removed(void *arg, int err, uint64_t value)
{
    (void)err;
    (void)value;
    struct save *s = arg;
    save_end(s, s->err);
}

/* The save failed before the commit: the previous snapshot stays; its new files go. */
static void save_failed(struct save *s, const char *what, int err)
{
    if (s->fd >= 0)
        kv_snap_close_fd(s->fd);
    if (err != -ECANCELED)
        fprintf(stderr, "sn-kv: snapshot %" PRIu64 " in %s not taken (%s: %s); %s\n",
                s->job.generation, s->job.dir, what, sn_strerror(err),
                s->step > SV_RENAME ? "it may not survive a crash" : "the previous snapshot stays");
    if (s->step > SV_RENAME || sn_stopping()) {
        save_end(s, err);
        return;
    }
    s->err = err;
    struct sn_future *fs[1024];
    unsigned n = 0;
    for (unsigned c = 0; c < kv_srv.ncores && n < 1024; c++) {
        char path[PATH_MAX];
        if (kv_snap_data_path(path, sizeof path, s->job.dir, s->job.generation, c) == 0)
            fs[n++] = sn_file_unlink(path);
    }
    sn_done(sn_when_all(fs, n, NULL), new_files_removed, s);
}

static const char *step_name(enum save_step st)
{
    switch (st) {
    case SV_FILES: return "writing the data files";
    case SV_RENAME: return "renaming the manifest";
    case SV_OPEN_DIR:
    case SV_SYNC_DIR:
    case SV_CLOSE_DIR: return "syncing the directory";
    default: return "writing the manifest";
    }
}

static void save_step(void *arg, int err, uint64_t value);

static struct sn_future *next_step(struct save *s, uint64_t value)
{
    switch (s->step) {
    case SV_FILES: {
        struct kv_snap_manifest m = {
            .generation = s->job.generation, .ncores = kv_srv.ncores, .created = s->job.created};
        snprintf(m.partitioner, sizeof m.partitioner, "%s", kv_srv.opt.partitioner);
        int n = kv_snap_manifest_encode(&m, s->text, sizeof s->text);
        if (n < 0)
            return sn_failed(n);
        s->text_len = (size_t)n;
        return sn_file_open(s->tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    }
    case SV_OPEN_TMP: s->fd = (int)value; return sn_file_write(s->fd, s->text, s->text_len, 0);
    case SV_WRITE: return sn_file_fsync(s->fd);
    case SV_SYNC: {
        int fd = s->fd;
        s->fd = -1;
        return sn_file_close(fd);
    }
    case SV_CLOSE: return sn_file_rename(s->tmp, s->manifest);
    case SV_RENAME:
        snap.generation = s->job.generation; /* the manifest names it now */
        return sn_file_open(s->job.dir, O_RDONLY | O_DIRECTORY, 0);
    case SV_OPEN_DIR: s->fd = (int)value; return sn_file_fsync(s->fd);
    case SV_SYNC_DIR: {
        int fd = s->fd;
        s->fd = -1;
        return sn_file_close(fd);
    }
    case SV_CLOSE_DIR:
        s->t_durable = sn_now_ns();
        return remove_other_files(s->job.dir, s->job.generation);
    default: return sn_ready(0);
    }
}

static void save_step(void *arg, int err, uint64_t value)
{
    struct save *s = arg;
    if (s->step == SV_CLEANED) { /* committed and durable: a file left over does no harm */
        save_report(s);
        save_end(s, 0);
        return;
    }
    if (err) {
        save_failed(s, step_name(s->step), err);
        return;
    }
    struct sn_future *f = next_step(s, value);
    s->step++;
    sn_done(f, save_step, s);
}

struct sn_future *kv_snap_save(void)
{
    const struct kv_opts *o = &kv_srv.opt;
    if (!o->snapshot_dir || !snap.loaded)
        return sn_ready(0); /* never over a snapshot that is still being loaded */
    if (snap.saving)
        return sn_failed(-EBUSY);
    struct save *s = calloc(1, sizeof *s);
    struct kv_snap_result *res = calloc(kv_srv.ncores, sizeof *res);
    if (!s || !res) {
        free(s);
        free(res);
        return sn_failed(-ENOMEM);
    }
    s->job = (struct kv_snap_save_job){.dir = o->snapshot_dir,
                                       .generation = snap.generation + 1,
                                       .created = (int64_t)time(NULL),
                                       .direct = true,
                                       .res = res};
    s->fd = -1;
    s->t0 = sn_now_ns();
    snprintf(s->manifest, sizeof s->manifest, "%s/" KV_SNAP_MANIFEST, o->snapshot_dir);
    snprintf(s->tmp, sizeof s->tmp, "%s/" KV_SNAP_MANIFEST ".tmp", o->snapshot_dir);
    snap.saving = true;
    struct sn_future *f;
    s->done = sn_promise_new(&f);
    sn_done(sn_invoke_on_all(kv_snap_write_core, &s->job), save_step, s);
    return f;
}

static void periodic(void *arg)
{
    (void)arg;
    if (!snap.saving)
        sn_ignore(kv_snap_save()); /* its messages say how it went */
}

static struct sn_future *final_save(void *arg, int err, uint64_t value)
{
    (void)arg;
    (void)err;
    (void)value;
    return kv_snap_save();
}

struct sn_future *kv_snap_stop(void)
{
    if (!kv_srv.opt.snapshot_dir || !snap.loaded)
        return sn_ready(0);
    if (snap.timer_ready)
        sn_timer_cancel(&snap.timer);
    if (!snap.saving)
        return kv_snap_save();
    struct sn_future *f;
    snap.after_save = sn_promise_new(&f);
    return sn_then_wrapped(f, final_save, NULL);
}

/* ---- load ---- */

struct load {
    struct kv_snap_load_job job;
    uint64_t cas_seq;
    uint32_t flush_at;
    int fd;
    uint64_t t0;
    struct sn_file_stat st;
    char text[MANIFEST_MAX];
    char manifest[PATH_MAX];
    struct sn_promise *done;
};

static void arm_periodic(void)
{
    unsigned every = kv_srv.opt.snapshot_every;
    sn_timer_init(&snap.timer, periodic, NULL);
    snap.timer_ready = true;
    if (every)
        sn_timer_arm_periodic(&snap.timer, (uint64_t)every * 1000000000u);
}

static void load_end(struct load *l, int err)
{
    if (!err) {
        snap.loaded = true;
        arm_periodic();
    }
    if (l->fd >= 0)
        kv_snap_close_fd(l->fd);
    if (err)
        sn_promise_fail(l->done, err);
    else
        sn_promise_set(l->done, 0);
    free(l->job.res);
    free(l);
}

/* The manifest (or the whole snapshot) cannot be used: start empty, or refuse when strict. */
static void load_refused(struct load *l, const char *why)
{
    char line[KV_SNAP_WHY_MAX + 64];
    snprintf(line, sizeof line, "%s; %s", why,
             l->job.strict ? "refusing to start (--snapshot-strict)" : "starting empty");
    kv_snap_complain(l->manifest, line);
    load_end(l, l->job.strict ? -EBADMSG : 0);
}

/* On every core after the load: new cas uniques above every saved one, the pending flush. */
static struct sn_future *apply_saved_state(void *arg)
{
    const struct load *l = arg;
    struct mc_store *s = kv_srv.cores[sn_core_id()]->store;
    mc_store_cas_raise(s, l->cas_seq);
    mc_store_restore_flush(s, l->flush_at);
    return SN_SUCCESS;
}

static void load_report(struct load *l)
{
    struct kv_snap_result t = {0};
    for (unsigned i = 0; i < kv_srv.ncores; i++) {
        const struct kv_snap_result *r = &l->job.res[i];
        t.items += r->items;
        t.bytes += r->bytes;
        t.files += r->files;
        t.expired += r->expired;
        t.too_large += r->too_large;
        t.no_memory += r->no_memory;
    }
    double s = since_s(l->t0);
    const struct kv_snap_manifest *m = &l->job.m;
    bool moved = m->ncores != kv_srv.ncores || strcmp(m->partitioner, kv_srv.opt.partitioner);
    say("sn-kv: loaded snapshot %" PRIu64 " (%" PRIu32 " cores, partitioner %s%s): %" PRIu64
        " items from %" PRIu64 " of %" PRIu32
        " files, %.1f MB in %.3f s (%.0f MB/s); dropped %" PRIu64 " expired, %" PRIu64
        " too large, %" PRIu64 " without room\n",
        m->generation, m->ncores, m->partitioner, moved ? "; items moved to their new owners" : "",
        t.items, t.files, m->ncores, (double)t.bytes / 1e6, s, mb_per_s(t.bytes, s), t.expired,
        t.too_large, t.no_memory);
}

static void applied(void *arg, int err, uint64_t value)
{
    (void)value;
    struct load *l = arg;
    if (!err)
        load_report(l);
    load_end(l, err);
}

static void cores_loaded(void *arg, int err, uint64_t value)
{
    (void)value;
    struct load *l = arg;
    if (err) { /* strict (each core said why), or no memory */
        if (err != -ECANCELED && err != -EBADMSG)
            fprintf(stderr, "sn-kv: snapshot %" PRIu64 " in %s: cannot start with it: %s\n",
                    l->job.m.generation, l->job.dir, sn_strerror(err));
        load_end(l, err);
        return;
    }
    for (unsigned i = 0; i < kv_srv.ncores; i++) {
        if (l->job.res[i].cas_seq > l->cas_seq)
            l->cas_seq = l->job.res[i].cas_seq;
        if (l->job.res[i].flush_at > l->flush_at)
            l->flush_at = l->job.res[i].flush_at;
    }
    sn_done(sn_invoke_on_all(apply_saved_state, l), applied, l);
}

static void manifest_closed(void *arg, int err, uint64_t value)
{
    (void)value;
    struct load *l = arg;
    char why[KV_SNAP_WHY_MAX];
    if (err) {
        load_refused(l, sn_strerror(err));
        return;
    }
    if (kv_snap_manifest_decode(l->text, l->st.size, &l->job.m, why) < 0) {
        load_refused(l, why);
        return;
    }
    if (l->job.m.generation > snap.generation)
        snap.generation = l->job.m.generation;
    sn_done(sn_invoke_on_all(kv_snap_load_core, &l->job), cores_loaded, l);
}

static void manifest_read(void *arg, int err, uint64_t value)
{
    struct load *l = arg;
    if (!err && value != l->st.size)
        err = -EIO;
    int fd = l->fd;
    l->fd = -1;
    if (err) {
        kv_snap_close_fd(fd);
        load_refused(l, sn_strerror(err));
        return;
    }
    sn_done(sn_file_close(fd), manifest_closed, l);
}

static void manifest_stat(void *arg, int err, uint64_t value)
{
    (void)value;
    struct load *l = arg;
    if (err) {
        load_refused(l, sn_strerror(err));
        return;
    }
    if (l->st.size > sizeof l->text) {
        load_refused(l, "manifest: too long: not an sn-kv snapshot manifest");
        return;
    }
    sn_done(sn_file_read(l->fd, l->text, l->st.size, 0), manifest_read, l);
}

static void manifest_opened(void *arg, int err, uint64_t value)
{
    struct load *l = arg;
    if (err == -ENOENT) {
        say("sn-kv: no snapshot in %s yet: starting empty\n", l->job.dir);
        load_end(l, 0);
        return;
    }
    if (err) {
        load_refused(l, sn_strerror(err));
        return;
    }
    l->fd = (int)value;
    sn_done(sn_file_fstat(l->fd, &l->st), manifest_stat, l);
}

struct sn_future *kv_snap_start(void)
{
    const struct kv_opts *o = &kv_srv.opt;
    if (!o->snapshot_dir)
        return sn_ready(0);
    struct load *l = calloc(1, sizeof *l);
    struct kv_snap_result *res = calloc(kv_srv.ncores, sizeof *res);
    if (!l || !res) {
        free(l);
        free(res);
        return sn_failed(-ENOMEM);
    }
    l->job = (struct kv_snap_load_job){
        .dir = o->snapshot_dir, .strict = o->snapshot_strict, .direct = true, .res = res};
    l->fd = -1;
    l->t0 = sn_now_ns();
    snprintf(l->manifest, sizeof l->manifest, "%s/" KV_SNAP_MANIFEST, o->snapshot_dir);
    /* New generations go above every one in DIR, so no file of another is overwritten. */
    unsigned n;
    free(list_other_files(o->snapshot_dir, UINT64_MAX, &n, &snap.generation));
    struct sn_future *f;
    l->done = sn_promise_new(&f);
    sn_done(sn_file_open(l->manifest, O_RDONLY, 0), manifest_opened, l);
    return f;
}
