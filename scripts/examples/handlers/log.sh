#!/bin/sh
# Logs one line about the event to stdout (shown by stated at debug level).
echo "$*: socket $SIO_SOCKET of $SIO_NSP"
