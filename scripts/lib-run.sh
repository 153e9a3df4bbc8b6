# shellcheck shell=bash
# lib-run.sh: process management shared by run-embedded, run-lighttpd and
# run-apache (sourced, not run; ME set first).  Before calling in, the
# script sets STATE_DIR, CONFIG, SIO_BIN, WWW_DIR, FRONT_PORT, FRONT_ARGS
# and optionally AS_USER (setpriv options to switch user), RUN_USER and
# RUN_PATH (PATH for stated and sio-front), and defines stop_all (stop
# everything, in order) and watch_extra (its own checks, run at every turn
# of the watch loop and of start-up waits; fail to give up).
#
# Supervision: `supervise NAME PIDVAR START READY WHAT [HINT]` starts a
# process and waits until READY succeeds (start-up checks: if it exits or
# does not come up within 60 s, the script stops everything and exits 1);
# `sup_watch` then restarts it, with the same arguments, each time it dies:
# after SUP_MIN_MS the first time, doubling up to SUP_MAX_MS; the delay
# starts again from SUP_MIN_MS once a process has stayed up SUP_STABLE_MS.
# SUP_TRIES deaths in a row, each less than SUP_QUICK_MS after the start,
# are a crash loop: the script stops everything and exits 1.
# SIGINT, SIGTERM and SIGHUP stop everything (exit 0) at any point, also
# while a restart is pending.

die() { echo "$ME: $*" >&2; exit 1; }

# Defaults by layout.  A checkout: REPO/bin, REPO/var/state, REPO/var/run and
# the client bundle of tests/node_modules.  An install (`make install`: the
# scripts in PREFIX/share/sio/scripts, so REPO is PREFIX/share/sio): PREFIX/bin,
# /var/lib/sio (the service's state directory), STATE/run and share/sio/client.
if [ "${REPO##*/}" = sio ] && [ "$(basename -- "$(dirname -- "$REPO")")" = share ]; then
    DEF_BIN=$(cd "$REPO/../.." && pwd -P)/bin
    DEF_STATE=/var/lib/sio
    DEF_RUN=${SIO_STATE_DIR:-$DEF_STATE}/run
    CLIENT_JS=$REPO/client/socket.io.min.js
else
    DEF_BIN=$REPO/bin
    DEF_STATE=$REPO/var/state
    DEF_RUN=$REPO/var/run
    CLIENT_JS=$REPO/tests/node_modules/socket.io-client/dist/socket.io.min.js
fi

SETPRIV=$(command -v setpriv) || die "setpriv (util-linux) not found"

# secs_ms VAR SECONDS: SECONDS (like 2 or 0.25) in milliseconds into VAR.
secs_ms() {
    [[ $2 =~ ^([0-9]{1,6})(\.([0-9]{1,3}))?$ ]] || return 1
    local frac=${BASH_REMATCH[3]}000
    printf -v "$1" '%d' $((10#${BASH_REMATCH[1]} * 1000 + 10#${frac:0:3}))
}
secs_ms SUP_MIN_MS "${SIO_RESTART_MIN:-0.2}" && [ "$SUP_MIN_MS" -gt 0 ] ||
    die "SIO_RESTART_MIN must be a number of seconds above 0, like 0.2"
secs_ms SUP_MAX_MS "${SIO_RESTART_MAX:-5}" ||
    die "SIO_RESTART_MAX must be a number of seconds, like 5"
[ "$SUP_MAX_MS" -lt "$SUP_MIN_MS" ] && SUP_MAX_MS=$SUP_MIN_MS
SUP_STABLE_MS=30000   # up this long: the next restart waits SUP_MIN_MS again
SUP_QUICK_MS=5000     # a death this soon after the start counts towards a crash loop
SUP_TRIES=5           # quick deaths in a row that make a crash loop

STATUS=0 STOPPING='' TICK_PID=''
stop_all() { :; }      # each script defines its own two
watch_extra() { :; }

alive() {   # alive PID: running and not a zombie
    local st
    [[ ${1:-} =~ ^[0-9]+$ ]] && read -r st 2>/dev/null <"/proc/$1/stat" || return 1
    st=${st##*) }
    st=${st%% *}
    [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

group_alive() {   # group_alive PGID: some live process in that group
    local p
    for p in $(pgrep -g "$1" 2>/dev/null); do alive "$p" && return 0; done
    return 1
}

# stop_group PID GRACE: SIGTERM the process, give it GRACE seconds, then
# SIGTERM its whole process group, and SIGKILL whatever is left a second later.
stop_group() {
    local pid=$1 grace=$2 i
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < grace * 10; i++)); do
        alive "$pid" || break
        sleep 0.1
    done
    kill -TERM -- "-$pid" 2>/dev/null
    for ((i = 0; i < 10; i++)); do
        alive "$pid" || group_alive "$pid" || break
        sleep 0.1
    done
    if alive "$pid" || group_alive "$pid"; then
        echo "$ME: pid $pid (or its process group) ignored SIGTERM, killing it" >&2
        kill -KILL "$pid" 2>/dev/null
        kill -KILL -- "-$pid" 2>/dev/null
    fi
    wait "$pid" 2>/dev/null
    # Orphans of a killed parent linger as zombies until init reaps them.
    for ((i = 0; i < 10; i++)); do
        pgrep -g "$pid" >/dev/null 2>&1 || break
        sleep 0.1
    done
}

# shellcheck disable=SC2120  # called by the traps with a reason
stop() {   # stop [REASON]: stop everything (stop_all) and exit with STATUS
    [ -n "$STOPPING" ] && return
    STOPPING=1
    trap '' INT TERM HUP
    [ -n "${1:-}" ] && echo "$ME: $1, stopping" >&2
    [ -n "$TICK_PID" ] && kill "$TICK_PID" 2>/dev/null
    stop_all
    exit "$STATUS"
}
trap 'stop "got SIGINT"' INT
trap 'stop "got SIGTERM"' TERM
trap 'stop "got SIGHUP"' HUP
fail() { STATUS=1; echo "$ME: $*" >&2; stop; }

# Sleep without delaying signal handling (traps run when `wait` returns).
nap() { sleep "$1" & TICK_PID=$!; wait "$TICK_PID" 2>/dev/null; TICK_PID=; }

now() { local u; read -r u _ </proc/uptime; u=${u/./}; NOW=$((10#$u * 10)); }   # NOW: ms, monotonic
secs() { printf '%d.%d' $(($1 / 1000)) $(($1 % 1000 / 100)); }                  # secs MS: "1.2"

# how STATUS: HOW="status N" or "SIGNAME" (a status of wait).
how() {
    local sig
    HOW="status $1"
    [ "$1" -gt 128 ] && sig=$(kill -l $(($1 - 128)) 2>/dev/null) && HOW=SIG$sig
}

# scan_log FN: FN LINE for each whole line added to $LOG since the last
# call (LOG_POS: bytes read so far; the script sets it first).
scan_log() {
    local LC_ALL=C line   # ${#line} in bytes
    while IFS= read -r line; do
        LOG_POS=$((LOG_POS + ${#line} + 1))
        "$1" "$line"
    done < <(tail -c +"$((LOG_POS + 1))" "$LOG" 2>/dev/null)
}

# --- supervision -------------------------------------------------------------
SUP_NAMES=()
declare -A SUP_PIDVAR SUP_START SUP_READY SUP_WHAT SUP_T0 SUP_DUE SUP_DELAY SUP_FAST

sup_pid() { local v=${SUP_PIDVAR[$1]}; SPID=${!v}; }   # SPID: NAME's pid

# sup_reap NAME: collect NAME's dead process (DEAD: its pid, HOW: how it
# ended) and clear its PIDVAR; first SIGTERM to what is left in its process
# group (a handler of stated, say): until the wait, the zombie keeps the
# pid, and so the group id, from being reused.
sup_reap() {
    sup_pid "$1"
    DEAD=$SPID
    kill -TERM -- "-$DEAD" 2>/dev/null
    wait "$DEAD"
    how $?
    printf -v "${SUP_PIDVAR[$1]}" '%s' ''
}

# sup_spawn NAME: run its START (which sets its PIDVAR) and note the time.
sup_spawn() { now; SUP_T0[$1]=$NOW; "${SUP_START[$1]}"; }

# sup_wait_ready NAME STARTUP: 0 when READY succeeds, 1 when the process
# died (sup_reap done), 2 after 60 s.  At start-up (STARTUP 1) the others
# must stay up, and watch_extra runs too.
sup_wait_ready() {
    local n=$1 i
    for ((i = 0; ; i++)); do
        sup_pid "$n"
        alive "$SPID" || { sup_reap "$n"; return 1; }
        "${SUP_READY[$n]}" && return 0
        [ "$2" = 1 ] && startup_check "$n"
        [ $i -ge 600 ] && return 2
        nap 0.1
    done
}

# startup_check [NAME]: during start-up, any death stops everything: fail
# unless every supervised process (but NAME) is alive; then watch_extra.
startup_check() {
    local o
    for o in "${SUP_NAMES[@]}"; do
        sup_pid "$o"
        [ "$o" = "${1:-}" ] || alive "$SPID" || { sup_reap "$o"; fail "$o exited ($HOW)"; }
    done
    watch_extra
}

# supervise NAME PIDVAR START READY WHAT [HINT]: start NAME (START runs it
# in the background and sets PIDVAR), wait until READY succeeds, and from
# then on restart it whenever it dies (sup_watch).  WHAT: what READY waits
# for ("listen on port 3000"); HINT: added to a start-up failure.
supervise() {
    local n=$1
    SUP_NAMES+=("$n")
    SUP_PIDVAR[$n]=$2 SUP_START[$n]=$3 SUP_READY[$n]=$4 SUP_WHAT[$n]=$5
    SUP_DUE[$n]='' SUP_DELAY[$n]=0 SUP_FAST[$n]=0
    sup_spawn "$n"
    sup_wait_ready "$n" 1
    case $? in
        1) fail "$n exited during startup ($HOW${6:+; $6})" ;;
        2) fail "$n did not $5 within 60 s" ;;
    esac
}

# sup_count NAME UP_MS: count a death after UP_MS of life; fails when that
# makes a crash loop.  Sets SUP_DELAY[NAME], the wait before the next start.
sup_count() {
    local n=$1 up=$2 d
    [ "$up" -ge "$SUP_STABLE_MS" ] && SUP_DELAY[$n]=0
    if [ "$up" -lt "$SUP_QUICK_MS" ]; then SUP_FAST[$n]=$((SUP_FAST[$n] + 1)); else SUP_FAST[$n]=0; fi
    d=$((SUP_DELAY[$n] * 2))
    [ "$d" -lt "$SUP_MIN_MS" ] && d=$SUP_MIN_MS
    [ "$d" -gt "$SUP_MAX_MS" ] && d=$SUP_MAX_MS
    SUP_DELAY[$n]=$d
    [ "${SUP_FAST[$n]}" -lt "$SUP_TRIES" ]
}

# sup_died NAME PID: PID, NAME's process, is gone and reaped (HOW says how):
# log it and schedule the restart, or give up on a crash loop.
sup_died() {
    local n=$1 pid=$2 up
    now
    up=$((NOW - SUP_T0[$n]))
    sup_count "$n" "$up" ||
        fail "$n (pid $pid) died ($HOW) $(secs "$up") s after its start, the $SUP_TRIES""th time in a row within $((SUP_QUICK_MS / 1000)) s: giving up (a crash loop; its output above should say why)"
    SUP_DUE[$n]=$((NOW + SUP_DELAY[$n]))
    echo "$ME: $n (pid $pid) died ($HOW) $(secs "$up") s after its start; restarting it in $(secs "${SUP_DELAY[$n]}") s" >&2
}

# sup_restart NAME: start it again; dying or timing out before READY counts
# as a death (and schedules the next try).
sup_restart() {
    local n=$1
    SUP_DUE[$n]=''
    sup_spawn "$n"
    sup_wait_ready "$n" 0
    case $? in
        0) sup_pid "$n"; echo "$ME: $n restarted (pid $SPID)" >&2 ;;
        1) sup_died "$n" "$DEAD" ;;
        2) sup_pid "$n"
           echo "$ME: $n (pid $SPID) did not ${SUP_WHAT[$n]} within 60 s, stopping it" >&2
           stop_group "$SPID" 5
           printf -v "${SUP_PIDVAR[$n]}" '%s' ''
           HOW="did not ${SUP_WHAT[$n]} in time"
           sup_died "$n" "$SPID" ;;
    esac
}

# sup_watch: the main loop, never returns: watch_extra, then restart what
# died or is due; naps 0.5 s at most, less when a restart is due sooner.
sup_watch() {
    local n wake
    while :; do
        watch_extra
        for n in "${SUP_NAMES[@]}"; do
            if [ -z "${SUP_DUE[$n]}" ]; then
                sup_pid "$n"
                alive "$SPID" || { sup_reap "$n"; sup_died "$n" "$DEAD"; }
            else
                now
                [ "$NOW" -ge "${SUP_DUE[$n]}" ] && sup_restart "$n"
            fi
        done
        now
        wake=$((NOW + 500))
        for n in "${SUP_NAMES[@]}"; do
            [ -n "${SUP_DUE[$n]}" ] && [ "${SUP_DUE[$n]}" -lt "$wake" ] && wake=${SUP_DUE[$n]}
        done
        [ "$wake" -gt "$NOW" ] && nap "$(printf '%d.%03d' $(((wake - NOW) / 1000)) $(((wake - NOW) % 1000)))"
    done
}

# port_free PORT: nothing answers a connect on 127.0.0.1:PORT.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# owns_listener PID PORT: PID itself holds a socket listening on TCP PORT
# (state 0A in /proc/net/tcp*, matched by inode to PID's descriptors); a
# connect alone would also succeed on another program's listener.
owns_listener() {
    local hex ino fd l
    local -A want=()
    printf -v hex ':%04X' "$2"
    for ino in $(awk -v p="$hex" '$4 == "0A" && substr($2, length($2) - 4) == p { print $10 }' \
        /proc/net/tcp /proc/net/tcp6 2>/dev/null); do want[$ino]=1; done
    for fd in /proc/"$1"/fd/*; do
        l=$(readlink "$fd" 2>/dev/null) || continue
        [[ $l =~ ^socket:\[([0-9]+)\]$ ]] && [ -n "${want[${BASH_REMATCH[1]}]:-}" ] && return 0
    done
    return 1
}

# --- stated and sio-front --------------------------------------------------------
# Each in its own session and process group (a Ctrl-C on the terminal
# reaches only this script, which then stops everything in order), with a
# parent-death signal (they go even if this script is killed with SIGKILL).
STATED_PID='' FRONT_PID='' SOCK_ID=''

# The notify socket's inode and change time (a new socket can get the
# inode of the old one, just unlinked).
sock_id() { stat -c '%i %.9Z' "$STATE_DIR/notify.sock" 2>/dev/null; }
start_stated() {
    SOCK_ID=$(sock_id)
    setsid "$SETPRIV" ${AS_USER[@]+"${AS_USER[@]}"} --pdeathsig TERM -- env PATH="${RUN_PATH:-$PATH}" \
        "$SIO_BIN/stated" --state "$STATE_DIR" ${CONFIG:+--config "$CONFIG"} </dev/null &
    STATED_PID=$!
    echo "$ME: stated pid $STATED_PID${RUN_USER:+ as $RUN_USER}, state dir $STATE_DIR (logs on this terminal)"
}
# Up once it has made its notify socket (a new one: stated replaces it).
stated_ready() { [ -S "$STATE_DIR/notify.sock" ] && [ "$(sock_id)" != "$SOCK_ID" ]; }

start_front() {
    setsid "$SETPRIV" ${AS_USER[@]+"${AS_USER[@]}"} --pdeathsig TERM -- env PATH="${RUN_PATH:-$PATH}" \
        "$SIO_BIN/sio-front" --port "$FRONT_PORT" --host 127.0.0.1 --www "$WWW_DIR" \
        --state "$STATE_DIR" ${CONFIG:+--config "$CONFIG"} ${FRONT_ARGS[@]+"${FRONT_ARGS[@]}"} </dev/null &
    FRONT_PID=$!
    echo "$ME: sio-front pid $FRONT_PID${RUN_USER:+ as $RUN_USER} on 127.0.0.1:$FRONT_PORT"
}
# Up once it listens itself (not merely: something answers on the port).
front_ready() { owns_listener "$FRONT_PID" "$FRONT_PORT"; }
