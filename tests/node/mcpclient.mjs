// An MCP client for tokengate's end-to-end tests, built with the official TypeScript SDK, given
// nothing but the MCP server's URL: the SDK finds the protected resource metadata from the 401,
// the authorization server's metadata, identifies itself by a Client ID Metadata Document (when a
// URL is given and the server supports it) or registers (RFC 7591), and runs the code flow with
// PKCE. This script only plays the person at the browser: it signs in on tokengate's page as
// username, allows on the consent page, and hands the code back to the SDK.
//
// node mcpclient.mjs <mcp url> <username> <password> <redirect uri> [<client metadata document url>]
// prints one JSON object: {"user": what the whoami tool answered, "client_id": the client id used,
// "scope": the token's scope, "steps": the pages passed}.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';

const [mcpURL, username, password, redirectURI, clientMetadataURL] = process.argv.slice(2);

// person is the browser: cookies, forms, and the redirect back to the client.
const person = {
  cookies: new Map(),
  steps: [],
  async fetch(url, init = {}) {
    const headers = { ...(init.headers ?? {}) };
    if (this.cookies.size) headers.cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    const resp = await fetch(url, { ...init, headers, redirect: 'manual' });
    for (const line of resp.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const i = pair.indexOf('=');
      this.cookies.set(pair.slice(0, i).trim(), pair.slice(i + 1));
    }
    return resp;
  },
  // authorize follows the authorization request through the pages to the redirect URI and returns
  // the code.
  async authorize(url) {
    let resp = await this.fetch(url);
    for (let step = 0; step < 6; step++) {
      if (resp.status >= 300 && resp.status < 400) {
        const to = new URL(resp.headers.get('location'), url);
        if (to.href.startsWith(redirectURI)) {
          const error = to.searchParams.get('error');
          if (error) throw new Error(`authorization error ${error}: ${to.searchParams.get('error_description')}`);
          return to.searchParams.get('code');
        }
        url = to.href;
        resp = await this.fetch(url);
        continue;
      }
      const page = await resp.text();
      if (resp.status !== 200) throw new Error(`HTTP ${resp.status} at ${url}: ${page.slice(0, 500)}`);
      const form = readForm(page);
      if (!form) throw new Error(`no form at ${url}: ${page.slice(0, 500)}`);
      if (page.includes('type="password"')) {
        this.steps.push('sign-in');
        form.fields.set('username', username);
        form.fields.set('password', password);
      } else {
        this.steps.push('consent');
      }
      url = new URL(form.action, url).href;
      resp = await this.fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: form.fields.toString(),
      });
    }
    throw new Error(`no redirect to ${redirectURI} after six pages`);
  },
};

// readForm reads the first form of page: its action, its hidden and text inputs, and its first
// submit button's name and value (allow comes first on a consent page).
function readForm(page) {
  const form = page.match(/<form[^>]*action="([^"]*)"[^>]*>([\s\S]*?)<\/form>/);
  if (!form) return null;
  const fields = new URLSearchParams();
  for (const m of form[2].matchAll(/<input type="(?:hidden|text)"[^>]* name="([^"]*)" value="([^"]*)"/g)) {
    fields.set(unescape(m[1]), unescape(m[2]));
  }
  const button = form[2].match(/<button[^>]*name="([^"]*)"[^>]*value="([^"]*)"/);
  if (button) fields.set(unescape(button[1]), unescape(button[2]));
  return { action: unescape(form[1]), fields };
}

function unescape(s) {
  return s.replace(/&#34;|&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
}

// provider keeps what the SDK asks it to, in memory.
class Provider {
  constructor() {
    this.code = undefined;
    this.saved = {};
    if (clientMetadataURL) this.clientMetadataUrl = clientMetadataURL;
  }
  get redirectUrl() { return redirectURI; }
  get clientMetadata() {
    return {
      client_name: 'tokengate test MCP client',
      redirect_uris: [redirectURI],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }
  clientInformation() { return this.saved.client; }
  saveClientInformation(info) { this.saved.client = info; }
  tokens() { return this.saved.tokens; }
  saveTokens(tokens) { this.saved.tokens = tokens; }
  saveCodeVerifier(v) { this.saved.verifier = v; }
  codeVerifier() { return this.saved.verifier; }
  async redirectToAuthorization(url) { this.code = await person.authorize(url.href); }
}

const provider = new Provider();
const client = new Client({ name: 'tokengate-test-client', version: '1.0.0' });
try {
  await client.connect(new StreamableHTTPClientTransport(new URL(mcpURL), { authProvider: provider }));
} catch (err) {
  if (!(err instanceof UnauthorizedError)) throw err;
  const transport = new StreamableHTTPClientTransport(new URL(mcpURL), { authProvider: provider });
  await transport.finishAuth(provider.code);
  await client.connect(transport);
}
const result = await client.callTool({ name: 'whoami', arguments: {} });
console.log(JSON.stringify({
  user: result.content?.[0]?.text,
  client_id: provider.clientInformation()?.client_id,
  scope: provider.tokens()?.scope,
  steps: person.steps,
}));
await client.close();
