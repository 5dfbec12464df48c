package endpoints

import (
	"context"

	"github.com/tokengate/tokengate/grants"
)

// What the pages ask of the token service (grants.Server), each page only what it uses.

// PasswordChecker checks a person's password as the password grant does: throttled per username
// and per address, the address the person's request comes from.
type PasswordChecker interface {
	SignIn(ctx context.Context, address string, client *grants.Client, username, password, acrValues string) (grants.SignedIn, *grants.Error)
}

// SignInService is what the authorization and end-session pages use: the clients, the
// reading of acr_values, the password check, and the issuing of codes (RFC 6749 §4.1.2).
type SignInService interface {
	PasswordChecker
	Client(id string) (*grants.Client, bool)
	// LookupClient also resolves the clients the configuration does not declare (see
	// grants.ClientSource).
	LookupClient(ctx context.Context, id string) (*grants.Client, error)
	ACRValues(c *grants.Client, param string) (grants.ACRValues, *grants.Error)
	// Resources checks the resource indicators of a request (RFC 8707 §2) as the token endpoint
	// does: invalid_target unless each is one the client may get.
	Resources(c *grants.Client, values []string) ([]string, *grants.Error)
	// UserKnown reports whether an identity provider still has a user, so that a session of a
	// user a reload removed answers nothing.
	UserKnown(idp, subject string) bool
	IssueCode(ctx context.Context, g grants.CodeGrant) (string, error)
}

// DeviceService is what the device page uses: the requests waiting for a person (RFC 8628 §3.3),
// the password check, and the recording of the person's decision.
type DeviceService interface {
	PasswordChecker
	PendingDevice(ctx context.Context, typed string) (req grants.DeviceRequest, ok bool, err error)
	ApproveDevice(ctx context.Context, userCode string, user grants.SignedIn) (ok bool, err error)
	DenyDevice(ctx context.Context, userCode string) (ok bool, err error)
}
