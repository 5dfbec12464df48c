package samlbearer

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// FuzzVerifySAML feeds Verify arbitrary parameters, and arbitrary documents encoded as one. It
// must never panic, must refuse with ErrInvalid, and may accept only what the IdP signed: a
// mutation of the unsigned parts of a seed (the signature's KeyInfo, comments, what surrounds the
// assertion) must never change the claims. Inputs are bounded by the verifier's size limit.
// Run it with -fuzzminimizetime=1s: the seeds are signed assertions of several KiB, on whose
// minimization Go's fuzzer would otherwise spend the whole run.
func FuzzVerifySAML(f *testing.F) {
	idp := validSigner(f)
	signed := idp.signXML(f)
	split := idp.signXML(f, setText(nameIDPath, testSubject+".evil.test"))
	subjects := map[string]bool{testSubject: true, testSubject + ".evil.test": true}

	f.Add(signed)
	f.Add(b64(signed))
	f.Add(strings.Replace(split, testSubject+".evil.test", testSubject+"<!---->.evil.test", 1))
	f.Add(`<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "y">]>` + signed)
	f.Add(signed + signed)
	f.Add(strings.Replace(signed, "</ds:Signature>", "<ds:Object>"+signed+"</ds:Object></ds:Signature>", 1))
	f.Add(strings.Replace(signed, "<saml:Subject>", "<saml:Advice>"+signed+"</saml:Advice><saml:Subject>", 1))

	v := newVerifier(f, &recordingStore{fresh: true}, idp.cert)
	f.Fuzz(func(t *testing.T, in string) {
		for _, param := range []string{in, b64(in)} {
			claims, err := v.Verify(context.Background(), param)
			if err != nil {
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("Verify(%q) = %v, want ErrInvalid", param, err)
				}
				continue
			}
			if claims.Issuer != testIssuer || claims.ID != "_a1" || !subjects[claims.Subject] {
				t.Fatalf("Verify(%q) = %+v, want only claims the IdP signed", param, claims)
			}
		}
	})
}
