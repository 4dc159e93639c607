# SPDX-License-Identifier: Apache-2.0
# devcloud: Debian package installation (sourced by deploy/devcloud/devcloud).
# Non-interactive: debconf answers pinned, policy-rc.d keeps postinsts from starting daemons.

# The packages of the fake-driver devcloud. nova-compute (the package) is not needed:
# the fake driver is in python3-nova and lib/nova-compute.py starts it.
DEVCLOUD_PKGS=(
    mariadb-server python3-pymysql
    keystone uwsgi-plugin-python3 python3-openstackclient
    glance-api placement-api
    nova-api nova-conductor nova-scheduler
    neutron-server
    cinder-api cinder-scheduler cinder-volume
    sudo
)

# Debconf questions of Debian's OpenStack packages; all default to false already, pinned
# here so a changed default cannot make a postinst configure a database or an endpoint.
devcloud_debconf() {
    local q
    for q in \
        keystone/configure_db keystone/configure_api-endpoint keystone/configure_ksat \
        keystone/configure_rabbit keystone/register-endpoint \
        glance/configure_db glance/configure_api-endpoint glance/configure_ksat \
        glance/ksat-create-service-user glance-api/configure_db glance-api/register-endpoint \
        glance-common/configure_db glance-common/configure_rabbit \
        placement/configure_db placement/configure_api-endpoint placement/configure_ksat \
        placement/ksat-create-service-user placement-api/register-endpoint \
        nova/configure_db nova/configure_api-endpoint nova/configure_ksat \
        nova/configure_neutron nova/configure_placement nova/ksat-create-service-user \
        novaapi/configure_db nova-common/configure_rabbit nova-api/register-endpoint \
        neutron/configure_db neutron/configure_api-endpoint neutron/configure_nova \
        neutron/ksat-create-service-user neutron-common/configure_rabbit \
        neutron-server/register-endpoint neutron-api/register-endpoint \
        cinder/configure_db cinder/configure_api-endpoint cinder/ksat-create-service-user \
        cinder-common/configure_rabbit cinder-api/register-endpoint \
        dbconfig-common/dbconfig-install; do
        echo "${q%%/*} $q boolean false"
    done | debconf-set-selections
}

# True when every package is installed (then apt is not run at all: a re-run stays quick).
devcloud_pkgs_present() {
    local st
    st=$(dpkg-query -W -f='${db:Status-Abbrev}\n' "$@" 2>/dev/null) || return 1
    [ "$(grep -c '^ii' <<<"$st")" -eq "$#" ]
}

devcloud_install() {
    local pkgs=("${DEVCLOUD_PKGS[@]}")
    if [ "${GUESTS:-0}" = 1 ]; then
        pkgs+=("${GUEST_PKGS[@]}")
    fi
    if [ -z "$AMQP_URL" ]; then
        pkgs+=(rabbitmq-server)
    fi
    if devcloud_pkgs_present "${pkgs[@]}"; then
        log "packages: all ${#pkgs[@]} present"
        return 0
    fi
    local t0=$SECONDS made_policy=0
    # No daemon may be started by a postinst (on a systemd host it would start a second
    # MariaDB, RabbitMQ, keystone ...); Debian's invoke-rc.d honours policy-rc.d.
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\n# written by devcloud during apt-get install\nexit 101\n' \
            >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        made_policy=1
    fi
    devcloud_debconf
    export DEBIAN_FRONTEND=noninteractive DEBCONF_NONINTERACTIVE_SEEN=true
    # --force-unsafe-io: no fsync per unpacked file (a test machine; halves the unpack time).
    local apt=(apt-get -y -q -o DPkg::Lock::Timeout=900 -o Dpkg::Options::=--force-unsafe-io
               -o Dpkg::Options::=--force-confdef
               -o Dpkg::Options::=--force-confold)
    # An old or missing package list makes install fail with 404s: refresh it first when
    # it is older than a day, and once more if the install still fails.
    if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages*' -mmin -1440 2>/dev/null \
              | head -n 1)" ]; then
        "${apt[@]}" update >>"$LOG_DIR/apt.log" 2>&1 || die "apt-get update failed: see $LOG_DIR/apt.log"
    fi
    log "packages: installing ${pkgs[*]} (log: $LOG_DIR/apt.log)"
    if ! "${apt[@]}" install --no-install-recommends "${pkgs[@]}" >>"$LOG_DIR/apt.log" 2>&1; then
        "${apt[@]}" update >>"$LOG_DIR/apt.log" 2>&1 || true
        "${apt[@]}" install --no-install-recommends "${pkgs[@]}" >>"$LOG_DIR/apt.log" 2>&1 \
            || { [ $made_policy = 1 ] && rm -f /usr/sbin/policy-rc.d
                 die "apt-get install failed: see $LOG_DIR/apt.log"; }
    fi
    if [ $made_policy = 1 ]; then
        rm -f /usr/sbin/policy-rc.d
    fi
    log "packages: installed in $((SECONDS - t0)) s"
}
