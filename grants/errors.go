package grants

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tokengate/tokengate/internal/nostore"
)

// RFC 6749 §5.2 error codes, and the ones the device flow and our own faults add.
const (
	CodeInvalidRequest       = "invalid_request"
	CodeInvalidClient        = "invalid_client"
	CodeInvalidGrant         = "invalid_grant"
	CodeUnauthorizedClient   = "unauthorized_client"
	CodeUnsupportedGrantType = "unsupported_grant_type"
	CodeInvalidScope         = "invalid_scope"
	CodeServerError          = "server_error"
	CodeTemporarilyUnavail   = "temporarily_unavailable"
)

// Error is an RFC 6749 §5.2 error response. The wire format is the type: Code and Description are
// what the client reads; the rest decides the status and headers.
type Error struct {
	Code        string
	Description string
	// Status overrides the status the code implies (405 for a wrong method, 413, 429).
	Status int
	// RetryAfter, when set, is sent as Retry-After (throttling).
	RetryAfter time.Duration
	// Header holds extra response headers (Allow).
	Header http.Header
	// triedBasic: the client authenticated with HTTP Basic, so an invalid_client answer must carry a
	// Basic challenge (RFC 6749 §5.2).
	triedBasic bool
	// cause is a server fault behind a 500/503, for the log only.
	cause error
}

func (e *Error) Error() string {
	if e.cause != nil {
		return e.Code + ": " + e.cause.Error()
	}
	return e.Code + ": " + e.Description
}

func (e *Error) Unwrap() error { return e.cause }

func errorf(code, description string) *Error {
	return &Error{Code: code, Description: description}
}

// serverFault hides cause from the client: an internal fault is a 500 with no detail.
func serverFault(cause error) *Error {
	return &Error{Code: CodeServerError, cause: cause}
}

// unavailable is what a request that needs an unreachable backend gets: 503, retry later.
func unavailable(cause error) *Error {
	return &Error{Code: CodeTemporarilyUnavail, Description: "the service is temporarily unavailable; retry later", cause: cause}
}

// tooMany is a throttled request's answer: 429 with Retry-After, at least a second.
func tooMany(wait time.Duration, description string) *Error {
	return &Error{Code: CodeTemporarilyUnavail, Description: description,
		Status: http.StatusTooManyRequests, RetryAfter: max(wait, time.Second)}
}

// HTTPStatus is the status the error is answered with.
func (e *Error) HTTPStatus() int {
	if e.Status != 0 {
		return e.Status
	}
	switch e.Code {
	case CodeInvalidClient:
		return http.StatusUnauthorized
	case CodeServerError:
		return http.StatusInternalServerError
	case CodeTemporarilyUnavail:
		return http.StatusServiceUnavailable
	}
	return http.StatusBadRequest
}

// write sends the error as JSON with the no-store headers every token endpoint answer carries.
func (e *Error) write(w http.ResponseWriter) {
	h := w.Header()
	for k, v := range e.Header {
		h[k] = v
	}
	if e.Code == CodeInvalidClient && e.triedBasic {
		h.Set("WWW-Authenticate", `Basic realm="tokengate", charset="UTF-8"`)
	}
	if e.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(int((e.RetryAfter+time.Second-1)/time.Second)))
	}
	body := struct {
		Error       string `json:"error"`
		Description string `json:"error_description,omitempty"`
	}{e.Code, wireSafe(e.Description)}
	writeJSON(w, e.HTTPStatus(), body)
}

// wireSafe keeps only the characters RFC 6749 §5.2 allows in error_description
// (%x20-21 / %x23-5B / %x5D-7E), so echoed input can never smuggle CR, LF, quotes or non-ASCII.
func wireSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r == 0x20 || r == 0x21 || (r >= 0x23 && r <= 0x5B) || (r >= 0x5D && r <= 0x7E) {
			return r
		}
		return '?'
	}, s)
}

// writeJSON answers body as JSON, which no cache keeps: RFC 6749 §5.1 asks it of token responses,
// and every other answer of these endpoints names or carries a token too.
func writeJSON(w http.ResponseWriter, status int, body any) {
	nostore.WriteJSON(w, status, body)
}
