/*
 * sn-kv's snapshot format, version 1 (pure functions: no I/O, no reactor). The full
 * description, and what a snapshot guarantees, is in docs/ARCHITECTURE.md ("sn-kv
 * snapshots"); in short:
 *
 *   DIR/sn-kv.manifest          text: format version, generation G, the core count N and the
 *                               partitioner of the run that wrote it, its time, a checksum.
 *                               Replaced atomically (temporary file, fsync, rename, fsync of
 *                               DIR) once every data file of G is on disk: it is the commit.
 *   DIR/sn-kv.G.C.snap          one per core C < N: a 4096-byte header, then the body, a
 *                               stream of records, zero-padded to a multiple of 4096 bytes
 *                               (the files are written and read with O_DIRECT where the file
 *                               system allows it).
 *
 * All integers are little-endian. Header (the first 4096 bytes; unused bytes are zero):
 *   0 magic "SNKVSNAP" | 8 u32 version | 12 u32 header bytes (4096) | 16 u32 core |
 *   20 u32 cores | 24 u64 generation | 32 i64 created (unix s) | 40 u64 items |
 *   48 u64 body bytes | 56 u64 XXH3-64 of the body | 64 u64 cas sequence of the store |
 *   72 u32 pending flush_all (unix s, 0 = none) | 76 u32 record header bytes (28) |
 *   4088 u64 XXH3-64 of bytes 0..4087.
 * Record (28 bytes, then the key, then the value; a record may cross any I/O boundary):
 *   0 u64 cas | 8 u32 client flags | 12 u32 exptime (absolute unix s, 0 = never) |
 *   16 u32 last access (unix s) | 20 u32 value bytes | 24 u8 key bytes (1..250) |
 *   25 u8 state bits (MC_ITEM_SAVED_BITS) | 26 u16 zero.
 * Records are in LRU order, oldest first, so loading them in order rebuilds the LRU.
 */
#ifndef KV_SNAP_FORMAT_H
#define KV_SNAP_FORMAT_H

#include "mc_store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KV_SNAP_VERSION  1
#define KV_SNAP_ALIGN    4096u             /* header size; unit of direct I/O */
#define KV_SNAP_CHUNK    ((size_t)1 << 20) /* bytes per read or write */
#define KV_SNAP_REC_HDR  28u
#define KV_SNAP_MANIFEST "sn-kv.manifest"
#define KV_SNAP_WHY_MAX  160 /* room for a reason message */
#define KV_SNAP_PART_MAX 512 /* longest partitioner spec kept */

/* What a data file's header says. */
struct kv_snap_header {
    uint32_t version;
    uint32_t core, ncores;
    uint64_t generation;
    int64_t created;
    uint64_t items;
    uint64_t body_bytes; /* records only, without the padding */
    uint64_t body_hash;  /* XXH3-64 of those bytes */
    uint64_t cas_seq;
    uint32_t flush_at;
};

/* The header's 4096 bytes, checksum included. */
void kv_snap_header_encode(const struct kv_snap_header *h, uint8_t out[KV_SNAP_ALIGN]);

/*
 * Reads a header from the first `len` bytes of a file of `file_size` bytes. 0, or
 * -EBADMSG with a one-line reason in why[KV_SNAP_WHY_MAX] (too short, not a snapshot,
 * another format version, a checksum mismatch, a size that disagrees with the header).
 */
int kv_snap_header_decode(const uint8_t *buf, size_t len, uint64_t file_size,
                          struct kv_snap_header *h, char *why);

/* Bytes the file of a body this long takes: header + body padded to KV_SNAP_ALIGN. */
uint64_t kv_snap_file_size(uint64_t body_bytes);

/* Bytes the record of this item takes. */
static inline size_t kv_snap_record_size(const struct mc_item *it)
{
    return KV_SNAP_REC_HDR + it->nkey + it->nbytes;
}

/* Writes the record of `it` (kv_snap_record_size(it) bytes) at dst. */
void kv_snap_record_put(char *dst, const struct mc_item *it);

/*
 * Reads records from a stream held in consecutive chunks (the body of a file as it was read,
 * or one buffer of records sent to another core). The parser owns the chunks it is given and
 * frees each (free()) once it has read past it, and the rest in kv_snap_parser_free.
 */
struct kv_snap_parser {
    char **chunk;
    size_t *clen; /* bytes of the stream in each chunk */
    unsigned nchunks;
    unsigned ci;    /* current chunk */
    size_t off;     /* offset in it */
    uint64_t left;  /* stream bytes not read yet */
    uint64_t pos;   /* stream bytes read */
    uint64_t avail; /* stream bytes present from the start (chunks still to come are not) */
    uint64_t want;  /* after -EAGAIN: the stream bytes the waiting record needs present */
    uint64_t records;
    /* What is done with a chunk read past (and with those left at kv_snap_parser_free):
     * release(release_arg, chunk) when set, else free(chunk). */
    void (*release)(void *arg, char *chunk);
    void *release_arg;
    char *scratch; /* a record's key and value that cross chunks, gathered */
    size_t scratch_cap;
    char hdr[KV_SNAP_REC_HDR]; /* the last record's header, as read */
};

/*
 * Takes chunk[0..n) and clen[0..n) (malloc'd arrays; the parser frees them too), all of them
 * present. A reader that fills the chunks as they arrive says how far with
 * kv_snap_parser_avail (chunks not present yet may be NULL).
 */
void kv_snap_parser_init(struct kv_snap_parser *p, char **chunk, size_t *clen, unsigned n);

/* The first `bytes` of the stream are present (they only grow). */
void kv_snap_parser_avail(struct kv_snap_parser *p, uint64_t bytes);

/*
 * The next record into *im (key and value point into the chunks or the scratch buffer and
 * stay valid until the next call): 1; 0 at the end of the stream; -EAGAIN when the next
 * record is not all present yet (nothing is consumed); -EBADMSG with a reason in
 * why[KV_SNAP_WHY_MAX] for a record that cannot be (key length 0 or over 250, unknown state
 * bits, a non-zero reserved field, a record longer than what is left); -ENOMEM.
 */
int kv_snap_parse_next(struct kv_snap_parser *p, struct mc_item_image *im, char *why);

/*
 * Copies the record kv_snap_parse_next just returned in *im to dst (KV_SNAP_REC_HDR +
 * im->nkey + im->nbytes bytes): how a loading core forwards a record to its owner core.
 */
size_t kv_snap_parser_copy(const struct kv_snap_parser *p, const struct mc_item_image *im,
                           char *dst);

/* Frees whatever the parser still holds. */
void kv_snap_parser_free(struct kv_snap_parser *p);

/* ---- the manifest ---- */

struct kv_snap_manifest {
    uint32_t version;
    uint64_t generation;
    uint32_t ncores;
    int64_t created;
    char partitioner[KV_SNAP_PART_MAX];
};

/* The manifest's text into out (at most cap bytes): its length, or -ENOSPC. */
int kv_snap_manifest_encode(const struct kv_snap_manifest *m, char *out, size_t cap);

/* Parses a manifest's text: 0, or -EBADMSG with a one-line reason in why. */
int kv_snap_manifest_decode(const char *text, size_t len, struct kv_snap_manifest *m, char *why);

/* DIR/sn-kv.G.C.snap into out[cap]: 0, or -ENAMETOOLONG. */
int kv_snap_data_path(char *out, size_t cap, const char *dir, uint64_t generation, unsigned core);

/* When `name` is a data file's name (sn-kv.G.C.snap): true, with its generation. */
bool kv_snap_data_name(const char *name, uint64_t *generation);

#endif
