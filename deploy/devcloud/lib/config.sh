# SPDX-License-Identifier: Apache-2.0
# devcloud: the configuration files of every service, written under STATE_DIR/etc
# (Debian's files in /etc stay untouched). Sourced by deploy/devcloud/devcloud.

KS=http://127.0.0.1:5000
DB_PORT=13306

# put_file PATH OWNER_GROUP MODE: stdin becomes PATH (temp + rename) when it differs;
# records the path in CHANGED so that the services reading it are restarted.
CHANGED=" "
put_file() {
    local path=$1 group=$2 mode=$3 tmp
    tmp=$(mktemp "$path.XXXXXX")
    chmod "$mode" "$tmp"
    chgrp "$group" "$tmp"
    cat >"$tmp"
    if [ -f "$path" ] && cmp -s "$tmp" "$path"; then
        rm -f "$tmp"
        return 0
    fi
    mv -f "$tmp" "$path"
    CHANGED+="$path "
}

# changed PATH...: true when one of the files was rewritten by this run.
changed() {
    local p
    for p in "$@"; do
        case $CHANGED in *" $p "*) return 0 ;; esac
    done
    return 1
}

db_url() { echo "mysql+pymysql://$1:$DB_PW@127.0.0.1:$DB_PORT/$2?charset=utf8"; }

# The [keystone_authtoken]-style section of a service user.
ks_auth() {
    cat <<EOF
auth_url = $KS
auth_type = password
project_domain_name = Default
user_domain_name = Default
project_name = service
username = $1
password = $SVC_PW
region_name = RegionOne
EOF
}

ks_authtoken() {
    cat <<EOF
[keystone_authtoken]
www_authenticate_uri = $KS
service_token_roles_required = true
$(ks_auth "$1")
EOF
}

common_default() {
    cat <<EOF
use_stderr = true
debug = false
host = devcloud
transport_url = $TRANSPORT_URL
EOF
}

write_configs() {
    local E=$STATE_DIR/etc
    install -d -m 755 "$E"
    install -d -m 750 -g keystone "$E/keystone"
    install -d -m 750 -g glance "$E/glance"
    install -d -m 750 -g placement "$E/placement"
    install -d -m 750 -g nova "$E/nova"
    install -d -m 750 -g neutron "$E/neutron"
    install -d -m 750 -g cinder "$E/cinder"

    put_file "$E/keystone/keystone.conf" keystone 640 <<EOF
[DEFAULT]
use_stderr = true
[database]
connection = $(db_url keystone keystone)
[identity]
# bcrypt's cheapest cost: every password login of the tests is a hash check.
password_hash_rounds = 4
[token]
provider = fernet
[fernet_tokens]
key_repository = $STATE_DIR/keystone/fernet-keys
[fernet_receipts]
key_repository = $STATE_DIR/keystone/fernet-keys
[credential]
key_repository = $STATE_DIR/keystone/credential-keys
EOF

    # glance's WSGI app reads glance-api-paste.ini from its config folder.
    ln -sfn /etc/glance/glance-api-paste.ini "$E/glance/glance-api-paste.ini"
    put_file "$E/glance/glance-api.conf" glance 640 <<EOF
[DEFAULT]
use_stderr = true
debug = false
bind_host = 127.0.0.1
bind_port = 9292
enabled_backends = file:file
enabled_import_methods = [glance-direct,web-download,copy-image]
worker_self_reference_url = http://127.0.0.1:9292
[database]
connection = $(db_url glance glance)
$(ks_authtoken glance)
[paste_deploy]
flavor = keystone
[glance_store]
default_backend = file
[file]
filesystem_store_datadir = $STATE_DIR/glance/images/
[os_glance_staging_store]
filesystem_store_datadir = $STATE_DIR/glance/staging/
[os_glance_tasks_store]
filesystem_store_datadir = $STATE_DIR/glance/tasks/
[oslo_concurrency]
lock_path = /var/lib/glance/lock
[oslo_messaging_notifications]
driver = noop
EOF

    put_file "$E/placement/placement.conf" placement 640 <<EOF
[DEFAULT]
use_stderr = true
[api]
auth_strategy = keystone
$(ks_authtoken placement)
[placement_database]
connection = $(db_url placement placement)
EOF

    # nova's WSGI app loads the first file of OS_NOVA_CONFIG_FILES as its paste config.
    ln -sfn /etc/nova/api-paste.ini "$E/nova/api-paste.ini"
    put_file "$E/nova/nova.conf" nova 640 <<EOF
[DEFAULT]
$(common_default)
compute_driver = fake.FakeDriver
my_ip = 127.0.0.1
state_path = /var/lib/nova
instances_path = $STATE_DIR/nova/instances
allow_resize_to_same_host = true
[wsgi]
api_paste_config = /etc/nova/api-paste.ini
[api]
auth_strategy = keystone
[api_database]
connection = $(db_url nova nova_api)
[database]
connection = $(db_url nova nova)
[conductor]
workers = 1
[scheduler]
workers = 1
discover_hosts_in_cells_interval = 15
$(ks_authtoken nova)
[service_user]
send_service_user_token = true
$(ks_auth nova)
[placement]
$(ks_auth placement)
valid_interfaces = public
[neutron]
$(ks_auth neutron)
valid_interfaces = public
[cinder]
os_region_name = RegionOne
$(ks_auth cinder)
[glance]
valid_interfaces = public
[vnc]
enabled = false
[oslo_concurrency]
lock_path = /var/lib/nova/tmp
[oslo_messaging_notifications]
driver = noop
[quota]
instances = -1
cores = -1
ram = -1
metadata_items = -1
key_pairs = -1
server_groups = -1
server_group_members = -1
EOF
    # Only for the uwsgi-hosted API: oslo.messaging heartbeats in a real thread, else an
    # idle API's RPC connection goes stale and the next call times out.
    put_file "$E/nova/nova-api.conf" nova 640 <<EOF
[oslo_messaging_rabbit]
heartbeat_in_pthread = true
EOF

    put_file "$E/neutron/neutron.conf" neutron 640 <<EOF
[DEFAULT]
$(common_default)
core_plugin = ml2
service_plugins = router
auth_strategy = keystone
bind_host = 127.0.0.1
bind_port = 9696
api_workers = 1
rpc_workers = 1
rpc_state_report_workers = 1
api_paste_config = /etc/neutron/api-paste.ini
state_path = /var/lib/neutron
allow_overlapping_ips = true
$(guest_neutron_default)
notify_nova_on_port_status_changes = true
notify_nova_on_port_data_changes = true
[agent]
report_interval = 20
[database]
connection = $(db_url neutron neutron)
$(ks_authtoken neutron)
[nova]
$(ks_auth nova)
[oslo_concurrency]
lock_path = /var/lib/neutron/lock
[oslo_messaging_notifications]
driver = noop
[quotas]
quota_network = -1
quota_subnet = -1
quota_port = -1
quota_router = -1
quota_floatingip = -1
quota_security_group = -1
quota_security_group_rule = -1
$(guest_neutron_experimental)
EOF
    put_file "$E/neutron/ml2_conf.ini" neutron 640 <<EOF
[ml2]
$(guest_ml2)
extension_drivers = port_security
[ml2_type_flat]
flat_networks = public
[ml2_type_vxlan]
vni_ranges = 1:10000
[securitygroup]
enable_security_group = true
EOF

    # Read by nova-scheduler only (a change must not restart the fake nova-compute, whose
    # servers live in its memory): hosts in an aggregate with trait:X=required metadata
    # take only requests that require X (the real-guest host, see lib/guests.sh).
    put_file "$E/nova/nova-scheduler.conf" nova 640 <<EOF
[scheduler]
enable_isolated_aggregate_filtering = true
EOF
    if [ "$GUESTS" = 1 ]; then
        write_guest_configs
    fi

    put_file "$E/cinder/cinder.conf" cinder 640 <<EOF
[DEFAULT]
$(common_default)
auth_strategy = keystone
my_ip = 127.0.0.1
state_path = /var/lib/cinder
api_paste_config = /etc/cinder/api-paste.ini
rootwrap_config = /etc/cinder/rootwrap.conf
enabled_backends = nfs1
# attached volumes may be uploaded to an image (the relocation's "image" volume method)
enable_force_upload = true
glance_api_servers = http://127.0.0.1:9292
quota_volumes = -1
quota_snapshots = -1
quota_gigabytes = -1
quota_backups = -1
quota_backup_gigabytes = -1
quota_groups = -1
[database]
connection = $(db_url cinder cinder)
$(ks_authtoken cinder)
[nova]
$(ks_auth nova)
interface = public
[oslo_concurrency]
lock_path = /var/lib/cinder/tmp
[oslo_messaging_notifications]
driver = noop
[nfs1]
volume_driver = cinder.volume.drivers.nfs.NfsDriver
volume_backend_name = nfs1
nfs_shares_config = $E/cinder/nfs_shares
nfs_mount_point_base = /var/lib/cinder/mnt
nfs_sparsed_volumes = true
nfs_snapshot_support = true
nas_secure_file_operations = false
nas_secure_file_permissions = false
EOF
    put_file "$E/cinder/cinder-api.conf" cinder 640 <<EOF
[oslo_messaging_rabbit]
heartbeat_in_pthread = true
EOF
    put_file "$E/cinder/nfs_shares" cinder 640 <<EOF
$NFS_SHARE
EOF
}
