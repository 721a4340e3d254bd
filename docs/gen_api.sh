#!/bin/sh
# Generates the API reference (docs/API.md) from the comments of the public headers.
#
#   sh docs/gen_api.sh [--threads FILE] > API.md
#
# Headers come in the order include/sn.h includes them, then any header under include/sn/
# that sn.h does not include (so a new header is never skipped silently). Per header: the
# module comment (the comment that opens the file), then each public item in source order
# with the comment right above it: SN_API functions, public static inline functions, types
# (struct, enum, typedef) and macros. Names starting with sn__ are internal and left out.
# Items that follow each other with no blank line share the comment above the first.
#
# Comment text is Markdown prose, except that runs of indented lines (tables, lists, code in
# the comments) are kept verbatim in a fenced block. The output has no date or path in it,
# so the same headers always give the same bytes.
#
# --threads FILE: also writes to FILE every SN_API function whose contract does not say
# which thread may call it (one "header: function" per line; empty when all do). The
# contract is the function's comment, plus the section divider above it (/* ---- name ---- */)
# and the module comment when that states a rule for the whole header ("Threads:", "All
# functions", "every function here").
#
# POSIX sh, sed and awk only (mawk, gawk and busybox awk give the same output).
set -eu
LC_ALL=C
export LC_ALL

threads=/dev/null
while [ $# -gt 0 ]; do
    case $1 in
    --threads) threads=$2; shift 2 ;;
    *) echo "usage: sh docs/gen_api.sh [--threads FILE] > API.md" >&2; exit 2 ;;
    esac
done

case $threads in /*) ;; *) threads=$PWD/$threads ;; esac
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

# sn.h first, then its includes in order, then the headers it does not include.
listed=$(sed -n 's|^#include <\(sn/[a-z0-9_]*\.h\)>.*|\1|p' include/sn.h)
headers="sn.h"
for h in $listed; do headers="$headers $h"; done
for f in include/sn/*.h; do
    h=${f#include/}
    case " $headers " in *" $h "*) ;; *) headers="$headers $h" ;; esac
done

cat <<'EOF'
# libsn API reference

Generated from the header comments by `docs/gen_api.sh`; do not edit by hand. Run
`make api-doc` after changing a public header: `tests/test_api_doc.c` fails while this file
and the headers disagree. Everything is reached through `#include <sn.h>`. Conventions for
every call: 0 (or a count) on success and a negative errno on failure (`sn_strerror`), a call
that fails never calls its callback, and each contract says which thread may call it. All
seven rules every function follows are in `docs/ARCHITECTURE.md`, "API conventions", and at
the top of `<sn.h>` below.

Headers:
EOF
echo
for h in $headers; do echo "- \`<$h>\`"; done
echo

prog=$(cat <<'AWK'
# ---- output helpers ---------------------------------------------------------------------

# Prose for Markdown: outside `code` spans, '<' would start an HTML tag and '*' or a '_'
# that starts a word could start emphasis, so they are escaped.
function prose(s,    out, i, c, code, prev) {
    out = ""; code = 0; prev = " "
    for (i = 1; i <= length(s); i++) {
        c = substr(s, i, 1)
        if (c == "`") code = !code
        else if (!code && (c == "<" || c == "*" || (c == "_" && prev !~ /[A-Za-z0-9_]/)))
            out = out "\\"
        out = out c
        prev = c
    }
    # A line opening with these would start a quote, heading, list or rule.
    if (out ~ /^[>#]/ || out ~ /^[-+=]([ \t]|[-+=])/) out = "\\" out
    return out
}

# Prints comment text (lines separated by "\n"): prose as is; each run of indented lines
# goes verbatim into a fenced block, less the run's common indentation.
function print_comment(text,    n, lines, i, j, k, cut, ind) {
    if (text == "") return
    n = split(text, lines, "\n")
    for (i = 1; i <= n; i = j) {
        if (lines[i] !~ /^ /) {
            print prose(lines[i])
            j = i + 1
            continue
        }
        cut = 1000
        for (j = i; j <= n && lines[j] ~ /^ /; j++) {
            match(lines[j], /^ +/)
            if (RLENGTH < cut) cut = RLENGTH
        }
        print "```text"
        for (k = i; k < j; k++) print substr(lines[k], cut + 1)
        print "```"
        if (j <= n && lines[j] != "") print ""
    }
    print ""
}

# The text of a comment without its /* */ and leading " * ", one line per source line.
function comment_line(l) {
    sub(/^[ \t]*\/\*+[ \t]?/, "", l)
    sub(/[ \t]*\*+\/[ \t]*$/, "", l)
    sub(/^[ \t]*\*[ \t]?/, "", l)
    return l
}

function add_comment_line(l) {
    l = comment_line(l)
    if (cbuf == "" && l == "") return
    cbuf = (cbuf == "" ? "" : cbuf "\n") l
}

function trim_comment(t) {
    while (t ~ /\n$/) sub(/\n$/, "", t)
    return t
}

# ---- items ----------------------------------------------------------------------------

# Starts an item (or joins the group of the one just above it when nothing came between).
function begin_item(kind, name) {
    if (!(joinable && kind == gkind)) {
        flush_group()
        gkind = kind
        gcomment = pending
        gsection = section
    }
    gnames = (gnames == "" ? "" : gnames ", ") "`" name "`"
}

function add_code(s) {
    gcode = (gcode == "" ? "" : gcode "\n") s
}

function end_item() {
    pending = ""
    joinable = 1
}

function flush_group() {
    if (gnames == "") return
    print "### " gnames
    print ""
    print "```c"
    print gcode
    print "```"
    print ""
    print_comment(gcomment)
    gnames = ""; gcode = ""; gkind = ""
}

# Records an SN_API function for the thread check.
function check_thread(name, text) {
    text = tolower(text " " gsection " " (module_rule ? module : ""))
    gsub(/\n/, " ", text)
    # Phrases that name the threads allowed to call (the contracts' usual wording).
    if (text ~ /any thread|any other thread|any reactor core|any core|owner core|core only/ ||
        text ~ /cores only|reactor core|producer only|consumer only|core `(from|me)`/ ||
        text ~ /not concurrently|thread rules|threads:|on the calling core/)
        return
    print hdr ": " name >> threads
}

# Joins a declaration's lines into one and drops SN_API.
function one_line(s) {
    gsub(/\n[ \t]*/, " ", s)
    gsub(/[ \t]+/, " ", s)
    sub(/^extern /, "", s)
    sub(/SN_API /, "", s)
    return s
}

function func_name(s,    t) {
    t = s
    sub(/\(.*/, "", t)
    sub(/.*[^A-Za-z0-9_]/, "", t)
    return t
}

function typedef_name(s,    t) {
    t = s
    if (t ~ /\(\*[A-Za-z0-9_]+\)/) {
        sub(/^[^(]*\(\*/, "", t)
        sub(/\).*/, "", t)
        return t
    }
    if (t ~ /\(/) return func_name(t)
    sub(/[ \t]*;.*/, "", t)
    sub(/.*[^A-Za-z0-9_]/, "", t)
    return t
}

function braces(s,    t, o, c) {
    t = s; o = gsub(/\{/, "", t)
    t = s; c = gsub(/\}/, "", t)
    return o - c
}

BEGIN {
    state = "top"; cbuf = ""; pending = ""; section = ""; module = ""; module_rule = 0
    ifdepth = 0; seen_code = 0; joinable = 0
}

# ---- multi-line constructs in progress ------------------------------------------------

state == "comment" {
    if ($0 ~ /\*\//) {
        add_comment_line($0)
        state = "top"
        finish_comment()
    } else {
        add_comment_line($0)
    }
    next
}

state == "decl" {
    dbuf = dbuf "\n" $0
    if ($0 ~ /;/) finish_decl()
    next
}

state == "inline_sig" {
    if ($0 ~ /\{/) {
        s = $0; sub(/[ \t]*\{.*/, "", s)
        if (s != "") dbuf = dbuf "\n" s
        depth = braces($0)
        finish_inline()
        state = depth > 0 ? "skip_body" : "top"
    } else {
        dbuf = dbuf "\n" $0
    }
    next
}

state == "skip_body" {
    depth += braces($0)
    if (depth <= 0) state = "top"
    next
}

state == "type" {
    add_code($0)
    depth += braces($0)
    if (depth <= 0 && $0 ~ /;/) { state = "top"; end_item() }
    next
}

state == "skip_stmt" {
    if ($0 ~ /;[ \t]*$/) state = "top"
    next
}

state == "macro" {
    if (keep_macro) add_code($0)
    if ($0 !~ /\\$/) { state = "top"; if (keep_macro) end_item() }
    next
}

# ---- top level ------------------------------------------------------------------------

function finish_comment(    t) {
    t = trim_comment(cbuf)
    cbuf = ""
    if (!seen_code && module == "" && !module_done) {
        module = t
        module_done = 1
        if (tolower(module) ~ /threads:|all functions|every function here/) module_rule = 1
        print "## `<" hdr ">`"
        print ""
        print_comment(module)
        return
    }
    if (t ~ /^-+ .* -+$/) {
        flush_group()
        sub(/^-+ /, "", t); sub(/ -+$/, "", t)
        section = t
        print "**" prose(t) "**"
        print ""
        pending = ""
        joinable = 0
        return
    }
    pending = t
    joinable = 0
}

function finish_decl(    s, name) {
    state = "top"
    s = one_line(dbuf)
    name = func_name(s)
    if (s !~ /\(/ || name ~ /^sn__/) { pending = ""; joinable = 0; return }
    begin_item("func", name)
    add_code(s)
    check_thread(name, gcomment)
    end_item()
}

function finish_inline(    s, name) {
    s = one_line(dbuf)
    name = func_name(s)
    if (name ~ /^sn__/) { pending = ""; joinable = 0; return }
    begin_item("func", name)
    add_code(s)
    end_item()
}

/^[ \t]*$/ {
    if (state == "top") { pending = ""; joinable = 0 }
    next
}

/^[ \t]*\/\*/ {
    joinable = 0
    if ($0 ~ /\*\//) {
        add_comment_line($0)
        finish_comment()
    } else {
        add_comment_line($0)
        state = "comment"
    }
    next
}

/^#[ \t]*if/ {
    ifdepth++
    seen_code = 1
    next
}

/^#[ \t]*endif/ {
    ifdepth--
    next
}

/^#[ \t]*define[ \t]/ {
    seen_code = 1
    name = $2
    sub(/\(.*/, "", name)
    # Only the guarded top level (depth 1), not include guards or conditional variants.
    keep_macro = ifdepth == 1 && name !~ /^sn__|^SN__/ &&
                 $0 !~ /^#[ \t]*define[ \t]+[A-Z0-9_]+_H[ \t]*$/
    if (keep_macro) {
        begin_item("macro", name)
        add_code($0)
    } else {
        pending = ""; joinable = 0
    }
    if ($0 ~ /\\$/) { state = "macro"; next }
    if (keep_macro) end_item()
    next
}

/^#/ {
    seen_code = 1
    next
}

/^SN_(BEGIN|END)_DECLS/ {
    seen_code = 1
    pending = ""; joinable = 0
    next
}

/^_Static_assert/ {
    seen_code = 1
    if ($0 !~ /;[ \t]*$/) state = "skip_stmt"
    next
}

/^(extern[ \t]+)?SN_API[ \t]/ {
    seen_code = 1
    dbuf = $0
    if ($0 ~ /;/) finish_decl(); else state = "decl"
    next
}

/^static inline / {
    seen_code = 1
    if ($0 ~ /\{/) {
        dbuf = $0; sub(/[ \t]*\{.*/, "", dbuf)
        depth = braces($0)
        finish_inline()
        state = depth > 0 ? "skip_body" : "top"
    } else {
        dbuf = $0
        state = "inline_sig"
    }
    next
}

/^(struct|enum|union)[ \t]+[A-Za-z0-9_]+[ \t]*;/ {
    # A forward declaration: not an item, and the comment above stays for what follows.
    seen_code = 1
    next
}

/^(struct|enum|union)[ \t]+[A-Za-z0-9_]+[ \t]*\{/ {
    seen_code = 1
    name = $1 " " $2
    sub(/\{.*/, "", name)
    if ($2 ~ /^sn__/) { depth = braces($0); state = depth > 0 ? "skip_body" : "top"; next }
    begin_item("type", name)
    add_code($0)
    depth = braces($0)
    if (depth > 0 || $0 !~ /;/) state = "type"; else end_item()
    next
}

/^typedef[ \t]/ {
    seen_code = 1
    tbuf = $0
    if ($0 ~ /\{/) {
        # typedef struct {...} name; : name known at the end.
        begin_item("type", "typedef")
        add_code($0)
        depth = braces($0)
        state = "type"
        next
    }
    if ($0 !~ /;/) {
        # A typedef continued on the next lines: gather it whole first.
        while ((getline more) > 0) {
            tbuf = tbuf "\n" more
            if (more ~ /;/) break
        }
    }
    name = typedef_name(one_line(tbuf))
    if (name ~ /^sn__/) { pending = ""; joinable = 0; next }
    begin_item("type", name)
    add_code(tbuf)
    end_item()
    next
}

{
    # Anything else (variables, stray code) is not documented.
    seen_code = 1
    pending = ""
    joinable = 0
}

END {
    flush_group()
}
AWK
)

if [ "$threads" != /dev/null ]; then : > "$threads"; fi
for h in $headers; do
    awk -v hdr="$h" -v threads="$threads" "$prog" "include/$h"
done
