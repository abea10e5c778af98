/* libFuzzer target for the exporter's ingest path: a datagram is split into
 * lines as the intake splits it, each line parsed and applied to a registry
 * of the default config, then /metrics written once. Beyond the sanitizers,
 * it checks two properties: a line that parses reads back the same after
 * ingest_buf_line() writes it again, and every sample line of the
 * exposition parses as an ingest line. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "ingest.h"
#include "registry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_fail(const char *what, const char *line, size_t len)
{
    fprintf(stderr, "fuzz_ingest: %s: %.*s\n", what, (int)len, line);
    __builtin_trap();
}

static int fuzz_same(const struct ingest_sample *a, const struct ingest_sample *b)
{
    if (strcmp(a->family, b->family) != 0 || a->nlabels != b->nlabels)
        return 0;
    for (size_t i = 0; i < a->nlabels; i++)
        if (strcmp(a->labels[i].name, b->labels[i].name) != 0 || strcmp(a->labels[i].value, b->labels[i].value) != 0)
            return 0;
    /* Bit for bit: -0 stays -0. */
    return memcmp(&a->value, &b->value, sizeof(double)) == 0;
}

static void fuzz_round_trip(const struct ingest_sample *s, const char *line, size_t len)
{
    static struct ingest_buf b; /* grows to what the lines need, kept across inputs */
    const char *labels[2 * INGEST_MAX_LABELS + 1];
    for (size_t i = 0; i < s->nlabels; i++) {
        labels[2 * i] = s->labels[i].name;
        labels[2 * i + 1] = s->labels[i].value;
    }
    labels[2 * s->nlabels] = NULL;
    ingest_buf_reset(&b);
    /* The value may come back longer (".5" is written "0.5"), past the
     * line limit: nothing to compare then. */
    if (ingest_buf_line(&b, s->family, labels, s->value) < 0)
        return;
    struct ingest_sample again;
    if (ingest_parse_line(b.data, b.len - 1, &again) != INGEST_OK || !fuzz_same(s, &again))
        fuzz_fail("does not read back after ingest_buf_line()", line, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct config *cfg;
    if (!cfg)
        cfg = config_load_default();
    if (size > INGEST_MAX_DATAGRAM)
        return 0; /* the intake never reads more */

    struct registry *reg = registry_new(cfg);
    const char *p = (const char *)data, *end = p + size;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *line_end = nl ? nl : end;
        size_t n = (size_t)(line_end - p);
        if (n > 0) {
            struct ingest_sample s;
            enum ingest_reject why = ingest_parse_line(p, n, &s);
            if (why == INGEST_OK) {
                fuzz_round_trip(&s, p, n);
                why = registry_apply(reg, &s);
            }
            registry_count(reg, why);
        }
        p = nl ? nl + 1 : end;
    }

    struct buf out;
    buf_init(&out);
    registry_write(reg, &out);
    for (const char *l = out.data; l && *l;) {
        const char *e = strchr(l, '\n');
        if (!e)
            fuzz_fail("exposition does not end in a newline", l, strlen(l));
        struct ingest_sample s;
        if (*l != '#' && ingest_parse_line(l, (size_t)(e - l), &s) != INGEST_OK)
            fuzz_fail("exposition line does not parse", l, (size_t)(e - l));
        l = e + 1;
    }
    buf_fini(&out);
    registry_free(reg);
    return 0;
}
