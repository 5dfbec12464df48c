// Package tokengate is an OAuth 2.0 / OpenID Connect token service and bearer-token gate for Caddy.
// Importing it (xcaddy build --with github.com/tokengate/tokengate) registers every Caddy module.
package tokengate

import (
	// Registers the tokengate app and the tokengate and bearer_auth handlers.
	_ "github.com/tokengate/tokengate/caddymodule"
)
