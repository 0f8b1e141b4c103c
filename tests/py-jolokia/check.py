"""Drives the esb management endpoint with the stock Python `jolokia` client (PyPI), configured
the way an operator would configure it (URL, Basic credentials), and prints one JSON object
with what each step returned. tests/tests/jolokia_compat.rs (python_jolokia_client_works)
runs it against a real esb and checks it.

usage: .venv/bin/python check.py <jolokia-url> <control-token> <proxy-mbean>
Exit status 0 when every request got an answer (Jolokia errors are reported, not raised),
2 on bad usage, 1 when the client itself failed (connection error, exception).
"""

import json
import sys
import traceback

from jolokia import JolokiaClient


def pick(r):
    """A response as the test wants to see it (the client returns the decoded envelope)."""
    if isinstance(r, list):
        return [pick(i) for i in r]
    if not isinstance(r, dict):
        return {"not_json": str(r)}
    return {k: r.get(k) for k in ("status", "value", "error_type", "error", "request")}


def main():
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    url, token, proxy = sys.argv[1:]
    j = JolokiaClient(url, "control", token)
    out = {}
    try:
        out["version"] = pick(j.version())
        out["read"] = pick(j.get_attribute(mbean=proxy, attribute="State"))
        out["search"] = pick(j.search(mbean="esb:type=Proxy,*"))
        key_list = proxy.split(":", 1)[1]
        out["list"] = pick(j.list(path="esb/" + key_list))
        out["pause"] = pick(j.execute(mbean=proxy, operation="pause", arguments=[]))
        out["stateAfterPause"] = pick(j.get_attribute(mbean=proxy, attribute="State"))
        out["resume"] = pick(j.execute(mbean=proxy, operation="resume", arguments=[]))
        out["write"] = pick(j.set_attribute(mbean="esb:type=Server", attr_value_pairs=("HotDeploy", True)))
        out["hotDeployAfterWrite"] = pick(j.get_attribute(mbean="esb:type=Server", attribute="HotDeploy"))
        # Bulk: a list of attributes becomes one bulk read; bulk=True one bulk write.
        out["bulkRead"] = pick(j.get_attribute(mbean=proxy, attribute=["State", "Path"]))
        out["bulkWrite"] = pick(
            j.set_attribute(mbean="esb:type=Server", attr_value_pairs=[("HotDeploy", False)], bulk=True)
        )
    except Exception:  # report what the client raised, with what was collected so far
        out["exception"] = traceback.format_exc()
        print(json.dumps(out))
        return 1
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
