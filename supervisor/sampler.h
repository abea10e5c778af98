/* Measuring the children: one libproc2 pass over the process table, each
 * child's whole tree found by parent links, and its figures summed. The pure
 * parts (tree assignment, aggregation, CPU ledger, /proc text parsers) live in
 * proctree.c and procfs.c so tests can feed them synthetic tables and fixtures. */
#ifndef RV_SAMPLER_H
#define RV_SAMPLER_H

#include <stddef.h>
#include <stdint.h>

#include "proctree.h"

struct sampler;

/* NULL with errno set when libproc2 cannot be initialised. */
struct sampler *sampler_new(void);
void sampler_free(struct sampler *s);

/* Take one sample. roots[i] is child i's pid (0 when it is not running);
 * limits[i] its memory limit (0 = none; limits may be NULL): a tree whose
 * carried-forward PSS estimate is over it is read exactly before returning.
 * ledgers[i] is child i's CPU ledger, kept by the caller from one sample to
 * the next; out[i] receives child i's figures. Processes whose parent is
 * self_pid (orphans reparented to the subreaper) count for the child whose
 * session they are in; the pids of those that belong to no running child are
 * written to strays (at most *nstrays, which is updated) so the caller can end
 * them. Returns 0 or a negative errno. */
int sampler_run(struct sampler *s, int self_pid, const int *roots, const uint64_t *limits,
                size_t nroots, struct proctree_ledger *ledgers, struct proctree_figures *out,
                int *strays, size_t *nstrays);

/* How many processes the last sample read from the table: every process on
 * the host after a full pass, only the children's after a quick one. */
size_t sampler_table_size(const struct sampler *s);

/* After sampler_run(): the processes of the children's trees that are not in
 * their child's session (they called setsid()), which the guardian must be
 * told about since killing the child's session would miss them. Writes at
 * most room of them; returns how many were written. */
size_t sampler_escaped(const struct sampler *s, const int *roots, size_t nroots, int *pids,
                       unsigned long long *starts, size_t room);

#endif
