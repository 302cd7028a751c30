/* cases_cli — `citybrain import categories FILE` (a city's own category tree)
 * and `citybrain cases workflow` (the transition table, as the README shows it). */
#include "app/app.h"

#include "cases/workflow.h"

#include <stdio.h>
#include <string.h>

int cmd_import_categories(int argc, char **argv)
{
    if (argc < 1 || cli_has_help(argc, argv) || argv[0][0] == '-') {
        FILE *out = cli_has_help(argc, argv) ? stdout : stderr;
        fprintf(out, "usage: citybrain import categories FILE.json [store flags]\n\n"
                     "Replaces the case category tree with FILE (format: README \"Cases\"); all or nothing.\n"
                     "Store flags: --config FILE, --data-dir DIR. Restart a running server afterwards.\n");
        return out == stdout ? 0 : 2;
    }
    const char *file = argv[0];
    struct app a;
    cb_error err;
    memset(&a, 0, sizeof a);
    json_error_t je;
    json_t *doc = json_load_file(file, 0, &je);
    if (!doc) {
        fprintf(stderr, "citybrain import categories: %s:%d: %s\n", file, je.line, je.text);
        return 2;
    }
    struct cases_options co;
    int rc = app_load_config(argc - 1, argv + 1, &a.cfg, &err);
    if (rc == 0)
        rc = app_open_store(&a, &err);
    app_cases_options(&a, 0, &co);
    co.city_dir = NULL; /* the file replaces the tree; no first-start loading */
    size_t n = 0;
    if (rc == 0)
        rc = cases_open(&co, &a.cases, &err);
    if (rc == 0)
        rc = cases_import_categories(a.cases, doc, &n, &err);
    json_decref(doc);
    cases_close(a.cases);
    a.cases = NULL;
    app_close(&a);
    if (rc != 0) {
        fprintf(stderr, "citybrain import categories: %s%s%s\n", err.field[0] ? err.field : "", err.field[0] ? ": " : "",
                err.message);
        return 1;
    }
    printf("imported %zu categories from %s\n", n, file);
    return 0;
}

static void print_workflow(FILE *out)
{
    fprintf(out, "| from | action | to | roles | what it means |\n|---|---|---|---|---|\n");
    for (size_t i = 0; i < case_transition_count; i++) {
        const struct case_transition *t = &case_transitions[i];
        char roles[128];
        fprintf(out, "| %s (%s) | `%s` | %s | %s | %s |\n", case_status_name(t->from), case_status_label(t->from),
                t->action, t->to == CASE_PREVIOUS ? "(previous)" : case_status_name((enum case_status)t->to),
                role_mask_names(t->roles, roles, sizeof roles), t->summary);
    }
}

int cmd_cases(int argc, char **argv)
{
    if (argc >= 1 && strcmp(argv[0], "workflow") == 0) {
        print_workflow(stdout);
        return 0;
    }
    FILE *out = cli_has_help(argc, argv) ? stdout : stderr;
    fprintf(out, "usage: citybrain cases workflow\n\n"
                 "Prints the case workflow's transition table (Markdown): from state, action, to state,\n"
                 "the roles allowed, what it means. The server enforces exactly this table.\n");
    return out == stdout ? 0 : 2;
}
