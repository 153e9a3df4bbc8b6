#!/bin/sh
# socket.on('say to someone', function(id, msg){
#   socket.broadcast.to(id).emit('my message', msg);
# });
# The event is JSON on stdin: {"type":"event","event":"say to someone","args":[id, msg],...}
set -e
event=$(cat)
here=$(dirname "$0")
id=$(printf '%s' "$event" | sh "$here/../jget" -r args.0)
msg=$(printf '%s' "$event" | sh "$here/../jget" args.1) || msg=null
# msg is JSON text (sioctl parses JSON arguments), so any value goes through as is.
exec sioctl emit --broadcast --to "$id" -- 'my message' "$msg"
