/*
 * sn-keys: a key-value server with a line protocol, written on the server kit. One fiber per
 * connection (sn_serve) reads lines (sn_conn_read_line). Every key belongs to one core (a
 * hash partitioner): a command on another core's key goes there (sn_submit_to) and its
 * answer comes back into a reply slot reserved when the line was read (sn_reply_begin), so
 * a client may pipeline commands on keys of every core and gets the answers in order, while
 * the fiber reads on. A command on a key of the fiber's own core is answered at once with
 * sn_conn_write, whose bytes go behind the slots still open.
 *
 *   set <key> <value>   STORED
 *   get <key>           VALUE <value>  or  NOT_FOUND
 *   del <key>           DELETED  or  NOT_FOUND
 *   quit                (the server closes the connection)
 *   anything else       ERROR unknown command; a line over 1024 bytes: ERROR line too long
 *
 * Memory that crosses cores: a command travels as one malloc'd struct op (key and value
 * copied in); the owner core reads it and makes the answer line (malloc'd), and the fiber's
 * core frees both once the answer is written. Runs until SIGINT/SIGTERM, then exits 0.
 *
 *   sn-keys [--port N] [--listen ADDR] [--max-conns N] [libsn options: --smp, --cpuset, ...]
 */
#include <sn.h>

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apps/common/cli.h"

#define LINE_MAX_LEN 1024
#define BUCKETS      4096

/* ---- one core's keys ----------------------------------------------------------------------- */

struct entry {
    struct entry *next;
    size_t klen, vlen;
    char data[]; /* key, then value */
};

struct store {
    struct entry *bucket[BUCKETS];
};

static struct sn_sharded *stores;
static struct sn_partition *owner_of;

static struct entry **find(struct store *s, const char *key, size_t klen)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < klen; i++)
        h = (h ^ (uint8_t)key[i]) * 16777619u;
    struct entry **e = &s->bucket[h % BUCKETS];
    while (*e && ((*e)->klen != klen || memcmp((*e)->data, key, klen) != 0))
        e = &(*e)->next;
    return e;
}

static void *store_init(void *arg, unsigned core)
{
    (void)arg, (void)core;
    return calloc(1, sizeof(struct store));
}

static void store_fini(void *instance, void *arg)
{
    (void)arg;
    struct store *s = instance;
    for (unsigned i = 0; i < BUCKETS; i++)
        for (struct entry *e = s->bucket[i], *next; e; e = next) {
            next = e->next;
            free(e);
        }
    free(s);
}

/* ---- commands -------------------------------------------------------------------------------- */

struct op {
    struct sn_reply *reply; /* remote commands: where the answer goes */
    char cmd;               /* 's', 'g' or 'd' */
    size_t klen, vlen;
    char *answer; /* made on the owner core, freed on the fiber's */
    size_t alen;
    char data[]; /* key, then value */
};

/* Runs `op` on the calling core's keys and makes its answer line. 0 or -ENOMEM. */
static int exec(struct op *op)
{
    struct store *s = sn_sharded_local(stores);
    struct entry **e = find(s, op->data, op->klen), *old = *e;
    const char *text = "NOT_FOUND\r\n";
    if (op->cmd == 's') {
        struct entry *n = malloc(sizeof *n + op->klen + op->vlen);
        if (!n)
            return -ENOMEM;
        *n = (struct entry){.next = old ? old->next : NULL, .klen = op->klen, .vlen = op->vlen};
        memcpy(n->data, op->data, op->klen + op->vlen);
        *e = n;
        free(old);
        text = "STORED\r\n";
    } else if (op->cmd == 'd' && old) {
        *e = old->next;
        free(old);
        text = "DELETED\r\n";
    } else if (op->cmd == 'g' && old) {
        op->alen = old->vlen + 8;
        if (!(op->answer = malloc(op->alen)))
            return -ENOMEM;
        memcpy(op->answer, "VALUE ", 6);
        memcpy(op->answer + 6, old->data + old->klen, old->vlen);
        memcpy(op->answer + 6 + old->vlen, "\r\n", 2);
        return 0;
    }
    op->alen = strlen(text);
    op->answer = strdup(text);
    return op->answer ? 0 : -ENOMEM;
}

static struct sn_future *exec_remote(void *arg)
{
    int rc = exec(arg);
    return rc ? sn_failed(rc) : SN_SUCCESS;
}

/* Back on the fiber's core: the answer goes into its slot. */
static void answered(void *arg, int err, uint64_t value)
{
    (void)value;
    struct op *op = arg;
    if (err)
        sn_reply_printf(op->reply, "ERROR %s\r\n", sn_strerror(err));
    else
        sn_reply_write(op->reply, op->answer, op->alen);
    sn_reply_end(op->reply);
    free(op->answer);
    free(op);
}

static char command(const char *line)
{
    if (memcmp(line, "set ", 4) == 0)
        return 's';
    if (memcmp(line, "get ", 4) == 0)
        return 'g';
    return memcmp(line, "del ", 4) == 0 ? 'd' : 0;
}

/* "set k v", "get k", "del k": an op with the key and value copied, or NULL. */
static struct op *parse(const char *line, size_t len)
{
    char cmd = len > 4 ? command(line) : 0;
    if (!cmd)
        return NULL;
    const char *key = line + 4, *end = line + len, *sp = memchr(key, ' ', (size_t)(end - key));
    size_t klen = (size_t)((sp ? sp : end) - key), vlen = sp ? (size_t)(end - sp - 1) : 0;
    if (!klen || (cmd == 's') != (sp != NULL))
        return NULL;
    struct op *op = calloc(1, sizeof *op + klen + vlen);
    if (!op)
        return NULL;
    op->cmd = cmd;
    op->klen = klen;
    op->vlen = vlen;
    memcpy(op->data, key, klen);
    memcpy(op->data + klen, sp ? sp + 1 : "", vlen);
    return op;
}

#define SAY(conn, text) sn_conn_write(conn, text, sizeof text - 1)

/* One connection, in its own fiber. */
static int session(struct sn_conn *conn, void *arg)
{
    (void)arg;
    struct sn_slice line;
    int rc;
    while ((rc = sn_conn_read_line(conn, LINE_MAX_LEN, &line)) != SN_EOF) {
        if (rc == -EMSGSIZE) {
            SAY(conn, "ERROR line too long\r\n");
            continue;
        }
        if (rc < 0)
            return rc; /* the peer reset it, or the server stops */
        if (line.len == 4 && memcmp(line.data, "quit", 4) == 0)
            return 0;
        struct op *op = parse(line.data, line.len);
        if (!op) {
            SAY(conn, "ERROR unknown command\r\n");
            continue;
        }
        unsigned owner = sn_partition(owner_of, op->data, op->klen);
        if (owner == sn_core_id()) {
            if (exec(op) == 0)
                sn_conn_write(conn, op->answer, op->alen);
            else
                SAY(conn, "ERROR out of memory\r\n");
            free(op->answer);
            free(op);
        } else if ((rc = sn_reply_begin(conn, &op->reply)) == 0) {
            sn_done(sn_submit_to(owner, exec_remote, op), answered, op);
        } else {
            free(op);
            return rc;
        }
    }
    return 0;
}

/* ---- the process ----------------------------------------------------------------------------- */

static struct sn_serve_config serve_cfg = {.listen = {.port = 7070}};

static void serving(void *arg, int err, uint64_t value)
{
    (void)arg;
    if (err) {
        fprintf(stderr, "sn-keys: cannot listen on port %u: %s\n", serve_cfg.listen.port,
                sn_strerror(err));
        sn_stop(1);
        return;
    }
    struct sn_server *srv = (struct sn_server *)(uintptr_t)value;
    printf("sn-keys: listening on port %u, %u cores\n", sn_listener_port(sn_server_listener(srv)),
           sn_core_count());
    fflush(stdout);
}

static struct sn_future *stores_ready(void *arg, uint64_t value)
{
    (void)arg, (void)value;
    sn_done(sn_serve(&serve_cfg, session, NULL), serving, NULL);
    return sn_when_stopped(); /* until SIGINT/SIGTERM; libsn closes the server then */
}

static struct sn_future *stores_stopped(void *arg, int err, uint64_t value)
{
    (void)err, (void)value;
    return sn_ready((uint64_t)(uintptr_t)arg);
}

static struct sn_future *stop_stores(void *arg, int err, uint64_t code)
{
    (void)arg;
    if (err)
        fprintf(stderr, "sn-keys: %s\n", sn_strerror(err));
    uint64_t rc = err ? 1 : code;
    return sn_then_wrapped(sn_sharded_stop(stores), stores_stopped, (void *)(uintptr_t)rc);
}

static struct sn_future *keys_main(void *arg)
{
    (void)arg;
    struct sn_partition_config pc = {.kind = SN_PARTITION_HASH, .n = sn_core_count()};
    char err[128];
    if (sn_partition_create(&pc, err, sizeof err, &owner_of) < 0) {
        fprintf(stderr, "sn-keys: %s\n", err);
        return sn_ready(1);
    }
    struct sn_future *f = sn_sharded_start(store_init, store_fini, NULL, &stores);
    return sn_then_wrapped(sn_then(f, stores_ready, NULL), stop_stores, NULL);
}

static const char usage[] =
    "usage: sn-keys [--port N] [--listen ADDR] [--max-conns N] [libsn options]\n"
    "  --port N         TCP port (default 7070; 0 = any)\n"
    "  --listen ADDR    numeric address to listen on (default 127.0.0.1)\n"
    "  --max-conns N    connections per core, more are closed at once (default 0 = no limit)\n";

int main(int argc, char **argv)
{
    struct sn_config cfg;
    int rc = sn_config_parse(&argc, argv, usage, &cfg);
    if (rc != SN_CONFIG_CONTINUE)
        return rc;
    static const struct option opts[] = {{"port", required_argument, NULL, 'p'},
                                         {"listen", required_argument, NULL, 'l'},
                                         {"max-conns", required_argument, NULL, 'm'},
                                         {0, 0, 0, 0}};
    uint64_t v;
    for (int c; (c = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
        if (c == 'p' && app_parse_u64(optarg, 65535, &v) == 0)
            serve_cfg.listen.port = (uint16_t)v;
        else if (c == 'l')
            serve_cfg.listen.host = optarg;
        else if (c == 'm' && app_parse_u64(optarg, 1u << 30, &v) == 0)
            serve_cfg.listen.max_conns_per_core = (unsigned)v;
        else {
            fputs(usage, stderr);
            return SN_CONFIG_EXIT_USAGE;
        }
    }
    if ((rc = app_check_args("sn-keys", argc, argv, serve_cfg.listen.host)) != SN_CONFIG_CONTINUE)
        return rc;
    rc = app_exit_code("sn-keys", sn_run(&cfg, keys_main, NULL));
    sn_partition_destroy(owner_of);
    return rc;
}
