/*
 * The fiber context switch, in assembly (see core/fiber.h). Only the registers the calling
 * convention says a callee must preserve are saved, on the stack being left, and only the
 * stack pointer is stored: a switch is a function call, so the compiler has already saved
 * everything else. No system call (no signal mask), no floating-point control state (it
 * belongs to the thread: include/sn/fiber.h).
 *
 * x86-64 (System V): rbx, rbp, r12-r15, then the return address; the switch pops the new
 * context's return address and jumps to it, as boost.context does, rather than `ret`, which
 * would be mispredicted on every switch (the return stack buffer holds the caller's own
 * return address).
 * AArch64 (AAPCS64): x19-x28, x29 (frame), x30 (link), d8-d15; the switch returns through
 * the new context's x30.
 *
 * A new context (sn__ctx_make) is a stack holding the saved registers that sn__ctx_start
 * expects: the function in one callee-saved register, its argument in another. Its frame
 * pointer is 0 and its return address is 0, so debuggers and unwinders stop there.
 */
#include "core/fiber.h"

#include <stdint.h>
#include <string.h>

#if defined(__x86_64__)

__asm__(".text\n"
        ".globl sn__ctx_switch\n"
        ".hidden sn__ctx_switch\n"
        ".type sn__ctx_switch,@function\n"
        ".p2align 4\n"
        "sn__ctx_switch:\n"
        "    pushq %rbp\n"
        "    pushq %rbx\n"
        "    pushq %r12\n"
        "    pushq %r13\n"
        "    pushq %r14\n"
        "    pushq %r15\n"
        "    movq %rsp, (%rdi)\n"
        "    movq %rsi, %rsp\n"
        "    popq %r15\n"
        "    popq %r14\n"
        "    popq %r13\n"
        "    popq %r12\n"
        "    popq %rbx\n"
        "    popq %rbp\n"
        "    popq %rcx\n"
        "    jmp *%rcx\n"
        ".size sn__ctx_switch,.-sn__ctx_switch\n"
        "\n"
        ".globl sn__ctx_start\n"
        ".hidden sn__ctx_start\n"
        ".type sn__ctx_start,@function\n"
        ".p2align 4\n"
        "sn__ctx_start:\n"
        "    pushq $0\n" /* no return address: unwinding stops here, and the stack is aligned */
        "    movq %r12, %rdi\n"
        "    jmp *%r13\n"
        ".size sn__ctx_start,.-sn__ctx_start\n");

/* Saved by sn__ctx_switch, lowest address first: r15 r14 r13 r12 rbx rbp, return address. */
enum { SAVED_WORDS = 7, SLOT_R13 = 2, SLOT_R12 = 3, SLOT_RBP = 5, SLOT_RET = 6 };

#elif defined(__aarch64__)

__asm__(".text\n"
        ".globl sn__ctx_switch\n"
        ".hidden sn__ctx_switch\n"
        ".type sn__ctx_switch,%function\n"
        ".p2align 4\n"
        "sn__ctx_switch:\n"
        "    sub sp, sp, #160\n"
        "    stp x19, x20, [sp, #0]\n"
        "    stp x21, x22, [sp, #16]\n"
        "    stp x23, x24, [sp, #32]\n"
        "    stp x25, x26, [sp, #48]\n"
        "    stp x27, x28, [sp, #64]\n"
        "    stp x29, x30, [sp, #80]\n"
        "    stp d8, d9, [sp, #96]\n"
        "    stp d10, d11, [sp, #112]\n"
        "    stp d12, d13, [sp, #128]\n"
        "    stp d14, d15, [sp, #144]\n"
        "    mov x9, sp\n"
        "    str x9, [x0]\n"
        "    mov sp, x1\n"
        "    ldp x19, x20, [sp, #0]\n"
        "    ldp x21, x22, [sp, #16]\n"
        "    ldp x23, x24, [sp, #32]\n"
        "    ldp x25, x26, [sp, #48]\n"
        "    ldp x27, x28, [sp, #64]\n"
        "    ldp x29, x30, [sp, #80]\n"
        "    ldp d8, d9, [sp, #96]\n"
        "    ldp d10, d11, [sp, #112]\n"
        "    ldp d12, d13, [sp, #128]\n"
        "    ldp d14, d15, [sp, #144]\n"
        "    add sp, sp, #160\n"
        "    ret\n"
        ".size sn__ctx_switch,.-sn__ctx_switch\n"
        "\n"
        ".globl sn__ctx_start\n"
        ".hidden sn__ctx_start\n"
        ".type sn__ctx_start,%function\n"
        ".p2align 4\n"
        "sn__ctx_start:\n"
        "    mov x0, x19\n"
        "    mov x30, xzr\n" /* no return address: unwinding stops here */
        "    br x20\n"
        ".size sn__ctx_start,.-sn__ctx_start\n");

/* Saved by sn__ctx_switch, lowest address first: x19..x28, x29, x30, d8..d15. */
enum { SAVED_WORDS = 20, SLOT_X19 = 0, SLOT_X20 = 1, SLOT_X29 = 10, SLOT_X30 = 11 };

#else
#error "libsn fibers: no context switch for this architecture (x86-64 and AArch64 only)"
#endif

void sn__ctx_start(void);

void *sn__ctx_make(void *top, void (*fn)(void *arg), void *arg)
{
    uintptr_t t = (uintptr_t)top & ~(uintptr_t)15;
#if defined(__x86_64__)
    /* sn__ctx_start runs with rsp = t (it pushes a zero "return address", leaving the
     * rsp = 8 mod 16 that a function expects at entry). */
    uint64_t *sp = (uint64_t *)t - SAVED_WORDS;
    memset(sp, 0, SAVED_WORDS * sizeof *sp);
    sp[SLOT_R13] = (uint64_t)(uintptr_t)fn;
    sp[SLOT_R12] = (uint64_t)(uintptr_t)arg;
    sp[SLOT_RBP] = 0;
    sp[SLOT_RET] = (uint64_t)(uintptr_t)sn__ctx_start;
#else
    /* The saved area is 160 bytes, so sp stays 16-byte aligned. */
    uint64_t *sp = (uint64_t *)t - SAVED_WORDS;
    memset(sp, 0, SAVED_WORDS * sizeof *sp);
    sp[SLOT_X19] = (uint64_t)(uintptr_t)arg;
    sp[SLOT_X20] = (uint64_t)(uintptr_t)fn;
    sp[SLOT_X29] = 0;
    sp[SLOT_X30] = (uint64_t)(uintptr_t)sn__ctx_start;
#endif
    return sp;
}
