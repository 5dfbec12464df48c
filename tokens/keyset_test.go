package tokens

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"maps"
	"math/big"
	"slices"
	"testing"
	"time"
)

// freshKey is a new key of alg that signs from signsFrom: testKey's signers are one per algorithm.
func freshKey(t testing.TB, alg string, signsFrom time.Time) Key {
	t.Helper()
	signer, err := GenerateKey(alg)
	if err != nil {
		t.Fatal(err)
	}
	k, err := NewKey(alg, signer, signsFrom)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// Signing follows the primary algorithm's schedule (the first key's), whatever the other
// algorithms' keys are dated.
func TestKeySetSigning(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	old, cur, next := freshKey(t, ES256, t0.Add(-time.Hour)), freshKey(t, ES256, t0), freshKey(t, ES256, t0.Add(time.Hour))
	rsa, eddsa := freshKey(t, RS256, t0.Add(-30*time.Minute)), freshKey(t, EdDSA, t0.Add(time.Minute))
	ks, err := NewKeySet(next, rsa, old, eddsa, cur)
	if err != nil {
		t.Fatal(err)
	}
	if ks.Primary() != ES256 {
		t.Errorf("Primary() = %q, want the first key's ES256", ks.Primary())
	}
	cases := []struct {
		at   time.Time
		want string
	}{
		{t0.Add(-2 * time.Hour), old.ID}, // none has started: the earliest
		{t0.Add(-time.Hour), old.ID},
		{t0.Add(-time.Second), old.ID},
		{t0, cur.ID},
		{t0.Add(59 * time.Minute), cur.ID},
		{t0.Add(time.Hour), next.ID},
		{t0.Add(100 * time.Hour), next.ID},
	}
	for _, c := range cases {
		if got := ks.Signing(c.at).ID; got != c.want {
			t.Errorf("Signing(%v) = %q, want %q", c.at, got, c.want)
		}
	}
	if k, ok := ks.Lookup(eddsa.ID); !ok || k.Alg != EdDSA {
		t.Errorf("Lookup(%q) = %v, %v; want the EdDSA key", eddsa.ID, k.Alg, ok)
	}
	for _, kid := range []string{"", "nope", old.ID + " "} {
		if _, ok := ks.Lookup(kid); ok {
			t.Errorf("Lookup(%q) found a key, want none", kid)
		}
	}
	if got, want := ks.Algs(), []string{ES256, EdDSA, RS256}; !slices.Equal(got, want) {
		t.Errorf("Algs() = %q, want %q", got, want)
	}
}

// TestKeySetCensus: each algorithm has one key that signs; the others are next or retired.
func TestKeySetCensus(t *testing.T) {
	old, cur, next := freshKey(t, ES256, t0.Add(-time.Hour)), freshKey(t, ES256, t0), freshKey(t, ES256, t0.Add(time.Hour))
	rsa := freshKey(t, RS256, t0.Add(-30*time.Minute))
	ks, err := NewKeySet(cur, rsa, old, next)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		at                     time.Time
		current, next, retired int
	}{
		{t0.Add(-2 * time.Hour), 2, 2, 0}, // none has started: each algorithm's earliest signs
		{t0, 2, 1, 1},
		{t0.Add(time.Hour), 2, 0, 2},
	}
	for _, c := range cases {
		cur, next, retired := ks.Census(c.at)
		if cur != c.current || next != c.next || retired != c.retired {
			t.Errorf("Census(%v) = %d, %d, %d; want %d, %d, %d", c.at, cur, next, retired, c.current, c.next, c.retired)
		}
	}
}

// A verify-only key never signs, whenever it is dated; it is published and verifies all the same.
func TestKeySetVerifyOnly(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	signs, handedOver := testKey(t, ES256), testKey(t, EdDSA)
	handedOver.VerifyOnly = true
	for _, keys := range [][]Key{{signs, handedOver}, {handedOver, signs}} {
		ks, err := NewKeySet(keys...)
		if err != nil {
			t.Fatal(err)
		}
		if got := ks.Signing(t0).ID; got != signs.ID {
			t.Errorf("Signing() of %s and a verify-only %s = %q, want %q", keys[0].Alg, keys[1].Alg, got, signs.ID)
		}
		if _, ok := ks.Lookup(handedOver.ID); !ok {
			t.Errorf("Lookup(verify-only key) found nothing, want it published")
		}
	}
}

func TestNewKeySetErrors(t *testing.T) {
	es := testKey(t, ES256)
	noID := es
	noID.ID = ""
	wrongAlg := es
	wrongAlg.Alg = RS256
	cases := []struct {
		name string
		keys []Key
	}{
		{"no keys", nil},
		{"empty kid", []Key{noID}},
		{"duplicate kid", []Key{es, es}},
		{"alg does not fit key", []Key{wrongAlg}},
		{"no signer", []Key{{ID: "x", Alg: ES256}}},
		{"only a verify-only key", []Key{{ID: es.ID, Alg: ES256, Signer: es.Signer, VerifyOnly: true}}},
	}
	for _, c := range cases {
		if _, err := NewKeySet(c.keys...); err == nil {
			t.Errorf("NewKeySet(%s) = nil error, want one", c.name)
		}
	}
}

// The JWKS carries, for each key, kid kty alg use and the public members, and nothing private.
func TestJWKS(t *testing.T) {
	var keys []Key
	for _, alg := range allAlgs {
		keys = append(keys, testKey(t, alg))
	}
	ks, err := NewKeySet(keys...)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct{ Keys []map[string]string }
	if err := json.Unmarshal(ks.JWKS(), &doc); err != nil {
		t.Fatalf("JWKS() = %s: %v", ks.JWKS(), err)
	}
	if len(doc.Keys) != len(keys) {
		t.Fatalf("JWKS() has %d keys, want %d", len(doc.Keys), len(keys))
	}
	wantMembers := map[string][]string{
		"EC":  {"alg", "crv", "kid", "kty", "use", "x", "y"},
		"RSA": {"alg", "e", "kid", "kty", "n", "use"},
		"OKP": {"alg", "crv", "kid", "kty", "use", "x"},
	}
	for _, j := range doc.Keys {
		k, ok := ks.Lookup(j["kid"])
		if !ok {
			t.Fatalf("JWKS() key kid %q is not in the set", j["kid"])
		}
		members := slices.Sorted(maps.Keys(j))
		if want := wantMembers[j["kty"]]; !slices.Equal(members, want) {
			t.Errorf("JWKS() %s members = %q, want %q", k.Alg, members, want)
		}
		if j["alg"] != k.Alg || j["use"] != "sig" {
			t.Errorf("JWKS() %s alg, use = %q, %q; want %q, %q", k.ID, j["alg"], j["use"], k.Alg, "sig")
		}
		if !publishedKeyIs(t, j, k) {
			t.Errorf("JWKS() %s public members do not match the key", k.Alg)
		}
	}
	// A caller cannot alter the set's copy.
	ks.JWKS()[0] = 'X'
	if ks.JWKS()[0] != '{' {
		t.Errorf("JWKS() shares its buffer with callers")
	}
}

func publishedKeyIs(t *testing.T, j map[string]string, k Key) bool {
	t.Helper()
	dec := func(s string) []byte {
		b, err := b64.DecodeString(s)
		if err != nil {
			t.Fatalf("JWKS() member %q is not base64url: %v", s, err)
		}
		return b
	}
	switch j["kty"] {
	case "EC":
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, dec(j["x"])...), dec(j["y"])...))
		return err == nil && j["crv"] == "P-256" && pub.Equal(k.Signer.Public())
	case "RSA":
		pub := &rsa.PublicKey{N: new(big.Int).SetBytes(dec(j["n"])), E: int(new(big.Int).SetBytes(dec(j["e"])).Int64())}
		return pub.Equal(k.Signer.Public())
	case "OKP":
		return j["crv"] == "Ed25519" && ed25519.PublicKey(dec(j["x"])).Equal(k.Signer.Public())
	}
	return false
}
