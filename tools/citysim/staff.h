/* staff — the people citysim plays in the case workflow and the keys they
 * act with, each of its own role: the operations centre (operator), the 12345
 * hotline (hotline), one grid worker per district (grid; the key's area is
 * the district), the staff of every department citybrain knows (dept;
 * GET /api/v1/departments) and the citizen app through which citizens
 * report over Open311 (citizen).
 *
 * The keys are made with citysim's own key, which must be an admin's,
 * through POST /api/v1/keys. Given a directory they are kept there, one file
 * per key (operator.key, hotline.key, citizen.key, grid-<district>.key,
 * dept-<code>.key, mode 600), and the next run reuses those that still work
 * (GET /api/v1/whoami, for the citizen app GET /api/v1/nearby), so restarts
 * do not pile up keys. Without a directory each
 * run makes new ones. */
#ifndef CITYSIM_STAFF_H
#define CITYSIM_STAFF_H

#include <stddef.h>

#include "api.h"
#include "city.h"

#define STAFF_CODE_MAX 33

struct department {
    char code[STAFF_CODE_MAX];
    char name[128];
    char parent[STAFF_CODE_MAX];   /* "" when none */
    char district[STAFF_CODE_MAX]; /* "" for city-wide departments */
    char *key;                     /* owned */
};

typedef struct {
    char *operator_key; /* owned */
    char *hotline_key;  /* owned */
    char *citizen_key;  /* owned; the citizen app's key, for Open311 only */
    char **grid_keys;   /* [district index of the city]; owned, each owned */
    size_t ngrid;
    struct department *dept; /* owned */
    size_t ndept;
} staff;

/* Loads the departments and gets every key (from dir, or new; dir may be
 * NULL). 0, or -1 with err (citybrain unreachable, the key is not an
 * admin's, no cases module). Free with staff_free, also after a failure. */
int staff_load(staff *s, api *a, const city *ct, const char *dir, char *err, size_t errlen);
void staff_free(staff *s);
/* The department with this code, or NULL. */
const struct department *staff_department(const staff *s, const char *code);

#endif
