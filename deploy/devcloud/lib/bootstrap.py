# SPDX-License-Identifier: Apache-2.0
# devcloud: everything done through the OpenStack APIs, idempotently (find, else create):
# identity (projects, users, roles, catalog), flavors, the image, the external network,
# clouds.yaml and the admin openrc, waits for services, and a smoke test (verify).
# Run with /usr/bin/python3; passwords come in the environment, never in argv.
import ipaddress
import json
import os
import socket
import subprocess
import sys
import time

from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3

KS = "http://127.0.0.1:5000"
REGION = "RegionOne"
USER_PW = os.environ.get("DEVCLOUD_USER_PW", "")
SVC_PW = os.environ.get("DEVCLOUD_SVC_PW", "")
STATE = os.environ.get("DEVCLOUD_STATE_DIR", "/var/lib/devcloud")

SERVICES = [  # type, name, url
    ("image", "glance", "http://127.0.0.1:9292"),
    ("placement", "placement", "http://127.0.0.1:8778"),
    ("compute", "nova", "http://127.0.0.1:8774/v2.1"),
    ("network", "neutron", "http://127.0.0.1:9696"),
    ("volumev3", "cinderv3", "http://127.0.0.1:8776/v3/%(project_id)s"),
    ("block-storage", "cinder", "http://127.0.0.1:8776/v3/%(project_id)s"),
]
SERVICE_USERS = ["glance", "placement", "nova", "neutron", "cinder"]
PROJECTS = ["source", "target"]
FLAVORS = [  # id, name, vcpus, ram MiB, disk GiB, extra specs
    ("1", "m1.tiny", 1, 512, 1, {}),
    ("2", "m1.small", 1, 2048, 20, {}),
    ("3", "m1.medium", 2, 4096, 40, {"hw:cpu_policy": "shared", "fluid:tier": "gold"}),
    ("4", "m1.large", 4, 8192, 80, {}),
]
IMAGE_NAME = "devcloud-tiny"
IMAGE_SIZE = 1 << 20
EXT_NET = "public"


def say(msg):
    print(time.strftime("%H:%M:%S", time.gmtime()) + " devcloud: " + msg,
          file=sys.stderr, flush=True)


class Fail(Exception):
    pass


def admin_session():
    auth = v3.Password(auth_url=KS + "/v3", username="admin", password=USER_PW,
                       project_name="admin", user_domain_id="default",
                       project_domain_id="default")
    return ks_session.Session(auth=auth, timeout=90)


def call(sess, method, url, service=None, ok=(200, 201, 202, 204), body=None,
         headers=None, data=None, **kw):
    """One API call; returns the decoded JSON (or None). Never retries on 4xx."""
    if service:
        kw["endpoint_filter"] = {"service_type": service, "interface": "public",
                                 "region_name": REGION}
    hdrs = dict(headers or {})
    for attempt in range(5):
        try:
            r = sess.request(url, method, json=body, data=data, headers=hdrs,
                             raise_exc=False, timeout=90, **kw)
        except Exception as e:  # refused while a service starts, or a 90 s timeout
            if attempt == 4:
                raise Fail("%s %s: %s" % (method, url, e))
            time.sleep(2)
            continue
        if r.status_code >= 500 and attempt < 4:
            time.sleep(2)
            continue
        break
    if r.status_code not in ok:
        raise Fail("%s %s (%s) -> HTTP %d: %s" % (method, url, service or "identity",
                                                   r.status_code, r.text[:300]))
    if r.status_code == 204 or not r.content:
        return None
    try:
        return r.json()
    except ValueError:
        return None


def find_one(items, what):
    if len(items) > 1:
        raise Fail("more than one %s: %s" % (what, [i.get("id") for i in items]))
    return items[0] if items else None


# ---- identity ---------------------------------------------------------------------------

def password_works(user, pw):
    a = v3.Password(auth_url=KS + "/v3", username=user, password=pw,
                    user_domain_id="default")
    try:
        ks_session.Session(auth=a, timeout=90).get_token()
        return True
    except Exception:
        return False


class Identity:
    """What keystone holds, read with one list call per kind; ensure_* create what lacks."""

    def __init__(self, s):
        self.s = s
        self.projects = {p["name"]: p["id"] for p in call(
            s, "GET", KS + "/v3/projects?domain_id=default")["projects"]}
        self.users = {u["name"]: u["id"] for u in call(
            s, "GET", KS + "/v3/users?domain_id=default")["users"]}
        self.roles = {r["name"]: r["id"] for r in call(s, "GET", KS + "/v3/roles")["roles"]}
        self.services = {x["type"]: x["id"] for x in call(
            s, "GET", KS + "/v3/services")["services"]}
        self.endpoints = call(s, "GET", KS + "/v3/endpoints")["endpoints"]
        self.assigned = {(a["scope"]["project"]["id"], a["user"]["id"], a["role"]["id"])
                         for a in call(s, "GET", KS + "/v3/role_assignments")
                         ["role_assignments"]
                         if "project" in a.get("scope", {}) and "user" in a}

    def project(self, name, desc):
        if name not in self.projects:
            say("creating project " + name)
            self.projects[name] = call(self.s, "POST", KS + "/v3/projects", body={"project": {
                "name": name, "domain_id": "default", "description": desc}})["project"]["id"]
        return self.projects[name]

    def role(self, name):
        if name not in self.roles:
            self.roles[name] = call(self.s, "POST", KS + "/v3/roles",
                                    body={"role": {"name": name}})["role"]["id"]
        return self.roles[name]

    def user(self, name, pw, project_id):
        if name not in self.users:
            say("creating user " + name)
            self.users[name] = call(self.s, "POST", KS + "/v3/users", body={"user": {
                "name": name, "domain_id": "default", "password": pw,
                "default_project_id": project_id, "enabled": True}})["user"]["id"]
        elif os.environ.get("DEVCLOUD_PASSWORDS_SET") != "1" and not password_works(name, pw):
            say("resetting the password of user " + name)
            call(self.s, "PATCH", KS + "/v3/users/" + self.users[name],
                 body={"user": {"password": pw}})
        return self.users[name]

    def grant(self, project_id, user_id, role_id):
        if (project_id, user_id, role_id) not in self.assigned:
            call(self.s, "PUT", "%s/v3/projects/%s/users/%s/roles/%s"
                 % (KS, project_id, user_id, role_id))

    def endpoints_of(self, stype, name, url):
        sid = self.services.get(stype)
        if not sid:
            say("registering service %s (%s)" % (name, stype))
            sid = call(self.s, "POST", KS + "/v3/services", body={"service": {
                "type": stype, "name": name, "enabled": True}})["service"]["id"]
        for iface in ("public", "internal", "admin"):
            mine = [e for e in self.endpoints if e["service_id"] == sid
                    and e["interface"] == iface and e.get("region_id") == REGION]
            if mine and mine[0]["url"] != url:
                call(self.s, "PATCH", KS + "/v3/endpoints/" + mine[0]["id"],
                     body={"endpoint": {"url": url}})
            elif not mine:
                call(self.s, "POST", KS + "/v3/endpoints", body={"endpoint": {
                    "service_id": sid, "interface": iface, "url": url, "region_id": REGION}})


def identity():
    wait_http(KS + "/v3", 120, "keystone")
    idn = Identity(admin_session())
    admin_role, member, service_role = (idn.role(r) for r in ("admin", "member", "service"))
    svc_project = idn.project("service", "devcloud service users")
    for u in SERVICE_USERS:
        uid = idn.user(u, SVC_PW, svc_project)
        for r in (admin_role, service_role):
            idn.grant(svc_project, uid, r)
    for p in PROJECTS:
        pid = idn.project(p, "devcloud test project " + p)
        idn.grant(pid, idn.user(p, USER_PW, pid), member)
    for stype, name, url in SERVICES:
        idn.endpoints_of(stype, name, url)


# ---- waiting ----------------------------------------------------------------------------

def daemon_alive(name):
    try:
        pid = open(os.path.join(STATE, "run", name + ".pid")).read().strip()
    except OSError:
        return False
    return os.path.exists("/proc/" + pid)


def wait_http(url, timeout, daemon=None):
    """Waits until url answers below 500; fails at once when its daemon has exited."""
    import urllib.error
    import urllib.request
    end = time.time() + timeout
    while True:
        if daemon and not daemon_alive(daemon):
            raise Fail("%s exited: see %s/%s.log" % (
                daemon, os.environ.get("DEVCLOUD_LOG_DIR", "the log folder"), daemon))
        try:
            urllib.request.urlopen(url, timeout=5).read()
            return
        except urllib.error.HTTPError as e:
            if e.code < 500:
                return
            err = e
        except Exception as e:
            err = e
        if time.time() > end:
            raise Fail("%s did not answer within %d s: %s" % (url, timeout, err))
        time.sleep(0.5)


DAEMONS = {"image": "glance-api", "placement": "placement-api", "compute": "nova-api",
           "network": "neutron-server", "volumev3": "cinder-api", "block-storage": "cinder-api"}


def wait_apis(timeout=180):
    for stype, _, url in SERVICES:
        wait_http(url.replace("/%(project_id)s", "/").replace("/v2.1", "/"), timeout,
                  DAEMONS[stype])


def wait_until(what, fn, timeout, daemon=None):
    end = time.time() + timeout
    while True:
        if daemon and not daemon_alive(daemon):
            raise Fail("waiting for %s: %s exited: see %s/%s.log" % (
                what, daemon, os.environ.get("DEVCLOUD_LOG_DIR", "the log folder"), daemon))
        got = fn()
        if got:
            return got
        if time.time() > end:
            raise Fail("timed out after %d s waiting for %s" % (timeout, what))
        time.sleep(1)


def compute_up(s):
    svcs = call(s, "GET", "/os-services?binary=nova-compute", "compute")["services"]
    return any(x["state"] == "up" and x["status"] == "enabled" for x in svcs)


def hypervisor_listed(s):
    return len(call(s, "GET", "/os-hypervisors", "compute")["hypervisors"]) > 0


def volume_up(s):
    svcs = call(s, "GET", "/os-services?binary=cinder-volume", "block-storage")["services"]
    return any(x["state"] == "up" and x["status"] == "enabled" for x in svcs)


def agent_alive(s):
    ags = call(s, "GET", "/v2.0/agents?agent_type=Open vSwitch agent", "network")["agents"]
    return any(a["alive"] for a in ags)


# ---- resources --------------------------------------------------------------------------

def ensure_flavors(s):
    have = {f["id"]: f for f in call(s, "GET", "/flavors/detail?is_public=None",
                                     "compute")["flavors"]}
    for fid, name, vcpus, ram, disk, specs in FLAVORS:
        if fid not in have:
            say("creating flavor " + name)
            call(s, "POST", "/flavors", "compute", body={"flavor": {
                "id": fid, "name": name, "vcpus": vcpus, "ram": ram, "disk": disk,
                "os-flavor-access:is_public": True}})
        if specs:
            cur = call(s, "GET", "/flavors/%s/os-extra_specs" % fid, "compute")["extra_specs"]
            if any(cur.get(k) != v for k, v in specs.items()):
                call(s, "POST", "/flavors/%s/os-extra_specs" % fid, "compute",
                     body={"extra_specs": specs})


def image_bytes():
    line = b"FluidCloud devcloud test image: 1 MiB of known bytes.\n"
    return (line * (IMAGE_SIZE // len(line) + 1))[:IMAGE_SIZE]


def ensure_image(s):
    imgs = call(s, "GET", "/v2/images?name=" + IMAGE_NAME, "image")["images"]
    for im in imgs:
        if im["status"] == "active":
            return im["id"]
    for im in imgs:  # an upload interrupted by an earlier run
        call(s, "DELETE", "/v2/images/" + im["id"], "image")
    say("uploading image " + IMAGE_NAME)
    im = call(s, "POST", "/v2/images", "image", body={
        "name": IMAGE_NAME, "disk_format": "raw", "container_format": "bare",
        "visibility": "public", "min_disk": 1, "os_distro": "none"})
    call(s, "PUT", "/v2/images/%s/file" % im["id"], "image", data=image_bytes(),
         headers={"Content-Type": "application/octet-stream", "Expect": ""})
    return im["id"]


def clashes(net):
    """True when net overlaps a route, an address of this host, a name server or the
    address of an apt mirror (a range used on a host bridge later must not hide them)."""
    out = subprocess.run(["ip", "-4", "-o", "route", "show", "table", "all"],
                         capture_output=True, text=True).stdout
    out += subprocess.run(["ip", "-4", "-o", "addr", "show"], capture_output=True,
                          text=True).stdout
    for word in out.split():
        try:
            other = ipaddress.ip_network(word, strict=False)
        except ValueError:
            continue
        if other.prefixlen > 0 and other.version == 4 and net.overlaps(other):
            return True
    hosts = set()
    for path in ["/etc/resolv.conf", "/etc/apt/sources.list"] + [
            os.path.join("/etc/apt/sources.list.d", f)
            for f in (os.listdir("/etc/apt/sources.list.d")
                      if os.path.isdir("/etc/apt/sources.list.d") else [])]:
        try:
            text = open(path).read()
        except OSError:
            continue
        for word in text.replace("/", " ").split():
            if "." in word and not word.startswith("#"):
                hosts.add(word.strip(":"))
    for h in hosts:
        try:
            addrs = {a[4][0] for a in socket.getaddrinfo(h, None, socket.AF_INET)}
        except (OSError, UnicodeError):
            continue
        if any(ipaddress.ip_address(a) in net for a in addrs):
            return True
    return False


def pick_external_cidr():
    for c in ["172.24.4.0/24", "172.29.4.0/24", "10.250.4.0/24", "192.168.254.0/24"]:
        if not clashes(ipaddress.ip_network(c)):
            return c
    raise Fail("every candidate external range clashes with this host's routes or mirrors")


def ensure_network(s):
    nets = call(s, "GET", "/v2.0/networks?name=" + EXT_NET, "network")["networks"]
    net = find_one(nets, "network " + EXT_NET)
    if not net:
        say("creating external network " + EXT_NET)
        net = call(s, "POST", "/v2.0/networks", "network", body={"network": {
            "name": EXT_NET, "router:external": True, "shared": False,
            "provider:network_type": "flat", "provider:physical_network": "public"}})["network"]
    subs = call(s, "GET", "/v2.0/subnets?network_id=" + net["id"], "network")["subnets"]
    if subs:
        return subs[0]["cidr"]
    cidr = ipaddress.ip_network(pick_external_cidr())
    h = list(cidr.hosts())
    say("creating subnet %s-subnet %s" % (EXT_NET, cidr))
    call(s, "POST", "/v2.0/subnets", "network", body={"subnet": {
        "name": EXT_NET + "-subnet", "network_id": net["id"], "ip_version": 4,
        "cidr": str(cidr), "gateway_ip": str(h[0]), "enable_dhcp": False,
        "allocation_pools": [{"start": str(h[9]), "end": str(h[-5])}]}})
    return str(cidr)


def resources():
    s = admin_session()
    wait_apis()
    ensure_flavors(s)
    ensure_image(s)
    cidr = ensure_network(s)
    with open(os.path.join(STATE, "external-cidr"), "w") as f:
        f.write(cidr + "\n")
    wait_until("the fake OVS agent to be alive", lambda: agent_alive(s), 120, "fake-ovs-agent")
    wait_until("nova-compute to be up", lambda: compute_up(s), 180, "nova-compute")


def services_ready():
    s = admin_session()
    wait_until("the hypervisor devcloud to be listed", lambda: hypervisor_listed(s), 120, "nova-compute")
    if os.environ.get("DEVCLOUD_NO_VOLUME") != "1":
        wait_until("cinder-volume to be up", lambda: volume_up(s), 180, "cinder-volume")


# ---- client files -----------------------------------------------------------------------

def write_secret_file(path, text):
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o600)
    os.rename(tmp, path)


def clouds():
    def entry(cloud, user, project):
        return ("  %s:\n    auth:\n      auth_url: %s/v3\n      username: %s\n"
                "      password: %s\n      project_name: %s\n"
                "      user_domain_name: Default\n      project_domain_name: Default\n"
                "    region_name: %s\n    interface: public\n"
                "    identity_api_version: 3\n" % (cloud, KS, user, json.dumps(USER_PW),
                                                   project, REGION))
    text = "# Written by deploy/devcloud/devcloud.\nclouds:\n"
    text += entry("devcloud-admin", "admin", "admin")
    for p in PROJECTS:
        text += entry(p, p, p)
    write_secret_file(os.path.join(STATE, "clouds.yaml"), text)
    rc = ("# Written by deploy/devcloud/devcloud: the devcloud's admin credentials.\n"
          "export OS_AUTH_URL=%s/v3\nexport OS_USERNAME=admin\nexport OS_PASSWORD=%s\n"
          "export OS_PROJECT_NAME=admin\nexport OS_USER_DOMAIN_NAME=Default\n"
          "export OS_PROJECT_DOMAIN_NAME=Default\nexport OS_REGION_NAME=%s\n"
          "export OS_IDENTITY_API_VERSION=3\nexport OS_INTERFACE=public\n"
          % (KS, shell_quote(USER_PW), REGION))
    write_secret_file(os.path.join(STATE, "admin-openrc"), rc)


def shell_quote(s):
    return "'" + s.replace("'", "'\\''") + "'"


def user_session(project):
    auth = v3.Password(auth_url=KS + "/v3", username=project, password=USER_PW,
                       project_name=project, user_domain_id="default",
                       project_domain_id="default")
    return ks_session.Session(auth=auth, timeout=90)


def wait_status(s, what, url, service, key, want, timeout=120):
    def check():
        st = call(s, "GET", url, service)[key]["status"]
        if st.lower() in ("error", "error_deleting"):
            raise Fail("%s went to status %s" % (what, st))
        return st == want
    wait_until("%s to be %s" % (what, want), check, timeout)


def gone(s, url, service):
    r = s.request(url, "GET", raise_exc=False, timeout=90, endpoint_filter={
        "service_type": service, "interface": "public", "region_name": REGION})
    return r.status_code == 404


def verify():
    """A smoke test through every API as the users source and target; cleans up after."""
    t0 = time.time()
    s = user_session("source")
    tag = "devcloud-verify-%d" % os.getpid()
    undo = []
    try:
        net = call(s, "POST", "/v2.0/networks", "network",
                   body={"network": {"name": tag}})["network"]
        undo.append(("DELETE", "/v2.0/networks/" + net["id"], "network"))
        sub = call(s, "POST", "/v2.0/subnets", "network", body={"subnet": {
            "name": tag, "network_id": net["id"], "ip_version": 4,
            "cidr": "10.99.0.0/24"}})["subnet"]
        ext = call(s, "GET", "/v2.0/networks?router:external=true&name=" + EXT_NET,
                   "network")["networks"][0]
        rt = call(s, "POST", "/v2.0/routers", "network", body={"router": {
            "name": tag, "external_gateway_info": {"network_id": ext["id"]}}})["router"]
        undo.append(("DELETE", "/v2.0/routers/" + rt["id"], "network"))
        call(s, "PUT", "/v2.0/routers/%s/add_router_interface" % rt["id"], "network",
             body={"subnet_id": sub["id"]})
        undo.append(("PUT", "/v2.0/routers/%s/remove_router_interface" % rt["id"],
                     "network", {"subnet_id": sub["id"]}))
        sgs = []
        for n in ("web", "db"):
            sg = call(s, "POST", "/v2.0/security-groups", "network", body={
                "security_group": {"name": tag + "-" + n}})["security_group"]
            undo.append(("DELETE", "/v2.0/security-groups/" + sg["id"], "network"))
            sgs.append(sg)
        call(s, "POST", "/v2.0/security-group-rules", "network", body={
            "security_group_rule": {"security_group_id": sgs[1]["id"], "direction": "ingress",
                                    "protocol": "tcp", "port_range_min": 5432,
                                    "port_range_max": 5432,
                                    "remote_group_id": sgs[0]["id"]}})
        flavor = call(s, "GET", "/flavors/1", "compute")["flavor"]
        image = call(s, "GET", "/v2/images?name=" + IMAGE_NAME, "image")["images"][0]
        srv = call(s, "POST", "/servers", "compute", body={"server": {
            "name": tag, "flavorRef": flavor["id"], "imageRef": image["id"],
            "networks": [{"uuid": net["id"]}],
            "security_groups": [{"name": sg["name"]} for sg in sgs]}})["server"]
        undo.append(("DELETE", "/servers/" + srv["id"], "compute"))
        wait_status(s, "server " + tag, "/servers/" + srv["id"], "compute", "server", "ACTIVE")
        port = call(s, "GET", "/v2.0/ports?device_id=" + srv["id"], "network")["ports"][0]
        fip = call(s, "POST", "/v2.0/floatingips", "network", body={"floatingip": {
            "floating_network_id": ext["id"], "port_id": port["id"]}})["floatingip"]
        undo.insert(0, ("DELETE", "/v2.0/floatingips/" + fip["id"], "network"))

        def fip_shown():
            addrs = call(s, "GET", "/servers/" + srv["id"], "compute")["server"]["addresses"]
            return any(a.get("addr") == fip["floating_ip_address"]
                       for v in addrs.values() for a in v)
        wait_until("the floating IP in the server's addresses", fip_shown, 60)
        vol = call(s, "POST", "/volumes", "block-storage", body={"volume": {
            "name": tag, "size": 1}})["volume"]
        undo.append(("DELETE", "/volumes/" + vol["id"], "block-storage"))
        wait_status(s, "volume " + tag, "/volumes/" + vol["id"], "block-storage", "volume",
                    "available")
        call(s, "POST", "/servers/%s/os-volume_attachments" % srv["id"], "compute",
             body={"volumeAttachment": {"volumeId": vol["id"]}})
        wait_status(s, "volume " + tag, "/volumes/" + vol["id"], "block-storage", "volume",
                    "in-use")
        call(s, "DELETE", "/servers/%s/os-volume_attachments/%s" % (srv["id"], vol["id"]),
             "compute")
        wait_status(s, "volume " + tag, "/volumes/" + vol["id"], "block-storage", "volume",
                    "available")
        t = user_session("target")
        if not call(t, "GET", "/v2/images?name=" + IMAGE_NAME, "image")["images"]:
            raise Fail("user target does not see image " + IMAGE_NAME)
        if not call(t, "GET", "/flavors/1", "compute"):
            raise Fail("user target does not see flavor m1.tiny")
        say("verify: network, router, security groups, server, floating IP, volume "
            "attach/detach as source; image and flavor as target: OK in %.0f s"
            % (time.time() - t0))
    finally:
        for u in reversed(undo):
            try:
                if u[0] == "DELETE" and u[1].startswith("/servers/"):
                    call(s, "DELETE", u[1], u[2], ok=(204, 404))
                    wait_until("the server to go", lambda: gone(s, u[1], u[2]), 60)
                elif u[0] == "DELETE" and u[1].startswith("/volumes/"):
                    wait_until("the volume to settle", lambda: call(
                        s, "GET", u[1], u[2])["volume"]["status"] in
                        ("available", "error"), 60)
                    call(s, "DELETE", u[1], u[2], ok=(202, 204, 404))
                else:
                    call(s, u[0], u[1], u[2], ok=(200, 202, 204, 404),
                         body=u[3] if len(u) > 3 else None)
            except Fail as e:
                say("verify cleanup: " + str(e))


def main():
    sys.modules.setdefault("bootstrap", sys.modules[__name__])  # one module for guests.py
    import guests  # lib/guests.py: the real-guest steps (devcloud --guests)
    steps = {"identity": identity, "resources": resources, "ready": services_ready,
             "clouds": clouds, "verify": verify, "guests": guests.bootstrap_guests,
             "verify-guests": guests.verify_guests}
    if len(sys.argv) < 2 or any(a not in steps for a in sys.argv[1:]):
        print("usage: bootstrap.py STEP... (identity resources ready clouds verify guests "
              "verify-guests)",
              file=sys.stderr)
        return 2
    if not USER_PW or not SVC_PW:
        print("bootstrap.py: DEVCLOUD_USER_PW and DEVCLOUD_SVC_PW must be set",
              file=sys.stderr)
        return 2
    try:
        for step in sys.argv[1:]:
            steps[step]()
    except Fail as e:
        say("ERROR: " + str(e))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
