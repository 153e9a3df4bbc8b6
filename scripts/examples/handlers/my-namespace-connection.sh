#!/bin/sh
# nsp.on('connection', function(socket){ console.log('someone connected'); });
# nsp.emit('hi', 'everyone!');
echo "someone connected: $SIO_SOCKET"   # stdout of a handler is logged at debug level
# --all: the whole namespace (inside a handler, sioctl acts on the handler's
# socket unless told otherwise)
exec sioctl emit --nsp /my-namespace --all hi 'everyone!'
