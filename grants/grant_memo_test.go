package grants

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
)

// TestGrantMemo: the memo answers what the bytes say, whatever it decoded before, and stays
// within its size.
func TestGrantMemo(t *testing.T) {
	var m grantMemo
	for i := range grantMemoSize + 100 {
		want := grant{Subject: fmt.Sprintf("user%d", i), Scope: []string{"offline_access"}}
		data, err := json.Marshal(want)
		if err != nil {
			t.Fatal(err)
		}
		for range 2 { // decoded, then remembered
			got, err := m.decode(data)
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Fatalf("decode(%s) = %+v, %v; want %+v", data, got, err, want)
			}
		}
	}
	if n := len(m.grants); n > grantMemoSize {
		t.Errorf("the memo holds %d grants, want at most %d", n, grantMemoSize)
	}
	if _, err := m.decode([]byte("{")); err == nil {
		t.Error("decode of a broken grant = nil error")
	}
}
