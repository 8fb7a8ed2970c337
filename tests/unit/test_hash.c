/*
 * test_hash.c - FNV-1a 64 against the published test vectors, and hashing
 * in pieces equal to hashing at once (fingerprints and checksums extend one
 * hash over several buffers).
 */
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "hash.h"

static uint64_t of(const char *s) { return hash_fnv1a(HASH_FNV1A_START, s, strlen(s)); }

static void test_vectors(void **state)
{
    (void)state;
    assert_true(of("") == 0xcbf29ce484222325ULL);
    assert_true(of("a") == 0xaf63dc4c8601ec8cULL);
    assert_true(of("foobar") == 0x85944171f73967e8ULL);
}

static void test_pieces(void **state)
{
    (void)state;
    uint64_t h = hash_fnv1a(HASH_FNV1A_START, "foo", 3);
    assert_true(hash_fnv1a(h, "bar", 3) == of("foobar"));
    assert_true(of("foobar") != of("foobaz"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),
        cmocka_unit_test(test_pieces),
    };
    return cmocka_run_group_tests_name("hash", tests, NULL, NULL);
}
