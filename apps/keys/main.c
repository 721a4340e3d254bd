/*
 * sn-keys: a key-value store with a line protocol. Every key belongs to one core (a hash
 * partitioner). One fiber per connection (sn_serve) reads lines; each command goes to its
 * key's core (sn_submit_to) and its answer comes back into a reply slot taken when the line
 * was read (sn_reply_begin), so pipelined commands are answered in order, while the fiber
 * reads on.
 *
 *   set <key> <value>  STORED          get <key>  VALUE <value> or NOT_FOUND
 *   del <key>          DELETED or NOT_FOUND          quit       the server closes
 *   a line over 1024 bytes: ERROR line too long; anything else: ERROR unknown command
 *
 *   sn-keys [--port N] [libsn options: --smp N, ...]; runs until SIGINT/SIGTERM (exit 0)
 */
#include <sn.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LINE 1024
#define BUCKETS  4096

struct entry { /* "key\0value\0" in one block */
    struct entry *next;
    char text[];
};

struct store { /* one per core, touched only by it */
    struct entry *bucket[BUCKETS];
};

struct op { /* one command: made by the fiber, run on the key's core, freed by the fiber */
    struct sn_reply *reply;
    char answer[MAX_LINE + 16];
    char line[]; /* "set key value", NUL-terminated */
};

static struct sn_sharded *stores;
static struct sn_partition *owner;
static struct sn_serve_config serve_cfg = {.listen = {.port = 7070}};

static struct entry **find(const char *key)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const char *p = key; *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    struct entry **e = &((struct store *)sn_sharded_local(stores))->bucket[h % BUCKETS];
    while (*e && strcmp((*e)->text, key) != 0)
        e = &(*e)->next;
    return e;
}

/* On the key's core: runs the command and writes its answer line into op->answer. */
static struct sn_future *run(void *arg)
{
    struct op *op = arg;
    char cmd = op->line[0], *key = op->line + 4, *value = strchr(key, ' ');
    if (value)
        *value++ = '\0';
    struct entry **e = find(key), *old = *e;
    if (cmd == 'g') {
        if (old)
            snprintf(op->answer, sizeof op->answer, "VALUE %s\r\n", old->text + strlen(key) + 1);
        else
            strcpy(op->answer, "NOT_FOUND\r\n");
        return SN_SUCCESS;
    }
    strcpy(op->answer, cmd == 's' ? "STORED\r\n" : old ? "DELETED\r\n" : "NOT_FOUND\r\n");
    if (cmd == 's') {
        size_t klen = strlen(key) + 1, vlen = strlen(value) + 1;
        struct entry *n = malloc(sizeof *n + klen + vlen);
        if (!n)
            return sn_failed(-ENOMEM);
        n->next = old ? old->next : NULL;
        memcpy(n->text, key, klen);
        memcpy(n->text + klen, value, vlen);
        *e = n;
    } else if (old) {
        *e = old->next;
    }
    free(old);
    return SN_SUCCESS;
}

/* Back on the fiber's core: the answer goes into its slot. */
static void answered(void *arg, int err, uint64_t value)
{
    (void)value;
    struct op *op = arg;
    if (err)
        sn_reply_printf(op->reply, "ERROR %s\r\n", sn_strerror(err));
    else
        sn_reply_write(op->reply, op->answer, strlen(op->answer));
    sn_reply_end(op->reply);
    free(op);
}

/* "set k v", "get k", "del k" (one space apart, a key without spaces)? */
static bool well_formed(const char *line, size_t len)
{
    bool set = len > 4 && memcmp(line, "set ", 4) == 0;
    if (!set && (len <= 4 || (memcmp(line, "get ", 4) != 0 && memcmp(line, "del ", 4) != 0)))
        return false;
    const char *sp = memchr(line + 4, ' ', len - 4);
    return memchr(line, '\0', len) == NULL && sp != line + 4 && set == (sp != NULL);
}

/* One connection, in its own fiber. */
static int session(struct sn_conn *conn, void *arg)
{
    (void)arg;
    struct sn_slice line;
    int rc;
    while ((rc = sn_conn_read_line(conn, MAX_LINE, &line)) != SN_EOF) {
        if (rc == -EMSGSIZE) {
            sn_conn_write(conn, "ERROR line too long\r\n", 21);
            continue;
        }
        if (rc < 0)
            return rc; /* the peer reset it, or the server stops */
        if (line.len == 4 && memcmp(line.data, "quit", 4) == 0)
            return 0;
        if (!well_formed(line.data, line.len)) {
            sn_conn_write(conn, "ERROR unknown command\r\n", 23);
            continue;
        }
        struct op *op = malloc(sizeof *op + line.len + 1);
        if (!op || (rc = sn_reply_begin(conn, &op->reply)) < 0) {
            free(op);
            return op ? rc : -ENOMEM;
        }
        memcpy(op->line, line.data, line.len);
        op->line[line.len] = '\0';
        const char *key = op->line + 4, *end = strchr(key, ' ');
        unsigned core = sn_partition(owner, key, end ? (size_t)(end - key) : strlen(key));
        sn_done(sn_submit_to(core, run, op), answered, op);
    }
    return 0;
}

/* ---- the process: a store per core, the partitioner, the server ---------------------------- */

static void *store_new(void *arg, unsigned core)
{
    (void)arg, (void)core;
    return calloc(1, sizeof(struct store));
}

static void store_free(void *store, void *arg)
{
    (void)arg;
    struct store *s = store;
    for (unsigned i = 0; i < BUCKETS; i++)
        for (struct entry *e = s->bucket[i], *next; e; e = next) {
            next = e->next;
            free(e);
        }
    free(s);
}

static void serving(void *arg, int err, uint64_t value)
{
    (void)arg;
    if (err) {
        fprintf(stderr, "sn-keys: cannot listen: %s\n", sn_strerror(err));
        sn_stop(1);
        return;
    }
    struct sn_listener *l = sn_server_listener((struct sn_server *)(uintptr_t)value);
    printf("sn-keys: listening on port %u, %u cores\n", sn_listener_port(l), sn_core_count());
    fflush(stdout);
}

static struct sn_future *serve(void *arg, uint64_t value)
{
    (void)arg, (void)value;
    sn_done(sn_serve(&serve_cfg, session, NULL), serving, NULL);
    return sn_when_stopped(); /* until SIGINT/SIGTERM; libsn closes the server then */
}

static struct sn_future *exit_code(void *arg, uint64_t value)
{
    (void)value;
    return sn_ready((uintptr_t)arg);
}

/* The server stopped (a signal): free every core's store while the cores still run. */
static struct sn_future *stop_stores(void *arg, int err, uint64_t code)
{
    (void)arg;
    return sn_then(sn_sharded_stop(stores), exit_code, (void *)(uintptr_t)(err ? 1 : code));
}

static struct sn_future *keys_main(void *arg)
{
    (void)arg;
    struct sn_partition_config pc = {.kind = SN_PARTITION_HASH, .n = sn_core_count()};
    char why[128];
    if (sn_partition_create(&pc, why, sizeof why, &owner) < 0) {
        fprintf(stderr, "sn-keys: %s\n", why);
        return sn_ready(1);
    }
    struct sn_future *f =
        sn_then(sn_sharded_start(store_new, store_free, NULL, &stores), serve, NULL);
    return sn_then_wrapped(f, stop_stores, NULL);
}

int main(int argc, char **argv)
{
    struct sn_config cfg;
    int rc = sn_config_parse(&argc, argv, "usage: sn-keys [--port N]\n", &cfg);
    if (rc != SN_CONFIG_CONTINUE)
        return rc;
    if (argc == 3 && strcmp(argv[1], "--port") == 0)
        serve_cfg.listen.port = (uint16_t)atoi(argv[2]);
    else if (argc != 1)
        return fputs("usage: sn-keys [--port N] [libsn options]\n", stderr), 2;
    rc = sn_run(&cfg, keys_main, NULL);
    sn_partition_destroy(owner);
    if (rc < 0)
        fprintf(stderr, "sn-keys: %s\n", sn_strerror(rc));
    return rc < 0 ? 1 : rc == 128 + SIGINT || rc == 128 + SIGTERM ? 0 : rc;
}
