/* cases_cli — `citybrain import categories FILE` (a city's own category tree),
 * `citybrain cases workflow` (the transition table, as the README shows it) and
 * the operator's remote commands `citybrain cases list|show|report|act`, which
 * drive a running server over its HTTP API (app/httpc.h): every action goes
 * through the server's roles, workflow table, events and timers. */
#include "app/app.h"

#include "app/httpc.h"
#include "cases/workflow.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
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

/* --- remote commands: exit 0 done, 1 the server said no, 2 usage or network --- */

#define CASES_TIMEOUT_S 30L

static void cases_usage(FILE *out)
{
    fprintf(out,
            "usage: citybrain cases workflow\n"
            "       citybrain cases list [--status S] [--district D] [--department D] [--q TEXT] [--overdue] [--limit N]\n"
            "       citybrain cases show ID\n"
            "       citybrain cases report --channel C --category CODE --description TEXT [--address A]\n"
            "                              [--lon X --lat Y] [--name N --phone P]\n"
            "       citybrain cases act ID ACTION [--note T] [--reason R] [--department D] [--rating R]\n"
            "                              [--passed yes|no] [--hours H]\n\n"
            "workflow prints the case workflow's transition table (Markdown): from state, action, to state,\n"
            "the roles allowed, what it means. The server enforces exactly this table.\n\n"
            "list, show, report and act operate a running server over its HTTP API (/api/v1/cases), so\n"
            "every action goes through the same roles, workflow table, events and timers as the API and\n"
            "the dashboard; the key decides what you may see and do.\n\n"
            "common flags:\n"
            "  --url URL        the server (default $CITYBRAIN_URL, else http://127.0.0.1:8080)\n"
            "  --key-file FILE  a file holding the API key (default: the key in $CITYBRAIN_KEY)\n"
            "  --json           print the server's JSON as is\n\n"
            "exit status: 0 done, 1 the server refused (its message and field are printed), 2 usage or\n"
            "network error.\n");
}

struct remote {
    const char *url;
    char *key; /* owned */
    int json;
};

/* Reads the first line of FILE (trimmed) into r->key. */
static int read_key_file(const char *file, struct remote *r)
{
    FILE *f = fopen(file, "r");
    if (!f) {
        fprintf(stderr, "citybrain cases: %s: %s\n", file, strerror(errno));
        return -1;
    }
    char line[512] = "";
    if (!fgets(line, sizeof line, f))
        line[0] = '\0';
    fclose(f);
    char *p = line;
    while (*p == ' ' || *p == '\t')
        p++;
    size_t n = strcspn(p, " \t\r\n");
    p[n] = '\0';
    if (!*p) {
        fprintf(stderr, "citybrain cases: %s: no key in the file\n", file);
        return -1;
    }
    r->key = strdup(p);
    return r->key ? 0 : -1;
}

/* Takes the common flags from argv. */
static int remote_flags(int *argc, char **argv, struct remote *r)
{
    int missing = 0;
    memset(r, 0, sizeof *r);
    r->url = cli_take_flag(argc, argv, "--url", &missing);
    const char *key_file = cli_take_flag(argc, argv, "--key-file", &missing);
    r->json = cli_take_switch(argc, argv, "--json");
    if (missing) {
        fprintf(stderr, "citybrain cases: a flag is missing its value\n");
        return -1;
    }
    if (!r->url)
        r->url = getenv("CITYBRAIN_URL");
    if (!r->url || !r->url[0])
        r->url = "http://127.0.0.1:8080";
    if (key_file)
        return read_key_file(key_file, r);
    const char *env = getenv("CITYBRAIN_KEY");
    if (env && env[0] && !(r->key = strdup(env)))
        return -1;
    return 0;
}

/* Any argument left over is an error. */
static int no_leftovers(int argc, char **argv)
{
    if (argc == 0)
        return 0;
    fprintf(stderr, "citybrain cases: unexpected argument '%s' (see citybrain cases --help)\n", argv[0]);
    return -1;
}

/* A JSON value as text for the tables: strings as they are, null as "-". */
static char *value_text(const json_t *v)
{
    if (!v || json_is_null(v))
        return strdup("-");
    if (json_is_string(v))
        return strdup(json_string_value(v));
    if (json_is_true(v))
        return strdup("yes");
    if (json_is_false(v))
        return strdup("no");
    if (json_is_number(v)) {
        char num[32];
        snprintf(num, sizeof num, "%.15g", json_number_value(v));
        return strdup(num);
    }
    if (json_is_array(v)) {
        size_t len = 0, i;
        json_t *e;
        char *out = strdup("");
        json_array_foreach(v, i, e) {
            const json_t *name = json_is_object(e) ? json_object_get(e, "action") : NULL;
            char *t = value_text(name ? name : e);
            char *grown = t && out ? realloc(out, len + strlen(t) + 3) : NULL;
            if (!grown) {
                free(t);
                free(out);
                return NULL;
            }
            out = grown;
            len += (size_t)sprintf(out + len, "%s%s", i ? ", " : "", t);
            free(t);
        }
        return out;
    }
    return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
}

/* Terminal columns of UTF-8 text: CJK (3- and 4-byte sequences) take two. */
static size_t text_width(const char *s)
{
    size_t w = 0;
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned char c = *p++;
        w += c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 1 : 2;
        while ((*p & 0xC0) == 0x80)
            p++;
    }
    return w;
}

/* The server's error as one line on stderr; exit 1. */
static int report_error(const struct httpc_reply *rep)
{
    json_t *doc = json_loads(rep->body, 0, NULL);
    const json_t *e = json_object_get(doc, "error");
    const char *message = json_string_value(json_object_get(e, "message"));
    const char *field = json_string_value(json_object_get(e, "field"));
    const char *code = json_string_value(json_object_get(e, "code"));
    fprintf(stderr, "citybrain cases: %ld %s: %s%s%s%s\n", rep->status, code ? code : "error",
            message ? message : (rep->body[0] ? rep->body : "no message"), field && field[0] ? " (field: " : "",
            field && field[0] ? field : "", field && field[0] ? ")" : "");
    json_decref(doc);
    return 1;
}

/* One request; on success *doc is the parsed answer (unless --json printed it).
 * Returns the exit status. */
static int remote_call(const struct remote *r, const char *method, const char *path, const json_t *body, json_t **doc)
{
    char err[512];
    struct httpc_reply rep;
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    *doc = NULL;
    if (body && !text)
        return 2;
    int rc = httpc_request(method, r->url, path, r->key, text, CASES_TIMEOUT_S, &rep, err, sizeof err);
    free(text);
    if (rc != 0) {
        fprintf(stderr, "citybrain cases: %s\n", err);
        return 2;
    }
    if (rep.status < 200 || rep.status >= 300) {
        rc = report_error(&rep);
    } else if (r->json) {
        fputs(rep.body, stdout);
        if (rep.len == 0 || rep.body[rep.len - 1] != '\n')
            fputc('\n', stdout);
    } else {
        json_error_t je;
        *doc = json_loads(rep.body, 0, &je);
        if (!*doc) {
            fprintf(stderr, "citybrain cases: the server's answer is not JSON: %s\n", je.text);
            rc = 2;
        }
    }
    httpc_reply_free(&rep);
    return rc;
}

static const char *const list_columns[] = {"id", "status_name", "category_name", "district_name", "department_name",
                                           "deadline", "timer"};
#define LIST_COLUMNS (sizeof list_columns / sizeof list_columns[0])

static void print_case_table(const json_t *cases)
{
    size_t rows = json_array_size(cases), width[LIST_COLUMNS];
    char **cell = calloc((rows + 1) * LIST_COLUMNS, sizeof *cell);
    if (!cell)
        return;
    for (size_t c = 0; c < LIST_COLUMNS; c++) {
        cell[c] = strdup(list_columns[c]);
        for (size_t i = 0; i < rows; i++)
            cell[(i + 1) * LIST_COLUMNS + c] = value_text(json_object_get(json_array_get(cases, i), list_columns[c]));
        width[c] = 0;
        for (size_t i = 0; i <= rows; i++) {
            size_t w = cell[i * LIST_COLUMNS + c] ? text_width(cell[i * LIST_COLUMNS + c]) : 0;
            width[c] = w > width[c] ? w : width[c];
        }
    }
    for (size_t i = 0; i <= rows; i++) {
        for (size_t c = 0; c < LIST_COLUMNS; c++) {
            const char *t = cell[i * LIST_COLUMNS + c] ? cell[i * LIST_COLUMNS + c] : "?";
            if (c + 1 == LIST_COLUMNS)
                printf("%s\n", t);
            else
                printf("%s%*s", t, (int)(width[c] - text_width(t) + 2), "");
        }
    }
    for (size_t i = 0; i < (rows + 1) * LIST_COLUMNS; i++)
        free(cell[i]);
    free(cell);
}

static void print_case(const json_t *c)
{
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)c, k, v) {
        if (strcmp(k, "history") == 0)
            continue;
        char *t = value_text(v);
        printf("%s: %s\n", k, t ? t : "?");
        free(t);
    }
    const json_t *hist = json_object_get(c, "history");
    if (!json_is_array(hist))
        return;
    printf("history:\n");
    size_t i;
    json_t *h;
    json_array_foreach(hist, i, h) {
        const char *keys[] = {"at", "from", "to", "action", "by", "role", "note"};
        char *t[7];
        for (size_t j = 0; j < 7; j++)
            t[j] = value_text(json_object_get(h, keys[j]));
        printf("  %s  %s -> %s  %s  by %s (%s)", t[0] ? t[0] : "?", t[1] ? t[1] : "?", t[2] ? t[2] : "?",
               t[3] ? t[3] : "?", t[4] ? t[4] : "?", t[5] ? t[5] : "?");
        if (t[6] && strcmp(t[6], "-") != 0)
            printf("  %s", t[6]);
        printf("\n");
        for (size_t j = 0; j < 7; j++)
            free(t[j]);
    }
}

/* One line: id, state, department, deadline. */
static void print_summary(const json_t *c)
{
    const char *keys[] = {"id", "status", "status_name", "department_name", "deadline"};
    char *t[5];
    for (size_t j = 0; j < 5; j++)
        t[j] = value_text(json_object_get(c, keys[j]));
    printf("%s  %s (%s)  department: %s  deadline: %s\n", t[0] ? t[0] : "?", t[1] ? t[1] : "?", t[2] ? t[2] : "?",
           t[3] ? t[3] : "?", t[4] ? t[4] : "?");
    for (size_t j = 0; j < 5; j++)
        free(t[j]);
}

/* "/api/v1/cases/" + escaped id (+ "/" + escaped action). */
static char *case_path(const char *id, const char *action)
{
    char *eid = httpc_escape(id), *eaction = action ? httpc_escape(action) : NULL, *p = NULL;
    if (eid && (!action || eaction) && (p = malloc(strlen(eid) + (eaction ? strlen(eaction) : 0) + 32)))
        sprintf(p, "/api/v1/cases/%s%s%s", eid, eaction ? "/" : "", eaction ? eaction : "");
    free(eid);
    free(eaction);
    return p;
}

static int remote_list(int argc, char **argv, const struct remote *r)
{
    static const char *const filters[] = {"status", "district", "department", "q", "limit", "category", "channel"};
    char *query = NULL, *path = NULL;
    int missing = 0, rc = 2;
    json_t *doc = NULL;
    for (size_t i = 0; i < sizeof filters / sizeof filters[0]; i++) {
        char flag[32];
        snprintf(flag, sizeof flag, "--%s", filters[i]);
        const char *v = cli_take_flag(&argc, argv, flag, &missing);
        if (v && httpc_query_add(&query, filters[i], v) != 0)
            goto out;
    }
    if (cli_take_switch(&argc, argv, "--overdue") && httpc_query_add(&query, "overdue", "1") != 0)
        goto out;
    if (missing || no_leftovers(argc, argv) != 0) {
        if (missing)
            fprintf(stderr, "citybrain cases list: a flag is missing its value\n");
        goto out;
    }
    path = malloc(sizeof "/api/v1/cases" + (query ? strlen(query) : 0));
    if (!path)
        goto out;
    sprintf(path, "/api/v1/cases%s", query ? query : "");
    rc = remote_call(r, "GET", path, NULL, &doc);
    if (rc == 0 && doc) {
        const json_t *cases = json_object_get(doc, "cases");
        print_case_table(cases);
        const char *next = json_string_value(json_object_get(doc, "next_cursor"));
        if (next)
            printf("(more: the server has further cases; narrow the filters or raise --limit)\n");
    }
out:
    json_decref(doc);
    free(path);
    free(query);
    return rc;
}

static int remote_show(int argc, char **argv, const struct remote *r)
{
    if (argc != 1 || argv[0][0] == '-') {
        fprintf(stderr, "usage: citybrain cases show ID [--url URL] [--key-file FILE] [--json]\n");
        return 2;
    }
    char *path = case_path(argv[0], NULL);
    json_t *doc = NULL;
    int rc = path ? remote_call(r, "GET", path, NULL, &doc) : 2;
    if (rc == 0 && doc)
        print_case(doc);
    json_decref(doc);
    free(path);
    return rc;
}

/* --NAME VALUE into body[key] as a string; -1 on a missing value. */
static int take_string(int *argc, char **argv, const char *flag, json_t *body, const char *key)
{
    int missing = 0;
    const char *v = cli_take_flag(argc, argv, flag, &missing);
    if (missing) {
        fprintf(stderr, "citybrain cases: %s needs a value\n", flag);
        return -1;
    }
    if (v)
        json_object_set_new(body, key, json_string(v));
    return 0;
}

static int take_number(int *argc, char **argv, const char *flag, json_t *body, const char *key)
{
    int missing = 0;
    const char *v = cli_take_flag(argc, argv, flag, &missing);
    char *end = NULL;
    double d = v ? strtod(v, &end) : 0;
    if (missing || (v && (end == v || *end))) {
        fprintf(stderr, "citybrain cases: %s needs a number\n", flag);
        return -1;
    }
    if (v)
        json_object_set_new(body, key, json_real(d));
    return 0;
}

static int remote_report(int argc, char **argv, const struct remote *r)
{
    json_t *body = json_object(), *reporter = json_object(), *doc = NULL;
    int rc = 2;
    if (!body || !reporter)
        goto out;
    if (take_string(&argc, argv, "--channel", body, "channel") || take_string(&argc, argv, "--category", body, "category") ||
        take_string(&argc, argv, "--description", body, "description") ||
        take_string(&argc, argv, "--address", body, "address") || take_number(&argc, argv, "--lon", body, "lon") ||
        take_number(&argc, argv, "--lat", body, "lat") || take_string(&argc, argv, "--name", reporter, "name") ||
        take_string(&argc, argv, "--phone", reporter, "phone") || no_leftovers(argc, argv))
        goto out;
    if (json_object_size(reporter) > 0)
        json_object_set(body, "reporter", reporter);
    rc = remote_call(r, "POST", "/api/v1/cases", body, &doc);
    if (rc == 0 && doc)
        print_summary(doc);
out:
    json_decref(doc);
    json_decref(reporter);
    json_decref(body);
    return rc;
}

static int remote_act(int argc, char **argv, const struct remote *r)
{
    json_t *body = json_object(), *doc = NULL;
    char *path = NULL;
    int rc = 2, missing = 0;
    if (!body)
        goto out;
    if (take_string(&argc, argv, "--note", body, "note") || take_string(&argc, argv, "--reason", body, "reason") ||
        take_string(&argc, argv, "--department", body, "department") ||
        take_string(&argc, argv, "--rating", body, "rating") || take_number(&argc, argv, "--hours", body, "hours"))
        goto out;
    const char *passed = cli_take_flag(&argc, argv, "--passed", &missing);
    if (missing || (passed && strcmp(passed, "yes") && strcmp(passed, "no"))) {
        fprintf(stderr, "citybrain cases act: --passed is yes or no\n");
        goto out;
    }
    if (passed)
        json_object_set_new(body, "passed", json_boolean(strcmp(passed, "yes") == 0));
    if (argc != 2 || argv[0][0] == '-' || argv[1][0] == '-') {
        fprintf(stderr, "usage: citybrain cases act ID ACTION [flags] (see citybrain cases --help)\n");
        goto out;
    }
    if (!(path = case_path(argv[0], argv[1])))
        goto out;
    rc = remote_call(r, "POST", path, body, &doc);
    if (rc == 0 && doc)
        print_summary(doc);
out:
    free(path);
    json_decref(doc);
    json_decref(body);
    return rc;
}

int cmd_cases(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*run)(int argc, char **argv, const struct remote *r);
    } subs[] = {{"list", remote_list}, {"show", remote_show}, {"report", remote_report}, {"act", remote_act}};
    if (argc >= 1 && strcmp(argv[0], "workflow") == 0 && !cli_has_help(argc, argv)) {
        print_workflow(stdout);
        return 0;
    }
    if (argc < 1 || cli_has_help(argc, argv)) {
        FILE *out = cli_has_help(argc, argv) ? stdout : stderr;
        cases_usage(out);
        return out == stdout ? 0 : 2;
    }
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++) {
        if (strcmp(argv[0], subs[i].name) != 0)
            continue;
        int n = argc - 1;
        struct remote r;
        if (remote_flags(&n, argv + 1, &r) != 0) {
            free(r.key);
            return 2;
        }
        if (httpc_init() != 0) {
            free(r.key);
            fprintf(stderr, "citybrain cases: libcurl failed to start\n");
            return 2;
        }
        int rc = subs[i].run(n, argv + 1, &r);
        httpc_cleanup();
        free(r.key);
        return rc;
    }
    fprintf(stderr, "citybrain cases: unknown subcommand '%s'\n\n", argv[0]);
    cases_usage(stderr);
    return 2;
}
