package tests

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"golang.org/x/oauth2"
)

// isDenyJS tells the deny button by its name or its label (the device page names or labels its deny
// button "deny").
const isDenyJS = `(b => /\bdeny\b/i.test(b.name + ' ' + (b.innerText || b.value)))`

// devicePage is what a page shows of the device page's contract.
type devicePage struct {
	Forms int `json:"forms"`
	// TextInputs are the names of the first form's text inputs, and UserCode the value of the one
	// named user_code.
	TextInputs []string `json:"textInputs"`
	UserCode   string   `json:"userCode"`
	Passwords  int      `json:"passwords"`
	// Submits counts the first form's submit buttons, Denies those named or labelled deny.
	Submits int    `json:"submits"`
	Denies  int    `json:"denies"`
	Text    string `json:"text"`
}

// readDevicePage reads the page the browser shows.
func readDevicePage(t *testing.T, ctx context.Context) devicePage {
	t.Helper()
	return readPage[devicePage](t, ctx, `
		const texts = all('input').filter(i => i.type === 'text');
		const buttons = `+submitButtonsJS+`;
		return {
			forms: forms.length,
			textInputs: texts.map(i => i.name),
			userCode: texts.filter(i => i.name === 'user_code').map(i => i.value).join(''),
			passwords: all('input[type=password]').length,
			submits: buttons.length,
			denies: buttons.filter(`+isDenyJS+`).length,
			text: document.body.innerText,
		};`)
}

// normalCode is a user code as a person may type it: lower case, without the dash.
func normalCode(code string) string {
	return strings.ToLower(strings.ReplaceAll(code, "-", ""))
}

// personContext opens a tab of browser in a browser context of its own: one person, with cookies
// no other subtest shares (the device page's CSRF cookie is set by the first page it serves).
func personContext(t *testing.T, browser context.Context) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 800)); err != nil {
		t.Fatalf("opening a tab: %v", err)
	}
	return ctx
}

// polled is what DeviceAccessToken answered.
type polled struct {
	tok *oauth2.Token
	err error
}

// startPolling polls the token endpoint for auth as the device does, while the person decides.
func startPolling(ctx context.Context, cfg *oauth2.Config, auth *oauth2.DeviceAuthResponse) <-chan polled {
	done := make(chan polled, 1)
	go func() {
		tok, err := cfg.DeviceAccessToken(ctx, auth)
		done <- polled{tok, err}
	}()
	return done
}

// wantOK fails the test unless the browser ended on a 200 page.
func wantOK(t *testing.T, what string, resp *network.Response, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if resp.Status != http.StatusOK {
		t.Fatalf("%s: HTTP %d at %s, want 200", what, resp.Status, resp.URL)
	}
}

// wantCodeForm fails the test unless the page is one form whose only text input is user_code,
// with one submit button, and returns the page.
func wantCodeForm(t *testing.T, ctx context.Context, what string) devicePage {
	t.Helper()
	page := readDevicePage(t, ctx)
	if page.Forms != 1 || !slices.Equal(page.TextInputs, []string{"user_code"}) || page.Passwords != 0 || page.Submits != 1 {
		t.Fatalf("%s: %d forms, the first with text inputs %q, %d password inputs, %d submit buttons; want 1 form with only the text input user_code and 1 submit button\npage text: %q",
			what, page.Forms, page.TextInputs, page.Passwords, page.Submits, page.Text)
	}
	return page
}

// walkToDecision takes the browser from verification_uri to the decision page: the user code typed
// in lower case without its dash (the page forgives dashes and case), then alice's sign-in.
func walkToDecision(t *testing.T, ctx context.Context, auth *oauth2.DeviceAuthResponse) {
	t.Helper()
	resp, err := chromedp.RunResponse(ctx, chromedp.Navigate(auth.VerificationURI))
	wantOK(t, "opening verification_uri", resp, err)
	wantCodeForm(t, ctx, "verification_uri")

	resp, err = chromedp.RunResponse(ctx,
		chromedp.SendKeys(chromedp.CSS(`input[name=user_code]`), normalCode(auth.UserCode)),
		chromedp.Click(chromedp.CSS(`form [type=submit]`)),
	)
	wantOK(t, fmt.Sprintf("submitting the user code %q", normalCode(auth.UserCode)), resp, err)
	wantLoginForm(t, ctx, "the device page after the user code")

	wantOK(t, "signing in on the device page", typePassword(t, ctx, "alice", alicePassword), nil)
	page := readDevicePage(t, ctx)
	if page.Forms != 1 || len(page.TextInputs) != 0 || page.Passwords != 0 || page.Submits != 2 || page.Denies != 1 {
		t.Fatalf("the decision page: %d forms, the first with text inputs %q, %d password inputs, %d submit buttons of which %d deny; want 1 form with 2 submit buttons, 1 of them deny\npage text: %q",
			page.Forms, page.TextInputs, page.Passwords, page.Submits, page.Denies, page.Text)
	}
}

// decide presses approve (the submit button that is not deny) or deny and checks the page after
// it: it holds no form and says what happened (want, e.g. "approved").
func decide(t *testing.T, ctx context.Context, deny bool, want string) {
	t.Helper()
	pick := "!" + isDenyJS + "(b)"
	if deny {
		pick = isDenyJS + "(b)"
	}
	resp, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.JSPath(submitButtonsJS+".find(b => "+pick+")")))
	wantOK(t, "pressing "+want, resp, err)
	if page := readDevicePage(t, ctx); page.Forms != 0 || !strings.Contains(strings.ToLower(page.Text), want) {
		t.Errorf("the page after the person %s: %d forms, text %q; want no form and a text that says %q", want, page.Forms, page.Text, want)
	}
}

// TestBrowserDevice walks people through the device flow (RFC 8628) in Chromium against the page
// contract, while x/oauth2 polls as the device: one approves, one denies, and one
// opens verification_uri_complete. It saves screenshots of the decision page at desktop and phone
// sizes.
func TestBrowserDevice(t *testing.T) {
	t.Parallel()
	browser := startBrowser(t)
	c, cfg := startDeviceCaddy(t)

	// Each run starts its own device authorization; the poll interval (5 s) dominates, so the
	// runs overlap. atDecision starts one, polls it as the device, and walks a new person in a
	// browser of their own to the decision page.
	atDecision := func(t *testing.T) (context.Context, *oauth2.DeviceAuthResponse, <-chan polled) {
		t.Helper()
		ctx := personContext(t, browser)
		auth := authorizeDevice(t, c, cfg)
		poll := startPolling(testContext(t), cfg, auth)
		walkToDecision(t, ctx, auth)
		return ctx, auth, poll
	}

	t.Run("approve", func(t *testing.T) {
		t.Parallel()
		ctx, auth, poll := atDecision(t)

		saveScreenshot(t, ctx, "tokengate-device.png", 1280)
		wantFitsPhone(t, ctx, "the decision page", "tokengate-device-phone.png")

		decide(t, ctx, false, "approved")
		got := <-poll
		if got.err != nil {
			t.Fatalf("polling after the person approved %s: %v", auth.UserCode, got.err)
		}
		if got.tok.AccessToken == "" || got.tok.Extra("id_token") == nil {
			t.Errorf("device token = %+v, want an access token and an id_token", got.tok)
		}
	})

	t.Run("deny", func(t *testing.T) {
		t.Parallel()
		ctx, auth, poll := atDecision(t)
		decide(t, ctx, true, "denied")
		got := <-poll
		wantTokenError(t, fmt.Sprintf("polling after the person denied %s", auth.UserCode), got.err, "access_denied", http.StatusBadRequest)
	})

	// verification_uri_complete carries the code: the page prefills it (or skips its step), and
	// submitting the prefilled form leads to the sign-in.
	t.Run("verification_uri_complete", func(t *testing.T) {
		t.Parallel()
		ctx := personContext(t, browser)
		auth := authorizeDevice(t, c, cfg)
		complete, err := url.Parse(auth.VerificationURIComplete)
		if err != nil || complete.Scheme+"://"+complete.Host+complete.Path != auth.VerificationURI || complete.Query().Get("user_code") != auth.UserCode {
			t.Fatalf("verification_uri_complete = %q, want %s?user_code=%s", auth.VerificationURIComplete, auth.VerificationURI, auth.UserCode)
		}
		resp, err := chromedp.RunResponse(ctx, chromedp.Navigate(auth.VerificationURIComplete))
		wantOK(t, "opening verification_uri_complete", resp, err)
		if page := readDevicePage(t, ctx); page.Passwords == 1 {
			wantLoginForm(t, ctx, "verification_uri_complete, the code step skipped")
			return
		}
		if page := wantCodeForm(t, ctx, "verification_uri_complete"); normalCode(page.UserCode) != normalCode(auth.UserCode) {
			t.Fatalf("verification_uri_complete prefills user_code %q, want %q", page.UserCode, auth.UserCode)
		}
		resp, err = chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(`form [type=submit]`)))
		wantOK(t, "submitting the prefilled user code", resp, err)
		wantLoginForm(t, ctx, "the device page after the prefilled user code")
	})
}
