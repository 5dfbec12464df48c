// Package store keeps tokengate's state: refresh tokens, the revocation log, signing keys, one-time
// values, device authorization requests and registered clients. Each capability is a small
// interface named by its users; Memory (one process, nothing survives it), Bolt (one file),
// Pebble (one directory, an LSM engine that appends) and Redis (shared by several instances)
// implement them all on the same rules (rules.go, device_rules.go), so presenting a token means
// the same on every backend. Bolt and Pebble share one implementation on an embedded key-value
// engine (kv.go, kv_store.go). Every operation that enforces "once" is atomic within one
// backend, across goroutines and, for shared backends, across processes.
//
// Error contract: ErrNotFound and ErrReused describe the data; any other error is a
// technical fault (disk, network) that the caller reports as 503/500 and never as a client mistake.
// Among the faults, ErrWriteRefused says that nothing was written, so that a caller need not
// retry to learn a write's outcome.
package store

import (
	"context"
	"errors"
	"time"
)

var (
	// ErrNotFound: no such record, or it has expired, been used up, or its family is dead.
	ErrNotFound = errors.New("store: not found")
	// ErrReused: a refresh token that was already rotated was presented again (RFC 9700 §4.14.2).
	// The store has killed its family in the same atomic step.
	ErrReused = errors.New("store: refresh token reused")
	// ErrWriteRefused: the store refused a write before writing any of it, and will refuse the
	// next one too until an operator acts (its disk is nearly full, or its engine stopped after a
	// failed write). Nothing changed.
	ErrWriteRefused = errors.New("store: write refused")
)

// RefreshToken is a stored refresh token. The token itself is never stored: records are keyed by
// a hash of it, which the caller computes.
type RefreshToken struct {
	// FamilyID names the chain of rotations that began with one grant. Access tokens carry it, so
	// killing a family needs no list of its access tokens.
	FamilyID string `json:"family_id"`
	// ClientID is the client the token was issued to.
	ClientID string `json:"client_id"`
	// ExpiresAt ends this token; the store may forget it afterwards.
	ExpiresAt time.Time `json:"expires_at"`
	// Grant is the caller's own encoding of what was granted (subject, scope, claims); opaque here.
	Grant []byte `json:"grant"`
}

// RefreshTokens stores refresh tokens and rotates them exactly once.
type RefreshTokens interface {
	// CreateRefreshToken stores a new live token under hash.
	CreateRefreshToken(ctx context.Context, hash string, t RefreshToken) error
	// RefreshToken returns the live token stored under hash. It returns ErrNotFound when the token is
	// unknown, expired, or its family is revoked, and ErrReused (killing the family) when the token
	// was rotated already, with the token, so the caller can name the family the reuse killed.
	RefreshToken(ctx context.Context, hash string) (RefreshToken, error)
	// RotateRefreshToken, in one atomic step, marks the live token under oldHash as rotated (kept
	// until it expires, so a later reuse is detected) and stores next under newHash. When oldHash
	// was rotated already it kills the family and returns ErrReused; when it is unknown, expired or
	// its family is dead, ErrNotFound. Of concurrent rotations of one token exactly one succeeds;
	// the others get ErrReused. next must keep the old token's FamilyID. Repeating a rotation that
	// succeeded (the same oldHash and newHash, while both stand) succeeds again and changes nothing:
	// a caller whose reply was lost retries with its newHash instead of losing the token. A backend
	// that knows the process which committed a rotation crashed (bolt, pebble) honours the old
	// token once more while the successor is unused, since the crash may have swallowed the reply;
	// that rotation retires the successor, so presenting it afterwards is a reuse. newHash must
	// name no stored token (it is the hash of a token just made): every backend refuses newHash ==
	// oldHash, and those where a lookup is cheap (memory, Redis) refuse any taken newHash.
	RotateRefreshToken(ctx context.Context, oldHash, newHash string, next RefreshToken) error
}

// RevocationKind says what a Revocation names.
type RevocationKind string

const (
	// RevokedToken names one access token by its jti.
	RevokedToken RevocationKind = "jti"
	// RevokedFamily names a refresh family (or a code's grant): its refresh tokens fail and every
	// access token carrying its id is refused.
	RevokedFamily RevocationKind = "family"
	// RevokedClient names a client removed from the configuration: every token issued to it before
	// At is refused, even if the client is declared again later.
	RevokedClient RevocationKind = "client"
	// RevokedClientTokens names a client whose access tokens without a grant id, issued before At,
	// are all refused: what revoking one more of them becomes once the client has revoked many, so
	// that the list stays bounded. Its refresh tokens, and tokens carrying a gid, are untouched.
	RevokedClientTokens RevocationKind = "client_tokens"
)

// Revocation is one entry of the deny-list that bearer_auth keeps in memory.
type Revocation struct {
	Kind RevocationKind `json:"kind"`
	ID   string         `json:"id"`
	// At is when a client was removed (RevokedClient) or cut its tokens off (RevokedClientTokens):
	// its tokens issued before are refused.
	At time.Time `json:"at,omitzero"`
	// Until is when the entry may be forgotten: the expiry of the last token it could concern.
	Until time.Time `json:"until"`
	// Grant and Client say, for a RevokedToken, whose token it was: its gid ("" for none) and its
	// client. The deny-list counts entries by them to keep itself bounded.
	Grant  string `json:"gid,omitempty"`
	Client string `json:"client_id,omitempty"`
}

// Revocations is the deny-list. Entries are written once and read in order, so each instance can
// follow the list with a cursor instead of reading the store per request.
type Revocations interface {
	// Revoke adds r to the list. Revoking a family also makes its refresh tokens fail.
	Revoke(ctx context.Context, r Revocation) error
	// RevocationsSince returns the unexpired entries added after cursor, in order, and the cursor to
	// pass next time. Cursor 0 reads the whole list.
	RevocationsSince(ctx context.Context, cursor uint64) ([]Revocation, uint64, error)
}

// SigningKey is a private signing key as the store keeps it.
type SigningKey struct {
	// ID is the key's kid.
	ID string `json:"kid"`
	// Alg is the JWS algorithm it signs with: ES256, RS256, PS256 or EdDSA.
	Alg string `json:"alg"`
	// PEM is the private key, PKCS#8.
	PEM []byte `json:"pem"`
	// SignsFrom is when it becomes the key that signs; it is published in the JWKS before then.
	SignsFrom time.Time `json:"signs_from"`
}

// SigningKeys keeps the generated signing keys, of tokens and of sign-in sessions, so that a
// restart, a reload and every instance on a shared store sign with the same keys.
type SigningKeys interface {
	// AddSigningKey stores k in slot unless the slot is taken, and returns the key the slot holds
	// afterwards: k, or the one another instance stored first (create-if-absent, then read back).
	AddSigningKey(ctx context.Context, slot string, k SigningKey) (SigningKey, error)
	// SigningKeys returns every stored key by slot.
	SigningKeys(ctx context.Context) (map[string]SigningKey, error)
	// DeleteSigningKey forgets the key in slot (a retired key whose tokens have all expired).
	DeleteSigningKey(ctx context.Context, slot string) error
}

// OneTime keeps values that may be taken once: authorization codes and what their redemption
// issued, the device page's sign-in tickets, and the ids of assertions that must not be replayed.
type OneTime interface {
	// PutOnce stores value under key until exp. It returns false, storing nothing, when the key is
	// already present (a replayed assertion id, a colliding code).
	PutOnce(ctx context.Context, key string, value []byte, exp time.Time) (bool, error)
	// Take atomically reads and deletes the value under key: of concurrent takes exactly one gets
	// it, the others ErrNotFound.
	Take(ctx context.Context, key string) ([]byte, error)
}

// Redemptions take a one-time value and leave a mark in its place in one atomic step, so that
// whoever comes for the value after it was taken finds the mark: an authorization code names the
// grant it is about to issue before any token is minted, and a replay, however close behind,
// finds what to revoke (RFC 6749 §4.1.2).
type Redemptions interface {
	// Redeem takes the live value under key, as OneTime.Take does, and in the same atomic step
	// stores mark under markKey until markExp, a one-time value that Take(markKey) reads. Of
	// concurrent redemptions exactly one gets the value, and the mark is there before any other
	// returns. When key holds no live value it stores nothing and returns ErrNotFound.
	Redeem(ctx context.Context, key, markKey string, mark []byte, markExp time.Time) ([]byte, error)
}

// DeviceStatus is where a device authorization request (RFC 8628) stands, and what a poll of its
// device code finds (RFC 8628 §3.5).
type DeviceStatus string

const (
	// DevicePending: the user has not decided yet (authorization_pending).
	DevicePending DeviceStatus = "pending"
	// DeviceSlowDown: polled sooner than the interval allows; the interval has grown by 5 s for
	// this and every later poll (slow_down).
	DeviceSlowDown DeviceStatus = "slow_down"
	// DeviceApproved: the user approved. The poll that finds it redeems the code: it happens once.
	DeviceApproved DeviceStatus = "approved"
	// DeviceDenied: the user denied (access_denied). The poll that finds it uses the code up.
	DeviceDenied DeviceStatus = "denied"
	// DeviceExpired: the code is past its expiry (expired_token).
	DeviceExpired DeviceStatus = "expired"
)

// DeviceCode is a device authorization request (RFC 8628 §3.1) as stored. The device_code itself
// is never stored: records are keyed by a hash of it, which the caller computes.
type DeviceCode struct {
	// ClientID is the client that asked; only it may poll.
	ClientID string `json:"client_id"`
	// UserCode is what the person types, in the caller's canonical form: unique among live codes.
	UserCode string `json:"user_code"`
	// Scope is what the client asked for.
	Scope []string `json:"scope,omitempty"`
	// ExpiresAt ends the request: later polls find DeviceExpired, for a while, then nothing.
	ExpiresAt time.Time `json:"expires_at"`
	// Interval is the least time between two polls (RFC 8628 §3.2); each slow_down adds 5 s.
	Interval time.Duration `json:"interval"`
	// Grant is the caller's encoding of what the person approved; set by the approval, opaque here.
	Grant []byte `json:"grant,omitempty"`
}

// DeviceCodes keeps device authorization requests (RFC 8628) from their creation to their single
// redemption. Deciding and polling are atomic: of concurrent polls of an approved code exactly one
// finds it approved, and a code is decided once.
type DeviceCodes interface {
	// CreateDeviceCode stores d, pending, under hash and indexes it by d.UserCode. It returns false,
	// storing nothing, when a live code already has that user code (or that hash): the caller draws
	// another.
	CreateDeviceCode(ctx context.Context, hash string, d DeviceCode) (bool, error)
	// PendingDeviceCode returns the code whose user code is userCode while it waits for a decision;
	// ErrNotFound when it is unknown, expired or decided.
	PendingDeviceCode(ctx context.Context, userCode string) (DeviceCode, error)
	// DecideDeviceCode records the person's decision on the pending code with userCode, once:
	// DeviceApproved with the grant, or DeviceDenied. ErrNotFound when no such code is pending.
	DecideDeviceCode(ctx context.Context, userCode string, decision DeviceStatus, grant []byte) error
	// PollDeviceCode answers the client's poll of the code under hash (RFC 8628 §3.5): ErrNotFound
	// when it is unknown, another client's, used up or long expired; otherwise its status and the
	// code (with the grant when approved). Finding it approved or denied uses it up; a pending poll
	// sooner than the interval allows is DeviceSlowDown and lengthens the interval.
	PollDeviceCode(ctx context.Context, hash, clientID string) (DeviceCode, DeviceStatus, error)
}

// Store is everything a backend provides.
type Store interface {
	RefreshTokens
	Revocations
	SigningKeys
	OneTime
	Redemptions
	DeviceCodes
	RegisteredClients
	// Close releases the backend (the bolt file lock, the pebble directory, the Redis pool).
	Close() error
}
