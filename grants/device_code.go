package grants

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tokengate/tokengate/store"
)

// GrantTypeDeviceCode is the device flow's grant_type (RFC 8628 §3.4).
const GrantTypeDeviceCode = "urn:ietf:params:oauth:grant-type:device_code"

// The error codes the device flow adds to RFC 6749 §5.2 (RFC 8628 §3.5).
const (
	CodeAuthorizationPending = "authorization_pending"
	CodeSlowDown             = "slow_down"
	CodeAccessDenied         = "access_denied"
	CodeExpiredToken         = "expired_token"
)

const (
	// deviceInterval is the least time between two polls that a client is first told (RFC 8628
	// §3.2's default).
	deviceInterval = 5 * time.Second
	// userCodeAlphabet has no vowels, so no word can be spelled, and no digit, so nothing reads as
	// another character (RFC 8628 §6.1): 20 letters, 8 of them give 34 bits, which the device page's
	// throttle and the code's short life leave out of a guesser's reach (RFC 8628 §5.1).
	userCodeAlphabet = "BCDFGHJKLMNPQRSTVWXZ"
	userCodeLen      = 8
	// userCodeDraws bounds the draws for a user code no live code holds; with 20^8 codes, needing a
	// second draw is already rare.
	userCodeDraws = 5
	// maxTypedUserCode bounds what the page accepts as a typed user code before looking at it.
	maxTypedUserCode = 64
)

// deviceAuthorization is RFC 8628 §3.2's answer.
type deviceAuthorization struct {
	DeviceCode              string `json:"device_code"`
	UserCode                string `json:"user_code"`
	VerificationURI         string `json:"verification_uri"`
	VerificationURIComplete string `json:"verification_uri_complete"`
	ExpiresIn               int64  `json:"expires_in"`
	Interval                int64  `json:"interval"`
}

// deviceApproval is what a person's approval stores with the code (store.DeviceCode.Grant).
type deviceApproval struct {
	Subject  string         `json:"sub"`
	Claims   map[string]any `json:"claims,omitempty"`
	AuthTime time.Time      `json:"auth_time"`
	IdP      string         `json:"idp,omitempty"`
}

// DeviceAuthorization serves POST /connect/deviceauthorization (RFC 8628 §3.1): a client,
// authenticated as at the token endpoint, gets a device code to poll with and a user code for the
// person to type at the verification URI.
func (s *Server) DeviceAuthorization(w http.ResponseWriter, r *http.Request) {
	serveJSON(s, w, r, s.deviceAuthorization)
}

func (s *Server) deviceAuthorization(w http.ResponseWriter, r *http.Request) (*deviceAuthorization, *Error) {
	f, client, err := s.clientRequest(w, r)
	if err != nil {
		return nil, err
	}
	if !client.allows("device_code") {
		return nil, errorf(CodeUnauthorizedClient, "the client may not use the device flow")
	}
	scope, err := GrantedScope(f["scope"], client.Scopes)
	if err != nil {
		return nil, err
	}
	now, address := s.cfg.Now(), s.cfg.ClientIP(r)
	// Every answer stores a device code, so a client (a public one proves nothing) must not ask
	// without bound; counted per address too, so that one source cannot starve the client's others.
	if wait, ok := s.limits.deviceAuthorizations.Allow(client.ID+"\x00"+address, now); !ok {
		s.cfg.Observe(Event{Kind: EventThrottled, What: ThrottledDeviceAuthorization, Client: client, RemoteIP: address})
		return nil, tooMany(wait, "too many device authorization requests; retry later")
	}
	// 256 random bits: the device code is the client's only proof at the token endpoint.
	deviceCode := randomToken()
	d := store.DeviceCode{ClientID: client.ID, Scope: scope, ExpiresAt: now.Add(s.cfg.DeviceCodeTTL), Interval: deviceInterval}
	verificationURI := s.cfg.VerificationURI
	for range userCodeDraws {
		d.UserCode = newUserCode()
		created, fault := s.cfg.Store.CreateDeviceCode(r.Context(), hashToken(deviceCode), d)
		if fault != nil {
			return nil, unavailable(fault)
		}
		if !created {
			continue
		}
		userCode := displayUserCode(d.UserCode)
		return &deviceAuthorization{
			DeviceCode:              deviceCode,
			UserCode:                userCode,
			VerificationURI:         verificationURI,
			VerificationURIComplete: verificationURI + "?user_code=" + url.QueryEscape(userCode),
			ExpiresIn:               expiresIn(d.ExpiresAt, now),
			Interval:                int64(deviceInterval / time.Second),
		}, nil
	}
	return nil, serverFault(fmt.Errorf("grants: %d user codes drawn, every one held by a live device code", userCodeDraws))
}

// deviceCode runs RFC 8628 §3.4-3.5: the client polls with its device code until the person has
// decided. A decision is reported once; the approval is redeemed once.
func (s *Server) deviceCode(ctx context.Context, req *tokenRequest) (*tokenResponse, *Error) {
	code, ok := req.form["device_code"]
	if !ok {
		return nil, errorf(CodeInvalidRequest, "device_code is missing")
	}
	d, status, err := s.cfg.Store.PollDeviceCode(ctx, hashToken(code), req.client.ID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errorf(CodeInvalidGrant, "the device code is invalid, used, or another client's")
	}
	if err != nil {
		return nil, unavailable(err)
	}
	switch status {
	case store.DevicePending:
		return nil, errorf(CodeAuthorizationPending, "the person has not decided yet")
	case store.DeviceSlowDown:
		return nil, errorf(CodeSlowDown, fmt.Sprintf("polled too soon: poll at most every %d s", int64(d.Interval/time.Second)))
	case store.DeviceDenied:
		// RFC 8628 §3.5: access_denied is an error response, 400 like the others (fosite sends 403).
		return nil, errorf(CodeAccessDenied, "the person denied the request")
	case store.DeviceExpired:
		return nil, errorf(CodeExpiredToken, "the device code has expired; start over")
	case store.DeviceApproved:
		var a deviceApproval
		if err := json.Unmarshal(d.Grant, &a); err != nil {
			return nil, serverFault(fmt.Errorf("grants: device approval: %w", err))
		}
		return s.respond(ctx, req, &grant{Subject: a.Subject, Scope: d.Scope, Claims: a.Claims, User: true, IdP: a.IdP, AuthTime: a.AuthTime})
	}
	return nil, serverFault(fmt.Errorf("grants: device code status %q", status))
}

// DeviceRequest is a device authorization waiting for a person's decision, as the device page
// shows it.
type DeviceRequest struct {
	// UserCode is the code as the device displays it (XXXX-XXXX).
	UserCode string
	// Client is the client that asked.
	Client *Client
	// Scope is what it asked for.
	Scope []string
	// ExpiresAt is when the request lapses.
	ExpiresAt time.Time
}

// PendingDevice returns the request waiting under the user code a person typed: dashes, spaces
// and case are forgiven. ok is false when none waits: a mistyped, unknown, expired or decided
// code, or one whose client is gone; the error is for faults only.
func (s *Server) PendingDevice(ctx context.Context, typed string) (req DeviceRequest, ok bool, err error) {
	userCode, wellFormed := canonicalUserCode(typed)
	if !wellFormed {
		return req, false, nil
	}
	d, err := s.cfg.Store.PendingDeviceCode(ctx, userCode)
	if errors.Is(err, store.ErrNotFound) {
		return req, false, nil
	}
	if err != nil {
		return req, false, err
	}
	client, err := s.resolveClient(ctx, d.ClientID)
	switch {
	case errors.Is(err, ErrSourceUnavailable):
		return req, false, err
	case client == nil:
		return req, false, nil
	}
	return DeviceRequest{UserCode: displayUserCode(userCode), Client: client, Scope: d.Scope, ExpiresAt: d.ExpiresAt}, true, nil
}

// ApproveDevice records that user approved the request under userCode; the client's next poll
// gets the tokens. ok is false when the request no longer waits (decided meanwhile, or expired).
func (s *Server) ApproveDevice(ctx context.Context, userCode string, user SignedIn) (ok bool, err error) {
	approval, err := json.Marshal(deviceApproval{Subject: user.Subject, Claims: user.Claims, AuthTime: user.AuthTime, IdP: user.IdP})
	if err != nil {
		return false, err
	}
	return s.decideDevice(ctx, userCode, store.DeviceApproved, approval)
}

// DenyDevice records that the person denied the request under userCode; the client's next poll
// gets access_denied. ok is false when the request no longer waits.
func (s *Server) DenyDevice(ctx context.Context, userCode string) (ok bool, err error) {
	return s.decideDevice(ctx, userCode, store.DeviceDenied, nil)
}

func (s *Server) decideDevice(ctx context.Context, userCode string, decision store.DeviceStatus, approval []byte) (bool, error) {
	canonical, wellFormed := canonicalUserCode(userCode)
	if !wellFormed {
		return false, nil
	}
	err := s.cfg.Store.DecideDeviceCode(ctx, canonical, decision, approval)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// newUserCode draws userCodeLen letters of userCodeAlphabet uniformly: bytes from 240 up are
// dropped, since 256 is not a multiple of 20 and keeping them would favour the first letters.
func newUserCode() string {
	const limit = 256 - 256%len(userCodeAlphabet)
	code := make([]byte, 0, userCodeLen)
	var buf [2 * userCodeLen]byte
	for len(code) < userCodeLen {
		rand.Read(buf[:])
		for _, b := range buf {
			if int(b) < limit && len(code) < userCodeLen {
				code = append(code, userCodeAlphabet[int(b)%len(userCodeAlphabet)])
			}
		}
	}
	return string(code)
}

// canonicalUserCode is the stored form of a typed user code: dashes and spaces dropped, letters
// upper-cased (RFC 8628 §6.1 asks for both to be forgiven). Only ASCII is looked at, so no Unicode
// case folding can turn another character into a code letter.
func canonicalUserCode(typed string) (string, bool) {
	if len(typed) > maxTypedUserCode {
		return "", false
	}
	code := make([]byte, 0, userCodeLen)
	for i := 0; i < len(typed); i++ {
		c := typed[i]
		if c == '-' || c == ' ' {
			continue
		}
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		if !strings.ContainsRune(userCodeAlphabet, rune(c)) {
			return "", false
		}
		code = append(code, c)
	}
	return string(code), len(code) == userCodeLen
}

// displayUserCode is how a person reads a code: two groups of four (RFC 8628 §6.1).
func displayUserCode(code string) string { return code[:4] + "-" + code[4:] }
