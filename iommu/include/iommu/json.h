/* A streaming JSON writer over a sink: compact output, commas and nesting handled here so
 * callers only say what comes next. Numbers are written as JSON integers. */
#ifndef IOMMU_JSON_H
#define IOMMU_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fmt.h"

#define JSON_MAX_DEPTH 32

struct json_writer {
    const struct sink *out;
    unsigned depth;
    bool after_key;
    bool misuse;                         /* nesting error: deeper than JSON_MAX_DEPTH, or an
                                            end without its begin */
    bool has_items[JSON_MAX_DEPTH + 1];  /* per level: a comma is due before the next value */
};

void json_init(struct json_writer *w, const struct sink *out);
void json_begin_object(struct json_writer *w);
void json_end_object(struct json_writer *w);
void json_begin_array(struct json_writer *w);
void json_end_array(struct json_writer *w);
void json_key(struct json_writer *w, const char *key);
void json_uint(struct json_writer *w, uint64_t v);
void json_int(struct json_writer *w, int64_t v);
void json_bool(struct json_writer *w, bool v);
/* Escapes quotes, backslashes and control characters; other bytes are written as they are
 * except bytes >= 0x80, which are written as \u00XX so output is valid UTF-8 whatever the
 * table held. */
void json_string(struct json_writer *w, const char *s, size_t len);

/* key/value shorthands */
void json_kv_uint(struct json_writer *w, const char *key, uint64_t v);
void json_kv_bool(struct json_writer *w, const char *key, bool v);
void json_kv_str(struct json_writer *w, const char *key, const char *s);
void json_kv_strn(struct json_writer *w, const char *key, const char *s, size_t len);

/* True when the document is complete and well nested. */
bool json_done(const struct json_writer *w);

#endif
