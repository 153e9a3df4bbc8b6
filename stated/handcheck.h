/* handcheck: the handler commands of the config are checked when stated
 * starts, not when the first event arrives (a client would only see its
 * ack time out).  Each command runs as `/bin/sh -c CMD` in the config's
 * folder with the dispatcher's PATH (dispatch.h); its program, the first
 * word of CMD (after VAR=value assignments, `exec` or `command`), must be
 * found there as execvp would: a word with a '/' relative to the config's
 * folder, else in PATH, an executable file.  `sh FILE` (bash, dash) needs
 * FILE readable.  Commands whose program the shell decides at run time
 * (expansions, builtins, compound commands) are not judged. */
#ifndef SIO_HANDCHECK_H
#define SIO_HANDCHECK_H

#include <stddef.h>

#include "server/server.h"

/* 0 when every command's program is found; else -ENOENT and err says
 * "config FILE: line N: KEY = CMD: what is wrong". */
int handcheck_config(const server *srv, char *err, size_t errlen);

#endif
