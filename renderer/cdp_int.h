/* What the parts of the CDP module share (cdp.c, cdp_msg.c, cdp_result.c,
 * cdp_event.c): the checks of an id and of a string member, and
 * the dump callback that writes JSON into a struct buf. Nothing outside
 * renderer/cdp*.c includes this; the module's API is cdp.h. */
#ifndef RV_CDP_INT_H
#define RV_CDP_INT_H

#include <jansson.h>

/* cdp.c: an id we put into a command or take from a list: present, not
 * empty, at most CDP_ID_MAX bytes. */
int cdp_id_ok(const char *s);
/* cdp.c: jansson's dump callback that appends to the struct buf arg. */
int cdp_dump_cb(const char *data, size_t len, void *arg);

/* cdp_msg.c: a string member no longer than max, and a non-empty id-like
 * one (at most CDP_ID_MAX bytes); NULL when absent or wrong. */
const char *cdp_get_str(json_t *obj, const char *key, size_t max);
const char *cdp_get_id(json_t *obj, const char *key);

#endif
