/* Helpers shared by the host tests: fixture files and a sink into memory. */
#ifndef TEST_UTIL_H
#define TEST_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "iommu/fmt.h"
#include "iommu/prng.h"

/* Reads a file into a buffer of exactly its size (so AddressSanitizer sees any read past
 * the end); fails the test when the file cannot be read. Free with free(). */
uint8_t *read_fixture(const char *path, size_t *len);

/* "<tests/fixtures/acpi>/<rel>" in a static buffer. */
const char *fixture(const char *rel);

/* The shared fixture folder (../shared/fixtures/acpi beside the checkout), or NULL when it
 * is not there; tests that need it are skipped then. */
const char *shared_fixture_dir(void);

/* Lists regular files under dir whose names end in ext, sorted; returns the count and a
 * malloc'ed array of malloc'ed paths. */
size_t list_files(const char *dir, const char *ext, char ***paths);
void free_list(char **paths, size_t n);

/* A page pool over freshly allocated, page-aligned memory that claims to sit at physical
 * address pa. test_pool_free releases the memory. */
struct page_pool;
void test_pool_init(struct page_pool *p, size_t pages, uint64_t pa);
void test_pool_free(struct page_pool *p);

/* The tests' pseudo-random numbers (iommu/prng.h). */
static inline uint64_t test_rand(uint64_t *state)
{
    return prng_next(state);
}

/* A growable in-memory sink for report and JSON output. */
struct mem_sink {
    struct sink sink;
    char *buf;
    size_t len, cap;
};
void mem_sink_init(struct mem_sink *m);
void mem_sink_free(struct mem_sink *m);

#endif
