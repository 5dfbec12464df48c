package caddymodule

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy" // reverse_proxy in the test Caddyfiles
)

var update = flag.Bool("update", false, "rewrite the expected output of the golden adapt files")

// goldenSeparator divides a golden file: the Caddyfile above, below either the JSON config it adapts
// to or the exact error message adapting it gives.
const goldenSeparator = "\n----------\n"

// adapt adapts a Caddyfile as `caddy adapt` does and returns the indented JSON config.
func adapt(caddyfile string) (string, []caddyconfig.Warning, error) {
	out, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(caddyfile), map[string]any{"filename": "Caddyfile"})
	if err != nil {
		return "", warnings, err
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, out, "", "\t"); err != nil {
		return "", warnings, err
	}
	return buf.String(), warnings, nil
}

func TestAdaptGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.caddyfile.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			caddyfile, want, ok := strings.Cut(string(data), goldenSeparator)
			if !ok {
				t.Fatalf("%s: no %q line", file, strings.TrimSpace(goldenSeparator))
			}
			// The separator took the Caddyfile's final newline.
			got, warnings, err := adapt(caddyfile + "\n")
			if err != nil {
				got = err.Error()
			} else if len(warnings) > 0 {
				t.Errorf("adapt(%s) warnings: %v", file, warnings)
			}
			if *update {
				if err := os.WriteFile(file, []byte(caddyfile+goldenSeparator+got+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if got != strings.TrimSpace(want) {
				t.Errorf("adapt(%s) =\n%s\nwant\n%s", file, got, want)
			}
		})
	}
}

// TestAdaptExample keeps the repository's example Caddyfile adapting: `caddy adapt` of a Caddyfile
// the docs show must succeed.
func TestAdaptExample(t *testing.T) {
	data, err := os.ReadFile("../Caddyfile.example")
	if err != nil {
		t.Fatal(err)
	}
	if _, warnings, err := adapt(string(data)); err != nil || len(warnings) > 0 {
		t.Errorf("adapt(Caddyfile.example) = %v, warnings %v", err, warnings)
	}
}
