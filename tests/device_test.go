package tests

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"
)

// deviceCaddyfile has a TV app (public, device_code, named "Living Room TV" on the pages) and the
// user alice, on an upstreamAPISite.
const deviceCaddyfile = `{
	tokengate {
		issuer {{BASE}}
		store bolt {{DATA}}/tokengate.db
		client tv {
			display_name "Living Room TV"
			public
			grants device_code refresh_token
			scopes openid offline_access api.read
			audience api
		}
		users local {
			user alice {{ALICE_HASH}}
		}
	}
}

` + upstreamAPISite

// browserless is a person at the device page without a browser: a cookie jar and the forms' fields.
type browserless struct{ *formClient }

func newBrowserless(t *testing.T) *browserless {
	return &browserless{newFormClient(t)}
}

// page fetches target (GET when form is nil, else a POST of form) and returns the page and its
// form's fields; an answer other than 200 fails the test.
func (b *browserless) page(target string, form url.Values) (string, url.Values) {
	b.t.Helper()
	p := b.submit(target, form)
	if p.status != http.StatusOK {
		b.t.Fatalf("%s = %d:\n%s", target, p.status, p.body)
	}
	return p.body, p.fields
}

// decide walks the device page as a person: the code, the sign-in, then the button pressed.
func (b *browserless) decide(c *Caddy, userCode, button string) string {
	b.t.Helper()
	// Dashes and case are forgiven.
	typed := strings.ToLower(strings.ReplaceAll(userCode, "-", ""))
	_, fields := b.page(c.URL("/connect/device"), nil)
	fields.Set("user_code", typed)
	_, fields = b.page(c.URL("/connect/device"), fields)
	fields.Set("username", "alice")
	fields.Set("password", alicePassword)
	decidePage, fields := b.page(c.URL("/connect/device"), fields)
	if !strings.Contains(decidePage, `name="deny"`) {
		b.t.Fatalf("the decision page has no deny button:\n%s", decidePage)
	}
	if !strings.Contains(decidePage, "to continue to Living Room TV") {
		b.t.Errorf("the decision page does not name the app by its display_name:\n%s", decidePage)
	}
	fields.Set(button, button)
	done, _ := b.page(c.URL("/connect/device"), fields)
	if strings.Contains(done, "<form") {
		b.t.Errorf("the page after %s holds a form:\n%s", button, done)
	}
	return done
}

func deviceConfig(c *Caddy) *oauth2.Config {
	return &oauth2.Config{
		ClientID: "tv",
		Scopes:   []string{"openid", "offline_access", "api.read"},
		Endpoint: oauth2.Endpoint{
			DeviceAuthURL: c.URL("/connect/deviceauthorization"),
			TokenURL:      c.URL("/connect/token"),
			AuthStyle:     oauth2.AuthStyleInParams,
		},
	}
}

// startDeviceCaddy starts Caddy on deviceCaddyfile in front of a new Upstream, and returns it with
// the TV app's client configuration.
func startDeviceCaddy(t *testing.T) (*Caddy, *oauth2.Config) {
	t.Helper()
	upstream := startUpstream(t)
	c := startCaddy(t, strings.NewReplacer("{{ALICE_HASH}}", aliceHash(), "{{UPSTREAM}}", upstream.URL).Replace(deviceCaddyfile))
	return c, deviceConfig(c)
}

// authorizeDevice asks c for a device code with cfg (RFC 8628 §3.1), and fails t unless the answer
// sends the person to c's device page.
func authorizeDevice(t *testing.T, c *Caddy, cfg *oauth2.Config) *oauth2.DeviceAuthResponse {
	t.Helper()
	auth, err := cfg.DeviceAuth(testContext(t))
	if err != nil {
		t.Fatalf("device authorization: %v", err)
	}
	if auth.VerificationURI != c.URL("/connect/device") {
		t.Fatalf("verification_uri = %q, want %q", auth.VerificationURI, c.URL("/connect/device"))
	}
	return auth
}

// RFC 8628 through Caddy: x/oauth2 asks for a code and polls while a person approves it on the
// device page; the token then passes bearer_auth.
func TestDeviceFlowApproved(t *testing.T) {
	c, cfg := startDeviceCaddy(t)
	ctx := testContext(t)
	auth := authorizeDevice(t, c, cfg)
	if !strings.Contains(auth.VerificationURIComplete, "user_code=") || auth.Interval == 0 {
		t.Fatalf("device authorization = %+v", auth)
	}
	done := newBrowserless(t).decide(c, auth.UserCode, "approve")
	if !strings.Contains(strings.ToLower(done), "approved") {
		t.Errorf("the page after approval does not say so:\n%s", done)
	}
	tok, err := cfg.DeviceAccessToken(ctx, auth)
	if err != nil {
		t.Fatal(err)
	}
	if tok.RefreshToken == "" || tok.Extra("id_token") == nil {
		t.Errorf("device token = %+v, want a refresh token and an id_token", tok)
	}
	echo := callUpstream(t, c, "/api/x", tok.AccessToken, nil)
	if got := echo.Header.Get("X-User"); got != "alice" {
		t.Errorf("X-User upstream = %q, want alice", got)
	}
	// Redeemed once: polling again is invalid_grant.
	_, err = cfg.DeviceAccessToken(ctx, auth)
	wantTokenError(t, "a second redemption", err, "invalid_grant", http.StatusBadRequest)
}

func TestDeviceFlowDenied(t *testing.T) {
	c, cfg := startDeviceCaddy(t)
	auth := authorizeDevice(t, c, cfg)
	newBrowserless(t).decide(c, auth.UserCode, "deny")
	_, err := cfg.DeviceAccessToken(testContext(t), auth)
	wantTokenError(t, fmt.Sprintf("polling after the user denied %s", auth.UserCode), err, "access_denied", http.StatusBadRequest)
}
