package store

import (
	"fmt"
	"strings"
	"testing"
)

// TestRecentValuesBounded: however many keys the writes touch, recentValues holds no more than
// recentBytes, and what it holds is what was last written.
func TestRecentValuesBounded(t *testing.T) {
	var r recentValues
	value := []byte(strings.Repeat("v", 400))
	const keys = 3 * recentBytes / 400
	for i := range keys {
		k := fmt.Sprintf("refresh_tokens/%08d", i)
		r.learn(map[string][]byte{"families/" + k: nil}, map[string][]byte{k: value})
		if r.size > recentBytes {
			t.Fatalf("after %d writes recentValues holds %d bytes, want at most %d", i+1, r.size, recentBytes)
		}
	}
	held := 0
	for k, v := range r.values {
		held += len(k) + len(v)
	}
	if held != r.size {
		t.Errorf("recentValues counts %d bytes, holds %d", r.size, held)
	}
	last := fmt.Sprintf("refresh_tokens/%08d", keys-1)
	if v, ok := r.get([]byte(last)); !ok || string(v) != string(value) {
		t.Errorf("the last value written is not held")
	}
	r.learn(nil, map[string][]byte{last: nil})
	if _, ok := r.get([]byte(last)); ok {
		t.Errorf("a deleted key is still held")
	}
}
