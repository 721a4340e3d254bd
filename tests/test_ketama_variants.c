/*
 * Ketama's layouts and key hashes as a user reaches them: the string forms (ketama-HASH,
 * ketama-unweighted[-HASH], nutcracker[-HASH][/TAG]) against the C config, nutcracker's hash
 * tags, server names, name-length limit and empty-key rule, known CRC vectors, and
 * sn_partition_many against sn_partition for every variant. Agreement with the real programs
 * is checked in test_ketama_libmemcached.c and test_ketama_nutcracker.c.
 */
#include <criterion/criterion.h>
#include <sn.h>

#include "partition/partition_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static struct sn_partition *spec(const char *s)
{
    struct sn_partition *p = NULL;
    char err[256];
    cr_assert_eq(sn_partition_from_string(s, 0, err, sizeof(err), &p), 0, "%s: %s", s, err);
    return p;
}

static void expect_bad(const char *s, const char *why)
{
    struct sn_partition *p = NULL;
    char err[256] = "";
    cr_expect_eq(sn_partition_from_string(s, 0, err, sizeof(err), &p), -EINVAL, "%s", s);
    cr_expect_null(p);
    cr_expect(strstr(err, why) != NULL, "%s: message \"%s\" lacks \"%s\"", s, err, why);
}

static struct sn_partition *config(enum sn_ketama_ring ring, enum sn_ketama_key_hash hash,
                                   const struct sn_partition_node *nodes, uint32_t n,
                                   const char *const *names, const char *tag)
{
    struct sn_partition_config c = {.kind = SN_PARTITION_KETAMA,
                                    .n = n,
                                    .nodes = nodes,
                                    .ketama_key_hash = hash,
                                    .ketama_ring = ring,
                                    .ketama_names = names,
                                    .ketama_hash_tag = tag};
    struct sn_partition *p = NULL;
    char err[256];
    cr_assert_eq(sn_partition_create(&c, err, sizeof(err), &p), 0, "%s", err);
    return p;
}

/* Keys "k0".."k<count-1>" map the same through a and b. */
static void expect_same(struct sn_partition *a, struct sn_partition *b, int count, const char *what)
{
    int diff = 0;
    for (int i = 0; i < count; i++) {
        char key[32];
        int len = snprintf(key, sizeof(key), "k%d", i);
        diff += sn_partition(a, key, (size_t)len) != sn_partition(b, key, (size_t)len);
    }
    cr_expect_eq(diff, 0, "%s: %d of %d keys differ", what, diff, count);
}

static const struct sn_partition_node three[] = {
    {"10.0.0.1", 11211, 1}, {"10.0.0.2", 11212, 2}, {"cache-c", 0, 3}};

Test(ketama_variants, string_forms_equal_configs)
{
    static const struct {
        const char *spec;
        enum sn_ketama_ring ring;
        enum sn_ketama_key_hash hash;
    } cases[] = {
        {"ketama:10.0.0.1,10.0.0.2:11212:2,cache-c:11211:3", SN_KETAMA_RING_WEIGHTED,
         SN_KETAMA_KEY_MD5},
        {"ketama-fnv1a_32:10.0.0.1,10.0.0.2:11212:2,cache-c:11211:3", SN_KETAMA_RING_WEIGHTED,
         SN_KETAMA_KEY_FNV1A_32},
        {"ketama-crc:10.0.0.1,10.0.0.2:11212:2,cache-c:11211:3", SN_KETAMA_RING_WEIGHTED,
         SN_KETAMA_KEY_CRC32},
        {"ketama-unweighted:10.0.0.1,10.0.0.2:11212,cache-c", SN_KETAMA_RING_UNWEIGHTED,
         SN_KETAMA_KEY_ONE_AT_A_TIME},
        {"ketama-unweighted-md5:10.0.0.1,10.0.0.2:11212,cache-c", SN_KETAMA_RING_UNWEIGHTED,
         SN_KETAMA_KEY_MD5},
        {"ketama-unweighted-default:10.0.0.1,10.0.0.2:11212,cache-c", SN_KETAMA_RING_UNWEIGHTED,
         SN_KETAMA_KEY_ONE_AT_A_TIME},
        {"nutcracker:10.0.0.1:11211:1,10.0.0.2:11212:2,cache-c:11211:3", SN_KETAMA_RING_NUTCRACKER,
         SN_KETAMA_KEY_FNV1A_64},
        {"twemproxy-hsieh:10.0.0.1:11211:1,10.0.0.2:11212:2,cache-c:11211:3",
         SN_KETAMA_RING_NUTCRACKER, SN_KETAMA_KEY_HSIEH},
        {"nutcracker-crc16:10.0.0.1,10.0.0.2:11212:2,cache-c:11211:3", SN_KETAMA_RING_NUTCRACKER,
         SN_KETAMA_KEY_CRC16},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sn_partition_node nodes[3];
        memcpy(nodes, three, sizeof(nodes));
        if (cases[i].ring == SN_KETAMA_RING_UNWEIGHTED)
            nodes[1].weight = nodes[2].weight = 1;
        struct sn_partition *a = spec(cases[i].spec);
        struct sn_partition *b = config(cases[i].ring, cases[i].hash, nodes, 3, NULL, NULL);
        cr_expect_eq(a->u.ketama.layout, cases[i].ring, "%s", cases[i].spec);
        cr_expect_eq(a->u.ketama.key_hash, cases[i].hash, "%s", cases[i].spec);
        expect_same(a, b, 3000, cases[i].spec);
        sn_partition_destroy(a);
        sn_partition_destroy(b);
    }
}

Test(ketama_variants, bad_specs)
{
    expect_bad("ketama-foo:a,b", "unknown key hash \"foo\"");
    expect_bad("ketama-:a,b", "unknown key hash");
    expect_bad("nutcracker-md6:a,b", "unknown key hash \"md6\"");
    expect_bad("ketama-unweighted:a:11211:2,b", "switches to the weighted layout");
    expect_bad("ketama/{}:a,b", "hash tag (/XY) is nutcracker's");
    expect_bad("nutcracker/{:a,b", "must be two characters");
    expect_bad("nutcracker/{}}:a,b", "must be two characters");
    expect_bad("ketama:a:11211:1 alpha,b", "server names are nutcracker's");
    expect_bad("nutcracker:a:11211:1 alpha,b:11211:1 alpha", "same name \"alpha\"");
    expect_bad("nutcracker:a:11211:1 b,b", "same name \"b\"");
    expect_bad("nutcracker:a:11211:1 bad\x01name", "bad character 0x01");
    expect_bad("ketamax:a,b", "unknown partitioner");
}

/* The C config refuses what the string form refuses. */
Test(ketama_variants, bad_configs)
{
    const char *names[] = {"x", "y", "z"};
    struct sn_partition_config c = {.kind = SN_PARTITION_KETAMA, .n = 3, .nodes = three};
    struct sn_partition *p = NULL;
    char err[256];
    c.ketama_ring = (enum sn_ketama_ring)7;
    cr_expect_eq(sn_partition_create(&c, err, sizeof(err), &p), -EINVAL);
    cr_expect(strstr(err, "unknown ring layout 7") != NULL, "%s", err);
    c.ketama_ring = SN_KETAMA_RING_WEIGHTED;
    c.ketama_names = names;
    cr_expect_eq(sn_partition_create(&c, err, sizeof(err), &p), -EINVAL);
    c.ketama_names = NULL;
    c.ketama_hash_tag = "{}";
    cr_expect_eq(sn_partition_create(&c, err, sizeof(err), &p), -EINVAL);
    cr_expect(strstr(err, "hash tag is nutcracker's") != NULL, "%s", err);
    c = (struct sn_partition_config){.kind = SN_PARTITION_JUMP, .n = 3, .ketama_hash_tag = "{}"};
    cr_expect_eq(sn_partition_create(&c, err, sizeof(err), &p), -EINVAL);
    c = (struct sn_partition_config){.kind = SN_PARTITION_JUMP, .n = 3, .ketama_ring = 1};
    cr_expect_eq(sn_partition_create(&c, err, sizeof(err), &p), -EINVAL);
    cr_expect(strstr(err, "for ketama only") != NULL, "%s", err);
    cr_expect_null(p);
}

/* Standard check values ("123456789") of the CRCs nutcracker offers. */
Test(ketama_variants, crc_check_values)
{
    const char *v = "123456789";
    cr_expect_eq(sn__ketama_hash_info(SN_KETAMA_KEY_CRC32A)->fn(v, 9), 0xCBF43926u);
    /* nutcracker 0.5.0's crc16 keeps the register's upper bits; its low 16 bits are
     * CRC-16/XMODEM. */
    uint32_t c16 = sn__ketama_hash_info(SN_KETAMA_KEY_CRC16)->fn(v, 9);
    cr_expect_eq(c16 & 0xffff, 0x31C3u);
    cr_expect_gt(c16, 0xffffu);
    cr_expect_eq(sn__ketama_hash_info(SN_KETAMA_KEY_CRC32)->fn(v, 9), 0xCBF43926u >> 16 & 0x7fff);
    cr_expect_eq(sn__ketama_hash_info(SN_KETAMA_KEY_CRC32A)->fn("", 0), 0);
    cr_expect_null(sn__ketama_hash_info((enum sn_ketama_key_hash)99));
    cr_expect_eq(sn__ketama_hash_by_name("crc", 3), SN_KETAMA_KEY_CRC32);
    cr_expect_eq(sn__ketama_hash_by_name("default", 7), SN_KETAMA_KEY_ONE_AT_A_TIME);
    cr_expect_eq(sn__ketama_hash_by_name("md", 2), -1);
}

/* nutcracker's hash_tag: the part between the first tag[0] and the next tag[1], if not empty. */
Test(ketama_variants, hash_tag)
{
    struct sn_partition *t = spec("nutcracker-md5/{}:a,b,c,d,e,f,g,h");
    struct sn_partition *plain = spec("nutcracker-md5:a,b,c,d,e,f,g,h");
    static const struct {
        const char *key, *hashed;
    } cases[] = {
        {"user{42}:name", "42"}, {"{42}", "42"},     {"x{42", "x{42"},
        {"x}42{", "x}42{"},      {"a{}b", "a{}b"},   {"a{{b}", "{b"},
        {"{a}{b}", "a"},         {"plain", "plain"}, {"a}{b}", "b"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        cr_expect_eq(sn_partition(t, cases[i].key, strlen(cases[i].key)),
                     sn_partition(plain, cases[i].hashed, strlen(cases[i].hashed)), "%s",
                     cases[i].key);
    /* Keys sharing a tag share a server whatever else they hold. */
    uint32_t first = sn_partition(t, "u{7}a", 5);
    for (int i = 0; i < 200; i++) {
        char key[32];
        int len = snprintf(key, sizeof(key), "session:%d:{7}:x", i);
        cr_assert_eq(sn_partition(t, key, (size_t)len), first);
    }
    sn_partition_destroy(t);
    sn_partition_destroy(plain);
}

/* A name replaces host[:port] in point names: a node named "10.0.0.9" hashes as the unnamed
 * node 10.0.0.9:11211 would, whatever its real address. */
Test(ketama_variants, nutcracker_names)
{
    struct sn_partition *named = spec("nutcracker-md5:127.0.0.1:4001:1 10.0.0.9,127.0.0.1:4002:1 "
                                      "10.0.0.8:7000");
    struct sn_partition *unnamed = spec("nutcracker-md5:10.0.0.9:11211:1,10.0.0.8:7000:1");
    expect_same(named, unnamed, 3000, "named vs host:port");
    cr_expect_str_eq(sn_partition_ketama_host(named, 1), "127.0.0.1");
    cr_expect_eq(sn_partition_ketama_find(named, "127.0.0.1", 4002), 1);
    sn_partition_destroy(named);
    sn_partition_destroy(unnamed);

    /* Two names on one address are two servers to nutcracker. */
    struct sn_partition *twice = spec("nutcracker:127.0.0.1:4001:1 x,127.0.0.1:4001:1 y");
    cr_expect_eq(sn_partition_count(twice), 2);
    sn_partition_destroy(twice);
}

/* Without names and ties, nutcracker's ring is libmemcached's weighted ring. */
Test(ketama_variants, nutcracker_unnamed_equals_weighted)
{
    struct sn_partition *n =
        config(SN_KETAMA_RING_NUTCRACKER, SN_KETAMA_KEY_MD5, three, 3, NULL, NULL);
    struct sn_partition *w =
        config(SN_KETAMA_RING_WEIGHTED, SN_KETAMA_KEY_MD5, three, 3, NULL, NULL);
    expect_same(n, w, 5000, "nutcracker vs weighted");
    sn_partition_destroy(n);
    sn_partition_destroy(w);
}

/* nutcracker formats point names into 86 bytes: longer ones are refused, at create and add. */
Test(ketama_variants, nutcracker_name_length)
{
    char name[90], sp[256];
    memset(name, 'n', sizeof(name));
    name[82] = '\0'; /* "n...n-39": 82 + 3 = 85 bytes, the most that fits */
    snprintf(sp, sizeof(sp), "nutcracker:h1:1:1 %s,h2", name);
    struct sn_partition *p = spec(sp);
    sn_partition_destroy(p);
    name[82] = 'n';
    name[83] = '\0';
    snprintf(sp, sizeof(sp), "nutcracker:h1:1:1 %s,h2", name);
    expect_bad(sp, "nutcracker cuts");

    /* Unnamed: "host:port" is the name. */
    p = spec("nutcracker:h1,h2");
    memset(name, 'h', 76);
    name[76] = '\0'; /* "hhh:12345-39" = 76 + 6 + 3 = 85 */
    cr_expect_eq(sn_partition_ketama_add(p, name, 12345, 1), 2);
    name[76] = 'h';
    name[77] = '\0';
    cr_expect_eq(sn_partition_ketama_add(p, name, 12345, 1), -EINVAL);
    cr_expect_eq(sn_partition_count(p), 3);
    sn_partition_destroy(p);
}

/* add/remove keep each layout's rules: no weights above 1 in the unweighted ring, no two
 * nutcracker servers with one point name; a refused add changes nothing. */
Test(ketama_variants, add_remove_rules)
{
    struct sn_partition *u = spec("ketama-unweighted:a,b");
    cr_expect_eq(sn_partition_ketama_add(u, "c", 0, 2), -EINVAL);
    cr_expect_eq(sn_partition_ketama_add(u, "c", 0, 1), 2);
    struct sn_partition *fresh = spec("ketama-unweighted:a,b,c");
    expect_same(u, fresh, 3000, "unweighted add");
    sn_partition_destroy(fresh);
    sn_partition_destroy(u);

    struct sn_partition *n = spec("nutcracker:10.0.0.1:11211:1 h3,10.0.0.2:11211:1");
    cr_expect_eq(sn_partition_ketama_add(n, "h3", 11211, 1), -EEXIST);
    cr_expect_eq(sn_partition_ketama_add(n, "10.0.0.2", 0, 1), -EEXIST);
    cr_expect_eq(sn_partition_count(n), 2);
    cr_expect_eq(sn_partition_ketama_add(n, "10.0.0.3", 7000, 2), 2);
    fresh = spec("nutcracker:10.0.0.1:11211:1 h3,10.0.0.2:11211:1,10.0.0.3:7000:2");
    expect_same(n, fresh, 3000, "nutcracker add");
    sn_partition_destroy(fresh);
    cr_expect_eq(sn_partition_ketama_remove(n, "10.0.0.1", 11211), 0);
    fresh = spec("nutcracker:10.0.0.2:11211:1,10.0.0.3:7000:2");
    expect_same(n, fresh, 3000, "nutcracker remove");
    sn_partition_destroy(fresh);
    sn_partition_destroy(n);
}

/* nutcracker sends an empty key to hash 0 (the first point); libmemcached hashes "". */
Test(ketama_variants, empty_key)
{
    struct sn_partition *n = spec("nutcracker-md5:a,b,c,d,e,f,g,h,i,j");
    const struct sn__ketama_ring *r = &n->u.ketama.ring;
    cr_expect_eq(sn_partition(n, "", 0), r->points[0].owner);
    cr_expect_eq(sn_partition(n, NULL, 0), r->points[0].owner);
    struct sn_partition *w = spec("ketama:a,b,c,d,e,f,g,h,i,j");
    cr_expect_eq(sn_partition(w, "", 0),
                 sn__ketama_find(&w->u.ketama.ring, sn__ketama_md5_key("", 0)));
    sn_partition_destroy(n);
    sn_partition_destroy(w);
}

/* sn_partition_many equals sn_partition key by key for every variant, including the MD5 lanes
 * with nutcracker's empty-key rule and long keys. */
Test(ketama_variants, many_equals_single)
{
    static const char *specs[] = {
        "ketama:a,b,c,d,e",
        "ketama-jenkins:a,b,c,d,e",
        "ketama-unweighted:a,b,c,d,e",
        "ketama-unweighted-md5:a,b,c",
        "nutcracker:a,b,c,d,e",
        "nutcracker-md5:a,b,c,d,e",
        "nutcracker-md5/{}:a,b,c,d",
        "ketama-xxh3:a,b,c",
        "nutcracker-murmur:a",
    };
    enum { N = 700 };
    static char buf[N][300];
    struct sn_partition_key keys[N];
    for (int i = 0; i < N; i++) {
        size_t len = i % 7 == 0 ? 0 : (size_t)(i % 5 == 0 ? 260 : 1 + i % 40);
        for (size_t j = 0; j < len; j++)
            buf[i][j] = (char)('a' + (i * 7 + j * 13) % 26);
        if (i % 11 == 0 && len > 4)
            memcpy(buf[i], "{t}", 3);
        keys[i] = (struct sn_partition_key){buf[i], len};
    }
    for (size_t s = 0; s < sizeof(specs) / sizeof(specs[0]); s++) {
        struct sn_partition *p = spec(specs[s]);
        uint32_t out[N];
        sn_partition_many(p, keys, N, out);
        for (int i = 0; i < N; i++)
            cr_assert_eq(out[i], sn_partition(p, keys[i].data, keys[i].len), "%s key %d", specs[s],
                         i);
        sn_partition_destroy(p);
    }
}

/* Every key hash spreads keys over the ring (crc32's 15 bits do not: all keys land on the few
 * points below 32768, which is what libmemcached and nutcracker do too, so it is left out). */
Test(ketama_variants, spread)
{
    static const char *hashes[] = {"md5",      "one_at_a_time", "crc32a",   "crc16", "fnv1_64",
                                   "fnv1a_64", "fnv1_32",       "fnv1a_32", "hsieh", "murmur",
                                   "murmur3",  "jenkins",       "xxh3"};
    for (size_t h = 0; h < sizeof(hashes) / sizeof(hashes[0]); h++) {
        char sp[64];
        snprintf(sp, sizeof(sp), "ketama-%s:8", hashes[h]);
        struct sn_partition *p = spec(sp);
        unsigned count[8] = {0};
        /* Random keys: FNV-1's last step changes only the low byte, so keys that differ only
         * at the end ("user:1", "user:2") bunch up under every FNV-1 user, not only here. */
        uint64_t x = 12345;
        for (int i = 0; i < 16000; i++) {
            char key[24];
            for (size_t j = 0; j < sizeof(key); j++) {
                x = x * 6364136223846793005ULL + 1442695040888963407ULL;
                key[j] = (char)('a' + (x >> 33) % 26);
            }
            count[sn_partition(p, key, 4 + (size_t)i % 20)]++;
        }
        for (int b = 0; b < 8; b++)
            cr_expect(count[b] > 1000 && count[b] < 3000, "%s: server %d got %u of 16000",
                      hashes[h], b, count[b]);
        sn_partition_destroy(p);
    }
}
