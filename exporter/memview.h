/* The status page's "Memory" part: the renderer's memory admission figures
 * (common/names.h) read from the registry, and the texts and the bar the
 * page and /status.json show of them. Pure, like status.c, which writes it
 * out. */
#ifndef RV_MEMVIEW_H
#define RV_MEMVIEW_H

#include <stddef.h>

#include "registry.h"

/* The budget bar, in SVG user units (= CSS px). */
#define MEMVIEW_BAR_WIDTH 512
#define MEMVIEW_BAR_HEIGHT 12
#define MEMVIEW_TEXT 256

struct memview {
    int shown; /* the renderer has reported its budget: the part is shown */
    /* NAN for a figure not reported */
    double budget, used, available, reserved, estimate;
    double queued_memory, queued_browser, waits, retries;
    const char *bound; /* one of names_bounds, NULL when none is 1 */
    const char *cls;   /* "ok"; "warn" while a render waits for memory */
    char text[MEMVIEW_TEXT], detail[MEMVIEW_TEXT];
    char used_bar[96], reserved_bar[96]; /* SVG paths on the bar */
};

void memview_read(const struct registry *reg, struct memview *m);
/* A byte count as the page shows it: "1.25 GiB", or MiB with decimals
 * decimals below a GiB; a dash for NAN (not reported). */
void memview_bytes(char *out, size_t size, double bytes, int decimals);

#endif
