// Drives the esb management endpoint with the stock jolokia.js client, configured the way an
// operator would configure it (URL, Basic credentials; exec sent as POST because the endpoint
// refuses state changes over GET), and prints one JSON object with what each step returned.
// tests/tests/mgmt.rs (jolokia_js_client_works) runs it against a real esb and checks it.
//
// usage: node check.mjs <jolokia-url> <control-token> <proxy-mbean>
// Exit status 0 when every request got an answer (Jolokia errors are reported, not thrown),
// 2 on bad usage, 1 when the client itself failed (fetch error, exception).

// jolokia.js sets Basic credentials through `window.btoa`; Node has btoa but no window.
globalThis.window ??= globalThis;

const { default: Jolokia } = await import("jolokia.js");

const [url, token, proxy] = process.argv.slice(2);
if (!url || !token || !proxy) {
  console.error("usage: node check.mjs <jolokia-url> <control-token> <proxy-mbean>");
  process.exit(2);
}

const j = new Jolokia({ url, username: "control", password: token, timeout: 10000 });

// A response as the test wants to see it: status, value or error, and the request echo.
const pick = (r) =>
  r === undefined || r === null
    ? null
    : {
        status: r.status,
        value: r.value,
        error_type: r.error_type,
        error: r.error,
        request: r.request,
      };

const one = async (request, options = {}) => {
  try {
    const r = await j.request(request, options);
    return pick(Array.isArray(r) ? r[0] : r);
  } catch (e) {
    // jolokia.js rejects with the fetch Response when the HTTP status is not 200.
    if (e instanceof Response) {
      const text = await e.text();
      let body;
      try {
        body = JSON.parse(text);
      } catch {
        body = text;
      }
      return { http_status: e.status, body };
    }
    throw e;
  }
};

const out = { client: j.CLIENT_VERSION };
try {
  // GET forms (jolokia.js picks GET for single requests unless told otherwise).
  out.version = await one({ type: "version" });
  out.readOne = await one({ type: "read", mbean: proxy, attribute: "State" });
  out.readAll = await one({ type: "read", mbean: proxy });
  out.readAllPost = await one({ type: "read", mbean: proxy }, { method: "post" });
  out.readMany = await one({ type: "read", mbean: proxy, attribute: ["State", "Path"] });
  out.search = await one({ type: "search", mbean: "esb:type=Proxy,*" });
  out.list = await one({ type: "list", path: "esb/" + proxy.replace(/^esb:/, "") + "/op" });
  out.listDepth = await one({ type: "list" }, { maxDepth: 1 });
  // State changes as POST.
  out.pause = await one({ type: "exec", mbean: proxy, operation: "pause" }, { method: "post" });
  out.stateAfterPause = await one({ type: "read", mbean: proxy, attribute: "State" });
  out.resume = await one({ type: "exec", mbean: proxy, operation: "resume()" }, { method: "post" });
  out.execGet = await one({ type: "exec", mbean: proxy, operation: "pause" });
  // Bulk: an ok item, an error item, an exec.
  const bulk = await j.request([
    { type: "read", mbean: proxy, attribute: "State" },
    { type: "read", mbean: "esb:type=Unit,name=no-such-unit", attribute: "State" },
    { type: "exec", mbean: "esb:type=Server", operation: "maintenance", arguments: [false] },
  ]);
  out.bulk = Array.isArray(bulk) ? bulk.map(pick) : { notAnArray: bulk };
} catch (e) {
  out.exception = String(e && e.stack ? e.stack : e);
  console.log(JSON.stringify(out));
  process.exit(1);
}
console.log(JSON.stringify(out));
