package tests

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// consentPage is what the consent page shows of its contract.
type consentPage struct {
	Forms   int      `json:"forms"`
	Buttons []string `json:"buttons"` // the first form's submit buttons, as name=value
	Text    string   `json:"text"`
}

// TestBrowserConsent walks a person through an MCP client's sign-in in Chromium: the sign-in page,
// then the consent page, which names the client as not verified with its client_id's host and
// where the browser returns, allow first; allow lands at the client with a code. It saves
// screenshots of the consent page at desktop and phone sizes.
func TestBrowserConsent(t *testing.T) {
	t.Parallel()
	ctx := startBrowser(t)
	docs := startDocServer(t)
	c := startCIMDCaddy(t, cimdCaddyfile, docs, startUpstream(t).URL)
	rp := startRelyingParty(t)
	clientID := docs.document("/client.json")
	auth := newMCPAuthorization(clientID, rp.URL+"/callback")

	if _, err := chromedp.RunResponse(ctx, chromedp.Navigate(auth.url(c))); err != nil {
		t.Fatalf("opening the authorization URL: %v", err)
	}
	wantLoginForm(t, ctx, "the sign-in page of an MCP client")
	if resp := typePassword(t, ctx, "alice", alicePassword); resp.Status != http.StatusOK {
		t.Fatalf("signing in: HTTP %d at %s, want the consent page", resp.Status, resp.URL)
	}
	page, err := chromedp.Run(ctx, chromedp.Evaluate[consentPage](`(() => {
		const forms = document.querySelectorAll('form');
		return {
			forms: forms.length,
			buttons: forms.length ? [...forms[0].querySelectorAll('button[type=submit]')].map(b => b.name + '=' + b.value) : [],
			text: document.body.innerText,
		};
	})()`))
	if err != nil {
		t.Fatal(err)
	}
	if page.Forms != 1 || strings.Join(page.Buttons, " ") != "consent=allow consent=deny" {
		t.Fatalf("the consent page has %d forms, buttons %v; want one form, allow then deny\n%s", page.Forms, page.Buttons, page.Text)
	}
	host, _ := url.Parse(rp.URL)
	for _, want := range []string{"Inspector <script>x()</script>", "not verified", strings.TrimPrefix(docs.URL, "https://"), host.Host, "alice", "mcp.tools"} {
		if !strings.Contains(page.Text, want) {
			t.Errorf("the consent page does not show %q; its text:\n%s", want, page.Text)
		}
	}
	saveScreenshot(t, ctx, "tokengate-consent.png", 1280)

	wantFitsPhone(t, ctx, "the consent page", "tokengate-consent-phone.png")

	resp, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(`button[value=allow]`)))
	if err != nil {
		t.Fatal(err)
	}
	back, _ := url.Parse(resp.URL)
	if !strings.HasPrefix(resp.URL, rp.URL+"/callback?") || back.Query().Get("code") == "" || back.Query().Get("state") != auth.state {
		t.Fatalf("allow: the browser is at %s, want the client's callback with a code and the state", resp.URL)
	}
	if tokens := auth.redeem(t, c, back.Query().Get("code")); tokens.Status != http.StatusOK {
		t.Errorf("redeeming the code: %s", tokens)
	}
}
