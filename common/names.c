/* The one definition of every label value in names.h: each table is built
 * from its X list, indexed by its enum and ended by NULL. */
#include "names.h"

#include <string.h>

#define NAMES_STRING(id, text) [id] = text,

const char *const names_states[] = { NAMES_STATES(NAMES_STRING) NULL };
const char *const names_reasons[] = { NAMES_REASONS(NAMES_STRING) NULL };
const char *const names_modes[] = { NAMES_MODES(NAMES_STRING) NULL };
const char *const names_senders[] = { NAMES_SENDERS(NAMES_STRING) NULL };
const char *const names_refused[] = { NAMES_REFUSED_ALL(NAMES_STRING) NULL };
const char *const names_refusals[] = { NAMES_REFUSALS(NAMES_STRING) NULL };
const char *const names_bounds[] = { NAMES_BOUNDS(NAMES_STRING) NULL };
const char *const names_waits[] = { NAMES_WAITS(NAMES_STRING) NULL };
const char *const names_steps[] = { NAMES_STEPS(NAMES_STRING) NULL };
const char *const names_rules[] = { NAMES_RULES(NAMES_STRING) NULL };
const char *const names_conn_closes[] = { NAMES_CONN_CLOSES(NAMES_STRING) NULL };
const char *const names_span_drops[] = { NAMES_SPAN_DROPS(NAMES_STRING) NULL };

int names_find(const char *const *list, const char *name)
{
    for (int i = 0; list[i]; i++)
        if (strcmp(list[i], name) == 0)
            return i;
    return -1;
}
