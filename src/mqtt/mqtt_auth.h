/* mqtt_auth — how device credentials reach Mosquitto (DESIGN.md §6, §9).
 *
 * citybrain keeps only a hash of each device token, so the broker's files are
 * written when the token is known in plain text: at token issue. Three files
 * live in DATA_DIR/mosquitto/:
 *   devices   ours: one line "<entity id> <mqtt user> <hash>" per device,
 *             the record the other two are rendered from;
 *   passwd    Mosquitto password_file: "<user>:$7$<iterations>$<salt>$<hash>"
 *             (PBKDF2-HMAC-SHA512, base64), citybrain's service account first,
 *             lines of users we did not make kept as they were;
 *   acl       Mosquitto acl_file, generated whole: the service account reads
 *             city/+/telemetry, each device writes city/<its id>/telemetry only.
 * Each is replaced atomically (temp file, fsync, rename) under an flock, and
 * the broker is sent SIGHUP (mqtt_broker_pid_file) to reload them.
 *
 * The MQTT user of a device is the public part of its token, before the last
 * '_' ("cbd_0000002a" for "cbd_0000002a_9f…"), not its entity id: Mosquitto's
 * password file splits lines at ':', which urn:ngsi-ld:… ids are full of.
 *
 * Threads: any thread; an edit holds an exclusive flock on
 * DATA_DIR/mosquitto/.lock from begin to commit/abort, so edits from several
 * threads or processes queue up. Cost: an edit reads and rewrites all three
 * files, O(devices) — batch many changes into one edit. */
#ifndef CB_MQTT_AUTH_H
#define CB_MQTT_AUTH_H

#include "core/config.h"
#include "core/err.h"

#include <stddef.h>

#define MQTT_AUTH_PBKDF2_ITERATIONS 101 /* mosquitto_passwd's default; see mqtt_auth.c */
#define MQTT_AUTH_USER_MAX 64
#define MQTT_AUTH_PASSWORD_MAX 128

typedef struct mqtt_auth mqtt_auth;

/* Starts an edit: takes the lock, loads DATA_DIR/mosquitto/devices. *out is
 * freed by mqtt_auth_commit or mqtt_auth_abort. cfg is borrowed until then. */
int mqtt_auth_begin(const struct cb_config *cfg, mqtt_auth **out, cb_error *err);
/* Gives entity_id the device token (replacing its old one). The token must be
 * "<user>_<secret>" with a user of 1..MQTT_AUTH_USER_MAX-1 characters. */
int mqtt_auth_put(mqtt_auth *a, const char *entity_id, const char *token, cb_error *err);
/* Takes entity_id's credentials away; not an error if it has none. */
int mqtt_auth_drop(mqtt_auth *a, const char *entity_id, cb_error *err);
/* Writes the three files, signals the broker, releases the lock and frees a
 * (also on error: nothing is half-written, the old files stay). */
int mqtt_auth_commit(mqtt_auth *a, cb_error *err);
void mqtt_auth_abort(mqtt_auth *a); /* NULL-safe */

/* One-change edits, for the entity API's token issue, revoke and delete. */
int mqtt_auth_set(const struct cb_config *cfg, const char *entity_id, const char *token,
                  cb_error *err);
int mqtt_auth_remove(const struct cb_config *cfg, const char *entity_id, cb_error *err);

/* The service account's password (generated into DATA_DIR/mosquitto/
 * citybrain.password on first use unless mqtt_password_file names one), with
 * passwd and acl rewritten so the account is in them. For mqtt_start. */
int mqtt_auth_service(const struct cb_config *cfg, char password[MQTT_AUTH_PASSWORD_MAX],
                      cb_error *err);

/* The password_file entry of password with the given 12-byte salt:
 * "$7$<iterations>$<base64 salt>$<base64 PBKDF2-HMAC-SHA512>". Pure; for the
 * files above and their tests. */
void mqtt_auth_hash(const char *password, const unsigned char salt[12], char *out, size_t outlen);

#endif
