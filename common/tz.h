/* The time zone of a render: every spelling Grafana sends for one, read
 * into the id Chromium's Emulation.setTimezoneOverride takes. The renderer's
 * query and the config's [renderer] timezone both go through it, so the two
 * accept the same text. No I/O, no allocation. */
#ifndef RV_TZ_H
#define RV_TZ_H

#include <stddef.h>

/* Longest text read, and longest id written, in bytes without the NUL.
 * IANA names are under 40; our own ids ("Etc/GMT-14", "GMT+05:30") are
 * shorter still. */
#define TZ_TEXT_MAX 64

/* ICU's bound for a custom offset id: Chromium refuses GMT+24:00. */
#define TZ_OFFSET_MAX_MIN (23 * 60 + 59)

/* What tz_parse found. */
#define TZ_ZONE 0    /* a zone: id is what Chromium takes */
#define TZ_DEFAULT 1 /* "browser" or "default": whatever the operator configured */

/* What the text may be, for messages: "expected " TZ_EXPECTED. */
#define TZ_EXPECTED "an IANA name such as Europe/Stockholm, UTC, UTC-05:00 (POSIX sign, as Grafana " \
                    "sends it), GMT+05:30, +05:30, browser or default"

/* Reads text[0..len), which need not be NUL-terminated:
 *   "browser", "default" (any case)       -> TZ_DEFAULT, id ""
 *   "UTC", "GMT" (any case)              -> "UTC"
 *   "UTC" sign hh[[:]mm]  (any case)     -> the POSIX reading: UTC-05:00 is
 *       5 hours AHEAD of UTC. Grafana's isoTimeOffsetToPosixTz makes this
 *       form out of the user's own UTC+05:00, inverting the sign for a TZ
 *       variable, as POSIX counts offsets westward.
 *   "GMT" sign hh[[:]mm]  (any case)     -> the ISO reading: GMT+05:30 is
 *       ahead, as ICU, JavaScript's Date and Chromium read it (Grafana
 *       passes GMT forms on untouched, so nothing inverted them)
 *   sign hh[[:]mm]                       -> ISO, as ECMAScript's offset zones
 *       (Chromium's Intl reports a fixed offset zone as "+05:30")
 *   an IANA name ("Europe/Stockholm", "Etc/GMT+5", "America/Port-au-Prince"):
 *       a letter, then letters, digits, '/', '_', '-', '+'; passed on as
 *       written (whether Chromium knows it shows only at the render)
 * hh is one or two digits, mm two, at most 23:59 in all. An offset is
 * written the way Chromium resolves it to what the page asks for: 0 as
 * "UTC", whole hours that have an IANA zone as "Etc/GMT-5" (5 hours ahead:
 * IANA's Etc names are POSIX too), the rest as ICU's "GMT+05:30".
 * Returns TZ_ZONE or TZ_DEFAULT with id (of id_len bytes, at least
 * TZ_TEXT_MAX + 1) set, or -EINVAL for anything else (id then ""). Every id
 * written reads back as itself. */
int tz_parse(const char *text, size_t len, char *id, size_t id_len);

#endif
