package tests

import (
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"golang.org/x/oauth2"
)

// browserFederation lets the relying party at {{RP}} sign people in with a password or through
// the upstream OP.
var browserFederation = federationConfig("{{RP}}/callback", "local zitadel", `
		users local {
			user alice {{ALICE_HASH}}
		}
`+zitadelBlock)

// TestBrowserFederation walks a person through the whole chain in Chromium with JavaScript off:
// the client, tokengate's sign-in page and its provider link, the upstream OP's sign-in, tokengate's
// callback, and back at the client with a code whose ID token names the upstream's person. It
// saves screenshots of the sign-in page with its provider link at desktop and phone sizes.
func TestBrowserFederation(t *testing.T) {
	t.Parallel()
	ctx := startBrowser(t)
	rp := startRelyingParty(t)
	op := listenOP(t)
	c := startCaddy(t, strings.NewReplacer("{{RP}}", rp.URL, "{{ALICE_HASH}}", aliceHash(), "{{OP}}", op.issuer).Replace(browserFederation))
	op.serve(t, c.URL("/connect/external/zitadel/callback"))
	rp.connect(t, c)
	if _, err := chromedp.Call(ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
		t.Fatal(err)
	}

	req := rp.newRequest()
	if _, err := chromedp.Run(ctx, chromedp.Navigate(req.url)); err != nil {
		t.Fatalf("opening the authorization URL: %v", err)
	}
	wantLoginForm(t, ctx, "the sign-in page with a provider")
	link := `a[href*="idp%3Azitadel"]`
	label, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(link)))
	if err != nil || !strings.Contains(label, "Zitadel Test") {
		t.Fatalf("the provider link reads %q (%v), want its display_name", label, err)
	}
	saveScreenshot(t, ctx, "tokengate-login-providers.png", 1280)
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulatePortrait)); err != nil {
		t.Fatal(err)
	}
	saveScreenshot(t, ctx, "tokengate-login-providers-phone.png", 390)
	if err := chromedp.Do(ctx, chromedp.EmulateReset()); err != nil {
		t.Fatal(err)
	}

	// The link leads to the upstream's own sign-in page.
	resp, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(link)))
	if err != nil || !strings.HasPrefix(resp.URL, op.issuer) {
		t.Fatalf("following the provider link ended at %v (%v), want the upstream %s", resp, err, op.issuer)
	}
	// The pending sign-in's cookie is HttpOnly and SameSite=Lax: the upstream's return is a
	// cross-site navigation, which Strict would strip.
	cookies, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{c.URL("/")}})
	if err != nil {
		t.Fatal(err)
	}
	if pending := findCookie(cookies.Cookies, "tokengate_external"); pending == nil || !pending.HTTPOnly || pending.SameSite != network.CookieSameSiteLax {
		t.Errorf("tokengate_external cookie = %+v, want HttpOnly and SameSite Lax", pending)
	}
	resp, err = chromedp.RunResponse(ctx,
		chromedp.SendKeys(chromedp.CSS(`#username`), zitadelUser),
		chromedp.SendKeys(chromedp.CSS(`#password`), zitadelPassword),
		chromedp.Submit(chromedp.CSS(`#username`)),
	)
	if err != nil {
		t.Fatalf("signing in at the upstream: %v", err)
	}
	back, err := url.Parse(resp.URL)
	if err != nil || !strings.HasPrefix(resp.URL, rp.URL+"/callback?") || back.Query().Get("state") != req.state {
		t.Fatalf("the browser ended at %q, want the client's redirect_uri with its state", resp.URL)
	}
	ctxTest := testContext(t)
	tok, err := rp.config.Exchange(ctxTest, back.Query().Get("code"), oauth2.VerifierOption(req.verifier))
	if err != nil {
		t.Fatalf("redeeming the code: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idToken, err := rp.verifier.Verify(ctxTest, raw)
	if err != nil {
		t.Fatalf("verifying the ID token: %v", err)
	}
	var claims struct {
		IdP string `json:"idp"`
	}
	idToken.Claims(&claims)
	if idToken.Subject != "zitadel|id1" || idToken.Nonce != req.nonce || claims.IdP != "zitadel" {
		t.Errorf("ID token sub %q nonce %q idp %q, want zitadel|id1, the request's nonce, zitadel", idToken.Subject, idToken.Nonce, claims.IdP)
	}
}
