#include "common/report.h"


bool check(struct checks *c, bool ok, const char *what)
{
    c->run++;
    if (!ok)
        c->failed++;
    sink_printf(out, "check: %-4s %s\n", ok ? "PASS" : "FAIL", what);
    return ok;
}

bool checkf(struct checks *c, bool ok, const char *fmt, ...)
{
    char what[160];
    va_list ap;
    va_start(ap, fmt);
    fmt_vformat(what, sizeof what, fmt, ap);
    va_end(ap);
    return check(c, ok, what);
}
