/* notify: the wake-up channel.  stated runs the hub on a Unix
 * SOCK_SEQPACKET socket, DIR/notify.sock.  Any process that commits to the
 * store publishes a 16-byte message after the commit; the hub forwards it to
 * every connected process.  A message only says "look at the store again":
 * readers never trust its content for correctness, so the hub may coalesce or
 * drop messages for a subscriber whose socket buffer is full (that subscriber
 * has unread wake-ups already).
 *
 * A reader process starts one subscriber (notify_sub): a thread that holds the
 * hub connection and bumps a generation counter under a condition variable,
 * so any number of waiting threads wake at once.  Waiters never hold a store
 * transaction while waiting.
 *
 * A message may say what its commits did not touch (NOTIFY_NO_INBOX), and a
 * subscriber may say it reads only the inbox (NOTIFY_SUB_INBOX: stated's
 * dispatcher); the hub then does not wake it for commits that appended
 * nothing there (a plugin's answer, a delivery).  A message without the
 * flag (an older or one-shot publisher) wakes everyone. */
#ifndef SIO_NOTIFY_H
#define SIO_NOTIFY_H

#include <stdint.h>

#define NOTIFY_SOCK "notify.sock"

/* Publishing flags. */
#define NOTIFY_NO_INBOX 1u  /* the commits appended nothing to the inbox */
#define NOTIFY_OWN 2u       /* not sent: the publisher's own eventfd is not written
                             * (notify_sub_publish_as) */
/* Subscriber interests (notify_sub_start_for). */
#define NOTIFY_SUB_ALL 0u
#define NOTIFY_SUB_INBOX 1u /* wake only for commits that may have appended to the inbox */

/* ---- hub (stated) ------------------------------------------------------ */
typedef struct notify_hub notify_hub;
/* Binds DIR/notify.sock (replacing a stale one) and starts the hub thread. */
int notify_hub_start(const char *dir, notify_hub **out);
void notify_hub_stop(notify_hub *h);
/* Number of connected processes (for logs). */
int notify_hub_peers(notify_hub *h);

/* ---- publishing --------------------------------------------------------- */
/* One-shot: connects to the hub in dir, sends, closes.  -ECONNREFUSED /
 * -ENOENT when stated is not running. */
int notify_send(const char *dir, uint64_t seq);
/* 0 when a hub answers in dir, else -errno. */
int notify_probe(const char *dir);

/* ---- subscribing -------------------------------------------------------- */
typedef struct notify_sub notify_sub;
/* Starts the subscriber thread (it reconnects by itself when stated restarts,
 * and bumps the generation when it does, since messages may have been lost). */
int notify_sub_start(const char *dir, notify_sub **out);
/* The same with an interest (NOTIFY_SUB_*), told to the hub at each connect. */
int notify_sub_start_for(const char *dir, unsigned interest, notify_sub **out);
void notify_sub_stop(notify_sub *s);
/* Publishes through the subscriber's connection and wakes local waiters at
 * once.  Never fails: a lost message only delays waiters to their deadline. */
void notify_sub_publish(notify_sub *s, uint64_t seq);
/* The same with flags: NOTIFY_NO_INBOX (sent to the hub), NOTIFY_OWN for an
 * event loop that delivers its own commits itself, in the turn that made
 * them: the generation moves (threads waiting in notify_sub_wait wake) but
 * the eventfd is not written, so the loop does not wake a second time for
 * its own news.  The hub does not send a lone publisher's message back to
 * it either (see hub_main). */
void notify_sub_publish_as(notify_sub *s, uint64_t seq, unsigned flags);
/* The current generation. */
uint64_t notify_sub_gen(notify_sub *s);
/* Waits until the generation differs from seen or until deadline_ms (wall
 * clock, util_now_ms); returns the current generation. */
uint64_t notify_sub_wait(notify_sub *s, uint64_t seen, int64_t deadline_ms);
/* 1 while connected to the hub. */
int notify_sub_connected(notify_sub *s);
/* A file descriptor that becomes readable on every wake (an eventfd), for
 * event loops; call notify_sub_ack after it fires.  */
int notify_sub_eventfd(notify_sub *s);
void notify_sub_ack(notify_sub *s);

#endif
