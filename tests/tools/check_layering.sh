#!/bin/sh
# The layering of docs/ARCHITECTURE.md, checked instead of kept by discipline (-I. lets any
# file include any header, so only this check stops a shortcut):
#
#   include/sn*.h   installed: only other public headers and system headers, never a header
#                   of the tree or of liburing, hwloc or xxHash (a user would need them)
#   core/           public headers, core/ and the C standard headers (plus compiler intrinsics
#                   and sanitizer hooks); no syscalls but clock reads (a curated list of
#                   system calls and their libc wrappers, see SYSCALLS)
#   partition/      public headers, partition/, system headers but liburing and hwloc (xxHash
#                   is fine); no syscalls at all (pure functions)
#   reactor/        public headers, reactor/, core/ and system headers
#   apps/<name>/    <sn.h>/<sn/*.h>, the app's own headers, apps/common/ and system headers
#                   but liburing and hwloc (the reactor's business); no raw system interface
#                   where libsn offers the operation (see APP_CALLS)
#   bench/          public headers, bench/, apps/ and system headers
#
# Exceptions are allowed by name in EXCEPTIONS below ("file what reason"), nowhere else.
#
#   sh tests/tools/check_layering.sh              check the tree (run by make test); first
#                                                 plants one violation of each kind in a
#                                                 scratch tree and fails unless all are caught
#   sh tests/tools/check_layering.sh --root DIR   check the tree at DIR only
#
# Prints one line per violation ("layering: FILE: ...") and exits 1 when there is any;
# otherwise ends with "check_layering: ok" and exits 0.
set -eu

EXCEPTIONS='
bench/bench_wake.c reactor/topology.h measures the wake-up primitives below the public API
bench/bench_wake.c reactor/wake.h measures the wake-up primitives below the public API
bench/bench_mesh_scale.c core/mesh_internal.h models an idle loop turn on a mesh of up to 1024 cores without threads
bench/bench_mesh_scale.c reactor/core.h models an idle loop turn on a mesh of up to 1024 cores without threads
bench/bench_fiber.c core/fiber.h measures the context switch below the public API
'

# System calls and their libc wrappers that core/ and partition/ must not call: I/O, memory
# mapping, sockets, polling, signals, threads, sleeping, processes, io_uring.
SYSCALLS='read|write|pread|pwrite|readv|writev|open|openat|openat2|creat|close|dup|dup2|dup3'
SYSCALLS="$SYSCALLS|pipe|pipe2|mmap|munmap|mremap|mprotect|madvise|mlock|munlock|mbind"
SYSCALLS="$SYSCALLS|set_mempolicy|get_mempolicy|move_pages|ioctl|fcntl|fstat|stat|lstat|statx"
SYSCALLS="$SYSCALLS|fsync|fdatasync|ftruncate|lseek|unlink|rename|mkdir|rmdir|fopen|fdopen"
SYSCALLS="$SYSCALLS|opendir|socket|socketpair|bind|listen|accept|accept4|connect|send|sendto"
SYSCALLS="$SYSCALLS|sendmsg|recv|recvfrom|recvmsg|shutdown|setsockopt|getsockopt|poll|ppoll"
SYSCALLS="$SYSCALLS|select|pselect|epoll_[a-z0-9_]+|eventfd|timerfd_[a-z_]+|signalfd|sigaction"
SYSCALLS="$SYSCALLS|signal|sigprocmask|pthread_sigmask|kill|tgkill|pthread_create|pthread_join"
SYSCALLS="$SYSCALLS|clone|fork|vfork|execve|execv|execvp|wait|waitpid|nanosleep|clock_nanosleep"
SYSCALLS="$SYSCALLS|usleep|sleep|sched_yield|sched_setaffinity|pthread_setaffinity_np|futex"
SYSCALLS="$SYSCALLS|syscall|getrandom|prctl|setrlimit|getrlimit|io_uring_[a-z0-9_]+"

# Raw system interfaces an app must not use: "name;ERE;what libsn offers instead".
APP_CALLS='
syscall();syscall[[:space:]]*\(;a libsn call (sn_file_openat2_cached for a cached open)
io_uring_*;io_uring_[a-z0-9_]+;libsn files, sockets and timers
epoll_*;epoll_[a-z0-9_]+;the reactor
eventfd();eventfd[[:space:]]*\(;the mesh, or sn_submit_external from another thread
timerfd_*;timerfd_[a-z_]+;sn_timer_* or sn_sleep
signalfd();signalfd[[:space:]]*\(;the reactor'"'"'s signal handling
pthread_create();pthread_create[[:space:]]*\(;reactor cores (sn_run)
sched_setaffinity();sched_setaffinity[[:space:]]*\(;--cpuset
pthread_setaffinity_np();pthread_setaffinity_np[[:space:]]*\(;--cpuset
clock_gettime(CLOCK_MONOTONIC);clock_gettime[[:space:]]*\([[:space:]]*CLOCK_MONOTONIC;sn_now_ns()
'

# The OS side that only reactor/ touches, and what installed headers must not need either.
OS_HEADERS='liburing.h liburing/* hwloc.h hwloc/* linux/io_uring.h'
PUBLIC_FORBIDDEN="$OS_HEADERS xxhash.h"
# What core/ may include from the system: the C standard headers that make no syscalls,
# compiler intrinsics and sanitizer hooks.
CORE_SYSTEM='assert.h complex.h ctype.h errno.h fenv.h float.h inttypes.h iso646.h limits.h
math.h setjmp.h stdalign.h stdarg.h stdatomic.h stdbool.h stddef.h stdint.h stdio.h stdlib.h
stdnoreturn.h string.h tgmath.h time.h uchar.h wchar.h wctype.h immintrin.h x86intrin.h
emmintrin.h cpuid.h arm_neon.h sanitizer/*'

# The whole check is one awk program over every file (a shell loop forking per include was
# a minute's work on a loaded machine). It reads the lists above from the environment.
check_tree() {
    find include core partition reactor apps bench -type f \( -name '*.c' -o -name '*.h' \) \
        2>/dev/null | sort >"$tmp/files"
    [ -s "$tmp/files" ] || return 0
    EXCEPTIONS=$EXCEPTIONS SYSCALLS=$SYSCALLS APP_CALLS=$APP_CALLS OS_HEADERS=$OS_HEADERS \
        PUBLIC_FORBIDDEN=$PUBLIC_FORBIDDEN CORE_SYSTEM=$CORE_SYSTEM awk '
    function exists(path,   line, r) {
        if (path in known) return known[path]
        r = (getline line < path) >= 0
        if (r) close(path)
        return known[path] = r
    }
    function layer_of(p,   rest) {
        if (p == "include/sn.h" || p ~ /^include\/sn\//) return "public"
        if (p ~ /^core\//) return "core"
        if (p ~ /^partition\//) return "partition"
        if (p ~ /^reactor\//) return "reactor"
        if (p ~ /^apps\/common\//) return "app:common"
        if (p ~ /^apps\/[^\/]+\//) { rest = substr(p, 6); return "app:" substr(rest, 1, index(rest, "/") - 1) }
        if (p ~ /^bench\//) return "bench"
        return "other"
    }
    function normalize(p) {
        while (sub(/[^\/.][^\/]*\/\.\.\//, "", p)) ;
        gsub(/(^|\/)\.\//, "", p)
        return p
    }
    # The tree path an include names (as the compiler finds it with -Iinclude -I.), or
    # "sys:NAME" for a header outside the tree.
    function resolve(file, quote, name,   dir) {
        dir = file; sub(/\/[^\/]*$/, "", dir)
        if (quote && exists(dir "/" name)) return normalize(dir "/" name)
        if (exists("include/" name)) return normalize("include/" name)
        if (exists(name)) return normalize(name)
        return "sys:" name
    }
    function in_globs(h, list,   n, a, i, g) {
        n = split(list, a, /[ \t\n]+/)
        for (i = 1; i <= n; i++) {
            g = a[i]
            if (g == "") continue
            if (g ~ /\/\*$/) { if (index(h, substr(g, 1, length(g) - 1)) == 1) return 1 }
            else if (h == g) return 1
        }
        return 0
    }
    function allowed(l, t,   h, tl) {
        if (t ~ /^sys:/) {
            h = substr(t, 5)
            if (l == "public") return !in_globs(h, ENVIRON["PUBLIC_FORBIDDEN"])
            if (l == "core") return in_globs(h, ENVIRON["CORE_SYSTEM"])
            if (l == "partition" || l ~ /^app:/) return !in_globs(h, ENVIRON["OS_HEADERS"])
            return 1
        }
        tl = layer_of(t)
        if (tl == "public") return 1
        if (l == "public") return 0
        if (l == "core" || l == "partition") return tl == l
        if (l == "reactor") return tl == "reactor" || tl == "core"
        if (l == "app:common") return tl == "app:common"
        if (l ~ /^app:/) return tl == l || tl == "app:common"
        if (l == "bench") return tl == "bench" || tl ~ /^app:/
        return 1
    }
    function excepted(file, what) { return (file SUBSEP what) in exc }
    function report(msg) { print "layering: " msg; bad = 1 }
    # Each call of the ERE re in s that is a name of its own (not the end of a longer name,
    # not a member like ops->read): reported unless allowed.
    function calls(file, lineno, s, re, l, display, instead,   m, name) {
        while (match(s, "(^|[^.>[:alnum:]_])(" re ")")) {
            m = substr(s, RSTART, RLENGTH)
            s = substr(s, RSTART + RLENGTH)
            sub(/^[^[:alpha:]_]/, "", m)
            name = m; sub(/[[:space:]]*\(.*$/, "", name)
            if (display == "") {
                if (l == "core" && name == "clock_gettime") continue
                if (excepted(file, name)) continue
                report(file ":" lineno ": calls " name "() (no syscalls in " l ")")
            } else if (!excepted(file, display)) {
                report(file ":" lineno ": uses " display " (use " instead ")")
            }
        }
    }
    BEGIN {
        n = split(ENVIRON["EXCEPTIONS"], lines, "\n")
        for (i = 1; i <= n; i++) if (split(lines[i], w, " ") >= 2) exc[w[1], w[2]] = 1
        napp = 0
        n = split(ENVIRON["APP_CALLS"], lines, "\n")
        for (i = 1; i <= n; i++) {
            if (split(lines[i], w, ";") < 3) continue
            napp++; app_name[napp] = w[1]; app_re[napp] = w[2]; app_instead[napp] = w[3]
        }
        syscalls = "(" ENVIRON["SYSCALLS"] ")[[:space:]]*\\("
    }
    { files[++nfiles] = $0 }
    END {
        for (f = 1; f <= nfiles; f++) {
            file = files[f]; l = layer_of(file); inc = 0; lineno = 0
            while ((getline raw < file) > 0) {
                lineno++
                # Drop comments; keep strings in `code` for #include, blank them in `bare`.
                code = ""; bare = ""; i = 1; len = length(raw)
                while (i <= len) {
                    c = substr(raw, i, 1); d = substr(raw, i, 2)
                    if (inc) { if (d == "*/") { inc = 0; i += 2 } else i++; continue }
                    if (d == "/*") { inc = 1; i += 2; continue }
                    if (d == "//") break
                    if (c == "\"" || c == "\047") {
                        j = i + 1
                        while (j <= len && substr(raw, j, 1) != c) j += substr(raw, j, 1) == "\\" ? 2 : 1
                        code = code substr(raw, i, j - i + 1); bare = bare c c
                        i = j + 1; continue
                    }
                    code = code c; bare = bare c; i++
                }
                if (code ~ /^[ \t]*#[ \t]*include[ \t]*[<"]/) {
                    s = code; sub(/^[ \t]*#[ \t]*include[ \t]*/, "", s)
                    q = substr(s, 1, 1) == "\""
                    name = substr(s, 2); sub(/[>"].*$/, "", name)
                    t = resolve(file, q, name)
                    if (!allowed(l, t) && !excepted(file, (t ~ /^sys:/ ? substr(t, 5) : t)))
                        report(file ": includes " (t ~ /^sys:/ ? substr(t, 5) : t) " (not allowed in " l ")")
                    continue
                }
                if (l == "core" || l == "partition")
                    calls(file, lineno, bare, syscalls, l, "", "")
                else if (l ~ /^app:/)
                    for (k = 1; k <= napp; k++)
                        calls(file, lineno, bare, app_re[k], l, app_name[k], app_instead[k])
            }
            close(file)
        }
        exit bad
    }' "$tmp/files"
}

# A scratch tree with one violation of each kind (and one allowed case each): the check must
# name every planted violation and nothing else.
self_test() {
    st=$tmp/tree
    mkdir -p "$st/include/sn" "$st/core" "$st/partition" "$st/reactor" "$st/apps/demo" \
        "$st/apps/other" "$st/apps/common" "$st/bench"
    echo '#include <sn/common.h>' >"$st/include/sn.h"
    printf '#include <stdint.h>\n' >"$st/include/sn/common.h"
    printf '#include <liburing.h>\n' >"$st/include/sn/bad.h"
    touch "$st/core/ok.h" "$st/reactor/core.h" "$st/reactor/wake.h" "$st/partition/p.h" "$st/apps/other/o.h" \
        "$st/apps/common/cli.h" "$st/apps/demo/demo.h"
    cat >"$st/core/c.c" <<'EOF'
#include "core/ok.h"
#include <time.h>
#include <liburing.h>
#include "reactor/core.h"
/* read(fd) in a comment is fine, and so is a string: */
static const char *s = "write(1)";
static long f(struct ops *o) { o->read(0); clock_gettime(0, 0); return mmap(0, 0, 0, 0, 0, 0) != 0; }
EOF
    cat >"$st/partition/p.c" <<'EOF'
#include "partition/p.h"
#include <xxhash.h>
#include "reactor/core.h"
#include "core/ok.h"
EOF
    cat >"$st/apps/demo/main.c" <<'EOF'
#include <sn.h>
#include "demo.h"
#include "apps/common/cli.h"
#include <stdio.h>
#include <xxhash.h>
#include "core/ok.h"
#include "apps/other/o.h"
#include "../other/o.h"
#include <hwloc.h>
static long g(void) { return syscall(1) + clock_gettime(CLOCK_REALTIME, 0); }
EOF
    printf '#include "reactor/wake.h"\n' >"$st/bench/bench_wake.c" # an exception by name
    cat >"$st/bench/bench_x.c" <<'EOF'
#include <sn.h>
#include "apps/other/o.h"
#include "reactor/core.h"
EOF
    want='include/sn/bad.h: includes liburing.h
core/c.c: includes liburing.h
core/c.c: includes reactor/core.h
core/c.c:7: calls mmap()
partition/p.c: includes reactor/core.h
partition/p.c: includes core/ok.h
apps/demo/main.c: includes core/ok.h
apps/demo/main.c: includes apps/other/o.h
apps/demo/main.c: includes apps/other/o.h
apps/demo/main.c: includes hwloc.h
apps/demo/main.c:10: uses syscall()
bench/bench_x.c: includes reactor/core.h'
    got=$(cd "$st" && check_tree | sed 's/^layering: //; s/ (.*//' | sort) || true
    want=$(printf '%s\n' "$want" | sort)
    if [ "$got" != "$want" ]; then
        echo "check_layering: the self-test's planted violations were not reported as expected"
        echo "--- expected"
        printf '%s\n' "$want"
        echo "--- got"
        printf '%s\n' "$got"
        return 1
    fi
    echo "check_layering: self-test: all $(printf '%s\n' "$want" | wc -l) planted violations caught"
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/sn-layering.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
root=$(cd "$(dirname "$0")/../.." && pwd)
if [ "${1:-}" = "--root" ]; then
    root=$2
else
    self_test || exit 1
fi
cd "$root"
if check_tree; then
    echo "check_layering: ok"
else
    echo "check_layering: FAILED (allowed exceptions are listed by name in tests/tools/check_layering.sh)"
    exit 1
fi
