package tests

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// metricsConfig is lifecycleConfig's tokengate with clients, whose audit trail goes to
// {{DATA}}/audit.log, behind a proxy it trusts on loopback.
func metricsConfig(clients ...string) string {
	cfg := lifecycleConfig{clients: clients}
	return withGlobals(cfg.caddyfile(), `
	servers {
		trusted_proxies static 127.0.0.1/32
	}
	log audit {
		include tokengate.audit
		output file {{DATA}}/audit.log
		format json
	}
`)
}

// scrape reads Caddy's metrics at its admin endpoint: every tokengate_ sample by its series, as
// the exposition format writes it (name{label="value",...}, labels sorted by name).
func scrape(t *testing.T, c *Caddy) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + c.Admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET /metrics: HTTP %d %s", resp.StatusCode, b)
	}
	samples := map[string]float64{}
	lines := bufio.NewScanner(resp.Body)
	for lines.Scan() {
		line := lines.Text()
		if !strings.HasPrefix(line, "tokengate_") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		samples[line[:i]] = v
	}
	return samples
}

// wantDeltas checks that each series grew by exactly its delta from before to after.
func wantDeltas(t *testing.T, what string, before, after map[string]float64, deltas map[string]float64) {
	t.Helper()
	for series, delta := range deltas {
		if got := after[series] - before[series]; got != delta {
			t.Errorf("%s: %s grew by %v, want %v", what, series, got, delta)
		}
	}
}

// TestMetricsAndAudit drives known requests through a real Caddy, then checks the exact growth of
// every series they touch at the admin endpoint's /metrics, that a reload keeps the counts, the
// audit trail's lines in the file Caddy's log directive routes them to, and that no secret,
// password or token appears anywhere in Caddy's output.
func TestMetricsAndAudit(t *testing.T) {
	c := startCaddy(t, metricsConfig("svc", "web"))
	before := scrape(t, c)
	ctx := testContext(t)
	var tokens []string
	token := func(client, secret string, form url.Values, header http.Header) tokenAnswer {
		t.Helper()
		h := basicAuth(client, secret)
		for k, v := range header {
			h[k] = v
		}
		r := send(t, c, request{path: "/connect/token", header: h, body: form.Encode()})
		a, err := r.tokenAnswer()
		if err != nil {
			t.Fatal(err)
		}
		tokens = append(tokens, a.AccessToken, a.RefreshToken)
		return a
	}
	cc := url.Values{"grant_type": {"client_credentials"}}

	svc := token("svc", "svc-secret", cc, nil)
	if svc.Status != http.StatusOK {
		t.Fatalf("svc: %v", svc)
	}
	// The proxy the server trusts names the client's address: the audit trail must show it.
	forwarded := http.Header{"X-Forwarded-For": {"203.0.113.7"}}
	if a := token("svc", "not-the-svc-secret", cc, forwarded); a.Error != "invalid_client" {
		t.Fatalf("wrong secret: %v", a)
	}
	if a := token("ghost-client-id", "ghost-secret", cc, nil); a.Error != "invalid_client" {
		t.Fatalf("unknown client: %v", a)
	}
	if a := token("svc", "svc-secret", url.Values{"grant_type": {"urn:made:up"}}, nil); a.Error != "unsupported_grant_type" {
		t.Fatalf("unknown grant type: %v", a)
	}
	if a := token("web", "web-secret", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"not-alices-password"}}, nil); a.Error != "invalid_grant" {
		t.Fatalf("wrong password: %v", a)
	}
	first := token("web", "web-secret", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {alicePassword},
		"scope": {"offline_access api.read"}}, nil)
	if first.Status != http.StatusOK || first.RefreshToken == "" {
		t.Fatalf("alice: %v", first)
	}
	second := token("web", "web-secret", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first.RefreshToken}}, nil)
	if second.Status != http.StatusOK {
		t.Fatalf("refresh: %v", second)
	}
	if a := token("web", "web-secret", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first.RefreshToken}}, nil); a.Error != "invalid_grant" {
		t.Fatalf("reuse: %v", a)
	}
	// Ten wrong passwords for one account: the tenth attempt is throttled.
	for i := range 10 {
		token("web", "web-secret", url.Values{"grant_type": {"password"}, "username": {"mallory"}, "password": {"guess-" + strconv.Itoa(i)}}, nil)
	}
	if status, _ := postForm(t, c, "/connect/revocation", "svc", "svc-secret", url.Values{"token": {svc.AccessToken}}); status != http.StatusOK {
		t.Fatalf("revocation: HTTP %d", status)
	}
	for _, g := range []struct {
		token  string
		status int
	}{{"", 401}, {"not.a.token", 401}, {svc.AccessToken, 401}} {
		if got, err := gateStatus(ctx, c, g.token, "x"); err != nil || got != g.status {
			t.Fatalf("gate with %q: %d %v, want %d", g.token, got, err, g.status)
		}
	}
	// The reused refresh token killed web's family, so a fresh sign-in passes the gate.
	fresh := token("web", "web-secret", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {alicePassword},
		"scope": {"api.read"}}, nil)
	if got, err := gateStatus(ctx, c, fresh.AccessToken, "x"); err != nil || got != http.StatusOK {
		t.Fatalf("gate with a good token: %d %v", got, err)
	}

	after := scrape(t, c)
	wantDeltas(t, "requests", before, after, map[string]float64{
		`tokengate_token_requests_total{client="svc",grant_type="client_credentials",result="ok"}`:                 1,
		`tokengate_token_requests_total{client="svc",grant_type="client_credentials",result="invalid_client"}`:     1,
		`tokengate_token_requests_total{client="unknown",grant_type="client_credentials",result="invalid_client"}`: 1,
		`tokengate_token_requests_total{client="svc",grant_type="unsupported",result="unsupported_grant_type"}`:    1,
		`tokengate_token_requests_total{client="web",grant_type="password",result="ok"}`:                           2,
		`tokengate_token_requests_total{client="web",grant_type="password",result="invalid_grant"}`:                10,
		`tokengate_token_requests_total{client="web",grant_type="password",result="temporarily_unavailable"}`:      1,
		`tokengate_token_requests_total{client="web",grant_type="refresh_token",result="ok"}`:                      1,
		`tokengate_token_requests_total{client="web",grant_type="refresh_token",result="invalid_grant"}`:           1,
		`tokengate_token_request_duration_seconds_count{grant_type="password"}`:                                    13,
		`tokengate_sign_ins_total{idp="local",result="ok"}`:                                                        2,
		`tokengate_sign_ins_total{idp="local",result="wrong_password"}`:                                            10,
		`tokengate_sign_ins_total{idp="local",result="throttled"}`:                                                 1,
		`tokengate_throttled_total{what="password"}`:                                                               1,
		`tokengate_refresh_reuse_total{client="web"}`:                                                              1,
		`tokengate_revocations_total{kind="access_token"}`:                                                         1,
		`tokengate_gate_requests_total{result="missing"}`:                                                          1,
		`tokengate_gate_requests_total{result="invalid_token"}`:                                                    2,
		`tokengate_gate_requests_total{result="allowed"}`:                                                          1,
	})
	for series := range after {
		if strings.Contains(series, "ghost") || strings.Contains(series, "made:up") || strings.Contains(series, "mallory") {
			t.Errorf("a label holds a raw request value: %s", series)
		}
	}
	if after[`tokengate_store_operations_total{result="ok",store="pebble"}`] <= before[`tokengate_store_operations_total{result="ok",store="pebble"}`] {
		t.Errorf("store operations did not grow: %v", after[`tokengate_store_operations_total{result="ok",store="pebble"}`])
	}
	// One key signs per algorithm: the primary ES256 one, and the RS256 one kept for ID tokens.
	if got := after[`tokengate_signing_keys{state="current"}`]; got != 2 {
		t.Errorf(`tokengate_signing_keys{state="current"} = %v, want 2 (ES256 and RS256)`, got)
	}

	// A reload keeps counting; the one that removes web revokes its tokens.
	c.Reload(t, metricsConfig("svc"))
	token("svc", "svc-secret", cc, nil)
	reloaded := scrape(t, c)
	wantDeltas(t, "after a reload", after, reloaded, map[string]float64{
		`tokengate_token_requests_total{client="svc",grant_type="client_credentials",result="ok"}`:  1,
		`tokengate_token_requests_total{client="web",grant_type="password",result="invalid_grant"}`: 0,
		`tokengate_refresh_reuse_total{client="web"}`:                                               0,
		`tokengate_revocations_total{kind="client_removed"}`:                                        1,
	})

	audit := auditEvents(t, filepath.Join(c.dir, "data", "audit.log"))
	wantAudit(t, audit, "token_issued", map[string]string{"client": "svc", "grant_type": "client_credentials"}, "jti")
	wantAudit(t, audit, "token_issued", map[string]string{"client": "web", "grant_type": "password", "scope": "offline_access api.read"}, "sub", "jti", "gid")
	wantAudit(t, audit, "token_refused", map[string]string{"client": "unknown", "grant_type": "client_credentials", "error": "invalid_client"})
	wantAudit(t, audit, "client_auth_failed", map[string]string{"client": "svc", "auth_method": "client_secret_basic", "remote_ip": "203.0.113.7"})
	wantAudit(t, audit, "sign_in", map[string]string{"username": "alice", "idp": "local", "result": "wrong_password", "remote_ip": "127.0.0.1"})
	wantAudit(t, audit, "sign_in", map[string]string{"idp": "local", "result": "ok"}, "sub")
	wantAudit(t, audit, "refresh_reuse", map[string]string{"client": "web"}, "gid")
	wantAudit(t, audit, "revoked", map[string]string{"kind": "access_token", "client": "svc"}, "jti")
	wantAudit(t, audit, "revoked", map[string]string{"kind": "client_removed", "client": "web"})
	wantAudit(t, audit, "gate_refused", map[string]string{"error": "invalid_token", "method": "GET", "path": "/api/x"})
	refusals := 0
	for _, ev := range audit {
		if ev["event"] == "gate_refused" {
			refusals++
		}
	}
	if refusals != 2 {
		t.Errorf("%d gate_refused lines, want 2: a request without a token is counted, not audited", refusals)
	}

	// Nothing Caddy wrote, on its output or in the audit file, holds a secret, a password or a token.
	logFile, err := os.ReadFile(filepath.Join(c.dir, "data", "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	everything := c.log.String() + string(logFile)
	secrets := []string{"svc-secret", "not-the-svc-secret", "web-secret", "ghost-secret", alicePassword, "not-alices-password", "guess-3"}
	for _, tok := range tokens {
		if tok != "" {
			secrets = append(secrets, tok)
		}
	}
	for _, s := range secrets {
		if strings.Contains(everything, s) {
			t.Errorf("Caddy's output holds %q", s)
		}
	}
}

// auditEvents reads the audit trail's JSON lines from path.
func auditEvents(t *testing.T, path string) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var events []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var ev map[string]any
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		if ev["logger"] != "tokengate.audit" || ev["level"] != "info" {
			t.Errorf("audit line %q: want logger tokengate.audit at info", line)
		}
		events = append(events, ev)
	}
	return events
}

// wantAudit checks that some line of event has the fields want and a non-empty value for each of
// present.
func wantAudit(t *testing.T, events []map[string]any, event string, want map[string]string, present ...string) {
	t.Helper()
next:
	for _, ev := range events {
		if ev["event"] != event {
			continue
		}
		for k, v := range want {
			if ev[k] != v {
				continue next
			}
		}
		for _, k := range present {
			if s, _ := ev[k].(string); s == "" {
				continue next
			}
		}
		return
	}
	t.Errorf("no %s line with %v and %v in the audit trail", event, want, present)
}

// TestGateRefusalFloodIsSummarised: a flood of bad tokens from one address is one gate_refused line
// and, once the minute ends (here: at a reload), one gate_refused_repeated line with the count of
// the rest, while the metric counts every refusal and each is the same 401 with its challenge.
// (The reload changes the configuration: Caddy ignores one that does not.)
func TestGateRefusalFloodIsSummarised(t *testing.T) {
	t.Parallel()
	c := startCaddy(t, metricsConfig("svc", "web"))
	const flood = 400
	// Behind the proxy the server trusts, each request names the attacker's address.
	attacker := http.Header{"X-Forwarded-For": {"203.0.113.9"}}
	before := scrape(t, c)
	var first reply
	for i := range flood {
		r := send(t, c, request{method: http.MethodGet, path: "/api/flood", header: bearer("not.a.token", attacker)})
		if i == 0 {
			first = r
		}
		if r.status != http.StatusUnauthorized || r.header.Get("WWW-Authenticate") != first.header.Get("WWW-Authenticate") {
			t.Fatalf("refusal %d: HTTP %d WWW-Authenticate %q, want 401 %q as the first", i, r.status, r.header.Get("WWW-Authenticate"),
				first.header.Get("WWW-Authenticate"))
		}
	}
	if want := `Bearer realm="` + c.Base + `", error="invalid_token"`; first.header.Get("WWW-Authenticate") != want {
		t.Errorf("WWW-Authenticate = %q, want %q", first.header.Get("WWW-Authenticate"), want)
	}
	wantDeltas(t, "a flood", before, scrape(t, c), map[string]float64{`tokengate_gate_requests_total{result="invalid_token"}`: flood})

	path := filepath.Join(c.dir, "data", "audit.log")
	fromAttacker := func(event string) []map[string]any {
		var lines []map[string]any
		for _, ev := range auditEvents(t, path) {
			if ev["event"] == event && ev["remote_ip"] == "203.0.113.9" {
				lines = append(lines, ev)
			}
		}
		return lines
	}
	if lines := fromAttacker("gate_refused"); len(lines) != 1 {
		t.Fatalf("%d refusals wrote %d gate_refused lines, want 1: %v", flood, len(lines), lines)
	}
	c.Reload(t, metricsConfig("svc"))
	repeated := fromAttacker("gate_refused_repeated")
	if len(repeated) != 1 || repeated[0]["count"] != float64(flood-1) || repeated[0]["error"] != "invalid_token" {
		t.Errorf("after the reload: gate_refused_repeated lines %v, want one counting %d invalid_token", repeated, flood-1)
	}
}
