/*
 * The sn-keys example server (apps/keys, also the README's complete server) end to end:
 * started with fork/exec (--smp 3 --unpinned --port P), driven by clients that pipeline
 * commands on keys of every core (300 keys each: every core owns about a third) and check
 * every answer in order, reads of their own writes included, then stopped with SIGTERM
 * (exit 0; under ASan also no leak).
 */
#include <pthread.h>

#include "reactor_util.h"
#include "support/server_proc.h"

#define NKEYS 300

/* One client's script: its commands and the answers they must get. */
static void script(unsigned who, char *req, size_t *rlen, char *expect, size_t *elen)
{
    size_t r = 0, e = 0;
    for (unsigned i = 0; i < NKEYS; i++) {
        r += (size_t)sprintf(req + r, "set k%u.%u value %u of %u\r\n", who, i, i, who);
        e += (size_t)sprintf(expect + e, "STORED\r\n");
    }
    for (unsigned i = 0; i < NKEYS; i++) {
        r += (size_t)sprintf(req + r, "get k%u.%u\r\n", who, i);
        e += (size_t)sprintf(expect + e, "VALUE value %u of %u\r\n", i, who);
        if (i % 3 == 0) {
            r += (size_t)sprintf(req + r, "del k%u.%u\r\nget k%u.%u\r\n", who, i, who, i);
            e += (size_t)sprintf(expect + e, "DELETED\r\nNOT_FOUND\r\n");
        }
    }
    r += (size_t)sprintf(req + r, "bogus\r\n");
    e += (size_t)sprintf(expect + e, "ERROR unknown command\r\n");
    memset(req + r, 'x', 2000);
    r += 2000;
    r += (size_t)sprintf(req + r, "\r\nget k%u.1\r\nquit\r\n", who);
    e += (size_t)sprintf(expect + e, "ERROR line too long\r\nVALUE value 1 of %u\r\n", who);
    *rlen = r;
    *elen = e;
}

struct client {
    uint16_t port;
    unsigned who;
    int rc;
};

static void *client(void *arg)
{
    struct client *c = arg;
    char *req = malloc(NKEYS * 100 + 4096), *expect = malloc(NKEYS * 100 + 4096);
    size_t rlen, elen;
    script(c->who, req, &rlen, expect, &elen);
    int fd = nu_connect(c->port);
    c->rc = 1;
    if (fd >= 0) {
        nu_timeout(fd, 30000);
        char *got = malloc(elen + 1);
        bool eof = false;
        /* Everything at once: the server reads while answering. */
        if (su_send_some(fd, req, rlen, 30000) == rlen) {
            size_t n = su_read_until(fd, got, elen + 1, NULL, 30000, &eof);
            c->rc = n == elen && memcmp(got, expect, elen) == 0 && eof ? 0 : 2;
            if (c->rc)
                fprintf(stderr, "client %u: %zu of %zu bytes, eof %d\n", c->who, n, elen, eof);
        }
        free(got);
        close(fd);
    }
    free(req);
    free(expect);
    return NULL;
}

Test(keys, pipelined_commands_on_every_core_answered_in_order, .timeout = 120, .fini = su_reap_all)
{
    struct su_server s;
    su_start_args(&s, "keys",
                  (const char *const[]){"--smp", "3", "--unpinned", "--port", SU_PORT, NULL});
    pthread_t t[6];
    struct client c[6];
    for (unsigned i = 0; i < 6; i++) {
        c[i] = (struct client){.port = s.port, .who = i};
        pthread_create(&t[i], NULL, client, &c[i]);
    }
    for (unsigned i = 0; i < 6; i++) {
        pthread_join(t[i], NULL);
        cr_assert_eq(c[i].rc, 0, "client %u: every answer in order, then the close", i);
    }
    su_stop_clean(&s);
}
