package samlbearer

import (
	"encoding/base64"
	"errors"
	"testing"
)

// TestDecode pins RFC 7522 §2.1's encoding at the size bound: the limit is on decoded bytes,
// padded or not.
func TestDecode(t *testing.T) {
	ten := []byte("0123456789")
	tests := []struct {
		param string
		ok    bool
	}{
		{base64.RawURLEncoding.EncodeToString(ten), true},
		{base64.URLEncoding.EncodeToString(ten), true},
		{base64.RawURLEncoding.EncodeToString(append(ten, 'x')), false},
		{base64.URLEncoding.EncodeToString(append(ten, 'x')), false},
	}
	for _, tt := range tests {
		got, err := decode(tt.param, len(ten))
		if tt.ok && (err != nil || string(got) != string(ten)) {
			t.Errorf("decode(%q, 10) = %q, %v; want %q", tt.param, got, err, ten)
		}
		if !tt.ok && !errors.Is(err, ErrInvalid) {
			t.Errorf("decode(%q, 10) = %q, %v; want ErrInvalid", tt.param, got, err)
		}
	}
}
