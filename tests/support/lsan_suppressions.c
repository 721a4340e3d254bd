/*
 * LeakSanitizer suppressions for every test binary (tests/support/ is linked into each).
 *
 * Criterion 2.4's parent runner sometimes leaks two 48-byte event records when several
 * worker processes finish together; the stack is entirely inside libcriterion's
 * criterion_run_all_tests and no libsn code runs in that process. Suppress only that, so
 * leaks in libsn or the tests are still reported.
 */
#if defined(__SANITIZE_ADDRESS__)
const char *__lsan_default_suppressions(void);
__attribute__((visibility("default"))) const char *__lsan_default_suppressions(void)
{
    return "leak:criterion_run_all_tests\nleak:libcriterion.so\n";
}
#endif
