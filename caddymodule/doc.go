// Package caddymodule is tokengate's Caddy glue: the tokengate app, the tokengate and bearer_auth
// HTTP handlers, the token_exchange grant module, the admin API's backup route, their
// configuration and its Caddyfile syntax.
// It is the one place configuration is checked: each config type validates itself, and the
// Caddyfile parser runs the same Validate as a JSON configuration meets, so both are refused
// alike; the plain-Go packages it then builds do not check it again. It holds no protocol logic.
package caddymodule
