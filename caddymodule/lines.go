package caddymodule

import (
	"errors"
	"slices"
	"strings"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// lines remembers, while the Caddyfile parser reads a block, the line of each option and of each
// of its values, keyed by the same path a configError's where gives, so that a mistake Validate
// finds is reported at its line. A path declared twice keeps its last line: the one a "declared
// twice" error is about.
type lines map[string]caddyfile.Token

// pathKey joins a path; no Caddyfile token holds a NUL byte.
func pathKey(path []string) string {
	return strings.Join(path, "\x00")
}

// record notes the line d is on: its option under prefix, and each of the option's arguments,
// leaving d where it was.
func (l lines) record(d *caddyfile.Dispenser, prefix ...string) {
	tok := d.Token()
	path := append(slices.Clip(prefix), d.Val())
	l[pathKey(path)] = tok
	n := d.CountRemainingArgs()
	for i := 0; i < n; i++ {
		d.NextArg()
		l[pathKey(append(slices.Clip(path), d.Val()))] = tok
	}
	for i := 0; i < n; i++ {
		d.Prev()
	}
}

// wrap reports err, a Validate error, at the line of the longest part of its where that l knows,
// or else at d's line.
func (l lines) wrap(d *caddyfile.Dispenser, err error) error {
	if err == nil {
		return nil
	}
	var ce *configError
	if !errors.As(err, &ce) {
		return d.WrapErr(err)
	}
	for n := len(ce.where); n > 0; n-- {
		if tok, ok := l[pathKey(ce.where[:n])]; ok {
			line := caddyfile.NewDispenser([]caddyfile.Token{tok})
			line.Next()
			return line.WrapErr(err)
		}
	}
	return d.WrapErr(err)
}
