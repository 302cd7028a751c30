/* citybrain — the city's operations brain. main.c only dispatches the
 * command line to the commands in src/app/; `citybrain --help` lists them. */
#include "app/app.h"

#include <stdio.h>
#include <string.h>

struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
};

static const struct command commands[] = {
    {"serve", cmd_serve, "run the server (HTTP API, dashboard) until SIGTERM/SIGINT"},
    {"key", cmd_key, "create, list and revoke API keys"},
    {"import", cmd_import, "import regions from GeoJSON, or case categories (import categories FILE)"},
    {"regions", cmd_regions, "generate grid cells, list regions"},
    {"cases", cmd_cases, "operate a running server's cases over its API: cases list|show|report|act;\n"
                         "           cases workflow prints the transition table"},
    {"info", cmd_info, "version, data directory, schema version, key counts"},
    {"config", cmd_config, "print the config reference, check a file, show effective settings"},
    {"routes", cmd_routes, "list the HTTP endpoints and the roles allowed on each"},
    {"errors", cmd_errors, "list the error codes of JSON error bodies"},
};

#define COMMAND_COUNT (sizeof commands / sizeof commands[0])

static void usage(FILE *out)
{
    fprintf(out, "citybrain %s — a City Brain (城市大脑) for a city's operations centre\n\n"
                 "usage: citybrain <command> [flags]     citybrain <command> --help\n\n"
                 "commands:\n", CB_VERSION);
    for (size_t i = 0; i < COMMAND_COUNT; i++)
        fprintf(out, "  %-8s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n  --test-config FILE   validate a config file and exit\n"
                 "  --version            print the version\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        printf("citybrain %s (%s)\n", CB_VERSION, CB_COMMIT);
        return 0;
    }
    if (strcmp(cmd, "--test-config") == 0) {
        char *check_argv[] = {"check", argc > 2 ? argv[2] : NULL};
        return argc == 3 ? cmd_config(2, check_argv) : (usage(stderr), 2);
    }
    for (size_t i = 0; i < COMMAND_COUNT; i++)
        if (strcmp(cmd, commands[i].name) == 0)
            return commands[i].run(argc - 2, argv + 2);
    fprintf(stderr, "citybrain: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return 2;
}
