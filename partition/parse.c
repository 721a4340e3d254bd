/*
 * sn_partition_from_string: the command-line form of a partitioner config. The grammar is in
 * include/sn/partition.h. Every rejection names the offending part of the spec.
 */
#include "partition/partition_internal.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* A spec split at commas, in one writable copy. */
struct items {
    char *buf;
    char **item;
    uint32_t count;
};

static void items_free(struct items *it)
{
    free(it->buf);
    free(it->item);
    it->buf = NULL;
    it->item = NULL;
}

static int items_split(struct items *it, const char *list, char *err, size_t errlen)
{
    size_t count = 1;
    for (const char *c = list; *c; c++)
        count += *c == ',';
    if (count > SN_PARTITION_MAX_N)
        return sn__perr(err, errlen, "too many items (%zu) in \"%.40s...\"", count, list);
    it->buf = strdup(list);
    it->item = malloc(count * sizeof(*it->item));
    if (!it->buf || !it->item) {
        items_free(it);
        sn__perr(err, errlen, "out of memory");
        return -ENOMEM;
    }
    it->count = 0;
    char *s = it->buf;
    for (;;) {
        it->item[it->count++] = s;
        char *comma = strchr(s, ',');
        if (!comma)
            break;
        *comma = '\0';
        s = comma + 1;
    }
    return 0;
}

/* Parses all of s as an unsigned decimal (or 0x hex when hex_ok) number <= max. */
static bool parse_uint(const char *s, bool hex_ok, uint64_t max, uint64_t *out)
{
    if (!isdigit((unsigned char)s[0]))
        return false;
    int base = hex_ok && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') ? 16 : 10;
    if (base == 16 && !isxdigit((unsigned char)s[2]))
        return false;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, base);
    if (errno || *end || v > max)
        return false;
    *out = v;
    return true;
}

static bool all_digits(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s))
            return false;
    return true;
}

/* When the caller gave n, it must agree with the N the spec defines. */
static int check_n(const char *what, uint32_t derived, uint32_t n, char *err, size_t errlen)
{
    if (n && n != derived)
        return sn__perr(err, errlen, "%s defines %u partitions but n=%u", what, derived, n);
    return 0;
}

static int need_n(const char *what, uint32_t n, char *err, size_t errlen)
{
    if (!n)
        return sn__perr(err, errlen, "%s: give the number of partitions (n is 0)", what);
    return 0;
}

static int parse_weights(struct sn_partition_config *c, const char *list, uint32_t n, char *err,
                         size_t errlen, double **weights)
{
    struct items it;
    int rc = items_split(&it, list, err, errlen);
    if (rc < 0)
        return rc;
    double *w = malloc(it.count * sizeof(*w));
    if (!w) {
        rc = -ENOMEM;
        sn__perr(err, errlen, "out of memory");
    }
    for (uint32_t i = 0; w && i < it.count && rc == 0; i++) {
        char *end;
        errno = 0;
        w[i] = strtod(it.item[i], &end);
        if (!it.item[i][0] || *end || errno || !isfinite(w[i]) || !(w[i] > 0))
            rc = sn__perr(err, errlen, "rendezvous: weight \"%s\" is not a finite number > 0",
                          it.item[i]);
    }
    if (rc == 0)
        rc = check_n("rendezvous weight list", it.count, n, err, errlen);
    c->n = it.count;
    c->weights = w;
    *weights = w;
    items_free(&it);
    return rc;
}

/* One server-list entry: host[:port[:weight]] or [v6addr]:port[:weight] (libmemcached), then
 * for nutcracker optionally a space and the server's name (*name, else NULL). */
static int parse_server(char *s, struct sn_partition_node *node, const char **name, char *err,
                        size_t errlen)
{
    char *space = strchr(s, ' ');
    *name = NULL;
    if (space) {
        *space = '\0';
        *name = space + 1;
    }
    char *colon = s[0] == '[' && strchr(s, ']') ? strchr(strchr(s, ']'), ':') : strchr(s, ':');
    node->host = s;
    node->port = 0;
    node->weight = 0;
    if (!colon)
        return 0;
    *colon = '\0';
    char *port = colon + 1, *weight = strchr(port, ':');
    if (weight)
        *weight++ = '\0';
    uint64_t v;
    if (!parse_uint(port, false, 65535, &v) || v == 0)
        return sn__perr(err, errlen, "ketama: bad port \"%s\" for host \"%s\" (1..65535)", port, s);
    node->port = (uint16_t)v;
    if (weight) {
        if (!parse_uint(weight, false, UINT32_MAX, &v))
            return sn__perr(err, errlen, "ketama: bad weight \"%s\" for host \"%s\"", weight, s);
        node->weight = (uint32_t)v;
    }
    return 0;
}

/* The nodes of a server list and their names, in one allocation (*alloc, freed by the caller). */
static int parse_servers(struct sn_partition_config *c, struct items *it, void **alloc, char *err,
                         size_t errlen)
{
    struct sn_partition_node *nodes;
    const char **names;
    *alloc = calloc(it->count, sizeof(*nodes) + sizeof(*names));
    if (!*alloc) {
        sn__perr(err, errlen, "out of memory");
        return -ENOMEM;
    }
    nodes = *alloc;
    names = (const char **)(nodes + it->count);
    bool named = false;
    for (uint32_t i = 0; i < it->count; i++) {
        int rc = parse_server(it->item[i], &nodes[i], &names[i], err, errlen);
        if (rc < 0)
            return rc;
        named |= names[i] != NULL;
    }
    c->nodes = nodes;
    c->ketama_names = named ? names : NULL;
    c->n = it->count;
    return 0;
}

static int parse_ketama(struct sn_partition_config *c, const char *arg, uint32_t n,
                        struct items *it, void **alloc, char *err, size_t errlen)
{
    if (!arg) {
        c->n = n;
        return need_n("ketama", n, err, errlen);
    }
    uint64_t count;
    if (all_digits(arg)) {
        if (!parse_uint(arg, false, SN_PARTITION_KETAMA_MAX_NODES, &count) || count == 0)
            return sn__perr(err, errlen, "ketama:%s: node count must be 1..%u", arg,
                            SN_PARTITION_KETAMA_MAX_NODES);
        c->n = (uint32_t)count;
        return check_n("ketama node count", c->n, n, err, errlen);
    }
    int rc = items_split(it, arg, err, errlen);
    if (rc == 0)
        rc = parse_servers(c, it, alloc, err, errlen);
    return rc < 0 ? rc : check_n("ketama server list", c->n, n, err, errlen);
}

static int hexval(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    ch = tolower(ch);
    return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

/* Decodes hex digits in place (the result is never longer than the text). */
static int unhex(char *s, size_t *len, char *err, size_t errlen)
{
    size_t n = strlen(s);
    if (n % 2)
        return sn__perr(err, errlen, "range:hex: \"%s\" has an odd number of digits", s);
    for (size_t i = 0; i < n; i++) /* check first, so the message shows the text as given */
        if (hexval((unsigned char)s[i]) < 0)
            return sn__perr(err, errlen, "range:hex: \"%s\" is not hex", s);
    for (size_t i = 0; i < n / 2; i++)
        s[i] = (char)(hexval((unsigned char)s[2 * i]) << 4 | hexval((unsigned char)s[2 * i + 1]));
    *len = n / 2;
    return 0;
}

/* range:10,20 / range:str:b,m / range:hex:0a,ff. Fills split_u64 or split_keys. */
static int parse_range(struct sn_partition_config *c, const char *arg, uint32_t n, struct items *it,
                       void **splits, char *err, size_t errlen)
{
    if (!arg)
        return sn__perr(err, errlen,
                        "range: needs split points, e.g. range:10,20,30 or "
                        "range:str:b,m,t");
    bool str = strncmp(arg, "str:", 4) == 0, hex = strncmp(arg, "hex:", 4) == 0;
    int rc = items_split(it, str || hex ? arg + 4 : arg, err, errlen);
    if (rc < 0)
        return rc;
    if (it->count >= SN_PARTITION_MAX_N)
        return sn__perr(err, errlen, "range: too many split points");
    size_t esize = str || hex ? sizeof(struct sn_partition_key) : sizeof(uint64_t);
    *splits = malloc(it->count * esize);
    if (!*splits) {
        sn__perr(err, errlen, "out of memory");
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < it->count; i++) {
        char *s = it->item[i];
        if (str || hex) {
            size_t len = strlen(s);
            if (hex && (rc = unhex(s, &len, err, errlen)) < 0)
                return rc;
            ((struct sn_partition_key *)*splits)[i] = (struct sn_partition_key){s, len};
        } else if (!parse_uint(s, true, UINT64_MAX, &((uint64_t *)*splits)[i])) {
            return sn__perr(err, errlen,
                            "range: split point \"%s\" is not an unsigned 64-bit "
                            "number (use range:str: for strings)",
                            s);
        }
    }
    if (str || hex)
        c->split_keys = *splits;
    else
        c->split_u64 = *splits;
    c->n = it->count + 1;
    return check_n("range split list", c->n, n, err, errlen);
}

/* Names starting a ketama spec, their ring layout and default key hash. */
static const struct {
    const char *name;
    enum sn_ketama_ring ring;
    enum sn_ketama_key_hash hash;
} ketama_names[] = {
    {"ketama-unweighted", SN_KETAMA_RING_UNWEIGHTED, SN_KETAMA_KEY_ONE_AT_A_TIME},
    {"ketama", SN_KETAMA_RING_WEIGHTED, SN_KETAMA_KEY_MD5},
    {"nutcracker", SN_KETAMA_RING_NUTCRACKER, SN_KETAMA_KEY_FNV1A_64},
    {"twemproxy", SN_KETAMA_RING_NUTCRACKER, SN_KETAMA_KEY_FNV1A_64},
};

/* The key hash and hash tag after a ketama name: [-HASH][/TAG]. */
static int ketama_suffix(struct sn_partition_config *c, const char *name, const char *rest,
                         char *err, size_t errlen)
{
    const char *slash = strchr(rest, '/');
    size_t hlen = slash ? (size_t)(slash - rest) : strlen(rest);
    if (hlen) {
        int h = rest[0] == '-' ? sn__ketama_hash_by_name(rest + 1, hlen - 1) : -1;
        if (h < 0)
            return sn__perr(err, errlen,
                            "unknown key hash \"%.*s\" in \"%s\" (expected md5, one_at_a_time, "
                            "crc32, crc32a, crc16, fnv1_64, fnv1a_64, fnv1_32, fnv1a_32, hsieh, "
                            "murmur, murmur3, jenkins, xxh3)",
                            (int)(hlen ? hlen - 1 : 0), rest + 1, name);
        c->ketama_key_hash = (enum sn_ketama_key_hash)h;
    }
    if (!slash)
        return 0;
    if (c->ketama_ring != SN_KETAMA_RING_NUTCRACKER)
        return sn__perr(err, errlen, "%s: a hash tag (/XY) is nutcracker's", name);
    /* Points into the caller's name buffer, which outlives sn_partition_create. */
    c->ketama_hash_tag = slash + 1;
    return 0;
}

/* 0 when name is a ketama spec (c filled), 1 when it is not ketama, < 0 on a bad one. */
static int ketama_variant(struct sn_partition_config *c, const char *name, char *err, size_t errlen)
{
    for (size_t i = 0; i < sizeof(ketama_names) / sizeof(ketama_names[0]); i++) {
        size_t len = strlen(ketama_names[i].name);
        if (strncmp(name, ketama_names[i].name, len) != 0 ||
            (name[len] && name[len] != '-' && name[len] != '/'))
            continue;
        c->kind = SN_PARTITION_KETAMA;
        c->ketama_ring = ketama_names[i].ring;
        c->ketama_key_hash = ketama_names[i].hash;
        return ketama_suffix(c, name, name + len, err, errlen);
    }
    return 1;
}

/* Fills the config from name and arg; allocations are returned through the out pointers
 * (the caller frees them after sn_partition_create has copied what it needs). */
static int build_config(struct sn_partition_config *c, const char *name, const char *arg,
                        uint32_t n, struct items *it, void **alloc, char *err, size_t errlen)
{
    bool simple = true;
    if (strcmp(name, "hash") == 0)
        c->kind = SN_PARTITION_HASH;
    else if (strcmp(name, "jump") == 0)
        c->kind = SN_PARTITION_JUMP;
    else if (strcmp(name, "round-robin") == 0 || strcmp(name, "rr") == 0)
        c->kind = SN_PARTITION_ROUND_ROBIN;
    else
        simple = false;
    if (simple) {
        if (arg)
            return sn__perr(err, errlen, "%s takes no parameters (got \"%s\")", name, arg);
        c->n = n;
        return need_n(name, n, err, errlen);
    }
    if (strcmp(name, "rendezvous") == 0 || strcmp(name, "hrw") == 0) {
        c->kind = SN_PARTITION_RENDEZVOUS;
        if (!arg) {
            c->n = n;
            return need_n(name, n, err, errlen);
        }
        return parse_weights(c, arg, n, err, errlen, (double **)alloc);
    }
    int rc = ketama_variant(c, name, err, errlen);
    if (rc <= 0)
        return rc < 0 ? rc : parse_ketama(c, arg, n, it, alloc, err, errlen);
    if (strcmp(name, "range") == 0) {
        c->kind = SN_PARTITION_RANGE;
        return parse_range(c, arg, n, it, alloc, err, errlen);
    }
    if (strcmp(name, "custom") == 0)
        return sn__perr(err, errlen,
                        "custom partitioners need a callback: use "
                        "sn_partition_create");
    return sn__perr(err, errlen,
                    "unknown partitioner \"%s\" (expected hash, jump, ketama[-HASH], "
                    "ketama-unweighted[-HASH], nutcracker[-HASH][/TAG], rendezvous, range, "
                    "round-robin)",
                    name);
}

int sn_partition_from_string(const char *spec, uint32_t n, char *err, size_t errlen,
                             struct sn_partition **out)
{
    if (err && errlen)
        err[0] = '\0';
    if (!out)
        return sn__perr(err, errlen, "out must not be NULL");
    *out = NULL;
    if (!spec || !spec[0])
        return sn__perr(err, errlen, "empty partitioner spec");
    char name[64];
    const char *colon = strchr(spec, ':');
    size_t nlen = colon ? (size_t)(colon - spec) : strlen(spec);
    if (nlen >= sizeof(name))
        return sn__perr(err, errlen, "unknown partitioner \"%.*s\"", (int)(nlen > 40 ? 40 : nlen),
                        spec);
    memcpy(name, spec, nlen);
    name[nlen] = '\0';

    struct sn_partition_config c = {0};
    struct items it = {0};
    void *alloc = NULL;
    int rc = build_config(&c, name, colon ? colon + 1 : NULL, n, &it, &alloc, err, errlen);
    if (rc == 0)
        rc = sn_partition_create(&c, err, errlen, out);
    free(alloc);
    items_free(&it);
    return rc;
}
