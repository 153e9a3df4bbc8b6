/* plugin: in-process handlers.  A [namespace] may name a shared object
 * (`plugin = FILE.so`) that defines sio_plugin_event() (see sioh.h).  The
 * processes that receive client packets (sio-front, sio-fcgi) load them at
 * start with plugin_load, which registers the server's event hook
 * (server.h): the Socket.IO layer then hands the namespace's events and
 * acks to the plugin inside the transaction of the packet, and what it
 * answers (sioh actions, server/actions.h) is applied in that same
 * transaction.  Events it declines, and every process that loaded no
 * plugin, use the inbox. */
#ifndef SIO_PLUGIN_H
#define SIO_PLUGIN_H

#include <stddef.h>

#include "server/server.h"

/* Loads the plugin of every namespace of srv->cfg and registers the hook
 * when there is one.  A relative FILE is taken from the folder of the
 * running program (bin/).  0, or <0 with a sentence for the user in err. */
int plugin_load(server *srv, char *err, size_t errlen);
/* Unregisters the hook and frees what plugin_load allocated (the shared
 * objects stay loaded).  Safe when nothing was loaded. */
void plugin_unload(server *srv);

#endif
