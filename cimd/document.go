package cimd

import (
	"bytes"
	"cmp"
	"encoding/json"
	"net/url"

	"github.com/tokengate/tokengate/grants"
)

// document is the part of a client metadata document (RFC 7591 §2 metadata) this server reads.
type document struct {
	ClientID                string          `json:"client_id"`
	ClientName              string          `json:"client_name"`
	RedirectURIs            []string        `json:"redirect_uris"`
	TokenEndpointAuthMethod string          `json:"token_endpoint_auth_method"`
	ClientSecret            json.RawMessage `json:"client_secret"`
	GrantTypes              []string        `json:"grant_types"`
	ResponseTypes           []string        `json:"response_types"`
}

// client validates the document fetched from u (the client_id id) and returns its client: public,
// since a document is public and so can hold no secret, and named by its client_name or else the
// URL's host.
func (r *Resolver) client(u *url.URL, id string, body []byte) (*grants.Client, *Error) {
	var doc document
	if trimmed := bytes.TrimSpace(body); len(trimmed) == 0 || trimmed[0] != '{' || json.Unmarshal(trimmed, &doc) != nil {
		return nil, refused("the client metadata document is not a JSON object of the expected members", nil)
	}
	switch {
	case doc.ClientID != id:
		return nil, refused("the client metadata document's client_id is not the URL it was fetched from", nil)
	case len(doc.RedirectURIs) == 0:
		return nil, refused("the client metadata document lists no redirect_uris", nil)
	case doc.TokenEndpointAuthMethod != "" && doc.TokenEndpointAuthMethod != grants.AuthNone:
		return nil, refused("the client metadata document's token_endpoint_auth_method is not none", nil)
	case doc.ClientSecret != nil:
		return nil, refused("the client metadata document holds a client_secret", nil)
	}
	if err := grants.CheckDynamicFlows(doc.GrantTypes, doc.ResponseTypes); err != nil {
		return nil, refused("the client metadata document's "+err.Error(), nil)
	}
	for _, uri := range doc.RedirectURIs {
		if err := grants.CheckDynamicRedirectURI(uri); err != nil {
			return nil, refused("the client metadata document's redirect_uris: "+err.Error(), nil)
		}
	}
	return &grants.Client{
		ID:           id,
		Dynamic:      true,
		Public:       true,
		DisplayName:  cmp.Or(doc.ClientName, u.Hostname()),
		Grants:       grants.DynamicClientGrants(doc.GrantTypes),
		Scopes:       r.scopes(),
		RedirectURIs: doc.RedirectURIs,
	}, nil
}
