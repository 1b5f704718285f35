// Hawk request signing (https://github.com/mozilla/hawk), as Taskcluster verifies it, on
// WebCrypto: the access token never leaves the tab except as this MAC.

const encoder = new TextEncoder();

function base64(buffer) {
  let binary = "";
  for (const byte of new Uint8Array(buffer)) binary += String.fromCharCode(byte);
  return btoa(binary);
}

function nonce() {
  const bytes = crypto.getRandomValues(new Uint8Array(9));
  return base64(bytes).replace(/[+/=]/g, "x");
}

export async function payloadHash(contentType, body) {
  const type = contentType.split(";")[0].trim().toLowerCase();
  return base64(await crypto.subtle.digest("SHA-256", encoder.encode(`hawk.1.payload\n${type}\n${body}\n`)));
}

// The Authorization header for `method url` with an optional JSON body.
export async function authorization(credentials, method, url, body, contentType = "application/json") {
  const target = new URL(url, window.location.href);
  const port = target.port || (target.protocol === "https:" ? "443" : "80");
  const ts = Math.floor(Date.now() / 1000);
  const n = nonce();
  const hash = body === undefined ? "" : await payloadHash(contentType, body);
  const normalized = ["hawk.1.header", ts, n, method.toUpperCase(), target.pathname + target.search,
    target.hostname.toLowerCase(), port, hash, "", ""].join("\n");
  const key = await crypto.subtle.importKey("raw", encoder.encode(credentials.accessToken),
    { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const mac = base64(await crypto.subtle.sign("HMAC", key, encoder.encode(normalized)));
  const quote = (s) => String(s).replace(/["\\]/g, "");
  return `Hawk id="${quote(credentials.clientId)}", ts="${ts}", nonce="${n}"` +
    (hash ? `, hash="${hash}"` : "") + `, mac="${mac}"`;
}
