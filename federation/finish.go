package federation

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"golang.org/x/oauth2"
)

// Person is someone an upstream signed in.
type Person struct {
	// Subject is `<provider name>|<upstream subject>`: never a local username (which holds no
	// `|`), nor another provider's person, and the same at every sign-in.
	Subject string
	// Claims go into their tokens: the standard claims the upstream gave, and the renamed ones.
	Claims map[string]any
}

// standardClaims pass from the upstream into tokens under their own names (OIDC Core §5.1).
var standardClaims = []string{"name", "given_name", "family_name", "preferred_username", "email", "email_verified", "locale", "picture"}

// Finish completes a sign-in with the code the upstream sent to the callback: the code redeemed
// with the PKCE verifier (RFC 7636 §4.5), the ID token verified (OIDC Core §3.1.3.7) or the
// userinfo object read, the domains checked. Its error is an *Error.
func (p *Provider) Finish(ctx context.Context, code string, pending Pending) (Person, error) {
	endpoint, err := p.endpoint(ctx)
	if err != nil {
		return Person{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	token, err := p.oauth2Config(endpoint).Exchange(context.WithValue(ctx, oauth2.HTTPClient, p.client), code,
		oauth2.VerifierOption(pending.Verifier))
	if err != nil {
		return Person{}, exchangeError(err)
	}
	var profile map[string]any
	if p.oidc != nil {
		profile, err = p.verifyIDToken(ctx, token, pending.Nonce)
	} else {
		profile, err = p.readUserinfo(ctx, p.cfg.UserinfoURL, token.AccessToken)
	}
	if err != nil {
		return Person{}, err
	}
	if p.cfg.EnrichProfile != nil {
		if err := p.cfg.EnrichProfile(ctx, p.cfg.AuthorizedClient(ctx, token), profile); err != nil {
			return Person{}, err
		}
	}
	return p.person(profile)
}

// AuthorizedClient is an HTTP client that sends token as its bearer, through the provider's bounds.
func (cfg Config) AuthorizedClient(ctx context.Context, token *oauth2.Token) *http.Client {
	return oauth2.NewClient(context.WithValue(ctx, oauth2.HTTPClient, cfg.HTTPClient), oauth2.StaticTokenSource(token))
}

// exchangeError classifies a failed code redemption: an upstream out of reach or answering 5xx
// is passing, a 4xx or an unusable answer is not.
func exchangeError(err error) *Error {
	var re *oauth2.RetrieveError
	var ue *url.Error
	switch {
	case errors.As(err, &re) && re.Response != nil && re.Response.StatusCode >= http.StatusInternalServerError:
		return unavailable("token endpoint", err)
	case errors.As(err, &re):
		return invalid("token endpoint", err)
	case errors.As(err, &ue), errors.Is(err, context.DeadlineExceeded):
		return unavailable("token endpoint", err)
	}
	return invalid("token endpoint", err)
}

// verifyIDToken checks the token response's ID token and returns its claims, completed by
// userinfo.
func (p *Provider) verifyIDToken(ctx context.Context, token *oauth2.Token, nonce string) (map[string]any, error) {
	raw, _ := token.Extra("id_token").(string)
	if raw == "" {
		return nil, invalid("token endpoint", errors.New("the answer holds no ID token"))
	}
	up, err := p.oidc.get(ctx)
	if err != nil {
		return nil, err
	}
	if err := up.keys.ready(ctx); err != nil {
		return nil, unavailable("jwks_uri", err)
	}
	// go-oidc checks the signature, alg, iss, aud and exp; nonce and azp are the caller's.
	idToken, err := up.verifier.Verify(ctx, raw)
	if err != nil {
		return nil, invalid("ID token", err)
	}
	var rawClaims json.RawMessage
	if err := idToken.Claims(&rawClaims); err != nil {
		return nil, invalid("ID token", err)
	}
	claims, err := decodeObject(rawClaims)
	if err != nil {
		return nil, invalid("ID token", err)
	}
	// OIDC Core §3.1.3.7 step 11: the nonce sent, against replayed ID tokens.
	if subtle.ConstantTimeCompare([]byte(idToken.Nonce), []byte(nonce)) != 1 || nonce == "" {
		return nil, invalid("ID token", errors.New("nonce mismatch"))
	}
	// OIDC Core §3.1.3.7 steps 4 and 5: an azp must name us.
	if azp, ok := claims["azp"]; ok && azp != p.cfg.ClientID {
		return nil, invalid("ID token", errors.New("azp names another client"))
	}
	if idToken.Subject == "" {
		return nil, invalid("ID token", errors.New("no sub"))
	}
	if hd := p.cfg.HostedDomain; hd != "" && claims["hd"] != hd {
		return nil, denied("the account is not one of the hosted domain's")
	}
	if p.cfg.Userinfo && up.userinfo != "" {
		info, err := p.readUserinfo(ctx, up.userinfo, token.AccessToken)
		if err != nil {
			return nil, err
		}
		// OIDC Core §5.3.4: userinfo about anyone else is a substitution attack.
		if info["sub"] != idToken.Subject {
			return nil, invalid("userinfo", errors.New("its sub is not the ID token's"))
		}
		for k, v := range info {
			if _, ok := claims[k]; !ok {
				claims[k] = v
			}
		}
	}
	return claims, nil
}

// readUserinfo GETs a userinfo endpoint with the access token (RFC 6750 §2.1): a JSON object.
func (p *Provider) readUserinfo(ctx context.Context, endpoint, accessToken string) (map[string]any, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint, nil)
	if err != nil {
		return nil, invalid("userinfo", err)
	}
	req.Header.Set("Authorization", "Bearer "+accessToken)
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, unavailable("userinfo", err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode >= http.StatusInternalServerError:
		return nil, unavailable("userinfo", fmt.Errorf("%w %d", errUpstreamStatus, resp.StatusCode))
	case resp.StatusCode != http.StatusOK:
		return nil, invalid("userinfo", fmt.Errorf("%w %d", errUpstreamStatus, resp.StatusCode))
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "application/json" {
		return nil, invalid("userinfo", errors.New("not JSON: "+mt))
	}
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		return nil, unavailable("userinfo", err)
	}
	info, err := decodeObject(buf.Bytes())
	if err != nil {
		return nil, invalid("userinfo", err)
	}
	return info, nil
}

// decodeObject decodes a JSON object keeping numbers exact (a GitHub id exceeds 2^53 some day).
func decodeObject(data []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, errors.New("not a JSON object")
	}
	return m, nil
}

// person turns the upstream's members into a Person.
func (p *Provider) person(profile map[string]any) (Person, error) {
	subject := subjectOf(profile[p.cfg.SubjectField])
	if subject == "" {
		return Person{}, invalid("profile", fmt.Errorf("no subject in %q", p.cfg.SubjectField))
	}
	claims := make(map[string]any)
	for _, name := range standardClaims {
		if v, ok := profile[name]; ok && v != nil {
			claims[name] = v
		}
	}
	for tokenClaim, upstreamClaim := range p.cfg.Claims {
		if v, ok := profile[upstreamClaim]; ok && v != nil {
			claims[tokenClaim] = v
		}
	}
	if len(p.cfg.AllowedDomains) > 0 && !p.domainAllowed(profile) {
		return Person{}, denied("the account's email address is not in an allowed domain")
	}
	return Person{Subject: p.cfg.Name + "|" + subject, Claims: claims}, nil
}

// subjectOf writes an upstream subject: a string as it is, a number in decimal digits exactly.
func subjectOf(v any) string {
	switch s := v.(type) {
	case string:
		return s
	case json.Number:
		if strings.Trim(string(s), "0123456789") == "" {
			return string(s)
		}
	}
	return ""
}

// domainAllowed: the email is <local>@<domain> for a listed domain, compared exactly but for case
// (no subdomain, no suffix), and an OIDC provider says it verified it. A plain OAuth 2.0
// provider's address counts as verified (GitHub's is the primary verified one).
func (p *Provider) domainAllowed(profile map[string]any) bool {
	email, _ := profile["email"].(string)
	at := strings.LastIndexByte(email, '@')
	if at <= 0 || strings.Count(email, "@") != 1 {
		return false
	}
	if p.oidc != nil && profile["email_verified"] != true {
		return false
	}
	return slices.ContainsFunc(p.cfg.AllowedDomains, func(d string) bool { return strings.EqualFold(d, email[at+1:]) })
}
