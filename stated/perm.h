/* perm: who may use the state directory.  stated runs with umask 007 and
 * gives the directory mode 2770 (setgid: what is created in it takes its
 * group) and every file of the store (data.mdb, lock.mdb, stated.lock,
 * notify.sock) mode 0660, owned by the directory's group, or by
 * cfg.state_group when set: the users of that group (a web server's user
 * running the gateway, an application's user running sioctl and handlers)
 * share the stack; others cannot even enter the directory. */
#ifndef SIO_STATED_PERM_H
#define SIO_STATED_PERM_H

#include <stddef.h>

/* Sets the process umask (007).  Call first. */
void perm_umask(void);
/* Applies the group (NULL: keep the directory's) and modes to dir and the
 * store's files in it (those that exist).  0, or -errno with the reason in
 * err. */
int perm_apply(const char *dir, const char *group, char *err, size_t errlen);

#endif
