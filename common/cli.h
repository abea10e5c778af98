/* The command line the exporter and the renderer share: the supervisor starts
 * them with --config FILE; an operator may ask --version or --help. */
#ifndef RV_CLI_H
#define RV_CLI_H

#include "config.h"

/* Parse argv and load the config. Returns it, or NULL with *exit_code set:
 * 0 after --version or --help, 2 for a bad command line, 1 for a bad config
 * (every error printed on stderr). about is the --help text after the
 * usage lines. The RENDERVISOR_ variables of the environment are applied
 * over the file. *path (if path is not NULL) is the file, for re-reading
 * it on SIGHUP. */
struct config *cli_child_config(int argc, char **argv, const char *program, const char *about, int *exit_code,
                                const char **path);
/* On SIGHUP: path read again with the environment over it, as at start.
 * NULL when it does not load, each error logged ("config reload refused,
 * keeping the running <keeping> reason=..."). */
struct config *cli_child_reload(const char *path, const char *keeping);

#endif
