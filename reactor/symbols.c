/*
 * Names for code addresses, for the stall detector's reports (reactor/stall.h). dladdr()
 * only knows exported symbols, and a stall is as likely in a static function of the app, so
 * the module's ELF file is read: its full symbol table (.symtab) when it was not stripped,
 * else its dynamic symbols. Slow (opens and maps the file each time), which is fine for a
 * report printed at most once a second per core.
 */
#include "reactor/stall.h"

#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#if UINTPTR_MAX == 0xffffffffu
typedef Elf32_Ehdr ehdr_t;
typedef Elf32_Shdr shdr_t;
typedef Elf32_Sym sym_t;
#define SYM_TYPE ELF32_ST_TYPE
#else
typedef Elf64_Ehdr ehdr_t;
typedef Elf64_Shdr shdr_t;
typedef Elf64_Sym sym_t;
#define SYM_TYPE ELF64_ST_TYPE
#endif

struct module {
    uintptr_t addr; /* the address to find */
    uintptr_t bias; /* load bias of the module that holds it */
    char path[256];
    bool found;
};

/* dl_iterate_phdr callback: the module whose loaded segments hold m->addr. */
static int find_module(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    struct module *m = arg;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type != PT_LOAD || m->addr < lo || m->addr - lo >= ph->p_memsz)
            continue;
        m->bias = info->dlpi_addr;
        /* The main program has an empty name. */
        const char *name = info->dlpi_name && *info->dlpi_name ? info->dlpi_name : "/proc/self/exe";
        snprintf(m->path, sizeof m->path, "%s", name);
        m->found = true;
        return 1;
    }
    return 0;
}

/* Looks `rel` up in the symbol table of section `tab` (with its string table). */
static const char *lookup(const char *base, size_t size, const ehdr_t *eh, const shdr_t *tab,
                          uintptr_t rel, uintptr_t *off)
{
    const shdr_t *sh = (const shdr_t *)(base + eh->e_shoff);
    if (tab->sh_link >= eh->e_shnum || tab->sh_entsize != sizeof(sym_t))
        return NULL;
    const shdr_t *str = &sh[tab->sh_link];
    if (tab->sh_offset + tab->sh_size > size || str->sh_offset + str->sh_size > size)
        return NULL;
    const sym_t *syms = (const sym_t *)(base + tab->sh_offset);
    size_t n = tab->sh_size / sizeof(sym_t);
    const sym_t *best = NULL;
    for (size_t i = 0; i < n; i++) {
        const sym_t *y = &syms[i];
        if (SYM_TYPE(y->st_info) != STT_FUNC || y->st_value > rel || !y->st_value)
            continue;
        if (y->st_size && rel - y->st_value < y->st_size) {
            best = y;
            break;
        }
        if (!y->st_size && (!best || y->st_value > best->st_value))
            best = y; /* a sized match wins; else the nearest label below */
    }
    if (!best || best->st_name >= str->sh_size)
        return NULL;
    *off = rel - best->st_value;
    return base + str->sh_offset + best->st_name;
}

/* The function containing `rel` in the mapped ELF file, or NULL. */
static const char *elf_function(const char *base, size_t size, uintptr_t rel, uintptr_t *off)
{
    const ehdr_t *eh = (const ehdr_t *)base;
    if (size < sizeof *eh || memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 ||
        eh->e_shentsize != sizeof(shdr_t) ||
        eh->e_shoff + (size_t)eh->e_shnum * sizeof(shdr_t) > size)
        return NULL;
    const shdr_t *sh = (const shdr_t *)(base + eh->e_shoff);
    const char *name = NULL;
    for (int pass = 0; pass < 2 && !name; pass++) /* .symtab first, then .dynsym */
        for (unsigned i = 0; i < eh->e_shnum && !name; i++)
            if (sh[i].sh_type == (pass == 0 ? SHT_SYMTAB : SHT_DYNSYM))
                name = lookup(base, size, eh, &sh[i], rel, off);
    return name;
}

const char *sn__symbolize(const void *addr, char *buf, size_t len)
{
    struct module m = {.addr = (uintptr_t)addr};
    if (len)
        buf[0] = '\0';
    if (!len)
        return buf;
    dl_iterate_phdr(find_module, &m);
    if (!m.found) {
        snprintf(buf, len, "0x%lx", (unsigned long)(uintptr_t)addr);
        return buf;
    }
    char exe[256];
    const char *shown = m.path;
    if (strcmp(m.path, "/proc/self/exe") == 0) {
        ssize_t n = readlink(m.path, exe, sizeof exe - 1);
        exe[n > 0 ? n : 0] = '\0';
        if (n > 0)
            shown = exe;
    }
    const char *slash = strrchr(shown, '/');
    shown = slash ? slash + 1 : shown;

    uintptr_t rel = m.addr - m.bias, off = 0;
    const char *fn = NULL;
    int fd = open(m.path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    void *map = MAP_FAILED;
    if (fd >= 0 && fstat(fd, &st) == 0 && st.st_size > 0)
        map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map != MAP_FAILED)
        fn = elf_function(map, (size_t)st.st_size, rel, &off);
    Dl_info info;
    if (!fn && dladdr(addr, &info) && info.dli_sname && info.dli_saddr) {
        fn = info.dli_sname; /* a module without a file to read (the vDSO) */
        off = m.addr - (uintptr_t)info.dli_saddr;
    }
    if (fn)
        snprintf(buf, len, "%s+0x%lx (%s)", fn, (unsigned long)off, shown);
    else
        snprintf(buf, len, "%s+0x%lx", shown, (unsigned long)rel);
    if (map != MAP_FAILED)
        munmap(map, (size_t)st.st_size);
    if (fd >= 0)
        close(fd);
    return buf;
}
