#include "test_util.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "iommu/page_pool.h"

uint8_t *read_fixture(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    assert_true(size >= 0);
    uint8_t *buf = malloc(size ? (size_t)size : 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    *len = (size_t)size;
    return buf;
}

const char *fixture(const char *rel)
{
    static char path[1024];
    snprintf(path, sizeof path, "%s/%s", TEST_FIXTURE_DIR, rel);
    return path;
}

const char *shared_fixture_dir(void)
{
    struct stat st;
    return stat(TEST_SHARED_FIXTURE_DIR, &st) == 0 && S_ISDIR(st.st_mode) ? TEST_SHARED_FIXTURE_DIR : NULL;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

size_t list_files(const char *dir, const char *ext, char ***paths)
{
    DIR *d = opendir(dir);
    size_t n = 0, cap = 0;
    *paths = NULL;
    if (!d)
        return 0;
    size_t ext_len = strlen(ext);
    for (struct dirent *e; (e = readdir(d));) {
        size_t name_len = strlen(e->d_name);
        if (name_len <= ext_len || strcmp(e->d_name + name_len - ext_len, ext) != 0)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            *paths = realloc(*paths, cap * sizeof **paths);
            assert_non_null(*paths);
        }
        size_t size = strlen(dir) + name_len + 2;
        (*paths)[n] = malloc(size);
        snprintf((*paths)[n++], size, "%s/%s", dir, e->d_name);
    }
    closedir(d);
    if (n)
        qsort(*paths, n, sizeof **paths, cmp_str);
    return n;
}

void free_list(char **paths, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(paths[i]);
    free(paths);
}

static void mem_sink_write(void *ctx, const char *s, size_t n)
{
    struct mem_sink *m = ctx;
    if (m->len + n + 1 > m->cap) {
        m->cap = (m->len + n + 1) * 2;
        m->buf = realloc(m->buf, m->cap);
        assert_non_null(m->buf);
    }
    memcpy(m->buf + m->len, s, n);
    m->len += n;
    m->buf[m->len] = '\0';
}

void mem_sink_init(struct mem_sink *m)
{
    m->sink.write = mem_sink_write;
    m->sink.ctx = m;
    m->buf = calloc(1, 1);
    m->len = 0;
    m->cap = 1;
}

void mem_sink_free(struct mem_sink *m)
{
    free(m->buf);
    m->buf = NULL;
}

void test_pool_init(struct page_pool *p, size_t pages, uint64_t pa)
{
    void *mem = aligned_alloc(PAGE_SIZE, pages * PAGE_SIZE);
    assert_non_null(mem);
    assert_true(page_pool_init(p, mem, pa, pages * PAGE_SIZE));
}

void test_pool_free(struct page_pool *p)
{
    free(p->base_va);
    p->base_va = NULL;
}
