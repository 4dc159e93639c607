# SPDX-License-Identifier: Apache-2.0
# devcloud --guests through the APIs (run by bootstrap.py): step `guests` makes flavor g1.tiny,
# aggregate/AZ fluid-guests (trait-isolated) and the public image fluid-guest, and waits for
# the real-guest services; step `verify-guests` boots a real guest in project source, logs in
# over SSH on its floating IP (host key taken from its console log), writes a file, snapshots
# it, boots the snapshot in project target, finds the file there, attaches a volume and sees
# /dev/vdb; then deletes everything it made. Run with /usr/bin/python3.
import hashlib
import os
import subprocess
import tempfile
import time

import bootstrap as b
from bootstrap import Fail, call, say

GUEST_HOST = "devcloud-guests"
TRAIT = "CUSTOM_FLUID_GUESTS"
AGGREGATE = "fluid-guests"
IMAGE = "fluid-guest"
FLAVOR = ("11", "g1.tiny", 1, 256, 1, {"trait:" + TRAIT: "required"})
READY = "FLUID-GUEST-READY"
IMAGE_PROPS = {
    "trait:" + TRAIT: "required",   # boots (and snapshots of it) go to the real-guest host
    "hw_disk_bus": "virtio", "hw_vif_model": "virtio", "hw_cdrom_bus": "ide",
    "os_shutdown_timeout": "5",     # no ACPI daemon inside: do not wait 60 s for it
    "os_distro": "fluid-guest", "os_type": "linux",
}


def agents_alive(s):
    ags = call(s, "GET", "/v2.0/agents?host=" + GUEST_HOST, "network")["agents"]
    kinds = {a["agent_type"] for a in ags if a["alive"]}
    return {"Linux bridge agent", "DHCP agent", "L3 agent"} <= kinds


def guest_compute_up(s):
    svcs = call(s, "GET", "/os-services?binary=nova-compute&host=" + GUEST_HOST,
                "compute")["services"]
    return any(x["state"] == "up" and x["status"] == "enabled" for x in svcs)


def ensure_flavor(s):
    fid, name, vcpus, ram, disk, specs = FLAVOR
    have = call(s, "GET", "/flavors/" + fid, "compute", ok=(200, 404)) or {}
    if "flavor" not in have:
        say("creating flavor " + name)
        call(s, "POST", "/flavors", "compute", body={"flavor": {
            "id": fid, "name": name, "vcpus": vcpus, "ram": ram, "disk": disk,
            "os-flavor-access:is_public": True}})
    cur = call(s, "GET", "/flavors/%s/os-extra_specs" % fid, "compute")["extra_specs"]
    if any(cur.get(k) != v for k, v in specs.items()):
        call(s, "POST", "/flavors/%s/os-extra_specs" % fid, "compute",
             body={"extra_specs": specs})


def ensure_aggregate(s):
    aggs = [a for a in call(s, "GET", "/os-aggregates", "compute")["aggregates"]
            if a["name"] == AGGREGATE]
    if aggs:
        agg = aggs[0]
    else:
        say("creating aggregate %s (AZ %s)" % (AGGREGATE, AGGREGATE))
        agg = call(s, "POST", "/os-aggregates", "compute", body={"aggregate": {
            "name": AGGREGATE, "availability_zone": AGGREGATE}})["aggregate"]
        agg["hosts"], agg["metadata"] = [], {}
    if agg.get("metadata", {}).get("trait:" + TRAIT) != "required":
        call(s, "POST", "/os-aggregates/%s/action" % agg["id"], "compute", body={
            "set_metadata": {"metadata": {"trait:" + TRAIT: "required"}}})
    if GUEST_HOST not in (agg.get("hosts") or []):
        # The host must be mapped to the cell first (nova-scheduler discovers it every 15 s).
        def add():
            r = call(s, "POST", "/os-aggregates/%s/action" % agg["id"], "compute",
                     body={"add_host": {"host": GUEST_HOST}}, ok=(200, 404, 409))
            return r is not None and "aggregate" in r
        b.wait_until("host %s in aggregate %s" % (GUEST_HOST, AGGREGATE), add, 120)
        say("host %s added to aggregate %s" % (GUEST_HOST, AGGREGATE))


def file_sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def ensure_image(s):
    path = os.environ.get("DEVCLOUD_GUEST_IMAGE_FILE", "")
    imgs = call(s, "GET", "/v2/images?name=" + IMAGE, "image")["images"]
    if not path:
        act = [i for i in imgs if i["status"] == "active"]
        if not act:
            raise Fail("no guest image file given and no active image " + IMAGE)
        return act[0]["id"]
    want = file_sha256(path)
    for im in imgs:
        if im["status"] == "active" and im.get("fluid_guest_sha256") == want:
            return im["id"]
    say("uploading image %s (%d bytes, sha256 %s)" % (IMAGE, os.path.getsize(path), want[:16]))
    body = {"name": IMAGE, "disk_format": "qcow2", "container_format": "bare",
            "visibility": "public", "min_disk": 1, "min_ram": 128,
            "fluid_guest_sha256": want}
    body.update(IMAGE_PROPS)
    im = call(s, "POST", "/v2/images", "image", body=body)
    with open(path, "rb") as f:
        call(s, "PUT", "/v2/images/%s/file" % im["id"], "image", data=f,
             headers={"Content-Type": "application/octet-stream", "Expect": ""})
    for old in imgs:  # older builds: renamed, not deleted (a test may be booting one)
        if old["status"] == "active":
            call(s, "PATCH", "/v2/images/" + old["id"], "image",
                 data='[{"op":"replace","path":"/name","value":"%s-old-%s"}]'
                 % (IMAGE, old["id"][:8]),
                 headers={"Content-Type": "application/openstack-images-v2.1-json-patch"})
        else:
            call(s, "DELETE", "/v2/images/" + old["id"], "image", ok=(204, 404))
    return im["id"]


def bootstrap_guests():
    s = b.admin_session()
    b.wait_until("the linuxbridge, DHCP and L3 agents on %s" % GUEST_HOST,
                 lambda: agents_alive(s), 120, "neutron-linuxbridge-agent")
    b.wait_until("nova-compute on %s to be up" % GUEST_HOST, lambda: guest_compute_up(s), 180,
                 "nova-compute-guests")
    ensure_flavor(s)
    ensure_aggregate(s)
    iid = ensure_image(s)
    with open(os.path.join(b.STATE, "guest-image-id"), "w") as f:
        f.write(iid + "\n")
    say("real guests ready: image %s (%s), flavor %s, AZ %s" % (IMAGE, iid, FLAVOR[1], AGGREGATE))


# ---- verify --guests --------------------------------------------------------------------

class Guest:
    """SSH to a guest on its floating IP; the host key comes from the console log (read
    through Nova's API as the server's owner), so nothing is accepted blindly."""

    def __init__(self, sess, sid, fip, key, tmp):
        self.s, self.sid, self.fip, self.key = sess, sid, fip, key
        self.kh = os.path.join(tmp, "known_hosts-" + sid)

    def console(self):
        return call(self.s, "POST", "/servers/%s/action" % self.sid, "compute",
                    body={"os-getConsoleOutput": {}})["output"]

    def wait_ready(self, timeout=300):
        def ready():
            out = self.console()
            if READY not in out or "-----END SSH HOST KEY KEYS-----" not in out:
                return None
            keys = out.split("-----BEGIN SSH HOST KEY KEYS-----")[-1]
            keys = keys.split("-----END SSH HOST KEY KEYS-----")[0]
            return [ln.strip() for ln in keys.splitlines() if ln.strip().startswith("ssh-")]
        keys = b.wait_until("server %s to print %s" % (self.sid, READY), ready, timeout)
        with open(self.kh, "w") as f:
            for k in keys:
                f.write("%s %s\n" % (self.fip, k))

    def ssh(self, cmd, timeout=60):
        r = subprocess.run(
            ["/usr/bin/ssh", "-i", self.key, "-o", "UserKnownHostsFile=" + self.kh,
             "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
             "-o", "ConnectTimeout=5", "-o", "LogLevel=ERROR", "root@" + self.fip, cmd],
            capture_output=True, text=True, timeout=timeout)
        return r.returncode, r.stdout, r.stderr

    def wait_ssh(self, timeout=120):
        def ok():
            rc, out, err = self.ssh("echo ok")
            return rc == 0 and out.strip() == "ok"
        b.wait_until("SSH to %s" % self.fip, ok, timeout)


class Project:
    """One project's side of the round trip: network, router, security group, key pair;
    undo() deletes what it made, in reverse."""

    def __init__(self, name, tag, pub):
        self.name, self.tag = name, tag
        self.s = b.user_session(name)
        self.undo = []
        s = self.s
        call(s, "POST", "/os-keypairs", "compute", body={"keypair": {
            "name": tag, "public_key": pub}}, headers={"OpenStack-API-Version": "compute 2.92"})
        self.undo.append(("DELETE", "/os-keypairs/" + tag, "compute"))
        net = call(s, "POST", "/v2.0/networks", "network",
                   body={"network": {"name": tag}})["network"]
        self.undo.append(("DELETE", "/v2.0/networks/" + net["id"], "network"))
        sub = call(s, "POST", "/v2.0/subnets", "network", body={"subnet": {
            "name": tag, "network_id": net["id"], "ip_version": 4, "cidr": "10.97.0.0/24",
            "dns_nameservers": []}})["subnet"]
        ext = call(s, "GET", "/v2.0/networks?router:external=true&name=" + b.EXT_NET,
                   "network")["networks"][0]
        self.ext = ext["id"]
        rt = call(s, "POST", "/v2.0/routers", "network", body={"router": {
            "name": tag, "external_gateway_info": {"network_id": ext["id"]}}})["router"]
        self.undo.append(("DELETE", "/v2.0/routers/" + rt["id"], "network"))
        call(s, "PUT", "/v2.0/routers/%s/add_router_interface" % rt["id"], "network",
             body={"subnet_id": sub["id"]})
        self.undo.append(("PUT", "/v2.0/routers/%s/remove_router_interface" % rt["id"],
                          "network", {"subnet_id": sub["id"]}))
        sg = call(s, "POST", "/v2.0/security-groups", "network", body={
            "security_group": {"name": tag}})["security_group"]
        self.undo.append(("DELETE", "/v2.0/security-groups/" + sg["id"], "network"))
        for proto, port in (("tcp", 22), ("tcp", 80), ("icmp", None)):
            rule = {"security_group_id": sg["id"], "direction": "ingress",
                    "protocol": proto, "remote_ip_prefix": "0.0.0.0/0"}
            if port:
                rule.update(port_range_min=port, port_range_max=port)
            call(s, "POST", "/v2.0/security-group-rules", "network",
                 body={"security_group_rule": rule})
        self.net, self.sg = net, sg

    def boot(self, image_id, flavor_id):
        s = self.s
        srv = call(s, "POST", "/servers", "compute", body={"server": {
            "name": self.tag, "flavorRef": flavor_id, "imageRef": image_id,
            "key_name": self.tag, "networks": [{"uuid": self.net["id"]}],
            "security_groups": [{"name": self.sg["name"]}]}})["server"]
        self.undo.append(("DELETE", "/servers/" + srv["id"], "compute"))
        b.wait_status(s, "server " + srv["id"], "/servers/" + srv["id"], "compute", "server",
                      "ACTIVE", timeout=300)
        port = call(s, "GET", "/v2.0/ports?device_id=" + srv["id"], "network")["ports"][0]
        fip = call(s, "POST", "/v2.0/floatingips", "network", body={"floatingip": {
            "floating_network_id": self.ext, "port_id": port["id"]}})["floatingip"]
        self.undo.insert(0, ("DELETE", "/v2.0/floatingips/" + fip["id"], "network"))
        return srv["id"], fip["floating_ip_address"]

    def cleanup(self):
        s = self.s
        for u in reversed(self.undo):
            try:
                if u[0] == "DELETE" and u[1].startswith("/servers/"):
                    call(s, "DELETE", u[1], u[2], ok=(204, 404))
                    b.wait_until("the server to go", lambda: b.gone(s, u[1], u[2]), 120)
                elif u[0] == "DELETE" and u[1].startswith("/volumes/"):
                    b.wait_until("the volume to settle", lambda: call(
                        s, "GET", u[1], u[2])["volume"]["status"] in
                        ("available", "error"), 120)
                    call(s, "DELETE", u[1], u[2], ok=(202, 204, 404))
                else:
                    call(s, u[0], u[1], u[2], ok=(200, 202, 204, 404, 409),
                         body=u[3] if len(u) > 3 else None)
            except Exception as e:  # keep cleaning
                say("verify-guests cleanup (%s): %s" % (self.name, e))


def verify_guests():
    t0 = time.time()
    marks = []

    def mark(what):
        marks.append("%s %.0f s" % (what, time.time() - t0))
        say("verify-guests: %s after %.0f s" % (what, time.time() - t0))

    key = os.environ.get("DEVCLOUD_GUEST_SSH_KEY", "")
    if not os.path.exists(key):
        raise Fail("no SSH key %s (devcloud up --guests makes it)" % key)
    pub = open(key + ".pub").read().strip()
    tag = "devcloud-verify-guests-%d" % os.getpid()
    token = hashlib.sha256(os.urandom(16)).hexdigest()
    a = b.admin_session()
    image = call(a, "GET", "/v2/images?name=" + IMAGE, "image")["images"]
    if not image:
        raise Fail("no image %s: run devcloud up --guests" % IMAGE)
    flavor = FLAVOR[0]
    src = tgt = None
    with tempfile.TemporaryDirectory() as tmp:
        try:
            src = Project("source", tag, pub)
            sid, sfip = src.boot(image[0]["id"], flavor)
            mark("source server ACTIVE")
            g = Guest(src.s, sid, sfip, key, tmp)
            g.wait_ready()
            g.wait_ssh()
            mark("source guest SSH-ready on %s" % sfip)
            rc, out, err = g.ssh("echo %s >/root/verify.txt && sync && sha256sum /root/verify.txt"
                                 % token)
            if rc != 0:
                raise Fail("writing a file in the source guest: %s" % err.strip())
            want = out.split()[0]
            snap = call(src.s, "POST", "/servers/%s/action" % sid, "compute", body={
                "createImage": {"name": tag}}, headers={"OpenStack-API-Version": "compute 2.45"})
            snap_id = snap["image_id"]
            src.undo.append(("DELETE", "/v2/images/" + snap_id, "image"))
            wait_image(src.s, snap_id)
            im = call(src.s, "GET", "/v2/images/" + snap_id, "image")
            if not im.get("size"):
                raise Fail("snapshot %s is active with no data" % snap_id)
            mark("snapshot active (%s, %d bytes)" % (im.get("disk_format"), im["size"]))
            tgt = Project("target", tag, pub)
            tproj = b.Identity(a).projects["target"]
            call(src.s, "PATCH", "/v2/images/" + snap_id, "image",
                 data='[{"op":"replace","path":"/visibility","value":"shared"}]',
                 headers={"Content-Type": "application/openstack-images-v2.1-json-patch"})
            call(src.s, "POST", "/v2/images/%s/members" % snap_id, "image",
                 body={"member": tproj})
            call(tgt.s, "PUT", "/v2/images/%s/members/%s" % (snap_id, tproj), "image",
                 body={"status": "accepted"})
            tid, tfip = tgt.boot(snap_id, flavor)
            mark("snapshot booted ACTIVE in target")
            h = Guest(tgt.s, tid, tfip, key, tmp)
            h.wait_ready()
            h.wait_ssh()
            mark("target guest SSH-ready on %s" % tfip)
            rc, out, err = h.ssh("cat /root/verify.txt && sha256sum /root/verify.txt")
            lines = out.split("\n")
            if rc != 0 or lines[0].strip() != token or want not in out:
                raise Fail("the file written in the source guest is not in the target guest "
                           "(rc %d, %r, %s)" % (rc, out[:200], err.strip()))
            mark("file found in the target guest")
            vol = call(tgt.s, "POST", "/volumes", "block-storage", body={"volume": {
                "name": tag, "size": 1}})["volume"]
            tgt.undo.append(("DELETE", "/volumes/" + vol["id"], "block-storage"))
            b.wait_status(tgt.s, "volume " + tag, "/volumes/" + vol["id"], "block-storage",
                          "volume", "available")
            call(tgt.s, "POST", "/servers/%s/os-volume_attachments" % tid, "compute",
                 body={"volumeAttachment": {"volumeId": vol["id"]}})
            b.wait_status(tgt.s, "volume " + tag, "/volumes/" + vol["id"], "block-storage",
                          "volume", "in-use", timeout=180)
            rc, out, err = h.ssh("data-mount --wait 60 && test -b /dev/vdb && "
                                 "echo %s >/data/verify.txt && sync && cat /data/verify.txt"
                                 % token, timeout=120)
            if rc != 0 or out.strip().split("\n")[-1] != token:
                raise Fail("volume: /dev/vdb on /data in the target guest failed (rc %d, %r, %s)"
                           % (rc, out[-300:], err.strip()))
            mark("volume attached, /dev/vdb on /data, written")
            call(tgt.s, "DELETE", "/servers/%s/os-volume_attachments/%s" % (tid, vol["id"]),
                 "compute")
            b.wait_status(tgt.s, "volume " + tag, "/volumes/" + vol["id"], "block-storage",
                          "volume", "available", timeout=180)
            mark("volume detached")
        finally:
            for p in (tgt, src):
                if p:
                    p.cleanup()
    say("verify-guests: OK in %.0f s (%s)" % (time.time() - t0, "; ".join(marks)))


def wait_image(s, iid, timeout=300):
    def active():
        st = call(s, "GET", "/v2/images/" + iid, "image")["status"]
        if st in ("killed", "deleted", "deactivated"):
            raise Fail("snapshot %s went %s" % (iid, st))
        return st == "active"
    b.wait_until("snapshot %s to be active" % iid, active, timeout)
