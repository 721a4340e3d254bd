/*
 * Test support for the tests that run sn-kv as a pool behind the memcached ecosystem
 * (test_ketama_nutcracker.c, test_cluster.c): a private network namespace, sn-kv and
 * nutcracker processes on loopback addresses, and a small blocking memcached client that
 * pipelines sets and asks a server which keys it holds. Implemented in
 * tests/support/cluster.c; processes are started with su_spawn, so su_reap_all (every test's
 * .fini) and PR_SET_PDEATHSIG stop them whatever happens.
 *
 * Addresses: in a private network namespace (root can make one) every server gets its own
 * loopback address 127.0.0.x and may use memcached's port 11211, as a real pool does; without
 * one, servers share the host's loopback on kernel-chosen free ports. Either way traffic never
 * leaves the machine. Every wait is bounded.
 */
#ifndef SN_TEST_CLUSTER_UTIL_H
#define SN_TEST_CLUSTER_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct cl_addr {
    char host[16];
    uint16_t port;
};

/*
 * Moves this process into a new network namespace with its loopback up, when it may (root).
 * Returns true when it did (then 127.0.0.x:11211 is free for every x), false when the test
 * must use the host's loopback and free ports (also when SN_CLUSTER_HOST_NET is set, to test
 * that path as root). Call before starting any server.
 */
bool cl_private_net(void);

/* Address i (0-based) of a pool: 127.0.0.(i+1):11211 in a private namespace, else
 * 127.0.0.(i+1) on a free port. `port_11211` false forces a port other than 11211 (a point
 * name with ":port", as libmemcached and nutcracker write it). */
struct cl_addr cl_pool_addr(unsigned i, bool private_net, bool port_11211);

/* A port free on host at the time of the call (0 if none could be found). */
uint16_t cl_free_port(const char *host);

/* True once host:port accepts a TCP connection, polling for at most ms. */
bool cl_wait_accept(const char *host, uint16_t port, unsigned ms);

/* Starts build/bin/sn-kv (--smp 1) on a and waits until it accepts; asserts success. */
pid_t cl_start_kv(const struct cl_addr *a);

/* Kills pid with SIGKILL and reaps it (bounded). */
void cl_kill(pid_t pid);

/*
 * Starts nutcracker with the YAML file `conf` (log next to it) and waits until every one of
 * the n listen addresses accepts; asserts success. Its stats port is a free port on
 * 127.0.0.1.
 */
pid_t cl_start_nutcracker(const char *conf, const struct cl_addr *listen, unsigned n);

/* A fresh scratch directory under /tmp (removed by cl_rmdir, or by cl_cleanup). */
void cl_tmpdir(char *out, size_t cap);
void cl_rmdir(const char *dir);

/* Stops every process (su_reap_all) and removes every scratch directory left: the cluster
 * tests' .fini, so a failed assertion leaves nothing behind. */
void cl_cleanup(void);

/* A blocking TCP connection with 5 s send/receive timeouts, or -1. */
int cl_connect(const struct cl_addr *a);

/*
 * Sets keys[0..n) (each NUL-terminated) to `value` with pipelined "set" commands and reads
 * every reply. Returns how many were STORED; *other (if not NULL) gets the first reply that
 * was not. Returns (size_t)-1 if the connection failed or a reply took over 5 s.
 */
size_t cl_set_many(int fd, char *const *keys, size_t n, const char *value, char *other,
                   size_t other_cap);

/*
 * Asks the server on fd which of keys[0..n) it holds, with multi-key gets: held[i] is set to
 * true for each key it returns (and, if `value` is not NULL, whose data equals value; a key
 * with other data counts as not held). Returns how many it holds, or (size_t)-1 on a failed
 * connection or a reply over 5 s.
 */
size_t cl_held(int fd, char *const *keys, size_t n, const char *value, bool *held);

/* One command and its one-line reply (into reply, NUL-terminated, "\r\n" removed): 0, or -1. */
int cl_command(int fd, const char *cmd, char *reply, size_t cap);

/*
 * Starts argv[0] (a full path) with its stdin and stdout on pipes: *to_child writes its stdin,
 * *from_child reads its stdout; stderr stays the test's. Tracked like every su_spawn child.
 */
pid_t cl_spawn_piped(char *const argv[], int *to_child, int *from_child);

/* Reads one line (without the newline) from fd into buf within ms: its length, or -1. */
int cl_read_line(int fd, char *buf, size_t cap, unsigned ms);

#endif
