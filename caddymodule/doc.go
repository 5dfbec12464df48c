// Package caddymodule is tokengate's Caddy glue: the tokengate app, the tokengate and bearer_auth
// HTTP handlers, their configuration and its Caddyfile syntax. Each config type validates itself,
// and the Caddyfile parser runs the same Validate as a JSON configuration meets, so both are
// refused alike. It holds no protocol logic.
package caddymodule
