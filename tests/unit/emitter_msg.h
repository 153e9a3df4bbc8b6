/* emitter_msg.h: one message as the npm @socket.io/redis-emitter 5.x
 * publishes it, for the msgpack and wire codec tests. */
#ifndef UNIT_EMITTER_MSG_H
#define UNIT_EMITTER_MSG_H

/* The Node emitter's emitter.to("room1").emit("hello", "world"). */
static const char emitter_msg[] =
    "\x93\xa7"
    "emitter"
    "\x83\xa4"
    "type"
    "\x02\xa4"
    "data"
    "\x92\xa5"
    "hello"
    "\xa5"
    "world"
    "\xa3"
    "nsp"
    "\xa1/"
    "\x83\xa5"
    "rooms"
    "\x91\xa5"
    "room1"
    "\xa5"
    "flags"
    "\x80\xa6"
    "except"
    "\x90";
#define EMITTER_LEN (sizeof emitter_msg - 1)

#endif
