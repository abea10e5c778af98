/* See cli.h. */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

static void cli_usage(FILE *out, const char *program, const char *about)
{
    fprintf(out, "Usage: %s --config FILE\n       %s --version | --help\n\n%s", program, program, about);
}

extern char **environ;

struct config *cli_child_config(int argc, char **argv, const char *program, const char *about, int *exit_code,
                                const char **path)
{
    static const struct option opts[] = {
        { "config", required_argument, NULL, 'c' },
        { "version", no_argument, NULL, 'V' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *config_file = NULL;
    int opt;
    *exit_code = 2;
    while ((opt = getopt_long(argc, argv, "c:Vh", opts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            config_file = optarg;
            break;
        case 'V':
            printf("%s %s\n", program, RENDERVISOR_VERSION);
            *exit_code = 0;
            return NULL;
        case 'h':
            cli_usage(stdout, program, about);
            *exit_code = 0;
            return NULL;
        default:
            cli_usage(stderr, program, about);
            return NULL;
        }
    }
    if (!config_file || optind < argc) {
        cli_usage(stderr, program, about);
        return NULL;
    }
    char *errors = NULL;
    /* The supervisor's environment is ours: its RENDERVISOR_ variables
     * over the file make the config it checked. */
    struct config *cfg = config_load(config_file, environ, &errors);
    if (!cfg) {
        fprintf(stderr, "%s: the configuration is not valid:\n%s", program, errors);
        free(errors);
        *exit_code = 1;
    }
    if (path)
        *path = config_file;
    return cfg;
}

struct config *cli_child_reload(const char *path, const char *keeping)
{
    char *errors = NULL;
    struct config *cfg = config_load(path, environ, &errors);
    if (!cfg) {
        char *save = NULL;
        for (char *line = strtok_r(errors, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
            log_error("config reload refused, keeping the running %s reason=\"%s\"", keeping, line);
        free(errors);
    }
    return cfg;
}
