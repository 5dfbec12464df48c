package grants

import "time"

// EventKind names a security event of the endpoints: what an operator counts and audits.
type EventKind uint8

const (
	// EventTokenIssued: the token endpoint answered with tokens (RFC 6749 §5.1).
	EventTokenIssued EventKind = iota + 1
	// EventTokenRefused: the token endpoint answered with an error (RFC 6749 §5.2).
	EventTokenRefused
	// EventClientAuthFailed: a client failed to authenticate (RFC 6749 §2.3).
	EventClientAuthFailed
	// EventSignIn: a person's password was checked, or the check was refused.
	EventSignIn
	// EventRefreshReused: a rotated refresh token was presented again, and its family killed
	// (RFC 9700 §4.14.2).
	EventRefreshReused
	// EventRevoked: tokens were revoked (RFC 7009, a replayed code, a removed client).
	EventRevoked
	// EventThrottled: an attempt was refused for the failures before it.
	EventThrottled
)

// Sign-in results: the Result of an EventSignIn.
const (
	SignInOK            = "ok"
	SignInWrongPassword = "wrong_password"
	SignInThrottled     = "throttled"
	SignInError         = "error"
)

// What an EventRevoked revoked.
const (
	RevokedAccessToken   = "access_token"
	RevokedRefreshFamily = "refresh_family"
	RevokedCodeReplay    = "code_replay"
	RevokedClientRemoved = "client_removed"
)

// What an EventThrottled throttled: guessing passwords of one account, failed authentication of
// one client from one address, one address's failures or attempts under way, user codes guessed
// on the device page, device authorization requested too often by one client from one address.
const (
	ThrottledPassword            = "password"
	ThrottledClient              = "client"
	ThrottledAddress             = "address"
	ThrottledUserCode            = "user_code"
	ThrottledDeviceAuthorization = "device_authorization"
)

// GrantUnsupported is the GrantType of a token request whose grant_type is missing or unknown, so
// that a label never holds a raw request value.
const GrantUnsupported = "unsupported"

// ResultOK is the Result of a token request answered with tokens.
const ResultOK = "ok"

// Event is one security event. Only the fields its Kind uses are set, and none ever holds a
// secret, a password, an assertion or a token: a jti and a grant id name tokens without being them.
type Event struct {
	Kind EventKind
	// Client is the client: the authenticated one, or the configured one a failed request named;
	// nil when none was identified.
	Client *Client
	// GrantType is the grant's name (KnownGrant, or an extension's URI), or GrantUnsupported.
	GrantType string
	// Result is ResultOK or the RFC 6749 §5.2 error code of a token request, or a sign-in result.
	Result string
	// Duration is how long the token request took.
	Duration time.Duration
	// Subject, Scope and JTI describe an issued access token; Subject also who signed in.
	Subject string
	Scope   string
	JTI     string
	// GrantID is the grant (refresh family) an issued, reused or revoked token belongs to.
	GrantID string
	// Username is the name a person signed in with; IdP the identity provider that checked it.
	Username string
	IdP      string
	// AuthMethod is how a client tried to authenticate (client_secret_basic, ...).
	AuthMethod string
	// RemoteIP is the address the request came from (Dependencies.ClientIP).
	RemoteIP string
	// What is what was revoked (Revoked*) or throttled (Throttled*).
	What string
}

// Observer hears of every Event, on the request's goroutine: it must be quick and must not block.
type Observer func(Event)

// ignore is the Observer of a Server built without one.
func ignore(Event) {}
