package federation

import (
	"errors"
	"fmt"
)

// The error codes a failed sign-in ends in, sent to the client as RFC 6749 §4.1.2.1 says.
const (
	CodeAccessDenied           = "access_denied"
	CodeServerError            = "server_error"
	CodeTemporarilyUnavailable = "temporarily_unavailable"
)

// Error is a failed sign-in: Code is what the client is told, Description a sentence for it, Err
// the cause, for the log (never shown, since it may quote the upstream).
type Error struct {
	Code        string
	Description string
	Err         error
}

func (e *Error) Error() string {
	if e.Err == nil {
		return e.Code + ": " + e.Description
	}
	return fmt.Sprintf("%s: %s: %v", e.Code, e.Description, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// unavailable is an upstream that cannot be reached, times out or answers 5xx.
func unavailable(what string, err error) *Error {
	return &Error{Code: CodeTemporarilyUnavailable, Description: "the identity provider is unavailable; retry later", Err: fmt.Errorf("%s: %w", what, err)}
}

// invalid is an upstream answer that cannot be trusted or used.
func invalid(what string, err error) *Error {
	return &Error{Code: CodeServerError, Description: "the identity provider's answer was not acceptable", Err: fmt.Errorf("%s: %w", what, err)}
}

// denied is a person the provider's configuration does not let in.
func denied(description string) *Error {
	return &Error{Code: CodeAccessDenied, Description: description}
}

// UpstreamError is the Error for an error an upstream sent back to the callback (RFC 6749
// §4.1.2.1): the person's refusal or the upstream's need to interact is access_denied to the
// client, a passing outage stays temporarily_unavailable, anything else is the upstream's fault.
func UpstreamError(code string) *Error {
	cause := errors.New("the upstream answered error=" + code)
	switch code {
	case "access_denied", "login_required", "consent_required", "interaction_required", "account_selection_required":
		return &Error{Code: CodeAccessDenied, Description: "the sign-in at the identity provider was refused", Err: cause}
	case "temporarily_unavailable":
		return &Error{Code: CodeTemporarilyUnavailable, Description: "the identity provider is unavailable; retry later", Err: cause}
	}
	return &Error{Code: CodeServerError, Description: "the identity provider reported an error", Err: cause}
}

// errUpstreamStatus is an upstream's unexpected HTTP status.
var errUpstreamStatus = errors.New("unexpected status")
