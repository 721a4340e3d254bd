/*
 * Map and shuffle on one core (see wc_map.h and wc_dist.h).
 *
 * Everything here runs on the shard's own core, from callbacks: piece claims, read
 * completions, batch acknowledgements and combiner-shipping tasks. Each callback does its work,
 * then calls advance(), which moves the state machine on (start a read that waited, ship the
 * combiner, flush the last batches, settle the scan's promise). `busy` keeps a callback that runs
 * inside another one (a future that failed at once runs its consumer inline) from advancing
 * in the middle of the outer one's work.
 */
#include "wc_map.h"

#include <sn.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CHUNK        (128u << 10) /* bytes per file read: ~1 ms of tokenizing per callback */
#define TAIL_FIRST   4096u        /* first read past the range's end (only to finish a word) */
#define BATCH_CAP    (64u << 10)  /* bytes of (word, count) pairs per message to an owner */
#define MAX_INFLIGHT 32u          /* unacknowledged batches before reading and shipping pause */
#define ENTRY_HEAD   20u          /* u64 hash, u64 count, u32 length, then the word's bytes */
#define BY_REF       (1ull << 63) /* in an entry's count: a pointer to the bytes follows */
#define REF_MIN      1024u        /* the final shipment sends words this long by reference */
#define COMBINE_MAX  (1u << 18)   /* default distinct words in a combiner before it is shipped */
#define SHIP_SLICE   2048u        /* combiner slots shipped per task */

struct wc_batch {
    struct wc_batch *next; /* sender's free list */
    struct wc_core *from;
    uint32_t used, cap;
    char data[];
};

static void advance(struct wc_core *c);

static void fail(struct wc_core *c, int err)
{
    if (!c->err)
        c->err = err;
}

uint64_t wc_thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void *wc_core_new(void *arg, unsigned core)
{
    struct wc_job *job = arg;
    struct wc_core *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->job = job;
    c->id = core;
    c->n = sn_core_count();
    c->combine = c->n > 1 && !job->no_combine;
    c->combine_max = job->combine_max ? job->combine_max : COMBINE_MAX;
    c->buf[0] = malloc(CHUNK);
    c->buf[1] = malloc(CHUNK);
    c->open = calloc(c->n, sizeof *c->open);
    /* Sized up front: growing rehashes the whole table in one go, a pause on the core. With
     * a combiner, the combiner ends up holding this core's words (ship_final) and `table`
     * only takes the words of combiners shipped before the end (ship_start sizes it). */
    size_t words = wc_table_guess(job->size);
    bool ok = c->buf[0] && c->buf[1] && c->open &&
              wc_table_init_for(&c->table, c->combine ? 0 : words) == 0;
    if (!ok || (c->combine && wc_table_init_for(&c->local, words) < 0)) {
        wc_core_free(c, job);
        return NULL;
    }
    return c;
}

void wc_core_free(void *instance, void *arg)
{
    struct wc_core *c = instance;
    (void)arg;
    for (unsigned i = 0; c->open && i < c->n; i++)
        free(c->open[i]);
    while (c->free_batches) {
        struct wc_batch *b = c->free_batches;
        c->free_batches = b->next;
        free(b);
    }
    free(c->open);
    free(c->buf[0]);
    free(c->buf[1]);
    free(c->items);
    wc_scan_free(&c->scan);
    wc_table_free(&c->table);
    wc_table_free(&c->local);
    wc_table_free(&c->shipping);
    free(c);
}

/* ---- shuffle: batches of (word, count) to their owners ---- */

/* The table the words this core owns are counted in at the end of the map. */
static struct wc_table *owned(struct wc_core *c)
{
    return c->combine ? &c->local : &c->table;
}

/*
 * On the owner core: adds every pair of the batch, into the combiner when there is one (the
 * owner's own counts of its words stay there: ship_final). The batch stays the sender's.
 */
static int count_batch(void *arg, uint64_t *value)
{
    struct wc_batch *b = arg;
    struct wc_core *me = sn_sharded_local(b->from->job->shards);
    struct wc_table *t = owned(me);
    const char *p = b->data, *end = b->data + b->used;
    *value = 0;
    while (p < end) {
        uint64_t hash, count;
        uint32_t len;
        const char *word = p + ENTRY_HEAD;
        memcpy(&hash, p, 8);
        memcpy(&count, p + 8, 8);
        memcpy(&len, p + 16, 4);
        p += ENTRY_HEAD;
        if (count & BY_REF) { /* the bytes are in the sender's combiner (ship_out) */
            memcpy(&word, p, sizeof word);
            count &= ~BY_REF;
            p += sizeof word;
        } else {
            p += len;
        }
        int rc = wc_table_add(t, word, len, hash, count);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Back on the sender: the owner counted the batch (or the call failed); reuse the batch. */
static void batch_done(void *arg, int err, uint64_t value)
{
    struct wc_batch *b = arg;
    struct wc_core *c = b->from;
    (void)value;
    if (err)
        fail(c, err);
    c->inflight--;
    if (b->cap == BATCH_CAP) {
        b->next = c->free_batches;
        c->free_batches = b;
    } else {
        free(b); /* a one-off batch for a word longer than BATCH_CAP */
    }
    advance(c);
}

static void send_batch(struct wc_core *c, unsigned owner)
{
    struct wc_batch *b = c->open[owner];
    c->open[owner] = NULL;
    c->inflight++;
    c->busy++;
    sn_done(sn_call_on(owner, count_batch, b), batch_done, b);
    c->busy--;
}

static struct wc_batch *new_batch(struct wc_core *c, size_t need)
{
    struct wc_batch *b;
    if (need <= BATCH_CAP && c->free_batches) {
        b = c->free_batches;
        c->free_batches = b->next;
    } else {
        size_t cap = need <= BATCH_CAP ? BATCH_CAP : need;
        b = malloc(sizeof *b + cap);
        if (!b)
            return NULL;
        b->cap = (uint32_t)cap;
    }
    b->from = c;
    b->used = 0;
    return b;
}

/*
 * Adds (word, count) to the batch for `owner`, with the word's bytes, or with a pointer to
 * them when by_ref: then the bytes must stay unchanged until the batch is acknowledged.
 */
static void append(struct wc_core *c, unsigned owner, const char *word, size_t len, uint64_t hash,
                   uint64_t count, bool by_ref)
{
    size_t need = ENTRY_HEAD + (by_ref ? sizeof word : len);
    if (need > UINT32_MAX) {
        fail(c, -E2BIG);
        return;
    }
    struct wc_batch *b = c->open[owner];
    if (b && b->used + need > b->cap) {
        send_batch(c, owner);
        b = NULL;
    }
    if (!b) {
        b = c->open[owner] = new_batch(c, need);
        if (!b) {
            fail(c, -ENOMEM);
            return;
        }
    }
    uint32_t len32 = (uint32_t)len;
    uint64_t tagged = by_ref ? count | BY_REF : count;
    char *p = b->data + b->used;
    memcpy(p, &hash, 8);
    memcpy(p + 8, &tagged, 8);
    memcpy(p + 16, &len32, 4);
    if (by_ref)
        memcpy(p + ENTRY_HEAD, &word, sizeof word);
    else
        memcpy(p + ENTRY_HEAD, word, len);
    b->used += (uint32_t)need;
}

/* Sends (word, count) to its owner's batch, or counts it here when this core owns it. */
static void route(struct wc_core *c, const char *word, size_t len, uint64_t hash, uint64_t n)
{
    unsigned owner = c->n == 1 ? 0 : sn_partition(c->job->part, word, len);
    if (owner != c->id) {
        append(c, owner, word, len, hash, n, false);
        return;
    }
    int rc = wc_table_add(&c->table, word, len, hash, n);
    if (rc < 0)
        fail(c, rc);
}

/* ---- the combiner, shipped a slice per task so the loop keeps serving other cores ---- */

/*
 * In the final ship: sends a word of the combiner to its owner, or keeps it when it is ours.
 * A long word goes by reference, not copied into the batch: its bytes stay in the combiner's
 * arena (dropping keeps them) until the shard is freed, after the whole run.
 */
static void ship_out(struct wc_core *c, struct wc_slot *s)
{
    unsigned owner = sn_partition(c->job->part, s->word, s->len);
    if (owner == c->id)
        return;
    append(c, owner, s->word, s->len, s->hash, s->count, s->len >= REF_MIN);
    wc_table_drop(&c->local, s); /* the owner counts it now */
}

static void ship_step(void *arg)
{
    struct wc_core *c = arg;
    struct wc_table *t = c->ship_in_place ? &c->local : &c->shipping;
    if (c->ship_in_place && t->mask != c->ship_mask) {
        /* Pairs from other cores grew the combiner: its slots moved. Start over; what was
         * shipped is dropped and gone with the growth, what is ours is skipped again. */
        c->ship_pos = 0;
        c->ship_mask = t->mask;
    }
    size_t end = c->ship_pos + SHIP_SLICE;
    if (end > t->mask + 1)
        end = t->mask + 1;
    c->busy++;
    for (size_t i = c->ship_pos; i < end && !c->err; i++) {
        struct wc_slot *s = &t->slots[i];
        /* Partitioning reads the word's bytes, scattered over the arena: prefetch ahead. */
        if (i + WC_PENDING <= t->mask && t->slots[i + WC_PENDING].word)
            __builtin_prefetch(t->slots[i + WC_PENDING].word);
        if (!s->word || s->dropped)
            continue;
        if (c->ship_in_place)
            ship_out(c, s);
        else
            route(c, s->word, s->len, s->hash, s->count);
    }
    c->ship_pos = end;
    if (end > t->mask || c->err) {
        if (c->ship_in_place)
            c->final_shipped = true;
        else
            wc_table_free(&c->shipping);
        c->ship_active = false;
    } else if (c->inflight >= MAX_INFLIGHT) {
        c->ship_paused = true; /* advance() goes on when owners have caught up */
    } else if (sn_later(ship_step, c) < 0) {
        fail(c, -EPERM);
        c->ship_active = false;
    }
    c->busy--;
    advance(c);
}

/*
 * The combiner holds combine_max words before the map ends: moves its counts to `shipping`
 * and starts shipping them all (this core's words into `table`); counting goes on in a new
 * combiner.
 */
static void ship_start(struct wc_core *c)
{
    c->shipping = c->local;
    c->ship_pos = 0;
    c->ship_in_place = false;
    c->ship_active = true;
    c->ship_paused = true; /* advance() schedules the first slice */
    if (wc_table_init_for(&c->local, c->combine_max) < 0)
        fail(c, -ENOMEM);
    if (c->table.used == 0 && c->table.mask + 1 < 2 * c->combine_max) {
        wc_table_free(&c->table); /* sized now that it is needed */
        if (wc_table_init_for(&c->table, c->combine_max) < 0)
            fail(c, -ENOMEM);
    }
}

/*
 * The map is over: ships the combiner's words that other cores own and drops them from it;
 * this core's words stay where they were counted, and the other cores' pairs for them are
 * added there too (count_batch), so they are neither copied nor counted twice.
 */
static void ship_final(struct wc_core *c)
{
    c->ship_pos = 0;
    c->ship_mask = c->local.mask;
    c->ship_in_place = true;
    c->ship_active = true;
    c->ship_paused = true;
}

int wc_core_items(struct wc_core *c, size_t limit)
{
    struct wc_table *t = owned(c);
    if (c->combine && c->table.used) { /* words of combiners shipped before the end */
        for (size_t i = 0; i <= c->table.mask; i++) {
            const struct wc_slot *s = &c->table.slots[i];
            int rc = s->word ? wc_table_add(t, s->word, s->len, s->hash, s->count) : 0;
            if (rc < 0)
                return rc;
        }
    }
    return wc_table_items(t, limit, &c->items, &c->nitems, &c->sum);
}

/*
 * Counts one occurrence. With a combiner (the default on several cores, like a MapReduce
 * combiner) the word is counted in this core's local table and shipped later as one
 * (word, count) per distinct word; otherwise every occurrence is routed at once.
 */
static void count_word(struct wc_core *c, const char *word, size_t len, uint64_t hash)
{
    if (!c->combine) {
        route(c, word, len, hash, 1);
        return;
    }
    int rc = wc_table_add(&c->local, word, len, hash, 1);
    if (rc < 0)
        fail(c, rc);
    else if (c->local.used >= c->combine_max && !c->ship_active)
        ship_start(c);
}

/* Counts the words still pending; called before the chunk they point into goes away. */
static void drain_pending(struct wc_core *c)
{
    for (unsigned i = 0; i < c->npending; i++) {
        const struct wc_pending *p = &c->pending[i];
        count_word(c, p->word, p->len, p->hash);
    }
    c->npending = 0;
    c->pend_next = 0;
}

/*
 * The scanner's callback. A table lookup is mostly a wait for memory (the slots of a whole
 * vocabulary do not fit the core's cache), so the lookup is software-pipelined: the word's
 * slot is prefetched now, the bytes of the word in that slot WC_PENDING / 2 words later, and
 * the word is counted WC_PENDING words later. Words in the chunk stay valid until the
 * chunk's feed returns (read_done drains then); a word assembled in the scanner's carry
 * buffer does not, and is counted at once, as is every word routed to its owner one by one
 * (--no-combine on several cores).
 */
static void on_word(void *arg, const char *word, size_t len)
{
    struct wc_core *c = arg;
    uint64_t hash = wc_hash(word, len);
    if (word == c->scan.carry || (!c->combine && c->n > 1)) {
        count_word(c, word, len, hash);
        return;
    }
    const struct wc_table *t = c->combine ? &c->local : &c->table;
    wc_table_prefetch(t, hash);
    unsigned at = c->pend_next; /* the oldest entry once the ring is full */
    if (c->npending >= WC_PENDING / 2)
        wc_table_prefetch_word(t, c->pending[(at + WC_PENDING / 2) % WC_PENDING].hash);
    if (c->npending == WC_PENDING)
        count_word(c, c->pending[at].word, c->pending[at].len, c->pending[at].hash);
    else
        c->npending++;
    c->pending[at] = (struct wc_pending){.word = word, .len = len, .hash = hash};
    c->pend_next = at + 1 == WC_PENDING ? 0 : at + 1;
}

/* ---- map: reading and scanning pieces of the file ---- */

static void read_done(void *arg, int err, uint64_t n);

static void start_read(struct wc_core *c)
{
    uint64_t off = c->read_off, size = c->job->size, hi = c->scan.hi;
    size_t len = off < hi ? (size_t)(hi - off < CHUNK ? hi - off : CHUNK) : c->tail_len;
    if (off >= hi && c->tail_len < CHUNK)
        c->tail_len *= 2; /* a long word crosses the end: read more each time */
    if (off >= size) {    /* the file ends here */
        wc_scan_eof(&c->scan, on_word, c);
        drain_pending(c);
        c->piece_active = false;
        return;
    }
    if (len > size - off)
        len = (size_t)(size - off);
    c->read_len = len;
    c->reading = true;
    c->busy++;
    sn_done(sn_file_read(c->job->fd, c->buf[c->cur], len, off), read_done, c);
    c->busy--;
}

/* Starts the read at read_off unless too many batches wait for their owners. */
static void next_read(struct wc_core *c)
{
    if (!c->piece_active || c->reading)
        return;
    if (c->inflight >= MAX_INFLIGHT)
        c->read_wanted = true;
    else
        start_read(c);
}

static void read_done(void *arg, int err, uint64_t n)
{
    struct wc_core *c = arg;
    c->reading = false;
    c->busy++;
    if (err || c->err) {
        fail(c, err);
        c->piece_active = false;
        goto out;
    }
    bool eof = n < c->read_len;
    const char *data = c->buf[c->cur];
    c->cur ^= 1;
    c->read_off += n;
    /* While the piece goes on the next chunk is surely needed: read it into the other
     * buffer while this one is tokenized. */
    if (!eof && c->read_off < c->scan.hi)
        next_read(c);
    int rc = wc_scan_feed(&c->scan, data, (size_t)n, on_word, c);
    if (rc < 0)
        fail(c, rc);
    if (eof)
        wc_scan_eof(&c->scan, on_word, c);
    drain_pending(c);
    if (wc_scan_done(&c->scan) || c->err)
        c->piece_active = false;
    else if (!c->reading && !c->read_wanted)
        next_read(c);
out:
    c->busy--;
    advance(c);
}

/* Starts scanning piece i: the words whose first byte lies in its nominal range. */
static void start_piece(struct wc_core *c, uint64_t i)
{
    uint64_t lo, hi;
    wc_job_piece(c->job, i, &lo, &hi);
    wc_scan_free(&c->scan);
    wc_scan_init(&c->scan, lo, hi);
    c->read_off = c->scan.pos;
    c->tail_len = TAIL_FIRST;
    c->piece_active = !wc_scan_done(&c->scan);
    c->pieces++;
    next_read(c);
}

/* On core 0, the only core that touches job->next_piece: hands out the next piece. */
static int claim_piece(void *arg, uint64_t *value)
{
    struct wc_job *job = arg;
    *value = job->next_piece < job->npieces ? job->next_piece++ : UINT64_MAX;
    return 0;
}

static void claim_done(void *arg, int err, uint64_t piece)
{
    struct wc_core *c = arg;
    c->claim_pending = false;
    if (c->wait_since) {
        c->claim_wait_ns += sn_now_ns() - c->wait_since;
        c->wait_since = 0;
    }
    if (err || piece == UINT64_MAX) {
        if (err)
            fail(c, err);
        c->no_more = true;
    } else {
        c->has_next = true;
        c->next_piece = piece;
    }
    advance(c);
}

/* Asks core 0 for a piece; the answer arrives in claim_done. */
static void claim(struct wc_core *c)
{
    c->claim_pending = true;
    c->busy++;
    sn_done(sn_call_on(0, claim_piece, c->job), claim_done, c);
    c->busy--;
}

/* Between pieces: start the claimed one (and claim the one after it), or end the map. */
static bool next_piece(struct wc_core *c)
{
    if (c->piece_active || c->reading || c->reading_done)
        return false;
    if (c->err || (c->no_more && !c->has_next)) {
        c->reading_done = c->no_more || !c->claim_pending;
        if (c->reading_done)
            c->read_ns = sn_now_ns() - c->map_t0;
        return c->reading_done;
    }
    if (c->has_next) {
        c->has_next = false;
        start_piece(c, c->next_piece);
        if (!c->no_more && !c->claim_pending)
            claim(c); /* ask ahead, so the next piece is known when this one ends */
        return true;
    }
    if (!c->claim_pending) {
        claim(c);
        return true;
    }
    if (!c->wait_since)
        c->wait_since = sn_now_ns(); /* idle until core 0 answers */
    return false;
}

/* Sends the batches still being filled: the last step of the shuffle. */
static void flush_open(struct wc_core *c)
{
    c->flushed = true;
    for (unsigned i = 0; i < c->n; i++)
        if (c->open[i])
            send_batch(c, i);
}

/* One step of the state machine; true when it changed something. */
static bool step(struct wc_core *c)
{
    bool can_send = c->inflight < MAX_INFLIGHT;
    if (next_piece(c))
        return true;
    if (c->read_wanted && can_send) {
        c->read_wanted = false;
        if (c->piece_active)
            start_read(c);
        return true;
    }
    if (c->ship_active && c->ship_paused && can_send) {
        c->ship_paused = false;
        if (sn_later(ship_step, c) < 0) {
            fail(c, -EPERM);
            c->ship_active = false;
        }
        return true;
    }
    if (c->reading_done && !c->reading && !c->ship_active && !c->flushed) {
        if (c->combine && !c->final_shipped && !c->err)
            ship_final(c); /* the range's last counts */
        else
            flush_open(c);
        return true;
    }
    return false;
}

static void advance(struct wc_core *c)
{
    if (c->busy)
        return; /* the callback that is running advances when it is done */
    c->busy++;
    while (step(c))
        ;
    c->busy--;
    if (!c->flushed || c->reading || c->claim_pending || c->inflight || c->ship_active || !c->done)
        return;
    struct sn_promise *p = c->done;
    c->done = NULL;
    c->map_ns = sn_now_ns() - c->map_t0;
    c->cpu_ns = wc_thread_cpu_ns() - c->cpu_t0;
    if (c->err)
        sn_promise_fail(p, c->err);
    else
        sn_promise_set(p, 0);
}

struct sn_future *wc_core_scan(void *instance, void *arg)
{
    struct wc_core *c = instance;
    struct wc_job *job = arg;
    struct sn_future *f;
    c->done = sn_promise_new(&f);
    if (!c->done)
        return sn_failed(-ENOMEM);
    c->map_t0 = sn_now_ns();
    c->cpu_t0 = wc_thread_cpu_ns();
    if (c->id < job->npieces) { /* piece i is core i's first: no claim, no wait */
        c->has_next = true;
        c->next_piece = c->id;
    }
    if (job->static_ranges) /* and its only one */
        c->no_more = true;
    advance(c);
    return f;
}
