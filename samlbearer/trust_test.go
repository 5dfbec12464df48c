package samlbearer

import (
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseCertificates(t *testing.T) {
	a, b := validSigner(t).cert, validSigner(t).cert
	certPEM := func(der []byte) string {
		return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	}
	tests := []struct {
		name string
		data string
		want int    // certificates parsed
		err  string // when not "", the error wanted
	}{
		{"one", certPEM(a.Raw), 1, ""},
		{"two, a rollover", certPEM(a.Raw) + "\n" + certPEM(b.Raw), 2, ""},
		{"empty", "", 0, "want only PEM CERTIFICATE blocks"},
		{"a private key", certPEM(a.Raw) + string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1}})), 0, "PRIVATE KEY block"},
		{"stray text", certPEM(a.Raw) + "garbage", 0, "want only PEM CERTIFICATE blocks"},
		{"not a certificate", certPEM([]byte{1, 2, 3}), 0, "certificate 1"},
	}
	for _, tt := range tests {
		certs, err := ParseCertificates([]byte(tt.data))
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseCertificates(%s) = %v, want an error containing %q", tt.name, err, tt.err)
			}
			continue
		}
		if err != nil || len(certs) != tt.want {
			t.Errorf("ParseCertificates(%s) = %d certificates, %v; want %d", tt.name, len(certs), err, tt.want)
		}
	}
}

func TestLoadCertificates(t *testing.T) {
	cert := validSigner(t).cert
	path := filepath.Join(t.TempDir(), "idp.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	certs, err := LoadCertificates(path)
	if err != nil || len(certs) != 1 || !certs[0].Equal(cert) {
		t.Errorf("LoadCertificates(%q) = %v, %v; want the certificate written", path, certs, err)
	}
	if _, err := LoadCertificates(path + ".missing"); err == nil {
		t.Errorf("LoadCertificates(missing) = nil error, want one")
	}
}
