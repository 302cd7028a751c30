/* fuzz_mqtt_topic — the telemetry topic parser must accept or refuse any
 * bytes without crashing, and what it accepts must be an entity id that fits
 * a topic and the broker's files: 1..MQTT_TOPIC_ID_MAX of [A-Za-z0-9:_.-],
 * which put back between "city/" and "/telemetry" gives the topic again. */
#include "mqtt/mqtt.h"

#include <assert.h>
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char id[MQTT_TOPIC_ID_MAX + 1];
    memset(id, 'x', sizeof id);
    if (mqtt_topic_entity((const char *)data, size, id) != 0)
        return 0;
    size_t n = strlen(id);
    assert(n >= 1 && n <= MQTT_TOPIC_ID_MAX);
    for (size_t i = 0; i < n; i++)
        assert(isalnum((unsigned char)id[i]) || strchr(":_.-", id[i]));
    char topic[MQTT_TOPIC_ID_MAX + 32];
    int len = snprintf(topic, sizeof topic, "city/%s/telemetry", id);
    assert((size_t)len == size && memcmp(topic, data, size) == 0);
    return 0;
}
