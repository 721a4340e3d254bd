/*
 * Internals of sn-kv's snapshots shared by kv_snap.c (the run-wide steps on core 0: manifest,
 * generations, clean-up, the periodic timer, messages), kv_snap_write.c (one core writes its
 * file) and kv_snap_load.c (one core loads its files and forwards items to their owners).
 */
#ifndef KV_SNAP_INT_H
#define KV_SNAP_INT_H

#include "kv.h"
#include "kv_snap_format.h"

#include <limits.h>

/* Chunk buffers per core: one being filled (or parsed) while the others are in flight. */
#define KV_SNAP_QUEUE 4

/* What one core did in a save or a load: written by that core only, read by core 0 after. */
struct kv_snap_result {
    int err;            /* 0, or why this core's part failed (its message is printed) */
    uint64_t items;     /* save: items written; load: items linked into this core's store */
    uint64_t bytes;     /* save: file bytes written; load: file bytes read */
    uint64_t files;     /* load: files read whole and sound */
    uint64_t bad_files; /* load: files refused (damaged, missing, unreadable) */
    uint64_t expired;   /* load: items dropped as expired */
    uint64_t too_large; /* load: items over this run's -I */
    uint64_t no_memory; /* load: items refused for memory */
    uint64_t forwarded; /* load: items sent to their owner core */
    uint64_t cas_seq;   /* load: the largest cas sequence in the headers read */
    uint32_t flush_at;  /* load: the latest pending flush_all in the headers read */
};

/* One save: read-only while the cores run it. */
struct kv_snap_save_job {
    const char *dir;
    uint64_t generation;
    int64_t created;
    bool direct;                /* try O_DIRECT */
    struct kv_snap_result *res; /* [ncores] */
};

/* One load: read-only while the cores run it. */
struct kv_snap_load_job {
    const char *dir;
    bool strict;
    bool direct;
    struct kv_snap_manifest m;
    struct kv_snap_result *res; /* [ncores] */
};

/* sn_invoke_on_all's function: the calling core writes its file of job (a save job). */
struct sn_future *kv_snap_write_core(void *job);

/* sn_invoke_on_all's function: the calling core loads its files of job (a load job). */
struct sn_future *kv_snap_load_core(void *job);

/* A buffer for direct I/O (KV_SNAP_ALIGN-aligned), or NULL. */
char *kv_snap_alloc(size_t len);

/* Opens path for reading or writing, with O_DIRECT first when `direct` (falling back
 * without it where the file system refuses it): the future's value is the fd. */
struct sn_future *kv_snap_open(const char *path, int flags, bool direct);

/* Closes an fd whose outcome nobody waits for (directly once the reactor stops). */
void kv_snap_close_fd(int fd);

/* "sn-kv: snapshot <path>: <why>" on stderr, one line. */
void kv_snap_complain(const char *path, const char *why);

#endif
