/* phrasebook — what the city's people say, as data: problems per case
 * category (GB/T 47678.5 codes of city/categories.json) with the kind of
 * place they happen at, Jiaozuo's roads, landmarks and residential
 * compounds per district, people's names, and the notes departments and the
 * operations centre write (handling, 回退 reasons, failed checks, 延期).
 *
 * A report reads like a real one: "解放路与民主路交叉口东南角上水井盖缺失，
 * 行人易跌落" at "解放区解放路与民主路交叉口东南角". Names and phones are
 * made up (138xxxxxxxx). Pure functions of the rng; no I/O. */
#ifndef CITYSIM_PHRASEBOOK_H
#define CITYSIM_PHRASEBOOK_H

#include <stddef.h>

#include "city.h"
#include "rng.h"

struct complaint {
    const char *category; /* static: "06003" */
    char description[512];
    char address[320];
};

/* A problem somewhere in district d (address and description name the same
 * place). */
void phrasebook_complaint(const struct district *d, rng *r, struct complaint *out);
/* A made-up person: "王秀英", "13812345678". */
void phrasebook_person(rng *r, char *name, size_t namelen, char *phone, size_t phonelen);
/* What the department writes when a case of category is handled (处置反馈);
 * a static string. */
const char *phrasebook_handled(const char *category, rng *r);

enum phrasebook_note {
    NOTE_RETURN,       /* 回退: why it is not this department's */
    NOTE_CHECK_FAILED, /* 核查不通过 → 返工 */
    NOTE_EXTEND,       /* 延期: why more time */
    NOTE_KINDS
};
/* One of the notes of kind; a static string. */
const char *phrasebook_note(enum phrasebook_note kind, rng *r);

#endif
