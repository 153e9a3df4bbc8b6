/* sio-example-echo-plugin.so: an in-process handler (a plugin, see sioh.h).
 *
 *   [namespace /]
 *   plugin = sio-example-echo-plugin.so
 *   process = sio-example-echo      # everything the plugin passes on
 *
 * It answers, inside the process that received the event:
 *   "echo" (...) + ack        ack with the same arguments (the bench's echo)
 *   "plugin:where" + ack      ack with ["plugin", <pid of that process>]
 * and passes every other event, and every ack, on to the namespace's other
 * handlers.
 *
 * Build: cc -shared -fPIC -Ishared/handlers -o bin/sio-example-echo-plugin.so \
 *        scripts/examples/echo_plugin.c   (its sioh_* come from the host) */
#include <string.h>
#include <unistd.h>

#include "sioh.h"

int sio_plugin_event(const sioh_event *ev) {
    if (strcmp(ev->type, "event") || !ev->event || ev->ack < 0) return 0;
    if (!strcmp(ev->event, "echo")) return sioh_ack(ev->socket, ev->ack, ev->args) ? -1 : 1;
    if (!strcmp(ev->event, "plugin:where")) {
        cJSON *a = cJSON_CreateArray();
        cJSON_AddItemToArray(a, cJSON_CreateString("plugin"));
        cJSON_AddItemToArray(a, cJSON_CreateNumber((double)getpid()));
        int rc = sioh_ack(ev->socket, ev->ack, a);
        cJSON_Delete(a);
        return rc ? -1 : 1;
    }
    return 0;
}
