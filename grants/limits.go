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
	// clients throttles failed client authentication per client and address, well above 50 a
	// minute: client secrets are long random strings, so this only bounds the bcrypt work one
	// source's wrong secrets cost. Never per client alone, or anyone could lock a client out by
	// sending wrong secrets under its id.
	clients *throttle.Limiter
	// secretChecks bounds the client secret checks one address has under way (bcrypt compares and
	// failure waits, for unknown clients as for known ones), so one source cannot pile them up.
	secretChecks *throttle.InFlight
	// deviceAuthorizations bounds device authorization requests per client and address: each one
	// stores a device code until it expires.
	deviceAuthorizations *throttle.Limiter
}

// secretChecksPerAddress is how many uncached client secret checks one address may have under
// way: a host starting a few services at once gets through, a flood gets 429 at once.
const secretChecksPerAddress = 8

// NewLimits returns fresh counters and an empty cache.
func NewLimits() *Limits {
	return &Limits{
		secrets:      credential.NewChecker(10000, runtime.NumCPU()),
		usernames:    throttle.New(9, 5*time.Minute, 100000),
		addresses:    throttle.New(200, 5*time.Minute, 100000),
		clients:      throttle.New(120, time.Minute, 100000),
		secretChecks: throttle.NewInFlight(secretChecksPerAddress),

		deviceAuthorizations: throttle.New(100, time.Minute, 100000),
	}
}
