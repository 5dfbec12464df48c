package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"
)

// The embedded stores keep refresh tokens and families, the records every refresh reads and writes,
// in a compact binary form: a version byte, then fixed fields, then length-prefixed strings. JSON
// cost a refresh more than its fsync did (the grant, already JSON, went in as base64 inside JSON),
// and a smaller record is also less for the engine to log and compact. Records written in JSON by
// earlier versions start with '{', which no binary record does, and are still read.

// recordV1 opens a binary record.
const recordV1 = 1

const (
	flagRotated = 1 << iota
	flagDead
)

var errShortRecord = errors.New("record ends early")

// AppendBinary implements encoding.BinaryAppender.
func (r refreshRecord) AppendBinary(b []byte) ([]byte, error) {
	var flags byte
	if r.Rotated {
		flags |= flagRotated
	}
	// One allocation for the record: version and flags 2 bytes, RotatedBy at most 10, the time 15,
	// and each of the four lengths 5.
	b = slices.Grow(b, 2+10+10+5+4*5+len(r.FamilyID)+len(r.ClientID)+len(r.Successor)+len(r.Grant))
	b = append(b, recordV1, flags)
	b = binary.AppendUvarint(b, r.RotatedBy)
	b = appendTime(b, r.ExpiresAt)
	b = appendBytes(b, []byte(r.FamilyID))
	b = appendBytes(b, []byte(r.ClientID))
	b = appendBytes(b, []byte(r.Successor))
	return appendBytes(b, r.Grant), nil
}

// UnmarshalBinary implements encoding.BinaryUnmarshaler.
func (r *refreshRecord) UnmarshalBinary(data []byte) error {
	d := decoder{data: data}
	flags := d.header()
	*r = refreshRecord{Rotated: flags&flagRotated != 0}
	r.RotatedBy = d.uvarint()
	r.ExpiresAt = d.time()
	r.FamilyID = string(d.bytes())
	r.ClientID = string(d.bytes())
	r.Successor = string(d.bytes())
	if grant := d.bytes(); len(grant) > 0 {
		r.Grant = append([]byte(nil), grant...)
	}
	return d.end()
}

// AppendBinary implements encoding.BinaryAppender.
func (f family) AppendBinary(b []byte) ([]byte, error) {
	var flags byte
	if f.Dead {
		flags |= flagDead
	}
	b = slices.Grow(b, 2+2*(10+5))
	b = append(b, recordV1, flags)
	b = appendTime(b, f.Expires)
	return appendTime(b, f.DeadUntil), nil
}

// UnmarshalBinary implements encoding.BinaryUnmarshaler.
func (f *family) UnmarshalBinary(data []byte) error {
	d := decoder{data: data}
	flags := d.header()
	*f = family{Dead: flags&flagDead != 0}
	f.Expires = d.time()
	f.DeadUntil = d.time()
	return d.end()
}

// appendTime appends t as Unix seconds and nanoseconds; the zero time comes back as the zero time.
func appendTime(b []byte, t time.Time) []byte {
	b = binary.AppendVarint(b, t.Unix())
	return binary.AppendUvarint(b, uint64(t.Nanosecond()))
}

func appendBytes(b, v []byte) []byte {
	return append(binary.AppendUvarint(b, uint64(len(v))), v...)
}

// decoder reads a binary record; its first fault sticks, and every read after it returns zero.
type decoder struct {
	data []byte
	err  error
}

// header reads the version byte and the flags.
func (d *decoder) header() byte {
	if len(d.data) < 2 {
		d.err = errShortRecord
		return 0
	}
	if d.data[0] != recordV1 {
		d.err = fmt.Errorf("record version %d, want %d", d.data[0], recordV1)
		return 0
	}
	flags := d.data[1]
	d.data = d.data[2:]
	return flags
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.data)
	if n <= 0 {
		d.err = errShortRecord
		return 0
	}
	d.data = d.data[n:]
	return v
}

func (d *decoder) time() time.Time {
	if d.err != nil {
		return time.Time{}
	}
	sec, n := binary.Varint(d.data)
	if n <= 0 {
		d.err = errShortRecord
		return time.Time{}
	}
	d.data = d.data[n:]
	nsec := d.uvarint()
	if nsec >= uint64(time.Second) {
		d.err = fmt.Errorf("record time: %d nanoseconds", nsec)
		return time.Time{}
	}
	return time.Unix(sec, int64(nsec)).UTC()
}

// bytes returns the next length-prefixed field, which aliases the record.
func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.data)) {
		d.err = errShortRecord
		return nil
	}
	v := d.data[:n]
	d.data = d.data[n:]
	return v
}

// end reports the first fault, or bytes left over.
func (d *decoder) end() error {
	if d.err == nil && len(d.data) > 0 {
		d.err = fmt.Errorf("record has %d bytes too many", len(d.data))
	}
	return d.err
}
