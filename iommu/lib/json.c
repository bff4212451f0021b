#include "iommu/json.h"

void json_init(struct json_writer *w, const struct sink *out)
{
    w->out = out;
    w->depth = 0;
    w->after_key = false;
    w->misuse = false;
    w->has_items[0] = false;
}

/* Called before every value and key: writes the separating comma when one is due. */
static void before_value(struct json_writer *w)
{
    if (w->after_key) {
        w->after_key = false;
        return;
    }
    if (w->has_items[w->depth])
        sink_write(w->out, ",", 1);
    w->has_items[w->depth] = true;
}

static void open_level(struct json_writer *w, char c)
{
    before_value(w);
    if (w->depth == JSON_MAX_DEPTH) {
        w->misuse = true;
        return;
    }
    sink_write(w->out, &c, 1);
    w->has_items[++w->depth] = false;
}

static void close_level(struct json_writer *w, char c)
{
    if (w->depth == 0 || w->after_key) {
        w->misuse = true;
        return;
    }
    w->depth--;
    sink_write(w->out, &c, 1);
}

void json_begin_object(struct json_writer *w) { open_level(w, '{'); }
void json_end_object(struct json_writer *w) { close_level(w, '}'); }
void json_begin_array(struct json_writer *w) { open_level(w, '['); }
void json_end_array(struct json_writer *w) { close_level(w, ']'); }

static void write_string(struct json_writer *w, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    sink_write(w->out, "\"", 1);
    size_t run = 0; /* bytes that need no escaping, written in one piece */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[6];
        size_t n = 0;
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            n = 2;
        } else if (c < 0x20 || c >= 0x80) {
            esc[0] = '\\';
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 0xf];
            n = 6;
        } else {
            run++;
            continue;
        }
        sink_write(w->out, s + i - run, run);
        run = 0;
        sink_write(w->out, esc, n);
    }
    sink_write(w->out, s + len - run, run);
    sink_write(w->out, "\"", 1);
}

void json_key(struct json_writer *w, const char *key)
{
    size_t len = 0;
    while (key[len])
        len++;
    before_value(w);
    write_string(w, key, len);
    sink_write(w->out, ":", 1);
    w->after_key = true;
}

void json_uint(struct json_writer *w, uint64_t v)
{
    before_value(w);
    sink_printf(w->out, "%lu", v);
}

void json_int(struct json_writer *w, int64_t v)
{
    before_value(w);
    sink_printf(w->out, "%ld", v);
}

void json_bool(struct json_writer *w, bool v)
{
    before_value(w);
    sink_puts(w->out, v ? "true" : "false");
}

void json_string(struct json_writer *w, const char *s, size_t len)
{
    before_value(w);
    write_string(w, s, len);
}

void json_kv_uint(struct json_writer *w, const char *key, uint64_t v)
{
    json_key(w, key);
    json_uint(w, v);
}

void json_kv_bool(struct json_writer *w, const char *key, bool v)
{
    json_key(w, key);
    json_bool(w, v);
}

void json_kv_strn(struct json_writer *w, const char *key, const char *s, size_t len)
{
    json_key(w, key);
    json_string(w, s, len);
}

void json_kv_str(struct json_writer *w, const char *key, const char *s)
{
    size_t len = 0;
    while (s[len])
        len++;
    json_kv_strn(w, key, s, len);
}

bool json_done(const struct json_writer *w)
{
    return !w->misuse && w->depth == 0 && !w->after_key && w->has_items[0];
}
