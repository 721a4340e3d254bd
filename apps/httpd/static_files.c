/*
 * sn-httpd /static: files under --root, read through io_uring (sn_file_read), with a small
 * per-core cache of whole files.
 *
 * Every request opens the file again: http_static_relpath refuses lexically whatever could
 * leave the root, and openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS) relative to the root's
 * directory fd closes the symlink hole. Nothing blocks the loop: the open is first tried
 * inline with sn_file_openat2_cached (RESOLVE_CACHED), which fails with -EAGAIN instead of
 * reading the disk when the path is not in the dentry cache; then it goes through io_uring
 * (sn_file_openat2) and the connection waits, like for a read. The fstat of an open fd needs
 * no I/O; the reads go through io_uring. SN_HTTPD_OPEN_URING=1 in the environment sends every
 * open through io_uring (for tests; also what kernels before 5.12, without RESOLVE_CACHED, get).
 *
 * Cache correctness: an entry is used only while the file's identity (device, inode, size,
 * mtime, ctime) is unchanged, which the fstat of every request checks. A change within the
 * timestamp granularity could keep that identity (the "racy git" problem), so a file is cached
 * only when its ctime is over a second old: any later change then gets a newer ctime. Files
 * over CACHE_FILE_MAX are streamed in chunks, at most STREAM_INFLIGHT of them queued at once.
 *
 * Output: every response goes into the reply slot conn.c began for its request, so a file
 * that is opened or read later still answers in request order, and a client that left only
 * makes the slot's writes fail (-EPIPE, harmless). Nothing here refers to the connection's
 * state, which on_close frees.
 */
#include "apps/httpd/httpd.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CACHE_BUCKETS   1024               /* power of two */
#define CACHE_BYTES_MAX (64u << 20)        /* per core */
#define CACHE_FILE_MAX  (1u << 20)         /* larger files are streamed, never cached */
#define COPY_MAX        (16u << 10)        /* bodies up to this are copied into the output */
#define STREAM_CHUNK    (256u << 10)
#define STREAM_INFLIGHT 4

/* A file's contents with the identity they were read under. Refcounted: the cache holds one
 * reference while it lists the entry, each queued zero-copy write one more. */
struct sfile {
    struct sfile *hnext;               /* hash chain */
    struct sn_list_node lru;           /* in the cache's LRU list, most recent first */
    struct httpd_static_cache *cache;  /* NULL once out of the cache */
    unsigned refs;
    uint64_t hash;
    dev_t dev;
    ino_t ino;
    struct timespec mtime, ctime;
    size_t size;
    char *path;
    char *data;
};

/* Set when every open should go through io_uring: SN_HTTPD_OPEN_URING=1. Shared by the
 * cores; it only ever goes from false to true. */
static atomic_bool open_uring_only;

struct httpd_static_cache {
    struct sfile *buckets[CACHE_BUCKETS];
    struct sn_list lru; /* struct sfile, most recently used first */
    size_t bytes;
};

/* ---- the cache ----------------------------------------------------------------------------- */

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static struct sfile *sfile_new(const char *path, const struct stat *st)
{
    size_t plen = strlen(path) + 1;
    struct sfile *f = malloc(sizeof *f + plen + (size_t)st->st_size);
    if (!f)
        return NULL;
    memset(f, 0, sizeof *f);
    f->refs = 1;
    f->path = (char *)(f + 1);
    memcpy(f->path, path, plen);
    f->data = f->path + plen;
    f->hash = hash_str(path);
    f->dev = st->st_dev;
    f->ino = st->st_ino;
    f->mtime = st->st_mtim;
    f->ctime = st->st_ctim;
    f->size = (size_t)st->st_size;
    return f;
}

static void sfile_unref(void *arg)
{
    struct sfile *f = arg;
    if (--f->refs == 0)
        free(f);
}

static void cache_remove(struct sfile *f)
{
    struct httpd_static_cache *c = f->cache;
    struct sfile **pp = &c->buckets[f->hash & (CACHE_BUCKETS - 1)];
    while (*pp != f)
        pp = &(*pp)->hnext;
    *pp = f->hnext;
    sn_list_remove(&f->lru);
    c->bytes -= f->size;
    f->cache = NULL;
    sfile_unref(f);
}

static struct sfile *lru_entry(struct sn_list_node *n)
{
    return n ? SN_CONTAINER_OF(n, struct sfile, lru) : NULL;
}

static struct sfile *cache_find(struct httpd_static_cache *c, const char *path)
{
    uint64_t h = hash_str(path);
    for (struct sfile *f = c->buckets[h & (CACHE_BUCKETS - 1)]; f; f = f->hnext)
        if (f->hash == h && strcmp(f->path, path) == 0)
            return f;
    return NULL;
}

static void cache_insert(struct httpd_static_cache *c, struct sfile *f)
{
    struct sfile *old;
    while ((old = lru_entry(sn_list_last(&c->lru))) && c->bytes + f->size > CACHE_BYTES_MAX)
        cache_remove(old);
    f->cache = c;
    f->refs++;
    struct sfile **b = &c->buckets[f->hash & (CACHE_BUCKETS - 1)];
    f->hnext = *b;
    *b = f;
    sn_list_push_front(&c->lru, &f->lru);
    c->bytes += f->size;
}

static void cache_touch(struct sfile *f)
{
    sn_list_move_front(&f->cache->lru, &f->lru);
}

struct httpd_static_cache *httpd_static_cache_new(void)
{
    const char *force = getenv("SN_HTTPD_OPEN_URING");
    if (force && strcmp(force, "1") == 0)
        atomic_store_explicit(&open_uring_only, true, memory_order_relaxed);
    struct httpd_static_cache *c = calloc(1, sizeof *c);
    if (c)
        sn_list_init(&c->lru);
    return c;
}

void httpd_static_cache_free(struct httpd_static_cache *c)
{
    if (!c)
        return;
    struct sfile *f;
    while ((f = lru_entry(sn_list_first(&c->lru))))
        cache_remove(f);
    free(c);
}

static bool same_file(const struct sfile *f, const struct stat *st)
{
    return f->dev == st->st_dev && f->ino == st->st_ino && f->size == (size_t)st->st_size &&
           f->mtime.tv_sec == st->st_mtim.tv_sec && f->mtime.tv_nsec == st->st_mtim.tv_nsec &&
           f->ctime.tv_sec == st->st_ctim.tv_sec && f->ctime.tv_nsec == st->st_ctim.tv_nsec;
}

/* A file whose last change is over a second old: a later change cannot keep its ctime. */
static bool settled(const struct stat *st)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return now.tv_sec - st->st_ctim.tv_sec >= 2 ||
           (now.tv_sec - st->st_ctim.tv_sec == 1 && now.tv_nsec >= st->st_ctim.tv_nsec);
}

/* ---- responses ----------------------------------------------------------------------------- */

/* One /static response: its reply slot, which every path below ends exactly once. */
struct sreq {
    struct httpd_core *hc;
    struct sn_reply *slot;
    bool head;
    bool keep_alive;
    int minor;
    const char *mime;
};

/* The answer cannot be completed (see httpd.h): reset the connection, end the slot. */
static void sreq_fail(struct sreq *q)
{
    sn_ignore(sn_conn_abort(sn_reply_conn(q->slot)));
    sn_reply_end(q->slot);
}

/* An error answer that keeps the connection as the request asked. */
static void sreq_error(struct sreq *q, int status)
{
    char buf[256];
    int n = http_response_error(buf, sizeof buf, status, q->hc->date.str, q->keep_alive, q->minor,
                                q->head);
    httpd_count_status(q->hc, status);
    if (n > 0)
        (void)sn_reply_write(q->slot, buf, (size_t)n); /* -EPIPE: the client is gone */
    sn_reply_end(q->slot);
}

static bool send_head(struct sreq *q, uint64_t size)
{
    char buf[512];
    struct http_response r = {
        .status = 200,
        .content_type = q->mime,
        .content_length = size,
        .keep_alive = q->keep_alive,
        .req_minor = q->minor,
    };
    int n = http_response_head(buf, sizeof buf, &r, q->hc->date.str);
    httpd_count_status(q->hc, 200);
    return n > 0 && sn_reply_write(q->slot, buf, (size_t)n) == 0;
}

/* Head and body of a file held in memory; ends the slot. */
static void send_file(struct sreq *q, struct sfile *f)
{
    if (send_head(q, f->size) && !q->head && f->size) {
        if (f->size <= COPY_MAX)
            (void)sn_reply_write(q->slot, f->data, f->size);
        else if (sn_reply_write_ref(q->slot, f->data, f->size, sfile_unref, f) == 0)
            f->refs++; /* (released from the loop, never inside the call) */
    }
    sn_reply_end(q->slot);
}

/* ---- reading a whole file ------------------------------------------------------------------ */

struct file_read {
    struct sreq q;
    struct sfile *f;
    int fd;
    bool cache;
};

static void whole_read_done(void *arg, int err, uint64_t value)
{
    struct file_read *r = arg;
    close(r->fd);
    if (err) {
        sreq_fail(&r->q);
    } else {
        /* Fewer bytes than fstat said: the file shrank meanwhile. Serve what was read, and
         * do not cache it (its identity is the old one). */
        if (value != r->f->size) {
            r->f->size = (size_t)value;
            r->cache = false;
        }
        struct httpd_static_cache *c = r->q.hc->cache;
        struct sfile *old = cache_find(c, r->f->path);
        if (old)
            cache_remove(old);
        if (r->cache)
            cache_insert(c, r->f);
        send_file(&r->q, r->f);
    }
    sfile_unref(r->f);
    free(r);
}

static void read_whole(struct sreq *q, int fd, const char *rel, const struct stat *st)
{
    struct file_read *r = malloc(sizeof *r);
    struct sfile *f = r ? sfile_new(rel, st) : NULL;
    if (!f) {
        free(r);
        close(fd);
        sreq_fail(q);
        return;
    }
    *r = (struct file_read){.q = *q, .f = f, .fd = fd, .cache = settled(st)};
    httpd_count(q->hc->ctr, HC_STATIC_MISSES);
    sn_done(sn_file_read(fd, f->data, f->size, 0), whole_read_done, r);
}

/* ---- streaming a large file ---------------------------------------------------------------- */

/* A file streamed into its slot in chunks, at most STREAM_INFLIGHT of them queued and not yet
 * sent (each chunk's release reads the next one). */
struct stream {
    struct sreq q;
    int fd;
    uint64_t size, off;
    unsigned inflight; /* chunks queued in the slot, not yet released */
    unsigned depth;    /* stream functions running (a read may settle inline, nested) */
    bool reading;
    bool ended;        /* every byte queued (slot ended), or failed (connection reset) */
};

struct chunk {
    struct stream *s;
    size_t len;
    char data[];
};

static void stream_next(struct stream *s);

/* Leaves a stream function; frees the stream once nothing refers to it any more. */
static void stream_leave(struct stream *s)
{
    if (--s->depth || !s->ended || s->reading || s->inflight)
        return;
    free(s);
}

static void stream_end(struct stream *s, bool ok)
{
    s->ended = true;
    close(s->fd);
    if (ok)
        sn_reply_end(s->q.slot);
    else
        sreq_fail(&s->q); /* the Content-Length promised cannot be kept */
}

static void chunk_release(void *arg)
{
    struct chunk *k = arg;
    struct stream *s = k->s;
    free(k);
    s->depth++;
    s->inflight--;
    if (!s->ended)
        stream_next(s);
    stream_leave(s);
}

static void chunk_read(void *arg, int err, uint64_t value)
{
    struct chunk *k = arg;
    struct stream *s = k->s;
    s->depth++;
    s->reading = false;
    if (err || value != k->len ||
        sn_reply_write_ref(s->q.slot, k->data, k->len, chunk_release, k) < 0) {
        free(k); /* a read error, or -EPIPE: the client left */
        stream_end(s, false);
    } else {
        s->inflight++;
        s->off += value;
        if (s->off == s->size)
            stream_end(s, true);
        else
            stream_next(s);
    }
    stream_leave(s);
}

static void stream_next(struct stream *s)
{
    if (s->reading || s->ended || s->inflight >= STREAM_INFLIGHT)
        return;
    uint64_t left = s->size - s->off;
    size_t n = left < STREAM_CHUNK ? (size_t)left : STREAM_CHUNK;
    struct chunk *k = malloc(sizeof *k + n);
    if (!k) {
        stream_end(s, false);
        return;
    }
    k->s = s;
    k->len = n;
    s->reading = true;
    sn_done(sn_file_read(s->fd, k->data, n, s->off), chunk_read, k);
}

static void stream_file(struct sreq *q, int fd, const struct stat *st)
{
    struct stream *s = calloc(1, sizeof *s);
    if (!s || !send_head(q, (uint64_t)st->st_size)) {
        free(s);
        close(fd);
        sreq_fail(q);
        return;
    }
    s->q = *q;
    s->fd = fd;
    s->size = (uint64_t)st->st_size;
    httpd_count(q->hc->ctr, HC_STATIC_MISSES);
    s->depth = 1;
    stream_next(s);
    stream_leave(s);
}

/* ---- the route ----------------------------------------------------------------------------- */

#define OPEN_FLAGS   (O_RDONLY | O_NOCTTY | O_NONBLOCK) /* a FIFO must not wait for a writer */
#define OPEN_RESOLVE (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)

/* openat2 beneath the root if it needs no I/O: a file descriptor, a negative errno, or
 * -EAGAIN when the open must go through io_uring (also always on kernels before 5.12). */
static int open_cached(int root_fd, const char *rel)
{
    if (atomic_load_explicit(&open_uring_only, memory_order_relaxed))
        return -EAGAIN;
    return sn_file_openat2_cached(root_fd, rel, OPEN_FLAGS, OPEN_RESOLVE);
}

/* Answers the request for `rel` (n bytes) given the result of opening it: an fd (consumed)
 * or a negative errno. */
static void serve_opened(struct sreq *q, int fd, const char *rel, int n)
{
    struct httpd_core *hc = q->hc;
    if (fd < 0) {
        sreq_error(q, http_status_from_errno(fd));
        return;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        sreq_error(q, 404);
        return;
    }
    q->mime = http_mime_type(rel, (size_t)n);
    struct sfile *f = cache_find(hc->cache, rel);
    if (f && same_file(f, &st)) {
        close(fd);
        cache_touch(f);
        httpd_count(hc->ctr, HC_STATIC_HITS);
        send_file(q, f);
        return;
    }
    if (f)
        cache_remove(f); /* stale */
    if (q->head) {
        close(fd);
        send_head(q, (uint64_t)st.st_size);
        sn_reply_end(q->slot);
    } else if ((uint64_t)st.st_size <= CACHE_FILE_MAX) {
        read_whole(q, fd, rel, &st);
    } else {
        stream_file(q, fd, &st);
    }
}

/* An open going through io_uring, and the request waiting for it. */
struct pending_open {
    struct sreq q;
    int n;
    char rel[];
};

static void opened(void *arg, int err, uint64_t value)
{
    struct pending_open *o = arg;
    serve_opened(&o->q, err ? err : (int)value, o->rel, o->n);
    free(o);
}

/* Opens `rel` through io_uring; the slot waits for it. */
static void open_async(struct sreq *q, const char *rel, int n)
{
    struct pending_open *o = malloc(sizeof *o + (size_t)n + 1);
    if (!o) {
        sreq_fail(q);
        return;
    }
    *o = (struct pending_open){.q = *q, .n = n};
    memcpy(o->rel, rel, (size_t)n + 1);
    sn_done(sn_file_openat2(q->hc->srv->root_fd, o->rel, OPEN_FLAGS, 0, OPEN_RESOLVE), opened, o);
}

void httpd_static_serve(struct httpd_core *hc, struct sn_reply *slot,
                        const struct http_request *req, const char *rest, size_t rest_len)
{
    struct sreq q = {.hc = hc,
                     .slot = slot,
                     .head = req->method == HTTP_HEAD,
                     .keep_alive = req->keep_alive,
                     .minor = req->minor};
    if (!hc->cache) {
        sreq_error(&q, 404);
        return;
    }
    char rel[PATH_MAX];
    int n = http_static_relpath(rel, sizeof rel, rest, rest_len);
    int fd = n < 0 ? n : open_cached(hc->srv->root_fd, rel);
    if (fd == -EAGAIN)
        open_async(&q, rel, n);
    else
        serve_opened(&q, fd, rel, n);
}
