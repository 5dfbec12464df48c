package store

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestRecordCodecRoundTrip(t *testing.T) {
	for name, v := range map[string]any{
		"live token": &refreshRecord{RefreshToken: RefreshToken{FamilyID: "fam", ClientID: "app",
			ExpiresAt: t0.Add(90 * time.Minute), Grant: []byte(`{"sub":"alice"}`)}},
		"rotated token": &refreshRecord{RefreshToken: RefreshToken{FamilyID: "fam", ClientID: "app",
			ExpiresAt: t0.Add(time.Nanosecond)}, Rotated: true, Successor: "next", RotatedBy: 1 << 40},
		"token before 1970":  &refreshRecord{RefreshToken: RefreshToken{ExpiresAt: time.Date(1969, 7, 20, 20, 17, 0, 999999999, time.UTC)}},
		"family":             &family{Expires: t0},
		"dead family":        &family{Expires: t0, Dead: true, DeadUntil: t0.Add(time.Hour)},
		"family of nothing":  &family{},
		"token of no fields": &refreshRecord{},
	} {
		t.Run(name, func(t *testing.T) {
			data, err := v.(codecRecord).AppendBinary(nil)
			if err != nil {
				t.Fatal(err)
			}
			got := reflect.New(reflect.TypeOf(v).Elem()).Interface()
			if err := decodeKV(data, got); err != nil {
				t.Fatalf("decode(%x) = %v", data, err)
			}
			if !reflect.DeepEqual(got, v) {
				t.Errorf("decoded %+v, want %+v", got, v)
			}
		})
	}
}

// TestRecordCodecReadsJSON: records written before the binary form are still read.
func TestRecordCodecReadsJSON(t *testing.T) {
	rec := refreshRecord{RefreshToken: RefreshToken{FamilyID: "fam", ClientID: "app", ExpiresAt: t0,
		Grant: []byte(`{"sub":"alice"}`)}, Rotated: true, Successor: "next", RotatedBy: 3}
	data, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	var got refreshRecord
	if err := decodeKV(data, &got); err != nil || !reflect.DeepEqual(got, rec) {
		t.Errorf("decode(%s) = %+v, %v; want %+v", data, got, err, rec)
	}
}

func TestRecordCodecRefusesDamage(t *testing.T) {
	good, _ := refreshRecord{RefreshToken: RefreshToken{FamilyID: "fam", Grant: []byte("grant")}}.AppendBinary(nil)
	for name, data := range map[string][]byte{
		"empty":         {},
		"version 2":     append([]byte{2}, good[1:]...),
		"cut short":     good[:len(good)-1],
		"trailing byte": append(append([]byte(nil), good...), 0),
		"length beyond": {recordV1, 0, 0, 0, 0, 0xff, 0x7f},
	} {
		if err := decodeKV(data, &refreshRecord{}); err == nil {
			t.Errorf("%s: decode(%x) = nil, want an error", name, data)
		}
	}
}

// TestStoreReadsJSONRecords: an embedded store written by an earlier version, in JSON, presents,
// rotates and purges its tokens as before.
func TestStoreReadsJSONRecords(t *testing.T) {
	forEmbedded(t, func(t *testing.T, open openEmbedded) {
		c := newClock()
		s := openEmbeddedAt(t, open, t.TempDir(), c.Now)
		rt := grant("fam", time.Hour)
		err := updateDurably(s.engine, func(tx kvTx) error {
			for _, r := range []struct {
				bucket []byte
				key    string
				v      any
			}{{bucketRefresh, "old", refreshRecord{RefreshToken: rt}}, {bucketFamilies, "fam", family{Expires: rt.ExpiresAt}}} {
				data, err := json.Marshal(r.v)
				if err != nil {
					return err
				}
				if err := tx.put(r.bucket, []byte(r.key), data); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if got, err := s.RefreshToken(ctx, "old"); err != nil || !reflect.DeepEqual(got, rt) {
			t.Fatalf("RefreshToken(old) = %+v, %v; want %+v", got, err, rt)
		}
		mustRotate(t, s, "old", "new", rt)
		if _, err := s.RefreshToken(ctx, "old"); !errors.Is(err, ErrReused) {
			t.Errorf("RefreshToken(old) after its rotation = %v, want ErrReused", err)
		}
		c.Advance(2 * time.Hour)
		purgeAll(t, s)
		if n := countRecords(t, s); n["refresh"] != 0 || n["families"] != 0 {
			t.Errorf("after expiry the store holds %v, want no tokens and no families", n)
		}
	})
}

type codecRecord interface {
	UnmarshalBinary([]byte) error
	AppendBinary([]byte) ([]byte, error)
}

func FuzzRecordDecode(f *testing.F) {
	rec, _ := refreshRecord{RefreshToken: RefreshToken{FamilyID: "fam", ClientID: "app", ExpiresAt: t0,
		Grant: []byte(`{}`)}, Rotated: true, Successor: "s", RotatedBy: 2}.AppendBinary(nil)
	fam, _ := family{Expires: t0, Dead: true, DeadUntil: t0}.AppendBinary(nil)
	f.Add(rec)
	f.Add(fam)
	f.Fuzz(func(t *testing.T, data []byte) {
		// Whatever a damaged record holds, decoding it returns an error or a record that encodes
		// and decodes to itself: never a panic.
		for _, v := range []func() codecRecord{func() codecRecord { return &refreshRecord{} }, func() codecRecord { return &family{} }} {
			first := v()
			if first.UnmarshalBinary(data) != nil {
				continue
			}
			again, _ := first.AppendBinary(nil)
			second := v()
			if err := second.UnmarshalBinary(again); err != nil || !reflect.DeepEqual(first, second) {
				t.Errorf("%x decoded as %+v, encoded again as %x, decoded as %+v, %v", data, first, again, second, err)
			}
		}
	})
}
