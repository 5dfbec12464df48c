// Package caddymodule is tokengate's Caddy glue: the tokengate app, the tokengate and bearer_auth
// HTTP handlers and their Caddyfile syntax. It holds no protocol logic.
package caddymodule
