# SPDX-License-Identifier: Apache-2.0
# devcloud: `up` (configure, sync databases, start, bootstrap), `stop` and `status`.
# Sourced by deploy/devcloud/devcloud after lib/install.sh, lib/config.sh, lib/daemons.sh.

# Every daemon, in start order: NAME USER CONFIG-FILES-THAT-RESTART-IT
SERVICES_TABLE="
keystone keystone keystone/keystone.conf
glance-api glance glance/glance-api.conf
placement-api placement placement/placement.conf
nova-api nova nova/nova.conf,nova/nova-api.conf
nova-conductor nova nova/nova.conf
nova-scheduler nova nova/nova.conf,nova/nova-scheduler.conf
nova-compute nova nova/nova.conf
neutron-server neutron neutron/neutron.conf,neutron/ml2_conf.ini
fake-ovs-agent neutron neutron/neutron.conf
cinder-api cinder cinder/cinder.conf,cinder/cinder-api.conf
cinder-scheduler cinder cinder/cinder.conf
cinder-volume cinder cinder/cinder.conf,cinder/nfs_shares
"
if [ "$GUESTS" = 1 ]; then
    SERVICES_TABLE+=$GUEST_SERVICES_TABLE
fi
ALL_NAMES=$(awk 'NF { print $1 }' <<<"$SERVICES_TABLE")

UWSGI=(/usr/bin/uwsgi --plugin python3 --master --die-on-term --lazy-apps --enable-threads
       --thunder-lock --buffer-size 65535 --need-app --no-orphans)
# 2 processes x 2 threads; nova-api monkey-patches eventlet, which does not mix with uwsgi
# threads (a request hung for good under load): 3 processes x 1 thread.
UWSGI_PT=(--processes 2 --threads 2)
UWSGI_P=(--processes 3 --threads 1)

load_secrets() {
    local f=$STATE_DIR/secrets
    if [ ! -s "$f" ]; then
        ( umask 077
          { echo "DB_PW=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
            echo "SVC_PW=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
            echo "AMQP_PW=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
            echo "GEN_USER_PW=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
          } >"$f.tmp" && mv -f "$f.tmp" "$f" )
    fi
    chmod 600 "$f"
    DB_PW=$(sed -n 's/^DB_PW=//p' "$f")
    SVC_PW=$(sed -n 's/^SVC_PW=//p' "$f")
    AMQP_PW=$(sed -n 's/^AMQP_PW=//p' "$f")
    USER_PW=${DEVCLOUD_PASSWORD:-$(sed -n 's/^GEN_USER_PW=//p' "$f")}
    [ -n "$DB_PW" ] && [ -n "$SVC_PW" ] && [ -n "$AMQP_PW" ] && [ -n "$USER_PW" ] \
        || die "$f is damaged: remove it and run up again"
}

# Runs lib/bootstrap.py STEP with the passwords in its environment.
# When identity last succeeded with the same passwords (a hash in STATE_DIR/done),
# the users' passwords are not checked one by one again (a bcrypt login each).
bootstrap() {
    local mark=$STATE_DIR/done/identity sum set=0 rc=0
    sum=$(printf '%s\n%s\n' "$SVC_PW" "$USER_PW" | cat - "$STATE_DIR/lib/bootstrap.py" \
          | sha256sum | cut -d' ' -f1)
    [ "$(cat "$mark" 2>/dev/null)" = "$sum" ] && set=1
    "${CLEAN_ENV[@]}" DEVCLOUD_USER_PW="$USER_PW" DEVCLOUD_SVC_PW="$SVC_PW" \
        DEVCLOUD_PASSWORDS_SET=$set DEVCLOUD_STATE_DIR="$STATE_DIR" DEVCLOUD_LOG_DIR="$LOG_DIR" \
        DEVCLOUD_NO_VOLUME="$(daemon_pid cinder-volume >/dev/null && echo 0 || echo 1)" \
        DEVCLOUD_GUEST_IMAGE_FILE="${GUEST_IMAGE_FILE:-}" DEVCLOUD_GUEST_SSH_KEY="$STATE_DIR/guest-ssh/id_ed25519" \
        "$PY" "$STATE_DIR/lib/bootstrap.py" "$@" 2>&1 | tee -a "$LOG_DIR/bootstrap.log" >&2 \
        || rc=1
    if [ $rc = 0 ] && [ "$1" = identity ]; then
        echo "$sum" >"$mark"
    fi
    return $rc
}

# as_user USER CMD...: a management command (db sync ...) as the service's user.
as_user() {
    local user=$1
    shift
    "${CLEAN_ENV[@]}" HOME="$(getent passwd "$user" | cut -d: -f6)" \
        setpriv --reuid="$user" --regid="$user" --init-groups -- "$@"
}

# dbsync NAME VERSION-PACKAGE CMD...: runs once per package version (marker in STATE_DIR).
dbsync() {
    local name=$1 pkg=$2 ver
    shift 2
    ver=$(dpkg-query -W -f='${Version}' "$pkg")
    if [ "$(cat "$STATE_DIR/done/$name" 2>/dev/null)" = "$ver" ]; then
        return 0
    fi
    log "db sync: $name"
    if ! "$@" >>"$LOG_DIR/dbsync-$name.log" 2>&1; then
        log "ERROR: db sync $name failed: see $LOG_DIR/dbsync-$name.log"
        return 1
    fi
    echo "$ver" >"$STATE_DIR/done/$name"
}

nova_cells() {
    local E=$STATE_DIR/etc/nova/nova.conf nm
    nm=(as_user nova /usr/bin/nova-manage --config-file "$E")
    "${nm[@]}" api_db sync || return 1
    "${nm[@]}" cell_v2 map_cell0 || return 1
    # create_cell exits 2 when cell1 exists already.
    "${nm[@]}" cell_v2 create_cell --name cell1 --verbose || [ $? = 2 ] || return 1
    "${nm[@]}" db sync
}

# The transport URL (with its password) is stored in nova's cell mapping: refresh it.
nova_cell_update() {
    local E=$STATE_DIR/etc/nova/nova.conf uuid
    uuid=$(as_user nova /usr/bin/nova-manage --config-file "$E" cell_v2 list_cells 2>/dev/null \
        | awk -F'|' '$2 ~ / cell1 / { gsub(/ /, "", $3); print $3 }')
    [ -n "$uuid" ] || return 0
    as_user nova /usr/bin/nova-manage --config-file "$E" cell_v2 update_cell --cell_uuid "$uuid" \
        >>"$LOG_DIR/dbsync-nova.log" 2>&1
}

keystone_setup() {
    local E=$STATE_DIR/etc/keystone/keystone.conf km
    km=(/usr/bin/keystone-manage --config-file "$E")
    install -d -m 750 -o keystone -g keystone "$STATE_DIR/keystone"
    install -d -m 700 -o keystone -g keystone "$STATE_DIR/keystone/fernet-keys" \
        "$STATE_DIR/keystone/credential-keys"
    dbsync keystone python3-keystone as_user keystone "${km[@]}" db_sync || return 1
    if [ ! -e "$STATE_DIR/keystone/fernet-keys/0" ]; then
        "${CLEAN_ENV[@]}" "${km[@]}" fernet_setup --keystone-user keystone \
            --keystone-group keystone >>"$LOG_DIR/dbsync-keystone.log" 2>&1
    fi
    if [ ! -e "$STATE_DIR/keystone/credential-keys/0" ]; then
        "${CLEAN_ENV[@]}" "${km[@]}" credential_setup --keystone-user keystone \
            --keystone-group keystone >>"$LOG_DIR/dbsync-keystone.log" 2>&1
    fi
    # Once per package version; a changed admin password is handled by the callers of
    # bootstrap identity (they run keystone_bootstrap again when the admin cannot log in).
    dbsync keystone-bootstrap python3-keystone keystone_bootstrap
}

keystone_bootstrap() {
    local E=$STATE_DIR/etc/keystone/keystone.conf
    log "keystone-manage bootstrap"
    # The password goes in the environment (OS_BOOTSTRAP_PASSWORD), not on the command line.
    "${CLEAN_ENV[@]}" OS_BOOTSTRAP_PASSWORD="$USER_PW" HOME=/var/lib/keystone \
        setpriv --reuid=keystone --regid=keystone --init-groups -- \
        /usr/bin/keystone-manage --config-file "$E" bootstrap \
        --bootstrap-username admin --bootstrap-project-name admin \
        --bootstrap-role-name admin --bootstrap-service-name keystone \
        --bootstrap-region-id RegionOne --bootstrap-admin-url "$KS/v3/" \
        --bootstrap-internal-url "$KS/v3/" --bootstrap-public-url "$KS/v3/" \
        >>"$LOG_DIR/dbsync-keystone.log" 2>&1
}

# The Cinder NFS "share" is a local folder bind-mounted where os-brick would mount it.
# With real guests the folder is its own file system first (cinder_export_fs, lib/guests.sh).
cinder_share() {
    local exp=$STATE_DIR/cinder/nfs-export mnt
    install -d -m 755 -o cinder -g cinder "$STATE_DIR/cinder" "$exp"
    install -d -m 755 -o cinder -g cinder /var/lib/cinder/mnt
    mnt=/var/lib/cinder/mnt/$(printf '%s' "$NFS_SHARE" | md5sum | cut -d' ' -f1)
    install -d -m 755 -o cinder -g cinder "$mnt"
    if ! mountpoint -q "$exp" && { [ "$GUESTS" = 1 ] || [ -s "$STATE_DIR/cinder/nfs-export.ext4" ]; }; then
        stop_daemon cinder-volume
        if mountpoint -q "$mnt"; then umount "$mnt" || true; fi
        cinder_export_fs || true
    fi
    if ! mountpoint -q "$mnt" && ! mount --bind "$exp" "$mnt"; then
        log "ERROR: mount --bind $exp $mnt failed (Cinder needs root with CAP_SYS_ADMIN):" \
            "cinder-volume is not started, volume tests will fail"
        return 1
    fi
    echo "$mnt" >"$RUN_DIR/cinder-mount"
}

start_service() {
    local name=$1 E=$STATE_DIR/etc L=$STATE_DIR/lib
    case $name in
    keystone) start_daemon keystone keystone OS_KEYSTONE_CONFIG_DIR="$E/keystone" -- \
        "${UWSGI[@]}" --http11-socket 127.0.0.1:5000 --chdir /var/lib/keystone \
        --wsgi-file /usr/bin/keystone-wsgi-public "${UWSGI_PT[@]}" --procname-prefix devcloud-keystone- ;;
    glance-api) start_daemon glance-api glance OS_GLANCE_CONFIG_DIR="$E/glance" -- \
        "${UWSGI[@]}" --http11-socket 127.0.0.1:9292 --chdir /var/lib/glance \
        --wsgi-file /usr/bin/glance-wsgi-api "${UWSGI_PT[@]}" --procname-prefix devcloud-glance- ;;
    placement-api) start_daemon placement-api placement OS_PLACEMENT_CONFIG_DIR="$E/placement" -- \
        "${UWSGI[@]}" --http11-socket 127.0.0.1:8778 --chdir /var/lib/placement \
        --wsgi-file /usr/bin/placement-api "${UWSGI_PT[@]}" --procname-prefix devcloud-placement- ;;
    nova-api) start_daemon nova-api nova OS_NOVA_CONFIG_DIR="$E/nova" \
        OS_NOVA_CONFIG_FILES="api-paste.ini;nova.conf;nova-api.conf" -- \
        "${UWSGI[@]}" --http11-socket 127.0.0.1:8774 --chdir /var/lib/nova \
        --wsgi-file /usr/bin/nova-api-wsgi "${UWSGI_P[@]}" --procname-prefix devcloud-nova-api- ;;
    nova-conductor) start_daemon "$name" nova -- \
        "$PY" "/usr/bin/$name" --config-file "$E/nova/nova.conf" ;;
    nova-scheduler) start_daemon "$name" nova -- "$PY" "/usr/bin/$name" \
        --config-file "$E/nova/nova.conf" --config-file "$E/nova/nova-scheduler.conf" ;;
    nova-compute) start_daemon nova-compute nova -- \
        "$PY" "$L/nova-compute.py" --config-file "$E/nova/nova.conf" ;;
    neutron-server) start_daemon neutron-server neutron -- "$PY" /usr/bin/neutron-server \
        --config-file "$E/neutron/neutron.conf" --config-file "$E/neutron/ml2_conf.ini" ;;
    fake-ovs-agent) start_daemon fake-ovs-agent neutron -- \
        "$PY" "$L/fake-ovs-agent.py" --config-file "$E/neutron/neutron.conf" ;;
    cinder-api) start_daemon cinder-api cinder -- \
        "${UWSGI[@]}" --http11-socket 127.0.0.1:8776 --chdir /var/lib/cinder \
        --wsgi-file /usr/bin/cinder-wsgi "${UWSGI_PT[@]}" --procname-prefix devcloud-cinder-api- \
        --pyargv "--config-file $E/cinder/cinder.conf --config-file $E/cinder/cinder-api.conf" ;;
    cinder-scheduler|cinder-volume) start_daemon "$name" cinder -- \
        "$PY" "/usr/bin/$name" --config-file "$E/cinder/cinder.conf" ;;
    *) local rc=0
       guest_start_service "$name" || rc=$?
       [ $rc != 2 ] || die "unknown service $name"
       return $rc ;;
    esac
}

# True when a config file of daemon NAME is newer than its pid file: rewritten by this run,
# or by an earlier run that failed before it restarted the daemon.
stale() {
    local name=$1 f
    for f in ${2//,/ }; do
        [ "$f" != - ] || continue
        if changed "$STATE_DIR/etc/$f" || [ "$STATE_DIR/etc/$f" -nt "$RUN_DIR/$name.pid" ]; then
            return 0
        fi
    done
    return 1
}

# Stops the services whose configuration changed since they started (started again below).
restart_changed() {
    local name user files f
    while read -r name user files; do
        [ -n "$name" ] || continue
        for f in ${files//,/ }; do
            if stale "$name" "$f" && daemon_pid "$name" >/dev/null; then
                log "$f changed: restarting $name"
                stop_daemon "$name"
                break
            fi
        done
    done <<<"$SERVICES_TABLE"
}

# True when every daemon runs with the command line this run would give it.
all_running() {
    local n
    local name user files
    for n in $ALL_NAMES; do
        CHECK_ONLY=1 start_service "$n" || return 1
    done
    while read -r name user files; do
        [ -z "$name" ] || ! stale "$name" "$files" || return 1
    done <<<"$SERVICES_TABLE"
    [ -n "$AMQP_URL" ] || daemon_pid rabbitmq >/dev/null || return 1
    daemon_pid mariadb >/dev/null
}

devcloud_up() {
    local t0=$SECONDS
    if [ "$NO_INSTALL" = 1 ]; then
        devcloud_pkgs_present "${DEVCLOUD_PKGS[@]}" || die "packages missing and --no-install given"
    else
        devcloud_install
    fi
    install -d -m 700 "$STATE_DIR/done"
    install -d -m 755 "$STATE_DIR/lib"
    install -m 644 "$HERE/lib/bootstrap.py" "$HERE/lib/fake-ovs-agent.py" \
        "$HERE/lib/nova-compute.py" "$HERE/lib/guests.py" "$STATE_DIR/lib/"
    load_secrets
    if [ "$GUESTS" = 1 ]; then
        touch "$STATE_DIR/guests"
        GUEST_IMAGE_FILE=$(guest_image_path)
        guest_ssh_key
    else
        rm -f "$STATE_DIR/guests"
        guests_off
    fi
    amqp_setup
    NFS_SHARE=127.0.0.1:$STATE_DIR/cinder/nfs-export
    db_start
    db_users
    write_configs
    [ "$GUESTS" = 1 ] && guest_host_setup
    if all_running && [ "$CHANGED" = " " ]; then
        log "every service already runs with this configuration: checking resources"
        devcloud_bootstrap_all quick
        log "up: ready in $((SECONDS - t0)) s"
        return 0
    fi
    restart_changed
    install -d -m 755 -o glance -g glance "$STATE_DIR/glance" "$STATE_DIR/glance/images" \
        "$STATE_DIR/glance/staging" "$STATE_DIR/glance/tasks"
    install -d -m 755 -o nova -g nova "$STATE_DIR/nova" "$STATE_DIR/nova/instances"
    keystone_setup || die "keystone setup failed: see $LOG_DIR/dbsync-keystone.log"
    start_service keystone
    # The other databases sync while keystone starts and the catalog is registered.
    local E=$STATE_DIR/etc pids=() p
    dbsync glance python3-glance as_user glance /usr/bin/glance-manage \
        --config-file "$E/glance/glance-api.conf" db_sync & pids+=($!)
    dbsync placement python3-placement as_user placement /usr/bin/placement-manage \
        --config-file "$E/placement/placement.conf" db sync & pids+=($!)
    dbsync nova python3-nova nova_cells & pids+=($!)
    dbsync neutron python3-neutron as_user neutron /usr/bin/neutron-db-manage \
        --config-file "$E/neutron/neutron.conf" --config-file "$E/neutron/ml2_conf.ini" \
        upgrade heads & pids+=($!)
    dbsync cinder python3-cinder as_user cinder /usr/bin/cinder-manage \
        --config-file "$E/cinder/cinder.conf" db sync & pids+=($!)
    if ! bootstrap identity clouds; then
        keystone_bootstrap
        bootstrap identity clouds \
            || die "registering users and the catalog failed: see $LOG_DIR/bootstrap.log"
    fi
    local failed=0
    for p in "${pids[@]}"; do wait "$p" || failed=1; done
    [ $failed = 0 ] || die "a database sync failed (logs: $LOG_DIR/dbsync-*.log)"
    if changed "$E/nova/nova.conf"; then nova_cell_update || true; fi
    [ -n "$AMQP_URL" ] || rabbit_wait
    local n skip=keystone
    cinder_share || skip+=" cinder-volume"
    for n in $ALL_NAMES; do
        case " $skip " in *" $n "*) ;; *) start_service "$n" ;; esac
    done
    devcloud_bootstrap_all
    if [ -n "$AMQP_URL" ] && daemon_pid rabbitmq >/dev/null; then
        log "the services now use the RabbitMQ given by --amqp: stopping the private node"
        rabbitmqctl_own stop >>"$LOG_DIR/rabbitmq.log" 2>&1 || true
        stop_daemon rabbitmq
    fi
    if ! daemon_pid cinder-volume >/dev/null; then
        log "ERROR: up without Cinder (cinder-volume does not run): exit status 3"
        exit 3
    fi
    log "up: ready in $((SECONDS - t0)) s; $(devcloud_env | grep OS_CLIENT_CONFIG_FILE)"
}

# Resources through the APIs. QUICK: every service already ran, nothing was restarted.
devcloud_bootstrap_all() {
    local g=()
    [ "$GUESTS" = 1 ] && g=(guests)
    if [ "${1:-}" = quick ]; then
        if ! bootstrap identity clouds resources ready; then
            keystone_bootstrap
            bootstrap identity clouds resources ready \
                || die "bootstrap failed: see $LOG_DIR/bootstrap.log"
        fi
        if [ "$GUESTS" = 1 ]; then
            guest_bridge
            bootstrap guests || die "real guests: see $LOG_DIR/bootstrap.log"
        fi
        return 0
    fi
    bootstrap resources || die "creating flavors, image or network failed: see $LOG_DIR/bootstrap.log"
    [ "$GUESTS" = 1 ] && guest_bridge
    as_user nova /usr/bin/nova-manage --config-file "$STATE_DIR/etc/nova/nova.conf" \
        cell_v2 discover_hosts >>"$LOG_DIR/dbsync-nova.log" 2>&1 || true
    bootstrap ready "${g[@]}" || die "a service did not come up: see $LOG_DIR/bootstrap.log"
}

# `up --no-guests` (or `up` after the marker was removed): the real-guest daemons stop.
guests_off() {
    local n running=0
    for n in $GUEST_NAMES; do
        daemon_pid "$n" >/dev/null && running=1
    done
    [ $running = 1 ] || return 0
    log "real guests off: stopping their services"
    guest_stop_domains
    for n in $(tac <<<"$GUEST_NAMES"); do stop_daemon "$n"; done
}

devcloud_stop() {
    local n names m
    guest_stop_domains
    # Every daemon devcloud may have started, the real-guest ones included.
    names=$(printf '%s\n%s\n' "$(awk 'NF { print $1 }' <<<"$SERVICES_TABLE")" "$GUEST_NAMES" \
            | awk 'NF && !seen[$1]++' | tac)
    for n in $names; do stop_daemon "$n" & done
    wait
    for m in $(awk -v b="$STATE_DIR/nova/guests-state/mnt/" 'index($2, b) == 1 { print $2 }' /proc/mounts); do
        umount "$m" || log "could not unmount $m"
    done
    stop_daemon mariadb
    if daemon_pid rabbitmq >/dev/null; then
        rabbitmqctl_own stop >>"$LOG_DIR/rabbitmq.log" 2>&1 || true
        stop_daemon rabbitmq
    fi
    if [ -s "$RUN_DIR/cinder-mount" ] && mountpoint -q "$(<"$RUN_DIR/cinder-mount")"; then
        umount "$(<"$RUN_DIR/cinder-mount")" || log "could not unmount $(<"$RUN_DIR/cinder-mount")"
    fi
    rm -f "$RUN_DIR/cinder-mount"
    if mountpoint -q "$STATE_DIR/cinder/nfs-export"; then
        umount "$STATE_DIR/cinder/nfs-export" || log "could not unmount $STATE_DIR/cinder/nfs-export"
    fi
    log "stopped"
}

devcloud_status() {
    local n pid rc=0 total=0 rss
    printf '%-26s %8s %9s\n' SERVICE PID RSS_MiB
    for n in rabbitmq mariadb $ALL_NAMES; do
        if pid=$(daemon_pid "$n"); then
            rss=$(daemon_rss_mib "$pid")
            total=$((total + rss))
            printf '%-26s %8s %9s\n' "$n" "$pid" "$rss"
        elif [ "$n" = rabbitmq ] && [ -n "$AMQP_URL" ]; then
            printf '%-26s %8s %9s\n' "$n" external -
        else
            printf '%-26s %8s %9s\n' "$n" stopped -
            rc=1
        fi
    done
    printf '%-26s %8s %9s\n' total "" "$total"
    return $rc
}

devcloud_env() {
    cat <<EOF
OS_CLIENT_CONFIG_FILE=$STATE_DIR/clouds.yaml
DEVCLOUD_STATE_DIR=$STATE_DIR
DEVCLOUD_LOG_DIR=$LOG_DIR
DEVCLOUD_ADMIN_OPENRC=$STATE_DIR/admin-openrc
DEVCLOUD_CLOUD_SOURCE=source
DEVCLOUD_CLOUD_TARGET=target
DEVCLOUD_CLOUD_ADMIN=devcloud-admin
DEVCLOUD_AUTH_URL=$KS/v3
DEVCLOUD_REGION=RegionOne
DEVCLOUD_IMAGE=devcloud-tiny
DEVCLOUD_FLAVORS=m1.tiny,m1.small,m1.medium,m1.large
DEVCLOUD_EXTERNAL_NETWORK=public
DEVCLOUD_EXTERNAL_CIDR=$(cat "$STATE_DIR/external-cidr" 2>/dev/null || true)
DEVCLOUD_GUESTS=$GUESTS
EOF
    [ "$GUESTS" = 1 ] || return 0
    cat <<EOF
DEVCLOUD_GUEST_IMAGE=fluid-guest
DEVCLOUD_GUEST_IMAGE_ID=$(cat "$STATE_DIR/guest-image-id" 2>/dev/null || true)
DEVCLOUD_GUEST_FLAVOR=g1.tiny
DEVCLOUD_GUEST_AZ=fluid-guests
DEVCLOUD_GUEST_HOST=$GUEST_HOST
DEVCLOUD_GUEST_TRAIT=$GUEST_TRAIT
DEVCLOUD_GUEST_USER=root
DEVCLOUD_GUEST_SSH_KEY=$STATE_DIR/guest-ssh/id_ed25519
DEVCLOUD_GUEST_SSH_PUBKEY=$STATE_DIR/guest-ssh/id_ed25519.pub
DEVCLOUD_GUEST_READY_MARKER=FLUID-GUEST-READY
DEVCLOUD_GUEST_EXTERNAL_BRIDGE=$EXT_BRIDGE
DEVCLOUD_VIRT_TYPE=$(guest_virt_type)
EOF
}
