/* The command line the exporter and the renderer share: the supervisor starts
 * them with --config FILE; an operator may ask --version or --help. */
#ifndef RV_CLI_H
#define RV_CLI_H

#include "config.h"

/* Parse argv and load the config. Returns it, or NULL with *exit_code set:
 * 0 after --version or --help, 2 for a bad command line, 1 for a bad config
 * (every error printed on stderr). about is the --help text after the
 * usage lines. */
struct config *cli_child_config(int argc, char **argv, const char *program, const char *about, int *exit_code);
/* On SIGHUP: the config read again from where cli_child_config read it.
 * NULL with *errors as config_load_file sets it. */
struct config *cli_child_reload(char **errors);

#endif
