package grants

import (
	"encoding/json"
	"sync"
)

// grantMemoSize bounds grantMemo: the grants of as many families refreshing at once.
const grantMemoSize = 4096

// grantMemo decodes the grants refresh tokens store, remembering the decoding of each by its
// JSON: the tokens of a family share their grant byte for byte, so a busy family's refreshes
// decode it once. Its key is the JSON itself, so an entry is always what those bytes say and can
// never go out of date; a full memo forgets an arbitrary entry (Go's map order is random).
//
// A decoded grant's slices and map (Scope, Resources, Claims) are shared with the memo and with
// every other request that decoded the same bytes: nothing may change them in place.
type grantMemo struct {
	mu     sync.RWMutex
	grants map[string]grant
}

// decode returns the grant data holds.
func (m *grantMemo) decode(data []byte) (grant, error) {
	m.mu.RLock()
	g, ok := m.grants[string(data)]
	m.mu.RUnlock()
	if ok {
		return g, nil
	}
	if err := json.Unmarshal(data, &g); err != nil {
		return grant{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.grants == nil {
		m.grants = make(map[string]grant, grantMemoSize)
	}
	for k := range m.grants {
		if len(m.grants) < grantMemoSize {
			break
		}
		delete(m.grants, k)
	}
	m.grants[string(data)] = g
	return g, nil
}
