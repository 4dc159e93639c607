# SPDX-License-Identifier: Apache-2.0
# devcloud: starting and stopping daemons without systemd (setsid + pid files in RUN_DIR),
# and the private RabbitMQ node and MariaDB server. Sourced by deploy/devcloud/devcloud.

# Daemons get a clean environment: no pyenv shims, no OS_* variables of the caller.
CLEAN_ENV=(env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 LC_ALL=C.UTF-8)

# The pid in RUN_DIR/NAME.pid when that process still runs and still leads its own
# process group (a stale pid file whose number was reused by another program is ignored).
daemon_pid() {
    local f=$RUN_DIR/$1.pid pid pgid
    [ -s "$f" ] || return 1
    pid=$(<"$f")
    [ -d "/proc/$pid" ] || return 1
    pgid=$(awk '{ sub(/^.*\) /, ""); print $3 }' "/proc/$pid/stat" 2>/dev/null) || return 1
    [ "$pgid" = "$pid" ] || return 1
    grep -q "^[RSDTI]" <(awk '{ sub(/^.*\) /, ""); print $1 }' "/proc/$pid/stat") || return 1
    echo "$pid"
}

# start_daemon NAME USER [VAR=VALUE...] -- COMMAND...: runs COMMAND as USER in a new session
# (pgid = pid), stdin from /dev/null, stdout and stderr appended to LOG_DIR/NAME.log.
# Does nothing when NAME already runs.
start_daemon() {
    local name=$1 user=$2 envs=() pid
    shift 2
    while [ "$1" != -- ]; do envs+=("$1"); shift; done
    shift
    # A daemon whose command line (user, environment, argv) changed is restarted; one
    # started before signatures existed is adopted as it is. CHECK_ONLY=1: only report.
    local sig sigf=$RUN_DIR/$name.sig
    sig=$(printf '%s\n' "$user" "${envs[@]}" "$@" | sha256sum | cut -c1-16)
    if pid=$(daemon_pid "$name"); then
        if [ ! -e "$sigf" ]; then
            [ "${CHECK_ONLY:-0}" = 1 ] || echo "$sig" >"$sigf"
            return 0
        fi
        [ "$(<"$sigf")" = "$sig" ] && return 0
        [ "${CHECK_ONLY:-0}" = 1 ] && return 1
        log "$name: its command line changed: restarting"
        stop_daemon "$name"
    elif [ "${CHECK_ONLY:-0}" = 1 ]; then
        return 1
    fi
    local home
    home=$(getent passwd "$user" | cut -d: -f6)
    printf '\n==== %s start %s\n' "$(date -u +%FT%TZ)" "$name" >>"$LOG_DIR/$name.log"
    # A non-interactive bash does not make its children group leaders, so setsid(1)
    # calls setsid() in place without forking: $! is the session and group leader.
    setsid "${CLEAN_ENV[@]}" HOME="$home" "${envs[@]}" \
        setpriv --reuid="$user" --regid="$user" --init-groups -- "$@" \
        </dev/null >>"$LOG_DIR/$name.log" 2>&1 9>&- &
    echo $! >"$RUN_DIR/$name.pid"
    echo "$sig" >"$sigf"
    log "started $name (pid $!)"
}

# stop_daemon NAME: TERM to its process group, KILL after 15 s.
stop_daemon() {
    local name=$1 pid i
    if ! pid=$(daemon_pid "$name"); then
        rm -f "$RUN_DIR/$name.pid"
        return 0
    fi
    kill -TERM -- "-$pid" 2>/dev/null || true
    for i in $(seq 1 150); do
        kill -0 -- "-$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 -- "-$pid" 2>/dev/null; then
        log "$name (pgid $pid) ignored TERM for 15 s: KILL"
        kill -KILL -- "-$pid" 2>/dev/null || true
    fi
    rm -f "$RUN_DIR/$name.pid" "$RUN_DIR/$name.sig"
    log "stopped $name"
}

# RSS of a daemon's whole process group, in MiB.
daemon_rss_mib() {
    { cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk -v g="$1" -v pg="$(getconf PAGESIZE)" '
        { sub(/^.*\) /, ""); if ($3 == g) s += $22 * pg }
        END { printf "%d", s / 1048576 }'
}

# ---- RabbitMQ: a private node in STATE_DIR/rabbitmq on 127.0.0.1:5692 ------------------

RMQ_PORT=5692
RMQ_DIST_PORT=25692
RMQ_NODE=devcloud@localhost
RMQ_ENV=(RABBITMQ_NODENAME=$RMQ_NODE RABBITMQ_NODE_PORT=$RMQ_PORT
         RABBITMQ_DIST_PORT=$RMQ_DIST_PORT ERL_EPMD_ADDRESS=127.0.0.1)

rabbit_start() {
    local d=$STATE_DIR/rabbitmq
    install -d -m 750 -o rabbitmq -g rabbitmq "$d" "$d/mnesia"
    # Users and vhost come from a definitions file loaded at boot: the password travels
    # as a salted SHA-256 hash, never on a command line.
    DEVCLOUD_AMQP_PW=$AMQP_PW "$PY" - "$d/definitions.json" <<'EOF'
import base64, hashlib, json, os, sys
pw = os.environ["DEVCLOUD_AMQP_PW"].encode()
salt = os.urandom(4)
h = base64.b64encode(salt + hashlib.sha256(salt + pw).digest()).decode()
d = {"vhosts": [{"name": "devcloud"}],
     "users": [{"name": "devcloud", "password_hash": h, "tags": "administrator",
                "hashing_algorithm": "rabbit_password_hashing_sha256"}],
     "permissions": [{"user": "devcloud", "vhost": "devcloud",
                      "configure": ".*", "write": ".*", "read": ".*"}]}
tmp = sys.argv[1] + ".tmp"
fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
with os.fdopen(fd, "w") as f:
    json.dump(d, f)
os.rename(tmp, sys.argv[1])
EOF
    chown rabbitmq:rabbitmq "$d/definitions.json"
    cat >"$d/rabbitmq.conf" <<EOF
listeners.tcp.default = 127.0.0.1:$RMQ_PORT
loopback_users = none
load_definitions = $d/definitions.json
log.console = true
log.console.level = warning
log.file = false
EOF
    echo '[].' >"$d/enabled_plugins"
    chmod 644 "$d/rabbitmq.conf" "$d/enabled_plugins"
    if daemon_pid rabbitmq >/dev/null; then
        return 0
    fi
    start_daemon rabbitmq rabbitmq "${RMQ_ENV[@]}" \
        RABBITMQ_MNESIA_BASE="$d/mnesia" RABBITMQ_LOG_BASE="$d" \
        RABBITMQ_CONFIG_FILE="$d/rabbitmq" RABBITMQ_ENABLED_PLUGINS_FILE="$d/enabled_plugins" \
        RABBITMQ_PID_FILE="$d/rabbitmq.pid" \
        RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}" \
        -- /usr/lib/rabbitmq/bin/rabbitmq-server
}

rabbitmqctl_own() {
    ( cd /var/lib/rabbitmq && "${CLEAN_ENV[@]}" HOME=/var/lib/rabbitmq "${RMQ_ENV[@]}" \
        setpriv --reuid=rabbitmq --regid=rabbitmq --init-groups -- \
        /usr/lib/rabbitmq/bin/rabbitmqctl -n "$RMQ_NODE" "$@" )
}

rabbit_wait() {
    rabbitmqctl_own await_startup --timeout 120 >>"$LOG_DIR/rabbitmq.log" 2>&1 \
        || die "the private RabbitMQ node did not start: see $LOG_DIR/rabbitmq.log"
}

# ---- MariaDB: a private server, data in STATE_DIR/mysql, 127.0.0.1:13306 ---------------

db_cnf() { echo "$STATE_DIR/etc/my.cnf"; }

db_start() {
    local d=$STATE_DIR/mysql sock=$RUN_DIR/mysql/mysqld.sock
    install -d -m 755 "$STATE_DIR/etc"
    install -d -m 750 -o mysql -g mysql "$d" "$RUN_DIR/mysql"
    cat >"$(db_cnf)" <<EOF
[client]
socket = $sock
port = $DB_PORT
[mysqld]
user = mysql
datadir = $d
socket = $sock
pid-file = $RUN_DIR/mysql/mysqld.pid
bind-address = 127.0.0.1
port = $DB_PORT
skip-name-resolve
max_connections = 1000
innodb_buffer_pool_size = 128M
innodb_flush_log_at_trx_commit = 2
character-set-server = utf8mb4
collation-server = utf8mb4_general_ci
EOF
    chmod 644 "$(db_cnf)"
    if [ ! -d "$d/mysql" ]; then
        log "mariadb: creating the data folder $d"
        mariadb-install-db --defaults-file="$(db_cnf)" --auth-root-authentication-method=socket \
            --skip-test-db >>"$LOG_DIR/mariadb.log" 2>&1 \
            || die "mariadb-install-db failed: see $LOG_DIR/mariadb.log"
    fi
    if ! daemon_pid mariadb >/dev/null; then
        # mariadbd drops to user mysql itself; start it as root.
        printf '\n==== %s start mariadb\n' "$(date -u +%FT%TZ)" >>"$LOG_DIR/mariadb.log"
        setsid "${CLEAN_ENV[@]}" /usr/sbin/mariadbd --defaults-file="$(db_cnf)" \
            </dev/null >>"$LOG_DIR/mariadb.log" 2>&1 9>&- &
        echo $! >"$RUN_DIR/mariadb.pid"
        log "started mariadb (pid $!)"
    fi
    local i
    for i in $(seq 1 300); do
        if mariadb --defaults-file="$(db_cnf)" -uroot -e 'select 1' >/dev/null 2>&1; then
            return 0
        fi
        daemon_pid mariadb >/dev/null || die "mariadb exited: see $LOG_DIR/mariadb.log"
        sleep 0.1
    done
    die "mariadb did not answer within 30 s: see $LOG_DIR/mariadb.log"
}

# Databases and their users; passwords are (re)set every run, through stdin.
db_users() {
    local sql="" u db
    for pair in keystone:keystone glance:glance placement:placement nova:nova_api nova:nova \
                nova:nova_cell0 neutron:neutron cinder:cinder; do
        u=${pair%%:*} db=${pair#*:}
        sql+="CREATE DATABASE IF NOT EXISTS $db;"
        sql+="CREATE USER IF NOT EXISTS '$u'@'127.0.0.1' IDENTIFIED BY '$DB_PW';"
        sql+="ALTER USER '$u'@'127.0.0.1' IDENTIFIED BY '$DB_PW';"
        sql+="GRANT ALL PRIVILEGES ON $db.* TO '$u'@'127.0.0.1';"
    done
    mariadb --defaults-file="$(db_cnf)" -uroot <<<"$sql" >>"$LOG_DIR/mariadb.log" 2>&1 \
        || die "creating the databases failed: see $LOG_DIR/mariadb.log"
}

# ---- AMQP: the private node, or the RabbitMQ given by --amqp / FLUID_AMQP_URL -------------

# Sets TRANSPORT_URL. A given URL without a vhost gets vhost `devcloud`, created through
# the management API (DEVCLOUD_AMQP_MGMT_URL, default http://HOST:15672) or, failing that,
# with $FLUID_RABBITMQCTL (the rabbitmq fixture's wrapper) or this host's rabbitmqctl;
# when neither works, the URL's own vhost is used (with a warning in devcloud.log).
amqp_setup() {
    if [ -z "$AMQP_URL" ]; then
        rabbit_start
        TRANSPORT_URL="rabbit://devcloud:$AMQP_PW@127.0.0.1:$RMQ_PORT/devcloud"
        return 0
    fi
    TRANSPORT_URL=$("${CLEAN_ENV[@]}" DEVCLOUD_AMQP_URL="$AMQP_URL" \
        DEVCLOUD_AMQP_MGMT_URL="${DEVCLOUD_AMQP_MGMT_URL:-}" \
        FLUID_RABBITMQCTL="${FLUID_RABBITMQCTL:-}" "$PY" - 2>>"$LOG_DIR/devcloud.log" <<'PYEOF'
import base64, json, os, subprocess, sys, urllib.parse, urllib.request
u = urllib.parse.urlsplit(os.environ["DEVCLOUD_AMQP_URL"])
if u.scheme not in ("amqp", "rabbit") or not u.hostname:
    sys.exit("devcloud: --amqp wants amqp://USER:PASS@HOST:PORT/VHOST (scheme %r)" % u.scheme)
user = urllib.parse.unquote(u.username or "guest")
pw = urllib.parse.unquote(u.password or "guest")
port = u.port or 5672
vhost = urllib.parse.unquote(u.path[1:]) if u.path else ""
if vhost in ("", "/"):
    vhost = "devcloud"
    mgmt = os.environ.get("DEVCLOUD_AMQP_MGMT_URL") or "http://%s:15672" % u.hostname
    auth = "Basic " + base64.b64encode(("%s:%s" % (user, pw)).encode()).decode()
    try:
        for path, body in (("/api/vhosts/devcloud", {}),
                           ("/api/permissions/devcloud/" + urllib.parse.quote(user, safe=""),
                            {"configure": ".*", "write": ".*", "read": ".*"})):
            rq = urllib.request.Request(mgmt.rstrip("/") + path, method="PUT",
                                        data=json.dumps(body).encode(),
                                        headers={"Authorization": auth,
                                                 "Content-Type": "application/json"})
            urllib.request.urlopen(rq, timeout=10).read()
    except Exception as e:
        ctl = os.environ.get("FLUID_RABBITMQCTL") or "/usr/sbin/rabbitmqctl"
        print("devcloud: management API at %s: %s; trying %s" % (mgmt, e, ctl),
              file=sys.stderr)
        for args in (["add_vhost", "devcloud"],
                     ["set_permissions", "-p", "devcloud", user, ".*", ".*", ".*"]):
            try:
                r = subprocess.run([ctl] + args, capture_output=True, timeout=60)
                bad = r.returncode != 0 and b"already exists" not in r.stderr + r.stdout
            except (OSError, subprocess.TimeoutExpired):
                bad = True
            if bad:
                vhost = urllib.parse.unquote(u.path[1:]) if u.path else "/"
                vhost = vhost or "/"
                print("devcloud: WARNING: cannot create vhost devcloud on %s; using the "
                      "URL's vhost %r" % (u.hostname, vhost), file=sys.stderr)
                break
q = lambda s: urllib.parse.quote(s, safe="")
print("rabbit://%s:%s@%s:%d/%s" % (q(user), q(pw), u.hostname, port, q(vhost)))
PYEOF
    ) || die "cannot use the RabbitMQ given by --amqp (see $LOG_DIR/devcloud.log)"
}
