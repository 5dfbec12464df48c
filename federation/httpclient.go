package federation

import (
	"errors"
	"io"
	"net/http"
	"time"
)

// Bounds of every request to an upstream: a slow or hostile upstream must not hold a person's
// sign-in, nor our memory, for longer than this.
const (
	// Timeout ends any upstream request, body included.
	Timeout = 10 * time.Second
	// maxBody bounds an upstream answer: discovery documents, key sets, token and userinfo
	// answers are a few KiB.
	maxBody = 1 << 20
)

// NewHTTPClient returns the client every upstream request goes through: timed out after
// Timeout, no redirect followed (an endpoint that moves is a misconfiguration, and a redirect
// could carry a bearer token elsewhere), JSON asked for (RFC 6749 §5.1 answers; GitHub answers a
// form without it), and bodies bounded.
func NewHTTPClient(transport http.RoundTripper) *http.Client {
	if transport == nil {
		transport = http.DefaultTransport
	}
	return &http.Client{
		Timeout:   Timeout,
		Transport: boundedTransport{next: transport},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

type boundedTransport struct{ next http.RoundTripper }

func (t boundedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Header.Get("Accept") == "" {
		r = r.Clone(r.Context())
		r.Header.Set("Accept", "application/json")
	}
	resp, err := t.next.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	resp.Body = &boundedBody{ReadCloser: resp.Body, left: maxBody}
	return resp, nil
}

// errTooLarge is an answer longer than maxBody.
var errTooLarge = errors.New("the answer is too large")

// boundedBody fails a read past its bound instead of truncating silently, so a cut JSON document
// is never taken for a whole one.
type boundedBody struct {
	io.ReadCloser
	left int64
}

func (b *boundedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		var one [1]byte
		if n, _ := b.ReadCloser.Read(one[:]); n > 0 {
			return 0, errTooLarge
		}
		return 0, io.EOF
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	return n, err
}
