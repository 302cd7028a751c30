/* rules_int — what the files of src/rules/ share; never included from
 * another folder. rule.c compiles definitions (the kind table), eval.c keeps
 * the index and the per-(rule, entity) state and evaluates readings,
 * alarm.c persists alarm changes on the rules thread and answers the alarm
 * API, rules.c opens the module and does CRUD. */
#ifndef CB_RULES_INT_H
#define CB_RULES_INT_H

#include "rules/rules.h"

#include "geo/region_store.h"
#include "state/dict.h"
#include "store/db.h"

#include <geos_c.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

enum rule_kind { RULE_THRESHOLD, RULE_RATE, RULE_NODATA, RULE_GEOFENCE, RULE_REGION_COUNT, RULE_KIND_COUNT };
enum rule_op { OP_GT, OP_GE, OP_LT, OP_LE, OP_EQ, OP_NE, OP_COUNT };
enum rule_severity { SEV_CRITICAL, SEV_MAJOR, SEV_MINOR, SEV_WARNING, SEV_COUNT };

#define RULES_WINDOW_MAX 32   /* samples a rate rule keeps per entity (a monotonic deque) */
#define RULES_KEY_FREE UINT32_MAX
#define RULES_ATTR_ANY 0x10000u /* index key bit: a rule on any attribute (nodata without attr) */
/* The index key of (entity type, attr): type DICT_NONE is "any type"; attr 0
 * is a location reading; attr | RULES_ATTR_ANY is "any attribute". */
#define RULES_INDEX_KEY(type, attr) ((((uint64_t)(type) << 20) | (uint64_t)(attr)) + 1)

struct sample {
    int64_t ts;
    double v;
};

struct member {        /* region_count: an entity whose condition held at ts */
    uint32_t entity;
    int64_t ts;
};

/* The state of one (rule, key): key is the entity number, or for
 * region_count the region index of the group level. */
struct rstate {
    uint32_t key;       /* RULES_KEY_FREE: empty slot */
    uint8_t raised;
    uint8_t holding;    /* threshold: the condition holds since since_ts */
    uint8_t nwin, headwin; /* rate: deque of nwin samples from headwin (ring) */
    uint16_t nmembers, capmembers;
    int64_t newest_ts;  /* newest reading seen; older ones are ignored */
    int64_t since_ts;
    int64_t clear_ts;   /* last clear, for dedup_s; INT64_MIN: never */
    struct sample *win; /* rate: RULES_WINDOW_MAX samples, malloc'd on first use */
    struct member *members; /* region_count, malloc'd */
};

/* Open addressing, linear probing, load <= 1/2. Cost: find/insert O(1)
 * expected; the table only grows (a rule's states live as long as it). */
struct state_map {
    struct rstate *slots;
    uint32_t cap, n;
};

struct rule {
    char id[RULE_ID_MAX];
    enum rule_kind kind;
    json_t *def;            /* the normalised definition; owned */
    const char *name, *category; /* point into def */
    char attr_name[DICT_NAME_MAX + 1], type_name[DICT_NAME_MAX + 1];
    char open_case[16];     /* "" unless the rule opens cases */
    uint16_t type, attr;    /* dict ids; DICT_NONE = any type / no attr */
    uint32_t district, grid; /* REGION_INDEX_NONE = anywhere */
    char **entities;        /* sorted ids; NULL = every entity of the scope */
    size_t nentities;
    enum rule_severity severity;
    int enabled;
    int64_t dedup_ms;
    /* parameters by kind */
    enum rule_op op;
    double value, clear;
    int has_clear;
    int64_t for_ms, window_ms, nodata_ms;
    double change_pct;
    GEOSGeometry *poly;
    const GEOSPreparedGeometry *prep;
    int on_exit;
    long long count;
    enum region_level group;
    struct state_map states;
};

struct rule_kind_def {
    const char *name;
    const char *params;     /* the members this kind takes besides the common ones, space-separated */
    int attr;               /* 1: attr required, 0: optional, -1: not used */
    int (*parse)(rules *R, struct rule *ru, const json_t *def, cb_error *err);
    void (*eval)(rules *R, struct rule *ru, const struct batch_item *it, const struct state_entity *e);
};
extern const struct rule_kind_def rules__kinds[RULE_KIND_COUNT];
extern const char *const rules__severity_names[SEV_COUNT];
extern const char *const rules__op_names[OP_COUNT];

struct index_entry {
    uint64_t key;           /* rules__index_key(type, attr); 0 = empty */
    struct rule **v;
    size_t n, cap;
};

struct maintenance {
    char id[24];
    char entity[ENTITY_ID_MAX];
    uint32_t district, grid;   /* REGION_INDEX_NONE = not this kind of scope */
    char rule[RULE_ID_MAX];    /* "" = every rule */
    int64_t from_ms, to_ms;
};

/* An alarm change queued by the evaluator for the rules thread. */
enum change_op { CHANGE_RAISE, CHANGE_CLEAR };
struct change {
    enum change_op op;
    char rule[RULE_ID_MAX];
    char key[ENTITY_ID_MAX];   /* the alarm's entity: an entity id or a region code */
    json_t *alarm;             /* RAISE: the ALARM's fields; owned */
    char open_case[16];
    int64_t ts;                /* reading time of the transition */
    double value;              /* CLEAR: the value that cleared it (NAN: none) */
    char note[256];            /* CLEAR: why */
    struct change *next;
};

/* A change the rules thread has decided (and published) but not stored. */
#define PEND_MAX 1024
struct pending {
    struct change *c;          /* owned */
    long long no;              /* its alarm: > 0; 0 nothing to do (dedup, no active alarm); -1 failed */
    long long active;          /* the active alarm of (rule, key) after it: 0 none, -1 unknown */
    json_t *js;                /* the published ALARM; owned */
};

struct rules_stats {
    atomic_ullong raised, cleared, suppressed, out_of_order, persisted, failed;
};

struct rules {
    const struct cb_config *cfg;
    entities *ents;
    state *st;
    dict *names;
    region_store *regions;
    events *ev;

    /* The evaluator's world, guarded by lock (taken after the state's lock). */
    pthread_mutex_t lock;
    struct rule **all;
    size_t n, cap;
    struct index_entry *index; /* open addressing, power-of-two cap; by (type, attr), or by
                                * (entity, attr) for rules that list their entities */
    size_t index_cap;
    struct rule **nodata;      /* the enabled nodata rules (also in the index, to clear) */
    size_t nnodata;
    struct rule **counting;    /* the enabled region_count rules (windows expire on ticks) */
    size_t ncounting;
    struct maintenance *maint;
    size_t nmaint;
    GEOSContextHandle_t geos;
    uint64_t evaluations;      /* readings × rules evaluated */
    size_t entity_scoped;      /* enabled rules indexed by their entities */
    atomic_size_t indexed;     /* enabled rules in the index: 0 lets a reading skip the lock */

    /* The queue to the rules thread, guarded by qlock. */
    pthread_mutex_t qlock;
    pthread_cond_t qwake, qdone;
    struct change *head, *tail;
    uint64_t queued, done;
    int stopping;
    pthread_t thread;
    int started;
    rules_case_fn case_fn;     /* guarded by qlock */
    void *case_ctx;

    db *tdb;                   /* the rules thread's connection */
    /* The rules thread's own: alarm changes published but not stored yet
     * (alarm.c), the next alarm number, the numbers reserved in SQLite. */
    struct pending pend[PEND_MAX];
    size_t npend;
    int try_only;              /* the busy handler gives up at once */
    long long next_no, reserved_to;
    db *adb;                   /* the API's connection, guarded by alock */
    pthread_mutex_t change_lock; /* serializes the API's rule changes (SQLite, then memory);
                                  * never taken by the writer thread; before the state's lock */
    pthread_mutex_t alock;
    int64_t last_tick_ms;
    struct rules_stats stats;
};

/* rule.c */
/* Compiles def (validated; errors name the field) into *out (caller frees
 * with rules__rule_free). id NULL: def's own or a new one. */
int rules__rule_compile(rules *R, const json_t *def, const char *id, struct rule **out, cb_error *err);
void rules__rule_free(rules *R, struct rule *ru);
const char *rules__attr_label(const char *attr, const char **unit);

/* eval.c — callers hold R->lock */
void rules__eval_threshold(rules *R, struct rule *ru, const struct batch_item *it, const struct state_entity *e);
void rules__eval_rate(rules *R, struct rule *ru, const struct batch_item *it, const struct state_entity *e);
void rules__eval_nodata(rules *R, struct rule *ru, const struct batch_item *it, const struct state_entity *e);
void rules__eval_geofence(rules *R, struct rule *ru, const struct batch_item *it, const struct state_entity *e);
void rules__eval_region_count(rules *R, struct rule *ru, const struct batch_item *it, const struct state_entity *e);
int rules__index_rebuild(rules *R);
struct rstate *rules__state(struct rule *ru, uint32_t key, int create);
void rules__state_map_free(struct state_map *m);
void rules__raise(rules *R, struct rule *ru, struct rstate *s, const struct state_entity *e, const char *key,
                  int64_t ts, double value, const char *message, json_t *data);
void rules__clear(rules *R, struct rule *ru, struct rstate *s, const char *key, int64_t ts, double value,
                  const char *note);
void rules__tick_locked(rules *R, int64_t now_ms);
struct rule *rules__find(rules *R, const char *id, size_t *pos);
int rules__op_test(enum rule_op op, double v, double ref);
int rules__region_key(rules *R, const struct rule *ru, const char *code, uint32_t *key);

/* alarm.c */
void rules__enqueue(rules *R, struct change *c);
int rules__thread_start(rules *R, cb_error *err);
void rules__thread_stop(rules *R);
/* Seeding from the alarms in SQLite in two steps, so no SQLite work runs
 * under R->lock: read (no lock held; rule NULL = every rule; *out is the
 * caller's to free), then apply (state read lock and R->lock held; only NULL
 * = each row's own rule). */
struct seed_row {
    char rule[RULE_ID_MAX];
    char entity[ENTITY_ID_MAX];
    int active;
    int64_t raised_at, cleared_at;
};
int rules__seed_read(rules *R, const char *rule, struct seed_row **out, size_t *n, cb_error *err);
void rules__seed_apply(rules *R, struct rule *only, const struct seed_row *rows, size_t n);
void rules__alarm_id(long long no, char out[ALARM_ID_MAX]);
int rules__clear_rule_alarms(rules *R, const char *rule, const char *note); /* API connection */

#endif
