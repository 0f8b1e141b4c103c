#!/usr/bin/env python3
"""The operator's side of scripts/bench-reload: issues one kind of reload, once or every
EVERY s for DURATION s, from one resident process.

Each reload costs no fork or exec on the load generator's core: the Jolokia call is one
HTTP request from this process, files are copied and renamed in-process, and signals are
sent with kill(2). A loop of `curl` (or `nginx -s reload`, `cp`, `mv`, `date`, `sleep`) started
a few processes per reload on the core wrk runs on, which stalled wrk and showed up in the
p99 of every target, even for a call that reloads nothing (the `control` kind measures what
is left of that).

  reload-driver.py KIND once REV N        one reload to revision REV (A|B), named N
  reload-driver.py KIND loop DURATION EVERY
                                          reloads every EVERY s, B first, from EVERY s after
                                          the start until 0.5 s before DURATION; appends
                                          "N REV RC" per reload to $WORK/reloads.txt

KIND: control (a Jolokia `version` request, reloads nothing), deploy (deploy(unit, content)),
disk (rename deployments/rev/unit.toml into place, then reload(rev)), restart (rename
esb.toml into place, then Server.restart), upgrade (Server.upgrade), nginx (rename nginx.conf
into place, then SIGHUP to the master: what `nginx -s reload` sends), nginx-upgrade (USR2 +
WINCH + QUIT, see nginx_upgrade below), haproxy (rename haproxy.cfg into place, then SIGUSR2 to
the master).

Environment: WORK, ESB_DIR, P_MGMT, ESB_TOKEN, NGINX_PID (nginx), HAPROXY_PID (haproxy).
esb answers are written to $WORK/reload-resp/N.json (control: $WORK/control-resp.json), where
bench-reload checks their outcome.
"""
import http.client
import os
import shutil
import signal
import sys
import time

WORK = os.environ["WORK"]


def env(name):
    value = os.environ.get(name)
    if not value:
        sys.exit(f"reload-driver: {name} is not set")
    return value


def replace(src, dst):
    """Copies src next to dst and renames it into place (what an editor or a deploy tool does)."""
    tmp = os.path.join(os.path.dirname(dst), "." + os.path.basename(dst) + ".new")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def esb_post(body_file, out_file):
    """POSTs the JSON in body_file to the management endpoint; the answer goes to out_file.
    A new connection per call: an upgraded or restarted process closes the old one."""
    with open(body_file, "rb") as f:
        body = f.read()
    conn = http.client.HTTPConnection("127.0.0.1", int(env("P_MGMT")), timeout=60)
    try:
        conn.request("POST", "/jolokia", body, {
            "Authorization": "Bearer " + env("ESB_TOKEN"),
            "Content-Type": "application/json",
        })
        resp = conn.getresponse()
        data = resp.read()
    finally:
        conn.close()
    with open(out_file, "wb") as f:
        f.write(data)
    return 0 if resp.status == 200 else 1


def resp_file(n):
    return os.path.join(WORK, "reload-resp", f"{n}.json")


def gone(pid):
    """True when process pid is gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return True


def has_child(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return bool(f.read().strip())
    except FileNotFoundError:
        return False


def read_pid(path):
    try:
        with open(path) as f:
            return int(f.read().strip() or 0)
    except (FileNotFoundError, ValueError):
        return 0


def log(path, line):
    with open(path, "a") as f:
        f.write(time.strftime("%H:%M:%S ") + line + "\n")


def nginx_upgrade(rev, n):
    """nginx binary upgrade, the documented procedure (nginx.org/en/docs/control.html): USR2 to
    the master starts a new master from the same binary on the inherited sockets, which reads
    nginx.conf A|B; the old master's pid file becomes nginx.pid.oldbin and the new one writes
    nginx.pid; WINCH to the old master stops its workers gracefully, QUIT ends it. A new master
    ignores USR2 while its parent (the previous old master) still runs, so that one must be
    gone first. Failures go to $WORK/nginx-upgrade.log."""
    d = os.path.join(WORK, "nginx")
    failures = os.path.join(WORK, "nginx-upgrade.log")
    prev = read_pid(os.path.join(d, "upgrade-prev.pid"))
    if prev:
        deadline = time.monotonic() + 5
        while not gone(prev) and time.monotonic() < deadline:
            time.sleep(0.02)
        if not gone(prev):
            log(failures, f"reload {n}: previous old master {prev} still runs after 5 s")
            return 1
    replace(os.path.join(d, f"nginx-up-{rev}.conf"), os.path.join(d, "nginx.conf"))
    pidfile = os.path.join(d, "nginx.pid")
    old = read_pid(pidfile)
    os.kill(old, signal.SIGUSR2)
    new = 0
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        new = read_pid(pidfile)
        if new and new != old and has_child(new):
            break
        time.sleep(0.02)
    else:
        log(failures, f"reload {n}: no new master with a worker 5 s after USR2 to {old} (nginx.pid: {new or 'none'})")
        return 1
    os.kill(old, signal.SIGWINCH)
    os.kill(old, signal.SIGQUIT)
    with open(os.path.join(d, "upgrade-prev.pid"), "w") as f:
        f.write(f"{old}\n")
    with open(os.path.join(WORK, "nginx-upgrade-pids.txt"), "a") as f:
        f.write(f"{n} {old} {new}\n")
    return 0


def reload(kind, rev, n):
    """One reload of KIND to revision REV; 0 when it was issued (esb: answered 200)."""
    if kind == "control":
        return esb_post(os.path.join(WORK, "control.json"), os.path.join(WORK, "control-resp.json"))
    if kind == "deploy":
        return esb_post(os.path.join(WORK, f"deploy-{rev}.json"), resp_file(n))
    if kind == "disk":
        replace(os.path.join(WORK, "units", f"rev-{rev}.toml"),
                os.path.join(env("ESB_DIR"), "deployments", "rev", "unit.toml"))
        return esb_post(os.path.join(WORK, "reload-rev.json"), resp_file(n))
    if kind == "restart":
        replace(os.path.join(WORK, f"esb-{rev}.toml"), os.path.join(env("ESB_DIR"), "esb.toml"))
        return esb_post(os.path.join(WORK, "restart.json"), resp_file(n))
    if kind == "upgrade":
        return esb_post(os.path.join(WORK, "upgrade.json"), resp_file(n))
    if kind == "nginx":
        d = os.path.join(WORK, "nginx")
        replace(os.path.join(d, f"nginx-{rev}.conf"), os.path.join(d, "nginx.conf"))
        os.kill(int(env("NGINX_PID")), signal.SIGHUP)
        return 0
    if kind == "nginx-upgrade":
        return nginx_upgrade(rev, n)
    if kind == "haproxy":
        d = os.path.join(WORK, "haproxy")
        replace(os.path.join(d, f"haproxy-{rev}.cfg"), os.path.join(d, "haproxy.cfg"))
        os.kill(int(env("HAPROXY_PID")), signal.SIGUSR2)
        return 0
    sys.exit(f"reload-driver: unknown kind {kind}")


def issue(kind, rev, n):
    try:
        return reload(kind, rev, n)
    except OSError as e:
        log(os.path.join(WORK, "reload-driver.log"), f"{kind} reload {n}: {e}")
        return 1


def loop(kind, duration, every):
    start = time.monotonic()
    done = []
    i = 0
    while True:
        i += 1
        due = start + i * every
        if due > start + duration - 0.5:
            break
        wait = due - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        rev = "B" if i % 2 else "A"
        done.append(f"{i} {rev} {issue(kind, rev, i)}\n")
    with open(os.path.join(WORK, "reloads.txt"), "a") as f:
        f.writelines(done)


def main():
    if len(sys.argv) == 5 and sys.argv[2] == "once":
        sys.exit(issue(sys.argv[1], sys.argv[3], sys.argv[4]))
    if len(sys.argv) == 5 and sys.argv[2] == "loop":
        loop(sys.argv[1], float(sys.argv[3]), float(sys.argv[4]))
        return
    sys.exit(__doc__)


if __name__ == "__main__":
    main()
