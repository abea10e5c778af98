/* See memview.h. Sizes are shown in whole MiB (GiB with two decimals from
 * 1 GiB): the budget and what is in use move by tens of MiB per render, and
 * a short text reads at a glance where the children's "126.8 MiB" would not. */
#include "memview.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "names.h"

#define MEMVIEW_DASH "\xe2\x80\x93"
#define MEMVIEW_DOT " \xc2\xb7 "

static double memview_get(const struct registry *reg, const char *family, const char *label, const char *value)
{
    const char *labels[] = { label, value, NULL };
    double v;
    return registry_get(reg, family, label ? labels : NULL, &v) == 0 ? v : NAN;
}

void memview_bytes(char *out, size_t size, double bytes, int decimals)
{
    if (isnan(bytes))
        snprintf(out, size, MEMVIEW_DASH);
    else if (bytes >= (double)(1 << 30))
        snprintf(out, size, "%.2f GiB", bytes / (1 << 30));
    else
        snprintf(out, size, "%.*f MiB", decimals, bytes / (1 << 20));
}

static void memview_count(char *out, size_t size, double n)
{
    if (isnan(n))
        snprintf(out, size, MEMVIEW_DASH);
    else
        snprintf(out, size, "%.0f", n);
}

/* x of bytes on the bar, whose width is the budget; clamped to the bar.
 * Rounded by hand (no libm, see status.c). */
static long memview_x(double bytes, double budget)
{
    if (isnan(bytes) || bytes <= 0 || budget <= 0)
        return 0;
    double x = MEMVIEW_BAR_WIDTH * bytes / budget;
    return x >= MEMVIEW_BAR_WIDTH ? MEMVIEW_BAR_WIDTH : (long)(x + 0.5);
}

static void memview_span(char *out, size_t size, long x0, long x1)
{
    if (x1 <= x0)
        out[0] = '\0';
    else
        snprintf(out, size, "M%ld,0H%ldV%dH%ldZ", x0, x1, MEMVIEW_BAR_HEIGHT, x0);
}

void memview_read(const struct registry *reg, struct memview *m)
{
    memset(m, 0, sizeof(*m));
    m->budget = memview_get(reg, NAMES_FAMILY_MEM_BUDGET, NULL, NULL);
    m->used = memview_get(reg, NAMES_FAMILY_MEM_USED, NULL, NULL);
    m->available = memview_get(reg, NAMES_FAMILY_MEM_AVAILABLE, NULL, NULL);
    m->reserved = memview_get(reg, NAMES_FAMILY_MEM_RESERVED, NULL, NULL);
    m->estimate = memview_get(reg, NAMES_FAMILY_MEM_ESTIMATE, NULL, NULL);
    m->queued_memory = memview_get(reg, NAMES_FAMILY_QUEUED, "waiting_for", names_waits[NAMES_WAIT_MEMORY]);
    m->queued_browser = memview_get(reg, NAMES_FAMILY_QUEUED, "waiting_for", names_waits[NAMES_WAIT_BROWSER]);
    m->waits = memview_get(reg, NAMES_FAMILY_MEM_WAITS, NULL, NULL);
    m->retries = memview_get(reg, NAMES_FAMILY_MEM_RETRIES, NULL, NULL);
    for (int i = 0; names_bounds[i]; i++)
        if (!m->bound && memview_get(reg, NAMES_FAMILY_MEM_BOUND, "by", names_bounds[i]) == 1)
            m->bound = names_bounds[i];
    m->shown = !isnan(m->budget);
    m->cls = m->queued_memory > 0 ? "warn" : "ok";

    char used[24], budget[24], reserved[24], available[24], estimate[24];
    char qmem[24], qbrowser[24], waits[24], retries[24];
    memview_bytes(used, sizeof(used), m->used, 0);
    memview_bytes(budget, sizeof(budget), m->budget, 0);
    memview_bytes(reserved, sizeof(reserved), m->reserved, 0);
    memview_bytes(available, sizeof(available), m->available, 0);
    memview_bytes(estimate, sizeof(estimate), m->estimate, 0);
    memview_count(qmem, sizeof(qmem), m->queued_memory);
    memview_count(qbrowser, sizeof(qbrowser), m->queued_browser);
    memview_count(waits, sizeof(waits), m->waits);
    memview_count(retries, sizeof(retries), m->retries);
    char bound[24] = "";
    if (m->bound)
        snprintf(bound, sizeof(bound), " (%s)", m->bound);
    snprintf(m->text, sizeof(m->text),
             "used %s of %s%s" MEMVIEW_DOT "%s reserved" MEMVIEW_DOT "%s waiting for memory", used, budget,
             bound, reserved, qmem);
    snprintf(m->detail, sizeof(m->detail),
             "%s available" MEMVIEW_DOT "about %s a render" MEMVIEW_DOT "%s waiting for a browser" MEMVIEW_DOT
             "%s waited for memory" MEMVIEW_DOT "%s retried",
             available, estimate, qbrowser, waits, retries);

    long x_used = memview_x(m->used, m->budget);
    long x_reserved = memview_x((isnan(m->used) ? 0 : m->used) + (isnan(m->reserved) ? 0 : m->reserved), m->budget);
    memview_span(m->used_bar, sizeof(m->used_bar), 0, x_used);
    memview_span(m->reserved_bar, sizeof(m->reserved_bar), x_used, x_reserved);
}
