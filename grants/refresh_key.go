package grants

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"time"
)

// A refresh token starts with a prefix that places it in the store: a digest of its family's id,
// then its issue time. Its key keeps that prefix in front of the token's hash, so a family's
// tokens are stored side by side, oldest first, and a rotation writes its new token next to the
// one it retires: on a B+tree store (bolt) that is one leaf page to rewrite and fsync instead of
// two pages anywhere in the file, which is what a durable refresh costs. Neither part of the
// prefix is a secret; the token's 256 random bits (RFC 6749 §10.10) follow it, unchanged.
const (
	familyDigestLen  = 8
	issuedAtLen      = 6 // milliseconds since 1970, big-endian: until the year 10889
	refreshPrefixLen = familyDigestLen + issuedAtLen
	refreshRandomLen = 32
)

// newRefreshTokenValue makes a refresh token of familyID issued at now (base64url: VSCHAR only).
func newRefreshTokenValue(familyID string, now time.Time) string {
	var b [refreshPrefixLen + refreshRandomLen]byte
	digest := sha256.Sum256([]byte(familyID))
	copy(b[:familyDigestLen], digest[:])
	var ms [8]byte
	binary.BigEndian.PutUint64(ms[:], uint64(now.UnixMilli()))
	copy(b[familyDigestLen:refreshPrefixLen], ms[8-issuedAtLen:])
	rand.Read(b[refreshPrefixLen:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// refreshKey is the key the refresh token raw is stored under (see parseRefreshToken).
func refreshKey(raw string) string {
	key, _ := parseRefreshToken(raw)
	return key
}

// parseRefreshToken reads the refresh token raw once for what it says of itself: key, the key it
// is stored under, its prefix in hex (which sorts as the bytes do) and its hash, so the store
// never sees the token itself; and issuedAt, when it was issued, to the millisecond. A token
// without the prefix (issued before it existed, or made up) is keyed by its hash alone, and its
// issuedAt is zero: its grant records the time.
func parseRefreshToken(raw string) (key string, issuedAt time.Time) {
	b, err := base64.RawURLEncoding.DecodeString(raw)
	if err != nil || len(b) != refreshPrefixLen+refreshRandomLen {
		return hashToken(raw), time.Time{}
	}
	var ms [8]byte
	copy(ms[8-issuedAtLen:], b[familyDigestLen:refreshPrefixLen])
	return hex.EncodeToString(b[:refreshPrefixLen]) + hashToken(raw), time.UnixMilli(int64(binary.BigEndian.Uint64(ms[:])))
}
