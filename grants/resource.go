package grants

import (
	"net/url"
	"slices"
)

// ResourceParam is the resource indicator parameter (RFC 8707 §2), which a request may repeat.
const ResourceParam = "resource"

// Resources checks the resource indicators of a request by client c (RFC 8707 §2): each an
// absolute URI without a fragment, and a resource c may get tokens for. It returns them each
// once, in order; nil for none. Its errors are invalid_target. The authorization endpoint and the
// token endpoint both use it, so a code is authorized for what a token would be.
func (s *Server) Resources(c *Client, values []string) ([]string, *Error) {
	var resources []string
	for _, v := range values {
		if !indicator(v) {
			// "section", not "§": an error_description is ASCII (RFC 6749 §5.2).
			return nil, errorf(CodeInvalidTarget, "a resource is not an absolute URI without a fragment (RFC 8707 section 2)")
		}
		if !s.mayGet(c, v) {
			return nil, errorf(CodeInvalidTarget, "the client gets no tokens for a requested resource")
		}
		if !slices.Contains(resources, v) {
			resources = append(resources, v)
		}
	}
	return resources, nil
}

// indicator reports whether v is a resource indicator RFC 8707 §2 admits: an absolute URI (a
// scheme and more) with no fragment. Only printable ASCII without space can be one (RFC 3986
// §2), which keeps it fit for an error description too.
func indicator(v string) bool {
	for i := 0; i < len(v); i++ {
		if v[i] <= 0x20 || v[i] >= 0x7f || v[i] == '#' {
			return false
		}
	}
	u, err := url.Parse(v)
	return err == nil && u.IsAbs() && u.Opaque+u.Host+u.Path != ""
}

// mayGet reports whether c may get tokens for the resource uri: a client registered at run time
// (Dynamic) any known resource, a configured client one of its audiences.
func (s *Server) mayGet(c *Client, uri string) bool {
	if c.Dynamic {
		return s.cfg.Resources.Has(uri)
	}
	return slices.Contains(c.Audience, uri)
}

// targetResources is the aud of a token issued on a grant authorized for granted (RFC 8707 §2.2):
// the request's resources, which must be among granted (a subset narrows the token), or all of
// granted when the request names none. A grant authorized for no resource (a configured client
// that named none) stands for every resource the client may get. Nil means the client's audience.
// The grant itself keeps what it was authorized for, so a later refresh may widen back to it.
func (s *Server) targetResources(c *Client, requested, granted []string) ([]string, *Error) {
	if len(granted) == 0 {
		return s.Resources(c, requested)
	}
	var resources []string
	for _, v := range requested {
		if !slices.Contains(granted, v) {
			return nil, errorf(CodeInvalidTarget, "the grant is not authorized for a requested resource")
		}
		if !slices.Contains(resources, v) {
			resources = append(resources, v)
		}
	}
	if resources == nil {
		resources = granted
	}
	return resources, nil
}
