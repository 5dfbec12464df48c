// codeflow.mjs signs a user in to tokengate through the authorization code flow with openid-client,
// a certified OpenID Connect relying party library, as tests/openidclient_test.go runs it:
//
//	node codeflow.mjs <issuer> <client_id> <client_secret> <redirect_uri> <username> <password>
//
// It discovers the issuer, builds an authorization URL with PKCE (S256), state and nonce, signs in on
// the login page as a browser would (there is no browser in node: it fetches the page, and posts the
// form's hidden fields and its CSRF cookie back with the credentials), takes the code from the
// redirect to redirect_uri without following it, redeems the code, checks the ID token and calls
// userinfo. It prints one JSON object on success, and exits 1 with the error on stderr otherwise.
// openid-client 6 needs Node.js 20 or later (Debian 12's nodejs is 18): say so rather than fail
// somewhere inside it.
if (Number(process.versions.node.split('.')[0]) < 20) {
  console.error(`codeflow.mjs needs Node.js 20 or later, this is ${process.version}`);
  process.exit(2);
}
const client = await import('openid-client');

const [issuer, clientId, clientSecret, redirectUri, username, password] = process.argv.slice(2);
if (!password) {
  console.error('usage: node codeflow.mjs <issuer> <client_id> <client_secret> <redirect_uri> <username> <password>');
  process.exit(2);
}

// The tests serve tokengate over plain HTTP on a loopback address.
const config = await client.discovery(new URL(issuer), clientId, clientSecret, undefined, {
  execute: [client.allowInsecureRequests],
});

const codeVerifier = client.randomPKCECodeVerifier();
const state = client.randomState();
const nonce = client.randomNonce();
const authorizationURL = client.buildAuthorizationUrl(config, {
  redirect_uri: redirectUri,
  scope: 'openid email',
  code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
  code_challenge_method: 'S256',
  state,
  nonce,
});

const callbackURL = await signIn(authorizationURL);
const tokens = await client.authorizationCodeGrant(config, callbackURL, {
  pkceCodeVerifier: codeVerifier,
  expectedState: state,
  expectedNonce: nonce,
  idTokenExpected: true,
});
// authorizationCodeGrant has checked the ID token's signature, iss, aud, exp and nonce; these are
// said again so that the result shows them.
const claims = tokens.claims();
if (claims.sub !== username || claims.nonce !== nonce) {
  throw new Error(`ID token sub ${claims.sub} nonce ${claims.nonce}, want ${username} and ${nonce}`);
}
const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
console.log(JSON.stringify({
  sub: claims.sub,
  nonce_matches: claims.nonce === nonce,
  scope: tokens.scope,
  has_refresh_token: Boolean(tokens.refresh_token),
  userinfo,
}));

// signIn opens the login page of authorizationURL, submits its one form with the credentials and
// returns the URL that the sign-in redirects to: redirect_uri with the code.
async function signIn(authorizationURL) {
  const page = await fetch(authorizationURL, { redirect: 'manual' });
  const html = await page.text();
  if (page.status !== 200) {
    throw new Error(`GET ${authorizationURL}: HTTP ${page.status}, want the login page`);
  }
  const forms = html.match(/<form\b[^>]*>[\s\S]*?<\/form>/gi) ?? [];
  if (forms.length !== 1) {
    throw new Error(`the login page holds ${forms.length} forms, want 1`);
  }
  const action = attribute(forms[0].match(/<form\b[^>]*>/i)[0], 'action') ?? '';
  const fields = new URLSearchParams();
  for (const input of forms[0].match(/<input\b[^>]*>/gi) ?? []) {
    if (attribute(input, 'type')?.toLowerCase() === 'hidden') {
      fields.append(attribute(input, 'name'), attribute(input, 'value') ?? '');
    }
  }
  fields.set('username', username);
  fields.set('password', password);
  // The CSRF token among the hidden fields is bound to this cookie.
  const cookies = page.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
  const answer = await fetch(new URL(action, authorizationURL), {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', Cookie: cookies },
    body: fields,
    redirect: 'manual',
  });
  const location = answer.headers.get('location');
  if (answer.status !== 302 || !location?.startsWith(redirectUri)) {
    throw new Error(`signing in: HTTP ${answer.status} to ${location}, want a redirect to ${redirectUri}\n${await answer.text()}`);
  }
  return new URL(location);
}

// attribute returns the decoded value of the attribute name of an HTML start tag, or undefined.
function attribute(tag, name) {
  const m = tag.match(new RegExp(`\\s${name}\\s*=\\s*(?:"([^"]*)"|'([^']*)'|([^\\s>]+))`, 'i'));
  return m ? decodeEntities(m[1] ?? m[2] ?? m[3]) : undefined;
}

// decodeEntities decodes the character references html/template writes into attribute values.
function decodeEntities(s) {
  const named = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };
  return s.replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/gi, (ref, body) => {
    if (body[0] !== '#') return named[body.toLowerCase()] ?? ref;
    const hex = body[1] === 'x' || body[1] === 'X';
    return String.fromCodePoint(parseInt(body.slice(hex ? 2 : 1), hex ? 16 : 10));
  });
}
