/*
 * Incremental parser for the memcached text protocol (classic and meta commands) as memcached
 * 1.6 speaks it (apps/kv).
 *
 * Use. A connection keeps one struct mc_parser and its unconsumed input bytes. It calls
 * mc_parse() on those bytes; each call either consumes exactly one command (its line and, for
 * a storage command, its data block) and describes it in a struct mc_cmd, or consumes nothing
 * and says how many bytes it needs. Zero-copy: the key, keys and data in a mc_cmd point into
 * the caller's buffer, so the caller keeps those bytes unchanged until it is done with the
 * command (for a cross-core command, until the owner core has answered).
 *
 * What memcached does, reproduced here (proto_text.c, 1.6.18):
 *  - A line ends at "\n"; one "\r" before it is dropped. Words are separated by spaces only.
 *  - Wrong word counts and unknown commands answer "ERROR"; bad numbers and keys over 250
 *    bytes "CLIENT_ERROR bad command line format"; bad exptime (touch, gat, flush_all)
 *    "CLIENT_ERROR invalid exptime argument"; bad incr/decr delta "CLIENT_ERROR invalid numeric
 *    delta argument"; delete with a stray argument the long "Usage: delete" text.
 *  - A data block is exactly <bytes> bytes plus "\r\n" (so it may hold "\r\n"); when the two
 *    bytes after the data are not "\r\n" the answer is "CLIENT_ERROR bad data chunk" and the
 *    <bytes>+2 bytes are consumed all the same.
 *  - A storage command whose item would exceed the item size limit answers "SERVER_ERROR
 *    object too large for cache" and its <bytes>+2 data bytes are swallowed (as they arrive,
 *    never buffered), so the connection stays usable; for set the old value must go too.
 *  - A negative <bytes> answers "CLIENT_ERROR bad command line format" and swallows nothing.
 *  - "noreply" (last word) silences the answer of set/add/replace/append/prepend/cas, delete,
 *    touch, incr/decr, flush_all and verbosity, errors found after it was seen included.
 *  - memcached closes a connection that has more than 2048 bytes buffered without a newline,
 *    unless the line starts with "get " or "gets " (after at most 100 spaces): multi-gets may
 *    be long. mc_parse returns -EMSGSIZE for that: close the connection without an answer.
 *  - Meta commands (mg, ms, md, ma, me, mn) are parsed by mc_meta_parse.c with memcached
 *    1.6.18's rules and texts (see mc_meta.h); their flags travel in cmd->meta.
 *  - A connection whose very first byte is 0x80 speaks the binary protocol: mc_parse returns
 *    MC_OP_BINARY for its first request header, to be answered with a binary error and a close.
 * Deliberate differences: the 2048-byte rule applies to the line length however the bytes
 * were segmented (memcached only checks what one read buffered); long get lines are bounded by
 * get_line_max where memcached has no bound; keys with control bytes (0x00-0x20, 0x7f) answer
 * CLIENT_ERROR bad command line format (memcached takes them; mc_parser_config.lax_keys takes
 * them too: memcaslap's keys begin with 8 raw bytes); numbers that overflow their
 * 32-bit field are rejected (memcached truncates them); the admin commands (shutdown, slabs,
 * lru, lru_crawler, watch, cache_memlimit) answer "ERROR"; the binary protocol is refused.
 *
 * All functions: any thread, but one parser is used by one thread at a time.
 */
#ifndef MC_PROTO_H
#define MC_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "mc_store.h"

#define MC_LINE_MAX             2048 /* longest non-get command line */
#define MC_GET_LINE_MAX_DEFAULT ((size_t)1 << 20)

/* A range of bytes borrowed from the input buffer. */
struct mc_slice {
    const char *p;
    size_t len;
};

enum mc_op {
    MC_OP_NONE,  /* swallowed data of a rejected storage command: nothing to answer */
    MC_OP_ERROR, /* answer mc_err_str(err) unless noreply */
    MC_OP_GET,
    MC_OP_GETS,
    MC_OP_GAT,
    MC_OP_GATS,
    MC_OP_SET,
    MC_OP_ADD,
    MC_OP_REPLACE,
    MC_OP_APPEND,
    MC_OP_PREPEND,
    MC_OP_CAS,
    MC_OP_DELETE,
    MC_OP_TOUCH,
    MC_OP_INCR,
    MC_OP_DECR,
    MC_OP_FLUSH_ALL,
    MC_OP_VERSION,
    MC_OP_VERBOSITY,
    MC_OP_STATS,
    MC_OP_QUIT, /* close the connection once earlier answers are sent */
    MC_OP_MG,   /* the meta commands: cmd->key (decoded if base64) and cmd->meta */
    MC_OP_MS,   /* ... and cmd->data */
    MC_OP_MD,
    MC_OP_MA,
    MC_OP_ME,
    MC_OP_MN,
    MC_OP_BINARY, /* a binary protocol request header (cmd->bin): refuse it and close */
};

enum mc_err {
    MC_ERR_NONE,
    MC_ERR_UNKNOWN,      /* ERROR */
    MC_ERR_FORMAT,       /* CLIENT_ERROR bad command line format */
    MC_ERR_DATA_CHUNK,   /* CLIENT_ERROR bad data chunk */
    MC_ERR_EXPTIME,      /* CLIENT_ERROR invalid exptime argument */
    MC_ERR_DELTA,        /* CLIENT_ERROR invalid numeric delta argument */
    MC_ERR_DELETE_USAGE, /* CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply] */
    MC_ERR_TOO_LARGE,    /* SERVER_ERROR object too large for cache */
    /* meta commands (memcached 1.6.18's words) */
    MC_ERR_DUP_FLAG,       /* CLIENT_ERROR duplicate flag */
    MC_ERR_INVALID_FLAG,   /* CLIENT_ERROR invalid flag */
    MC_ERR_BAD_FLAG,       /* CLIENT_ERROR invalid or duplicate flag (md, ma) */
    MC_ERR_DECODE_KEY,     /* CLIENT_ERROR error decoding key */
    MC_ERR_BAD_TOKEN,      /* CLIENT_ERROR bad token in command line format */
    MC_ERR_M_LENGTH,       /* CLIENT_ERROR incorrect length for M token */
    MC_ERR_INITIAL,        /* CLIENT_ERROR invalid numeric initial value */
    MC_ERR_DELTA_VALUE,    /* CLIENT_ERROR invalid numeric delta value */
    MC_ERR_OPAQUE,         /* CLIENT_ERROR opaque token too long */
    MC_ERR_MG_TOO_LONG,    /* CLIENT_ERROR options flags are too long (mg) */
    MC_ERR_FLAGS_TOO_LONG, /* CLIENT_ERROR options flags too long (ms, md, ma) */
    MC_ERR_MS_MODE,        /* CLIENT_ERROR invalid mode for ms M token */
    MC_ERR_MA_MODE,        /* CLIENT_ERROR invalid mode for ma M token */
};

/* Longest O (opaque) token memcached takes, its letter included. */
#define MC_META_OPAQUE_MAX 32
/* Most flags a meta command can carry: memcached refuses lines of more than 20 tokens. */
#define MC_META_FLAGS_MAX 18

/*
 * The flags of a meta command as parsed (memcached's _meta_flags), self-contained so that a
 * command can be copied to another core as it is. Numbers are only meaningful with their flag.
 */
struct mc_meta {
    uint64_t has;                  /* bit (letter - 'A') for each flag letter sent: mc_meta_has() */
    char order[MC_META_FLAGS_MAX]; /* the flag letters in request order (answers follow it) */
    uint8_t nflags;
    char mode;        /* M's letter; 0 without M */
    bool opaque_long; /* the O token was longer than MC_META_OPAQUE_MAX (an error at its turn) */
    uint8_t opaque_len;
    char opaque[MC_META_OPAQUE_MAX]; /* the O token, letter included */
    int32_t ttl;                     /* T */
    int32_t vivify_ttl;              /* N */
    int32_t recache_ttl;             /* R */
    uint32_t client_flags;           /* F */
    uint64_t cas;                    /* C */
    uint64_t delta;                  /* D (default 1) */
    uint64_t initial;                /* J */
    uint64_t new_cas;                /* E (a later memcached's flag; see mc_meta.h) */
};

static inline bool mc_meta_has(const struct mc_meta *m, char flag)
{
    return flag >= 'A' && flag <= 'z' && (m->has >> (flag - 'A') & 1);
}

/* The parts of a binary protocol request header that its answer echoes. */
struct mc_bin_req {
    uint8_t opcode;
    uint8_t opaque[4];
};

/* One parsed command. Fields not used by the op are zero. */
struct mc_cmd {
    enum mc_op op;
    enum mc_err err;       /* MC_OP_ERROR: what to answer */
    enum mc_op failed;     /* MC_OP_ERROR: the storage op refused with MC_ERR_TOO_LARGE */
    bool noreply;          /* answer nothing */
    struct mc_slice key;   /* single-key commands, and the key of a too-large storage command */
    struct mc_slice keys;  /* get/gets/gat/gats: the keys separated by spaces (mc_cmd_next_key) */
    uint32_t nkeys;        /* how many (0 is possible for gat/gats) */
    struct mc_slice data;  /* storage commands: the value, without its "\r\n" */
    uint32_t flags;        /* storage commands */
    int32_t exptime;       /* storage commands, touch, gat/gats; flush_all's delay */
    uint64_t cas;          /* cas */
    uint64_t delta;        /* incr/decr */
    uint32_t verbosity;    /* verbosity */
    struct mc_slice args;  /* stats: the words after "stats" (empty: general stats) */
    struct mc_meta meta;   /* meta commands */
    struct mc_bin_req bin; /* MC_OP_BINARY */
};

struct mc_parser_config {
    size_t item_max;     /* item size limit (-I), compared with mc_item_size(); 0 = 1 MiB */
    size_t get_line_max; /* longest get/gets line; 0 = MC_GET_LINE_MAX_DEFAULT */
    bool lax_keys;       /* take keys with control bytes, as memcached does (only the length
                            is checked); false: CLIENT_ERROR bad command line format */
};

/* Parser state; read `need` after mc_parse returned 0. */
struct mc_parser {
    size_t item_max;
    size_t get_line_max;
    bool lax_keys;  /* see mc_parser_config */
    size_t swallow; /* data bytes of a too-large command still to discard */
    size_t scanned; /* bytes already searched for "\n" in the pending line */
    size_t need;    /* after a 0 return: bytes the buffer must hold before it is worth calling
                       again, or 0 when waiting for the end of a line (call on any new data) */
    bool started;   /* a command was parsed: a 0x80 byte no longer means the binary protocol */
    unsigned char key[MC_KEY_MAX]; /* the decoded key of a meta command with b */
};

/* Initialises a parser (cfg NULL = defaults). */
void mc_parser_init(struct mc_parser *p, const struct mc_parser_config *cfg);

/*
 * Parses one command from the start of buf[0..len).
 * Returns the number of bytes consumed (> 0) with *cmd filled in; 0 when more bytes are needed
 * (a meta command's base64 key, once decoded, lives in the parser: cmd->key then stays valid
 * until the next call, where other slices stay valid as long as buf)
 * (see p->need; nothing consumed, *cmd unspecified); -EMSGSIZE when the connection must be
 * closed without an answer (line too long, see above).
 * Between a 0 return and the next call the caller may move the unconsumed bytes but must pass
 * them again unchanged, followed by whatever arrived.
 */
ssize_t mc_parse(struct mc_parser *p, const char *buf, size_t len, struct mc_cmd *cmd);

/*
 * Iterates over the keys of a get-family command: start with *pos = 0; each call stores the
 * next key in *key and returns true, or returns false after the last one.
 */
bool mc_cmd_next_key(const struct mc_cmd *cmd, size_t *pos, struct mc_slice *key);

/* Where a command runs in the sharded server. */
enum mc_route {
    MC_ROUTE_LOCAL, /* on the connection's core: errors, version, verbosity, quit, none, mn,
                       the binary protocol's refusal */
    MC_ROUTE_KEY,   /* on the core owning cmd->key: storage, delete, touch, incr/decr, the meta
                       commands mg/ms/md/ma/me, and the too-large error (its owner counts it
                       and, for set and ms, drops the old value) */
    MC_ROUTE_KEYS,  /* get family: each key on its owner, answers in key order, then "END" */
    MC_ROUTE_ALL,   /* every core: flush_all, stats */
};

enum mc_route mc_cmd_route(const struct mc_cmd *cmd);

/* memcached's answer line for an error (without "\r\n"); "" for MC_ERR_NONE. */
const char *mc_err_str(enum mc_err err);

/* The command word ("get", "set", ...) or "none"/"error"; for logs and tests. */
const char *mc_op_name(enum mc_op op);

#endif
