package grants

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
)

// maxBody bounds a token request. Real requests are a few hundred bytes; SAML assertions reach
// tens of kilobytes. fosite caps at 1 MiB too.
const maxBody = 1 << 20

// form holds a token request's parameters, each present at most once and never empty; the
// resource indicators, which a request may repeat (RFC 8707 §2), are kept apart.
type form map[string]string

// parseForm reads a token request's body as RFC 6749 §3.2 demands: POST, form-encoded, every
// parameter at most once but resource, none in the URL. It returns the resource values apart, in
// order, empty ones dropped.
func parseForm(w http.ResponseWriter, r *http.Request) (form, []string, *Error) {
	if r.Method != http.MethodPost {
		return nil, nil, &Error{Code: CodeInvalidRequest, Description: "the token endpoint takes POST",
			Status: http.StatusMethodNotAllowed, Header: http.Header{"Allow": {http.MethodPost}}}
	}
	mediaType, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mediaType != "application/x-www-form-urlencoded" {
		return nil, nil, errorf(CodeInvalidRequest, "the body must be application/x-www-form-urlencoded")
	}
	// RFC 6749 §2.3.1 and §3.2: parameters (credentials above all) belong in the body; accepting
	// them from the URL would put them in logs.
	if r.URL.RawQuery != "" {
		return nil, nil, errorf(CodeInvalidRequest, "parameters must be sent in the request body, not the URL")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, nil, &Error{Code: CodeInvalidRequest, Description: "the request body is too large", Status: http.StatusRequestEntityTooLarge}
		}
		return nil, nil, errorf(CodeInvalidRequest, "the request body could not be read")
	}
	return parseBody(string(body))
}

// parseBody is the pure part of parseForm, fuzzed on its own.
func parseBody(body string) (form, []string, *Error) {
	values, err := url.ParseQuery(body)
	if err != nil {
		return nil, nil, errorf(CodeInvalidRequest, "the request body is not valid form encoding")
	}
	f := make(form, len(values))
	var resources []string
	for name, vs := range values {
		if len(vs) > 1 && name != ResourceParam {
			return nil, nil, errorf(CodeInvalidRequest, "parameter "+name+" is repeated")
		}
		for _, v := range vs {
			if strings.ContainsRune(v, 0) || strings.ContainsRune(name, 0) {
				return nil, nil, errorf(CodeInvalidRequest, "parameter "+name+" holds a NUL byte")
			}
			// RFC 6749 §3.2: a parameter sent without a value is treated as omitted.
			switch {
			case v == "":
			case name == ResourceParam:
				resources = append(resources, v)
			default:
				f[name] = v
			}
		}
	}
	return f, resources, nil
}
