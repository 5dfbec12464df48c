package store

import (
	"errors"
	"fmt"
	"time"
)

// The rules below are shared by every backend, so that each one only decides how records are kept,
// never what presenting a token means.

// errHashTaken reports a refresh token hash that is already stored. 256 random bits never collide,
// so this is a caller's fault; overwriting instead could bring a rotated token back to life.
var errHashTaken = errors.New("store: refresh token hash already stored")

// refreshRecord is a refresh token as stored.
type refreshRecord struct {
	RefreshToken
	// Rotated marks a token exchanged already. It is kept until ExpiresAt so that a second use is
	// recognised as reuse (RFC 9700 §4.14.2) instead of passing for an unknown token.
	Rotated bool `json:"rotated,omitempty"`
	// Successor is the hash the token was rotated to, so that the same rotation repeated is told
	// apart from a reuse.
	Successor string `json:"successor,omitempty"`
	// RotatedBy numbers the run of the process that rotated the token, where the backend tells
	// runs apart (bolt; zero elsewhere): a rotation committed by a run that crashed may never have
	// been answered.
	RotatedBy uint64 `json:"rotated_by,omitempty"`
}

// family is what the store knows of a refresh family: how long its tokens live and whether it is dead.
type family struct {
	// Expires is the latest ExpiresAt among the family's refresh tokens.
	Expires time.Time `json:"expires"`
	// Dead is set once the family is revoked; it never returns to life.
	Dead bool `json:"dead,omitempty"`
	// DeadUntil is the latest Until among the family's entries in the revocation log.
	DeadUntil time.Time `json:"dead_until,omitzero"`
}

// forgetAt is when the record may go: its tokens have all expired, and so has its log entry.
func (f *family) forgetAt() time.Time { return later(f.Expires, f.DeadUntil) }

// grow notes a member token that expires at exp.
func (f *family) grow(exp time.Time) { f.Expires = later(f.Expires, exp) }

// revoke marks the family dead until at least until. It reports whether the revocation must be
// appended to the log: not when an entry lasting as long is there already, so that repeated
// revocations (or a burst of reuses) do not grow the list every instance reads.
func (f *family) revoke(until time.Time) bool {
	if f.Dead && !until.After(f.DeadUntil) {
		return false
	}
	f.Dead = true
	f.DeadUntil = later(f.DeadUntil, until)
	return true
}

// killedBy marks the family dead because rec was presented after its rotation. The entry lasts
// until the family's last refresh token expires: no token it issued may be honoured before then.
// The bool says whether the entry must be appended to the log.
func (f *family) killedBy(rec refreshRecord) (Revocation, bool) {
	r := Revocation{Kind: RevokedFamily, ID: rec.FamilyID, Until: later(f.Expires, rec.ExpiresAt)}
	return r, f.revoke(r.Until)
}

// answer is what RefreshToken returns of rec and the verdict err on it: rec when it is live, or
// reused (the caller names the family the reuse killed), nothing otherwise.
func answer(rec RefreshToken, err error) (RefreshToken, error) {
	if err != nil && !errors.Is(err, ErrReused) {
		return RefreshToken{}, err
	}
	return rec, err
}

// presented says what presenting a refresh token means: nil when it is live, ErrReused when it was
// rotated already (the caller then kills the family, RFC 9700 §4.14.2), ErrNotFound otherwise.
// Reuse is checked before the family's death so that, of concurrent rotations, all the losers see
// ErrReused even though the first of them has killed the family already.
func presented(rec refreshRecord, found bool, fam family, now time.Time) error {
	switch {
	case !found || expired(rec.ExpiresAt, now):
		return ErrNotFound
	case rec.Rotated:
		return ErrReused
	case fam.Dead:
		return ErrNotFound
	}
	return nil
}

// repeated reports whether rotating rec to newHash has happened already and still stands. A caller
// whose reply was lost after the commit (a network fault on the way back from Redis) retries with
// the same newHash and must get success, not be taken for a reuse that kills the family. Only that
// caller knows newHash, so a concurrent rotation by anyone else is still a reuse.
func repeated(rec refreshRecord, fam family, newHash string, now time.Time) bool {
	return rec.Rotated && rec.Successor == newHash && !expired(rec.ExpiresAt, now) && !fam.Dead
}

// unanswered reports whether rec, rotated by a run of the process that has crashed since, must be
// honoured once more: its successor succ is still live and unused. The crash may have come between
// the commit and the reply, and the client then holds rec and nothing else; taking its next use
// for a reuse would kill the family of a client that did nothing wrong. Once the successor has
// been presented, its holder had the reply, and rec is a reuse again.
//
// The store cannot tell this from a rotation answered just before the crash whose old token a
// thief presents: the thief gets one rotation, which retires the successor, and the holder's next
// use of that successor is a reuse that kills the family (RFC 9700 §4.14.2), just as a thief's use
// of a stolen live token is detected.
func unanswered(rec, succ refreshRecord, succFound bool, now time.Time) bool {
	return rec.Rotated && succFound && !succ.Rotated && !expired(succ.ExpiresAt, now)
}

// checkRotation refuses a rotation that would move a token out of its family: the new token would
// escape the family's revocation.
func checkRotation(old refreshRecord, next RefreshToken) error {
	if next.FamilyID != old.FamilyID {
		return fmt.Errorf("store: rotation must keep family %q, got %q", old.FamilyID, next.FamilyID)
	}
	return nil
}

// checkRevocation refuses entries that no reader could match.
func checkRevocation(r Revocation) error {
	cutoff := r.Kind == RevokedClient || r.Kind == RevokedClientTokens
	if !cutoff && r.Kind != RevokedToken && r.Kind != RevokedFamily {
		return fmt.Errorf("store: unknown revocation kind %q", r.Kind)
	}
	if cutoff == r.At.IsZero() {
		return errors.New("store: a client revocation, and only one, says from when it holds")
	}
	if r.ID == "" {
		return errors.New("store: revocation without id")
	}
	return nil
}

// oneTime is a value stored by PutOnce.
type oneTime struct {
	Value     []byte    `json:"value"`
	ExpiresAt time.Time `json:"expires_at"`
}

// expired reports whether something valid until exp is gone at now: exp itself is too late.
func expired(exp, now time.Time) bool { return !now.Before(exp) }

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
