/*
 * sn-kv's snapshot format: header, records, the record stream parser and the manifest. The
 * layout is described in kv_snap_format.h; nothing here does I/O.
 */
#include "kv_snap_format.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

static const char magic[8] = {'S', 'N', 'K', 'V', 'S', 'N', 'A', 'P'};

#define HDR_HASH_AT (KV_SNAP_ALIGN - 8)

/* ---- little-endian fields ---- */

/* Written as whole expressions, which the compiler turns into one load or store each (a loop
 * over the bytes stayed a loop: a sixth of the parser's time). */
static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8), p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static void put64(uint8_t *p, uint64_t v)
{
    put32(p, (uint32_t)v);
    put32(p + 4, (uint32_t)(v >> 32));
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

/* ---- header ---- */

uint64_t kv_snap_file_size(uint64_t body_bytes)
{
    return KV_SNAP_ALIGN + (body_bytes + KV_SNAP_ALIGN - 1) / KV_SNAP_ALIGN * KV_SNAP_ALIGN;
}

void kv_snap_header_encode(const struct kv_snap_header *h, uint8_t out[KV_SNAP_ALIGN])
{
    memset(out, 0, KV_SNAP_ALIGN);
    memcpy(out, magic, sizeof magic);
    put32(out + 8, KV_SNAP_VERSION);
    put32(out + 12, KV_SNAP_ALIGN);
    put32(out + 16, h->core);
    put32(out + 20, h->ncores);
    put64(out + 24, h->generation);
    put64(out + 32, (uint64_t)h->created);
    put64(out + 40, h->items);
    put64(out + 48, h->body_bytes);
    put64(out + 56, h->body_hash);
    put64(out + 64, h->cas_seq);
    put32(out + 72, h->flush_at);
    put32(out + 76, KV_SNAP_REC_HDR);
    put64(out + HDR_HASH_AT, XXH3_64bits(out, HDR_HASH_AT));
}

int kv_snap_header_decode(const uint8_t *buf, size_t len, uint64_t file_size,
                          struct kv_snap_header *h, char *why)
{
    if (len < KV_SNAP_ALIGN || file_size < KV_SNAP_ALIGN) {
        snprintf(why, KV_SNAP_WHY_MAX, "%" PRIu64 " bytes, shorter than a header: truncated",
                 file_size);
        return -EBADMSG;
    }
    if (memcmp(buf, magic, sizeof magic) != 0) {
        snprintf(why, KV_SNAP_WHY_MAX, "not an sn-kv snapshot (no SNKVSNAP magic)");
        return -EBADMSG;
    }
    h->version = get32(buf + 8);
    if (h->version != KV_SNAP_VERSION) {
        snprintf(why, KV_SNAP_WHY_MAX,
                 "snapshot format version %" PRIu32 ", this sn-kv reads version %d", h->version,
                 KV_SNAP_VERSION);
        return -EBADMSG;
    }
    if (get64(buf + HDR_HASH_AT) != XXH3_64bits(buf, HDR_HASH_AT)) {
        snprintf(why, KV_SNAP_WHY_MAX, "header checksum mismatch: corrupted");
        return -EBADMSG;
    }
    if (get32(buf + 12) != KV_SNAP_ALIGN || get32(buf + 76) != KV_SNAP_REC_HDR) {
        snprintf(why, KV_SNAP_WHY_MAX, "unexpected header layout: corrupted");
        return -EBADMSG;
    }
    h->core = get32(buf + 16);
    h->ncores = get32(buf + 20);
    h->generation = get64(buf + 24);
    h->created = (int64_t)get64(buf + 32);
    h->items = get64(buf + 40);
    h->body_bytes = get64(buf + 48);
    h->body_hash = get64(buf + 56);
    h->cas_seq = get64(buf + 64);
    h->flush_at = get32(buf + 72);
    uint64_t want = h->body_bytes > UINT64_MAX / 2 ? UINT64_MAX : kv_snap_file_size(h->body_bytes);
    if (file_size != want) {
        snprintf(why, KV_SNAP_WHY_MAX, "%" PRIu64 " bytes where the header says %" PRIu64 ": %s",
                 file_size, want, file_size < want ? "truncated" : "trailing data");
        return -EBADMSG;
    }
    return 0;
}

/* ---- records ---- */

void kv_snap_record_put(char *dst, const struct mc_item *it)
{
    uint8_t *h = (uint8_t *)dst;
    put64(h, it->cas);
    put32(h + 8, it->flags);
    put32(h + 12, it->exptime);
    put32(h + 16, it->time);
    put32(h + 20, it->nbytes);
    h[24] = it->nkey;
    h[25] = it->iflags & MC_ITEM_SAVED_BITS;
    h[26] = h[27] = 0;
    memcpy(dst + KV_SNAP_REC_HDR, mc_item_key(it), it->nkey);
    memcpy(dst + KV_SNAP_REC_HDR + it->nkey, mc_item_value(it), it->nbytes);
}

void kv_snap_parser_init(struct kv_snap_parser *p, char **chunk, size_t *clen, unsigned n)
{
    *p = (struct kv_snap_parser){.chunk = chunk, .clen = clen, .nchunks = n};
    for (unsigned i = 0; i < n; i++)
        p->left += clen[i];
    p->avail = p->left;
}

void kv_snap_parser_avail(struct kv_snap_parser *p, uint64_t bytes)
{
    p->avail = bytes;
}

/* Copies the next n stream bytes to dst without consuming them (they are present). */
static void peek(const struct kv_snap_parser *p, size_t n, char *dst)
{
    unsigned ci = p->ci;
    size_t off = p->off;
    for (size_t got = 0; got < n; ci++, off = 0) {
        size_t piece = p->clen[ci] - off;
        if (piece > n - got)
            piece = n - got;
        memcpy(dst + got, p->chunk[ci] + off, piece);
        got += piece;
    }
}

static void drop_chunk(const struct kv_snap_parser *p, char *chunk)
{
    if (chunk && p->release)
        p->release(p->release_arg, chunk);
    else
        free(chunk);
}

/* Frees the chunks before the current one, and moves past an exhausted current one. */
static void release_behind(struct kv_snap_parser *p)
{
    while (p->ci < p->nchunks && p->off == p->clen[p->ci]) {
        drop_chunk(p, p->chunk[p->ci]);
        p->chunk[p->ci] = NULL;
        p->ci++;
        p->off = 0;
    }
}

/*
 * Points *out at the next n stream bytes: in place when one chunk holds them, else gathered
 * into the scratch buffer. The caller checked that n <= p->left.
 */
static int take(struct kv_snap_parser *p, size_t n, const char **out)
{
    release_behind(p);
    if (n == 0) {
        *out = "";
        return 0;
    }
    p->pos += n;
    if (p->clen[p->ci] - p->off >= n) {
        *out = p->chunk[p->ci] + p->off;
        p->off += n;
        p->left -= n;
        return 0;
    }
    if (n > p->scratch_cap) {
        char *bigger = realloc(p->scratch, n);
        if (!bigger)
            return -ENOMEM;
        p->scratch = bigger;
        p->scratch_cap = n;
    }
    for (size_t got = 0; got < n;) {
        release_behind(p);
        size_t piece = p->clen[p->ci] - p->off;
        if (piece > n - got)
            piece = n - got;
        memcpy(p->scratch + got, p->chunk[p->ci] + p->off, piece);
        p->off += piece;
        got += piece;
    }
    p->left -= n;
    *out = p->scratch;
    return 0;
}

static int bad(char *why, const struct kv_snap_parser *p, const char *what)
{
    snprintf(why, KV_SNAP_WHY_MAX, "record %" PRIu64 ": %s: corrupted", p->records + 1, what);
    return -EBADMSG;
}

int kv_snap_parse_next(struct kv_snap_parser *p, struct mc_item_image *im, char *why)
{
    if (p->left == 0) {
        release_behind(p);
        return 0;
    }
    if (p->left < KV_SNAP_REC_HDR)
        return bad(why, p, "cut short");
    uint64_t ready = p->avail > p->pos ? p->avail - p->pos : 0;
    if (ready < KV_SNAP_REC_HDR) {
        p->want = p->pos + KV_SNAP_REC_HDR;
        return -EAGAIN;
    }
    release_behind(p);
    const char *at = p->chunk[p->ci] + p->off;
    size_t in_chunk = p->clen[p->ci] - p->off;
    if (in_chunk >= KV_SNAP_REC_HDR)
        memcpy(p->hdr, at, KV_SNAP_REC_HDR);
    else
        peek(p, KV_SNAP_REC_HDR, p->hdr);
    const uint8_t *h = (const uint8_t *)p->hdr;
    *im = (struct mc_item_image){.cas = get64(h),
                                 .flags = get32(h + 8),
                                 .exptime = get32(h + 12),
                                 .time = get32(h + 16),
                                 .nbytes = get32(h + 20),
                                 .nkey = h[24],
                                 .iflags = h[25]};
    if (im->nkey == 0 || im->nkey > MC_KEY_MAX)
        return bad(why, p, "bad key length");
    if ((im->iflags & ~MC_ITEM_SAVED_BITS) || h[26] || h[27])
        return bad(why, p, "unknown bits set");
    uint64_t need = KV_SNAP_REC_HDR + im->nkey + (uint64_t)im->nbytes;
    if (need > p->left)
        return bad(why, p, "longer than the data left");
    if (need > ready) {
        p->want = p->pos + need;
        return -EAGAIN;
    }
    if (need <= in_chunk) { /* the whole record in this chunk, as nearly all are */
        im->key = at + KV_SNAP_REC_HDR;
        im->value = im->key + im->nkey;
        p->off += need;
        p->pos += need;
        p->left -= need;
        p->records++;
        return 1;
    }
    const char *hp, *kv;
    int rc = take(p, KV_SNAP_REC_HDR, &hp);
    if (rc == 0)
        rc = take(p, im->nkey + im->nbytes, &kv);
    if (rc < 0)
        return rc;
    im->key = kv;
    im->value = kv + im->nkey;
    p->records++;
    return 1;
}

size_t kv_snap_parser_copy(const struct kv_snap_parser *p, const struct mc_item_image *im,
                           char *dst)
{
    memcpy(dst, p->hdr, KV_SNAP_REC_HDR);
    memcpy(dst + KV_SNAP_REC_HDR, im->key, im->nkey + im->nbytes);
    return KV_SNAP_REC_HDR + im->nkey + im->nbytes;
}

void kv_snap_parser_free(struct kv_snap_parser *p)
{
    for (unsigned i = 0; p->chunk && i < p->nchunks; i++)
        drop_chunk(p, p->chunk[i]);
    free(p->chunk);
    free(p->clen);
    free(p->scratch);
    *p = (struct kv_snap_parser){0};
}

/* ---- manifest ---- */

#define MANIFEST_FIRST "sn-kv snapshot manifest "

int kv_snap_manifest_encode(const struct kv_snap_manifest *m, char *out, size_t cap)
{
    int n = snprintf(out, cap,
                     MANIFEST_FIRST "%d\ngeneration %" PRIu64 "\ncores %" PRIu32
                                    "\npartitioner %s\ncreated %" PRId64 "\n",
                     KV_SNAP_VERSION, m->generation, m->ncores, m->partitioner, m->created);
    if (n < 0 || (size_t)n >= cap)
        return -ENOSPC;
    int t = snprintf(out + n, cap - (size_t)n, "checksum %016" PRIx64 "\n",
                     XXH3_64bits(out, (size_t)n));
    if (t < 0 || (size_t)(n + t) >= cap)
        return -ENOSPC;
    return n + t;
}

/* The value of line `key` ("key value\n") at *pos; advances *pos past the line. */
static const char *field(const char *text, size_t len, size_t *pos, const char *key, size_t *vlen)
{
    size_t kl = strlen(key);
    const char *line = text + *pos;
    const char *nl = memchr(line, '\n', len - *pos);
    if (!nl || (size_t)(nl - line) <= kl || memcmp(line, key, kl) != 0 || line[kl] != ' ')
        return NULL;
    *vlen = (size_t)(nl - line) - kl - 1;
    *pos += (size_t)(nl - line) + 1;
    return line + kl + 1;
}

static bool number(const char *v, size_t n, uint64_t max, uint64_t *out)
{
    if (n == 0 || n > 20)
        return false;
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9' || x > (UINT64_MAX - 9) / 10)
            return false;
        x = x * 10 + (uint64_t)(v[i] - '0');
    }
    *out = x;
    return x <= max;
}

static int mbad(char *why, const char *what)
{
    snprintf(why, KV_SNAP_WHY_MAX, "manifest: %s", what);
    return -EBADMSG;
}

static int manifest_fields(const char *text, size_t len, size_t *pos, struct kv_snap_manifest *m,
                           char *why)
{
    const char *v;
    size_t vl;
    uint64_t x;
    if (!(v = field(text, len, pos, "generation", &vl)) || !number(v, vl, UINT64_MAX, &x))
        return mbad(why, "no generation line: corrupted");
    m->generation = x;
    if (!(v = field(text, len, pos, "cores", &vl)) || !number(v, vl, 1u << MC_CAS_CORE_BITS, &x) ||
        x == 0)
        return mbad(why, "no cores line: corrupted");
    m->ncores = (uint32_t)x;
    if (!(v = field(text, len, pos, "partitioner", &vl)) || vl >= sizeof m->partitioner)
        return mbad(why, "no partitioner line: corrupted");
    memcpy(m->partitioner, v, vl);
    m->partitioner[vl] = '\0';
    if (!(v = field(text, len, pos, "created", &vl)) || !number(v, vl, INT64_MAX, &x))
        return mbad(why, "no created line: corrupted");
    m->created = (int64_t)x;
    return 0;
}

int kv_snap_manifest_decode(const char *text, size_t len, struct kv_snap_manifest *m, char *why)
{
    size_t fl = strlen(MANIFEST_FIRST), pos = 0, vl;
    uint64_t x;
    *m = (struct kv_snap_manifest){0};
    if (len < fl || memcmp(text, MANIFEST_FIRST, fl) != 0)
        return mbad(why, "not an sn-kv snapshot manifest");
    const char *nl = memchr(text, '\n', len);
    if (!nl || !number(text + fl, (size_t)(nl - text) - fl, UINT32_MAX, &x))
        return mbad(why, "no format version: corrupted");
    m->version = (uint32_t)x;
    if (m->version != KV_SNAP_VERSION) {
        snprintf(why, KV_SNAP_WHY_MAX,
                 "manifest: format version %" PRIu32 ", this sn-kv reads version %d", m->version,
                 KV_SNAP_VERSION);
        return -EBADMSG;
    }
    pos = (size_t)(nl - text) + 1;
    int rc = manifest_fields(text, len, &pos, m, why);
    if (rc < 0)
        return rc;
    size_t body = pos;
    const char *v = field(text, len, &pos, "checksum", &vl);
    char want[17];
    snprintf(want, sizeof want, "%016" PRIx64, XXH3_64bits(text, body));
    if (!v || vl != 16 || memcmp(v, want, 16) != 0)
        return mbad(why, "checksum mismatch: corrupted");
    if (pos != len)
        return mbad(why, "trailing data: corrupted");
    return 0;
}

/* ---- names ---- */

int kv_snap_data_path(char *out, size_t cap, const char *dir, uint64_t generation, unsigned core)
{
    int n = snprintf(out, cap, "%s/sn-kv.%" PRIu64 ".%u.snap", dir, generation, core);
    return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

/* Digits at *p up to `stop`: advances *p past `stop`. */
static bool digits_then(const char **p, char stop, uint64_t *out)
{
    const char *q = *p;
    size_t n = 0;
    while (q[n] >= '0' && q[n] <= '9')
        n++;
    if (q[n] != stop || !number(q, n, UINT64_MAX, out))
        return false;
    *p = q + n + 1;
    return true;
}

bool kv_snap_data_name(const char *name, uint64_t *generation)
{
    static const char prefix[] = "sn-kv.";
    const char *p = name + sizeof prefix - 1;
    uint64_t g, core;
    if (strncmp(name, prefix, sizeof prefix - 1) != 0 || !digits_then(&p, '.', &g) ||
        !digits_then(&p, '.', &core) || strcmp(p, "snap") != 0)
        return false;
    *generation = g;
    return true;
}
