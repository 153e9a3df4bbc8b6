#!/bin/sh
# io.on('connection', function(socket){ socket.join('some room'); });
# Inside a handler, sioctl acts on the handler's socket ($SIO_SOCKET).
exec sioctl join 'some room'
