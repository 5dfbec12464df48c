package grants

import (
	"runtime"
	"time"

	"github.com/tokengate/tokengate/credential"
	"github.com/tokengate/tokengate/throttle"
)

// Limits is the state that must outlive a config reload: failure counters, so a reload does not
// reset a guessing attacker, and the verified-secret cache, so good clients do not pay bcrypt again.
type Limits struct {
	secrets *credential.Checker
	// usernames throttles password guessing per account: the 10th wrong password within the
	// window is refused with 429 (RFC 6749 §10.10 asks that guessing be made infeasible).
	usernames *throttle.Limiter
	// addresses throttles one source guessing many accounts, far later: an office NAT is one address.
	addresses *throttle.Limiter
	// clients throttles failed client authentication, well above 50 a minute: client secrets are
	// long random strings, so this only bounds the bcrypt work a flood of wrong secrets costs.
	clients *throttle.Limiter
	// deviceAuthorizations bounds device authorization requests per client and address: each one
	// stores a device code until it expires.
	deviceAuthorizations *throttle.Limiter
}

// NewLimits returns fresh counters and an empty cache.
func NewLimits() *Limits {
	return &Limits{
		secrets:   credential.NewChecker(10000, runtime.NumCPU()),
		usernames: throttle.New(9, 5*time.Minute, 100000),
		addresses: throttle.New(200, 5*time.Minute, 100000),
		clients:   throttle.New(120, time.Minute, 10000),

		deviceAuthorizations: throttle.New(100, time.Minute, 100000),
	}
}
