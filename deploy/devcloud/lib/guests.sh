# SPDX-License-Identifier: Apache-2.0
# devcloud --guests: real guests BESIDE the fake driver on one cloud. A second nova-compute
# (host devcloud-guests, libvirt/QEMU) and the Neutron linuxbridge, DHCP and L3 agents (same
# host) join the fake nova-compute (host devcloud) and the fake OVS agent; ML2 binds ports
# with openvswitch on host devcloud and linuxbridge on host devcloud-guests. Placement keeps
# them apart: host devcloud-guests has trait CUSTOM_FLUID_GUESTS and sits in aggregate
# fluid-guests (AZ fluid-guests) whose metadata requires that trait (isolated aggregate
# filtering), so only requests asking for the trait (flavor g1.tiny, image fluid-guest and
# its snapshots) land there. Sourced by deploy/devcloud/devcloud.

GUEST_HOST=devcloud-guests
EXT_BRIDGE=br-devcloud
GUEST_TRAIT=CUSTOM_FLUID_GUESTS
# RAM that real guests may take in all (flavor MiB, checked by Placement): the rest is
# reserved for the host, so too many guests fail with NoValidHost instead of the OOM killer.
GUEST_RAM_MIB=${DEVCLOUD_GUEST_RAM_MIB:-4096}

GUEST_PKGS=(qemu-system-x86 qemu-utils libvirt-daemon-system libvirt-daemon-driver-qemu
            python3-libvirt genisoimage neutron-linuxbridge-agent neutron-dhcp-agent
            neutron-l3-agent dnsmasq-base iptables ebtables ipset bridge-utils conntrack
            extlinux e2fsprogs binutils openssh-client)

GUEST_SERVICES_TABLE="
virtlogd root -
libvirtd root libvirt/libvirtd.conf
nova-compute-guests root nova/nova.conf,nova/nova-guests.conf
neutron-linuxbridge-agent root neutron/neutron.conf,neutron/neutron-agents.conf,neutron/linuxbridge_agent.ini
neutron-dhcp-agent root neutron/neutron.conf,neutron/neutron-agents.conf,neutron/dhcp_agent.ini
neutron-l3-agent root neutron/neutron.conf,neutron/neutron-agents.conf,neutron/l3_agent.ini
"
GUEST_NAMES=$(awk 'NF { print $1 }' <<<"$GUEST_SERVICES_TABLE")

# kvm only where /dev/kvm can run an ordinary kernel (VT-x/AMD-V, not PVM); else TCG.
guest_virt_type() {
    if [ -n "${DEVCLOUD_VIRT_TYPE:-}" ]; then
        echo "$DEVCLOUD_VIRT_TYPE"
    elif [ -c /dev/kvm ] && grep -qwE 'vmx|svm' /proc/cpuinfo && [ ! -d /sys/module/kvm_pvm ]; then
        echo kvm
    else
        echo qemu
    fi
}

# The agents and the libvirt nova-compute run as root (no sudo/rootwrap), with
# STATE_DIR/bin (the ebtables wrapper) first on their PATH.
guest_env() { echo "PATH=$STATE_DIR/bin:/usr/sbin:/usr/bin:/sbin:/bin"; }

write_guest_configs() {
    local E=$STATE_DIR/etc total reserved
    install -d -m 755 "$E/libvirt" "$E/nova/provider-config"
    total=$(awk '/^MemTotal:/ { print int($2 / 1024) }' /proc/meminfo)
    reserved=$((total - GUEST_RAM_MIB))
    [ "$reserved" -gt 512 ] || reserved=512
    put_file "$E/nova/nova-guests.conf" nova 640 <<EOF
[DEFAULT]
host = $GUEST_HOST
compute_driver = libvirt.LibvirtDriver
state_path = $STATE_DIR/nova/guests-state
instances_path = $STATE_DIR/nova/guests
force_config_drive = true
config_drive_format = iso9660
mkisofs_cmd = genisoimage
reserved_host_memory_mb = $reserved
initial_ram_allocation_ratio = 1.0
initial_cpu_allocation_ratio = 8.0
# Nova's default (300 s): the VIF-plugged event comes from the linuxbridge agent, which on
# 2 busy cores took 7-12 s at load 6 but is slower under a full test run; a server whose
# event is late goes to ERROR ("Failed to allocate the network(s)"), so keep it fatal but
# patient (fluid-openstack server-create replaces its own ERROR server on a retry).
vif_plugging_timeout = 300
vif_plugging_is_fatal = true
resume_guests_state_on_host_boot = false
[libvirt]
virt_type = $(guest_virt_type)
cpu_mode = none
nfs_mount_point_base = $STATE_DIR/nova/guests-state/mnt
live_migration_scheme = tcp
[compute]
provider_config_location = $E/nova/provider-config/
[oslo_concurrency]
lock_path = $STATE_DIR/nova/guests-lock
EOF
    put_file "$E/nova/provider-config/guests.yaml" nova 640 <<EOF
meta:
  schema_version: '1.0'
providers:
  - identification:
      name: \$COMPUTE_NODE
    traits:
      additional:
        - $GUEST_TRAIT
EOF
    put_file "$E/neutron/neutron-agents.conf" neutron 640 <<EOF
[DEFAULT]
host = $GUEST_HOST
[agent]
# Root already: env(1) keeps this PATH (STATE_DIR/bin first) for commands and privsep-helper
# (an empty root_helper would make oslo.privsep fall back to sudo and its secure_path).
root_helper = env
EOF
    put_file "$E/neutron/linuxbridge_agent.ini" neutron 640 <<EOF
[linux_bridge]
bridge_mappings = public:$EXT_BRIDGE
[vxlan]
# Tenant networks are vxlan (as in the fake-only cloud): the DHCP and L3 agents serve every
# network, so this host must bind them all. One host, no peers: the VTEP is on lo, and with
# l2population the vxlan devices are unicast with no flood entries (a multicast group on lo
# loops each broadcast back into the bridge, which then learns the guest's MAC on the vxlan
# port and sends DHCP offers there).
enable_vxlan = true
local_ip = 127.0.0.1
l2_population = true
arp_responder = false
[securitygroup]
enable_security_group = true
firewall_driver = iptables
[agent]
polling_interval = 2
EOF
    put_file "$E/neutron/dhcp_agent.ini" neutron 640 <<EOF
[DEFAULT]
interface_driver = linuxbridge
dhcp_driver = neutron.agent.linux.dhcp.Dnsmasq
enable_isolated_metadata = false
force_metadata = false
resync_interval = 30
EOF
    put_file "$E/neutron/l3_agent.ini" neutron 640 <<EOF
[DEFAULT]
interface_driver = linuxbridge
agent_mode = legacy
enable_metadata_proxy = false
EOF
    put_file "$E/libvirt/libvirtd.conf" root 644 <<EOF
unix_sock_group = "root"
unix_sock_ro_perms = "0777"
unix_sock_rw_perms = "0770"
auth_unix_ro = "none"
auth_unix_rw = "none"
listen_tls = 0
listen_tcp = 0
log_outputs = "3:stderr"
EOF
}

# neutron.conf and ml2_conf.ini lines that differ with guests (called by write_configs).
guest_neutron_default() {
    if [ "$GUESTS" = 1 ]; then
        echo "dhcp_agent_notification = true"
    else
        echo "dhcp_agent_notification = false"
    fi
}
guest_neutron_experimental() {
    [ "$GUESTS" = 1 ] && printf '[experimental]\nlinuxbridge = true\n'
    return 0
}
guest_ml2() {
    if [ "$GUESTS" = 1 ]; then
        # Tenant networks stay vxlan: both the fake OVS agent (host devcloud) and the
        # linuxbridge agent (host devcloud-guests, VTEP on lo) bind them.
        printf 'type_drivers = flat,vlan,vxlan,local\ntenant_network_types = vxlan\n'
        printf 'mechanism_drivers = openvswitch,linuxbridge,l2population\n'
    else
        printf 'type_drivers = flat,vlan,vxlan\ntenant_network_types = vxlan\n'
        printf 'mechanism_drivers = openvswitch\n'
    fi
}

# Host pieces outside STATE_DIR, each idempotent and marked as devcloud's.
guest_host_setup() {
    # ebtables-nft 1.8.9 cannot delete an --among-src rule by its spec on this kind of
    # kernel (RULE_DELETE: Invalid argument); the linuxbridge agent does exactly that.
    install -d -m 755 "$STATE_DIR/bin"
    install -m 755 "$HERE/lib/ebtables-wrapper" "$STATE_DIR/bin/ebtables"
    # Nova's NFS volume driver runs `mount -t nfs 127.0.0.1:/dir MNT`; mount(8) looks for
    # /sbin/mount.nfs only. devcloud's helper turns it into a bind mount (no nfs-common).
    if [ ! -e /usr/sbin/mount.nfs ] || grep -q 'devcloud mount.nfs' /usr/sbin/mount.nfs; then
        install -m 755 "$HERE/lib/mount.nfs" /usr/sbin/mount.nfs
    else
        log "WARNING: /usr/sbin/mount.nfs is not devcloud's (nfs-common?): volume attach to real guests needs an NFS server on 127.0.0.1"
    fi
    # Without systemd / is a private mount: QEMU in libvirt's own mount namespace would
    # never see a volume share mounted after the guest started.
    if ! grep -q '^namespaces = \[ \]' /etc/libvirt/qemu.conf; then
        printf '\n# devcloud: no private mount namespace (volume shares mounted later must reach QEMU)\nnamespaces = [ ]\n' \
            >>/etc/libvirt/qemu.conf
        CHANGED+="$STATE_DIR/etc/libvirt/libvirtd.conf "
    fi
    install -d -m 755 -o nova -g nova "$STATE_DIR/nova/guests" "$STATE_DIR/nova/guests-state" \
        "$STATE_DIR/nova/guests-lock"
    install -d -m 755 /run/libvirt
    # vxlan devices made by a multicast-mode agent (before l2population) loop broadcasts.
    local v
    for v in $(ip -d -o link show type vxlan 2>/dev/null | awk '/ group 2/ { sub(/:$/, "", $2); sub(/@.*/, "", $2); print $2 }'); do
        ip link del "$v" && log "deleted multicast vxlan device $v"
    done
    guest_bridge
}

# The external network's host side: bridge br-devcloud, address = the subnet's gateway.
guest_bridge() {
    if ! ip link show "$EXT_BRIDGE" >/dev/null 2>&1; then
        ip link add "$EXT_BRIDGE" type bridge || die "cannot create bridge $EXT_BRIDGE"
    fi
    ip link set "$EXT_BRIDGE" up
    local cidr gw
    cidr=$(cat "$STATE_DIR/external-cidr" 2>/dev/null || true)
    [ -n "$cidr" ] || return 0
    gw=$("$PY" -c 'import ipaddress,sys; n=ipaddress.ip_network(sys.argv[1]); print("%s/%d" % (next(n.hosts()), n.prefixlen))' "$cidr")
    if ! ip -4 -o addr show dev "$EXT_BRIDGE" | grep -q " ${gw%/*}/"; then
        ip addr add "$gw" dev "$EXT_BRIDGE" || die "cannot put $gw on $EXT_BRIDGE"
        log "external network: $gw on bridge $EXT_BRIDGE"
    fi
}

# The Cinder export as its own (loop-mounted ext4) file system: Nova's NFS volume driver
# trusts os.path.ismount(), which is false for a bind mount of a folder of the same file
# system. Existing volume files are copied in (sparse) the first time.
cinder_export_fs() {
    local exp=$STATE_DIR/cinder/nfs-export img=$STATE_DIR/cinder/nfs-export.ext4 tmp
    if mountpoint -q "$exp"; then
        return 0
    fi
    if [ ! -s "$img" ]; then
        [ "$GUESTS" = 1 ] || return 0
        log "cinder: making $img (sparse, 200 GiB ext4) for the export"
        truncate -s 200G "$img.tmp"
        mkfs.ext4 -q -F -m 0 -E lazy_itable_init=1,lazy_journal_init=1,root_owner=0:0 \
            "$img.tmp" || die "mkfs.ext4 $img failed"
        tmp=$(mktemp -d)
        mount -o loop "$img.tmp" "$tmp" || { rmdir "$tmp"; rm -f "$img.tmp"
            log "ERROR: cannot loop-mount $img (no loop devices?): volume attach to real guests will fail"
            return 1; }
        cp -a --sparse=always "$exp/." "$tmp/"
        chown cinder:cinder "$tmp"
        chmod 755 "$tmp"
        umount "$tmp"
        rmdir "$tmp"
        mv -f "$img.tmp" "$img"
        find "$exp" -mindepth 1 -delete
    fi
    mount -o loop "$img" "$exp" || { log "ERROR: cannot loop-mount $img on $exp"; return 1; }
    log "cinder: export $exp is $img (loop, ext4)"
}

guest_start_service() {
    local name=$1 E=$STATE_DIR/etc
    case $name in
    virtlogd) start_daemon virtlogd root -- /usr/sbin/virtlogd ;;
    libvirtd) start_daemon libvirtd root "$(guest_env)" -- /usr/sbin/libvirtd -f "$E/libvirt/libvirtd.conf" ;;
    nova-compute-guests)
        if [ "${CHECK_ONLY:-0}" != 1 ]; then
            local i
            for i in $(seq 1 300); do
                [ -S /run/libvirt/libvirt-sock ] && break
                daemon_pid libvirtd >/dev/null || die "libvirtd exited: see $LOG_DIR/libvirtd.log"
                sleep 0.1
            done
        fi
        start_daemon nova-compute-guests root "$(guest_env)" -- "$PY" "$STATE_DIR/lib/nova-compute.py" \
            --config-file "$E/nova/nova.conf" --config-file "$E/nova/nova-guests.conf" ;;
    neutron-linuxbridge-agent|neutron-dhcp-agent|neutron-l3-agent)
        local ini=${name#neutron-}
        ini=${ini%-agent}
        [ "$ini" = linuxbridge ] && ini=linuxbridge_agent || ini=${ini}_agent
        start_daemon "$name" root "$(guest_env)" -- "$PY" "/usr/bin/$name" \
            --config-file "$E/neutron/neutron.conf" --config-file "$E/neutron/neutron-agents.conf" \
            --config-file "$E/neutron/$ini.ini" ;;
    *) return 2 ;;
    esac
}

# Before libvirtd stops: its guests are ended (devcloud stop ends what it started).
guest_stop_domains() {
    daemon_pid libvirtd >/dev/null || return 0
    local d
    for d in $(virsh -c qemu:///system list --name 2>/dev/null); do
        virsh -c qemu:///system destroy "$d" >/dev/null 2>&1 && log "destroyed guest $d"
    done
}

# The guest image, built (or found in the cache) for the bootstrap to upload.
guest_image_path() {
    local out
    out=$("$HERE/guest-image" --cache "${DEVCLOUD_GUEST_CACHE:-/var/cache/devcloud/guest}" \
          2>>"$LOG_DIR/guest-image.log") || die "building the guest image failed: see $LOG_DIR/guest-image.log"
    out=$(tail -n 1 <<<"$out")
    [ -s "$out" ] || die "guest-image printed no image path: see $LOG_DIR/guest-image.log"
    echo "$out"
}

# A key pair the tests may use to log in to guests (root-only, in STATE_DIR).
guest_ssh_key() {
    install -d -m 700 "$STATE_DIR/guest-ssh"
    if [ ! -s "$STATE_DIR/guest-ssh/id_ed25519" ]; then
        ssh-keygen -q -t ed25519 -N '' -C devcloud-guests -f "$STATE_DIR/guest-ssh/id_ed25519"
    fi
}
