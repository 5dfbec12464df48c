package grants

import (
	"context"
	"errors"
)

// ClientSource resolves, at request time, client ids the configuration does not declare: an
// https client_id naming its own metadata document (draft-ietf-oauth-client-id-metadata-document),
// or a client registered at the registration endpoint (RFC 7591). Every endpoint a client reaches
// asks it the same way, after the configured clients.
type ClientSource interface {
	// LookupClient returns the client id names, with Dynamic set. It returns ErrNotOwned when id
	// is none of the source's ids, and an error wrapping ErrSourceUnavailable for a fault; any
	// other error means an id of the source's that names no usable client now (its document cannot
	// be fetched or is invalid): the request is then refused as an unknown client's is, and the
	// error, which holds no secret and no address, says why, for the person and the log.
	LookupClient(ctx context.Context, id string) (*Client, error)
	// Owns reports, with no I/O, whether id is one the source resolves: tokens issued to such a
	// client stay good at the gate and at introspection without its being resolved again.
	Owns(id string) bool
}

// ErrNotOwned is a ClientSource's answer for an id that is none of its own.
var ErrNotOwned = errors.New("not a client of this source")

// ErrSourceUnavailable, wrapped, is a ClientSource's answer when it cannot tell now whether its
// client exists (its store does not answer): the request is answered 503, not as an unknown
// client's.
var ErrSourceUnavailable = errors.New("the client source is unavailable")

// ClientSources asks each of its sources in turn: the first that owns an id resolves it.
type ClientSources []ClientSource

// LookupClient implements ClientSource.
func (sources ClientSources) LookupClient(ctx context.Context, id string) (*Client, error) {
	for _, source := range sources {
		if c, err := source.LookupClient(ctx, id); !errors.Is(err, ErrNotOwned) {
			return c, err
		}
	}
	return nil, ErrNotOwned
}

// Owns implements ClientSource.
func (sources ClientSources) Owns(id string) bool {
	for _, source := range sources {
		if source.Owns(id) {
			return true
		}
	}
	return false
}

// LookupClient returns the client with the id: a configured one at once, else one the
// ClientSource resolves. nil and ErrNotOwned when no client has the id; nil and another error
// when the source's client is not usable now (see ClientSource).
func (s *Server) LookupClient(ctx context.Context, id string) (*Client, error) {
	if c, ok := s.clients[id]; ok {
		return c, nil
	}
	if s.cfg.ClientSource == nil || id == "" {
		return nil, ErrNotOwned
	}
	return s.cfg.ClientSource.LookupClient(ctx, id)
}

// clientKnown reports, with no I/O, whether a token's client is one this server serves: configured,
// or one the ClientSource resolves.
func (s *Server) clientKnown(id string) bool {
	if _, ok := s.clients[id]; ok {
		return true
	}
	return s.cfg.ClientSource != nil && s.cfg.ClientSource.Owns(id)
}
