package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

const (
	// redisPrefix starts every key this store uses, so that it can share a Redis with others.
	redisPrefix = "tokengate:"
	// redisTimeout bounds each dial, read and write, and the wait for a pooled connection: when
	// Redis does not answer, a request fails within seconds and the caller answers 503, never hangs.
	redisTimeout = 2 * time.Second
	// redisWindow is how soon after the read that decided it a write must reach Redis. A write
	// that arrives later (held up by a partition or a paused server, its caller long given up with
	// a timeout) does nothing: a refresh token presented during an outage is not used up by it.
	redisWindow = redisTimeout / 2
	// redisSlack is how long Redis keeps a record after its expiry by our clock. The records carry
	// their expiry and are judged by the injected clock as in the other backends; Redis's own TTL
	// (on its own clock) is the backstop that forgets them, late enough that clock skew between
	// the instances and Redis never drops a rotated token or a dead family while it still counts.
	redisSlack = 10 * time.Minute
	// casAttempts bounds how often a step is decided again because a record it read changed
	// before its write. Each change is another request's committed step on the same token or
	// family (a rotation, the family's death), of which there are few, so the bound is not reached
	// unless something is wrong.
	casAttempts = 32
	// trimBudget bounds how many expired revocation log entries one append removes.
	trimBudget = 100
)

// Redis keys. Records are JSON, as in bolt.
const (
	keyRefresh     = redisPrefix + "refresh:"        // + token hash: a refreshRecord
	keyFamily      = redisPrefix + "family:"         // + family id: a family
	keyOnce        = redisPrefix + "once:"           // + key: a oneTime
	keySigningKeys = redisPrefix + "signing_keys"    // hash of slot → SigningKey
	keyLog         = redisPrefix + "revocations"     // sorted set of "<seq> <Revocation JSON>" by seq
	keyLogExp      = redisPrefix + "revocations:exp" // the same members by when Redis may forget them
	keyLogSeq      = redisPrefix + "revocations:seq" // the last seq handed out
)

// casScript's answers.
const (
	redisTooLate = -1 // the write came after its deadline; nothing written
	redisChanged = 0  // a record changed since it was read; nothing written
	redisWritten = 1
)

// readScript reads KEYS in one step, so that what a step decides on is one consistent state
// (a token is never seen live beside a family that its own rotation's reuse has killed). With
// ARGV[1], the prefix of family keys, KEYS[1] is a refresh token and its family follows the
// values (a key not named in KEYS: this store wants one Redis server, not a Cluster). Redis's
// clock in ms comes first: a write decided on these values is given a deadline on that clock
// (see redisWindow).
var readScript = redis.NewScript(`
local t = redis.call('TIME')
local out = redis.call('MGET', unpack(KEYS))
if ARGV[1] then
  out[#KEYS + 1] = out[1] and redis.call('GET', ARGV[1] .. cjson.decode(out[1]).family_id) or false
end
table.insert(out, 1, tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
return out`)

// casScript makes a step decided in Go take effect, atomically, only if nothing it read has
// changed since and it is not too late.
//
// ARGV[1] is the deadline in ms on Redis's clock (0: none), ARGV[2] the number n of records.
// KEYS[i], i <= n, is a record: it must still hold ARGV[3i] (empty for absent); then, unless
// ARGV[3i+1] is empty (compare only), it is set to ARGV[3i+1], expiring at ARGV[3i+2] ms.
// When KEYS has three more, they are the revocation log, its expiry index and its counter: the
// entry ARGV[3n+3] is appended under the next sequence number, to be forgotten at ARGV[3n+4] ms,
// and up to trimBudget entries to be forgotten by ARGV[3n+5] ms (now, by our clock) are trimmed.
var casScript = redis.NewScript(`
local deadline, n = tonumber(ARGV[1]), tonumber(ARGV[2])
if deadline > 0 then
  local t = redis.call('TIME')
  if tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) > deadline then return ` + strconv.Itoa(redisTooLate) + ` end
end
for i = 1, n do
  if (redis.call('GET', KEYS[i]) or '') ~= ARGV[3*i] then return ` + strconv.Itoa(redisChanged) + ` end
end
for i = 1, n do
  if ARGV[3*i+1] ~= '' then redis.call('SET', KEYS[i], ARGV[3*i+1], 'PXAT', ARGV[3*i+2]) end
end
if #KEYS > n then
  local log, exp, seq = KEYS[n+1], KEYS[n+2], KEYS[n+3]
  local forget = ARGV[3*n+4]
  local next = redis.call('INCR', seq)
  local member = string.format('%d ', next) .. ARGV[3*n+3]
  redis.call('ZADD', log, next, member)
  redis.call('ZADD', exp, forget, member)
  local gone = redis.call('ZRANGEBYSCORE', exp, '-inf', ARGV[3*n+5], 'LIMIT', 0, ` + strconv.Itoa(trimBudget) + `)
  if #gone > 0 then
    redis.call('ZREM', log, unpack(gone))
    redis.call('ZREM', exp, unpack(gone))
  end
  for _, k in ipairs({log, exp}) do
    redis.call('PEXPIREAT', k, forget, 'NX')
    redis.call('PEXPIREAT', k, forget, 'GT')
  end
end
return ` + strconv.Itoa(redisWritten))

// logScript reads the revocation log after the cursor ARGV[1]. KEYS are the log and its counter.
// A cursor beyond the last number handed out did not come from this log (it was flushed or
// replaced), so the whole log is read. It returns the cursor it used, then the members after it.
var logScript = redis.NewScript(`
local from = ARGV[1]
if tonumber(from) > tonumber(redis.call('GET', KEYS[2]) or '0') then from = '0' end
local out = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. from, '+inf')
table.insert(out, 1, from)
return out`)

// redeemScript takes the value under KEYS[1] and, when it was live, stores ARGV[1] under KEYS[2]
// to be forgotten at ARGV[2] ms, in one step; it answers the value when it was live. Redis forgets
// each one-time value at pxat of its expiry, so comparing that moment with ARGV[3], pxat of now,
// tells on our clock whether the value is live, as the other backends judge it.
var redeemScript = redis.NewScript(`
local live = redis.call('PEXPIRETIME', KEYS[1]) > tonumber(ARGV[3])
local v = redis.call('GETDEL', KEYS[1])
if not (v and live) then return false end
redis.call('SET', KEYS[2], ARGV[1], 'PXAT', ARGV[2])
return v`)

// Redis is a Store on a Redis server (7.0 or later: GETDEL, SET PXAT, PEXPIREAT NX/GT,
// PEXPIRETIME) that every instance pointed at it shares.
//
// Every step that must happen once is decided in Go by the rules in rules.go, on records as read,
// and takes effect through casScript: one script, so its check that nothing read has changed, its
// writes and its revocation log entry commit together across processes; when something changed,
// the step is decided again on fresh records (optimistic concurrency, as WATCH/MULTI would do, in
// one round trip). Steps that change nothing (an unknown token, a replayed assertion id) only read.
//
// The signing keys and the log's counter have no TTL: keys go by DeleteSigningKey, and a counter
// that restarted could hand out again a number some instance holds as its cursor, hiding new
// entries from it. Every other key expires redisSlack after its record does.
type Redis struct {
	rdb *redis.Client
	now func() time.Time
}

// OpenRedis connects to the Redis at rawURL (redis://[[user]:password@]host[:port][/db], rediss://
// for TLS, or unix://) and checks that it answers. Timeouts and retries set in the URL are
// overridden: see redisTimeout and the comment on MaxRetries below.
func OpenRedis(rawURL string, now func() time.Time) (*Redis, error) {
	opts, err := redis.ParseURL(rawURL)
	if err != nil {
		// A *url.Error quotes the whole URL, password included: keep only what it says is wrong.
		if uerr := (*url.Error)(nil); errors.As(err, &uerr) {
			err = uerr.Err
		}
		return nil, fmt.Errorf("store: redis url: %w", err)
	}
	opts.DialTimeout = redisTimeout
	opts.ReadTimeout = redisTimeout
	opts.WriteTimeout = redisTimeout
	opts.PoolTimeout = redisTimeout
	opts.DialerRetries = 1
	opts.ContextTimeoutEnabled = true
	// A command whose reply is lost may have run: sent again, a rotation would find its own work
	// and take it for reuse, killing the family. So nothing is retried; the request fails (503).
	opts.MaxRetries = -1
	// Neither is needed, and servers older than 7.2 refuse them.
	opts.DisableIdentity = true
	opts.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	rdb := redis.NewClient(opts)
	ctx, cancel := context.WithTimeout(context.Background(), 2*redisTimeout)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		return nil, errors.Join(fmt.Errorf("store: redis at %s: ping: %w", opts.Addr, err), rdb.Close())
	}
	return &Redis{rdb: rdb, now: now}, nil
}

// Close releases the connection pool.
func (s *Redis) Close() error { return s.rdb.Close() }

// redisRead is what readScript returned: Redis's clock in ms, and the values (nil for none).
type redisRead struct {
	at   int64
	vals [][]byte
}

// read reads keys with readScript; withFamily adds the family of the refresh token under keys[0].
func (s *Redis) read(ctx context.Context, keys []string, withFamily bool) (redisRead, error) {
	var args []any
	if withFamily {
		args = append(args, keyFamily)
	}
	res, err := readScript.Run(ctx, s.rdb, keys, args...).Slice()
	if err != nil && ctx.Err() == nil {
		// After Redis restarts, every pooled connection is dead and fails the first command sent on
		// it. A read changes nothing, so it is safe to send once more, on a fresh connection.
		res, err = readScript.Run(ctx, s.rdb, keys, args...).Slice()
	}
	if err != nil {
		return redisRead{}, fmt.Errorf("store: redis: read: %w", err)
	}
	if len(res) != 1+len(keys)+len(args) {
		return redisRead{}, fmt.Errorf("store: redis: read: %d values for %d keys", len(res), len(keys))
	}
	at, ok := res[0].(int64)
	if !ok {
		return redisRead{}, fmt.Errorf("store: redis: read: clock %T", res[0])
	}
	r := redisRead{at: at, vals: make([][]byte, len(res)-1)}
	for i, v := range res[1:] {
		if v, ok := v.(string); ok {
			r.vals[i] = []byte(v)
		}
	}
	return r, nil
}

// redisOp is one record of a write: it is written only if it still holds what was read.
type redisOp struct {
	key string
	// read is the record as read, nil when there was none.
	read []byte
	// set is the record to store; nil leaves it as read, and only requires it unchanged.
	set any
	// expires is when the record is no longer needed by our clock.
	expires time.Time
}

// redisWrite is what a step decided to write.
type redisWrite struct {
	ops []redisOp
	// log, if not nil, is appended to the revocation log in the same script.
	log *Revocation
	// readAt is Redis's clock, in ms, when the earliest record the step relied on was read; 0 when
	// it relied on none and may take effect however late.
	readAt int64
}

// update runs a step: decide reads what it needs, applies the rules, and returns what to write
// and what to answer; the write is made by casScript if nothing it names has changed since,
// else decide runs again on fresh records. A decide that returns a technical error writes nothing.
func (s *Redis) update(ctx context.Context, decide func() (redisWrite, error)) error {
	for range casAttempts {
		w, answer := decide()
		if len(w.ops) == 0 && w.log == nil {
			return answer
		}
		switch res, err := s.write(ctx, w); {
		case err != nil:
			return err
		case res == redisTooLate:
			return fmt.Errorf("store: redis: a write reached Redis more than %v after its read; not applied", redisWindow)
		case res == redisWritten:
			return answer
		}
	}
	return fmt.Errorf("store: redis: records changed under every one of %d attempts", casAttempts)
}

// write runs casScript for w and returns its answer.
func (s *Redis) write(ctx context.Context, w redisWrite) (int64, error) {
	var deadline int64
	if w.readAt != 0 {
		deadline = w.readAt + redisWindow.Milliseconds()
	}
	keys := make([]string, 0, len(w.ops)+3)
	args := make([]any, 0, 2+3*len(w.ops)+3)
	args = append(args, deadline, len(w.ops))
	for _, op := range w.ops {
		var set []byte
		if op.set != nil {
			var err error
			if set, err = json.Marshal(op.set); err != nil {
				return 0, fmt.Errorf("store: redis: encode: %w", err)
			}
		}
		keys = append(keys, op.key)
		args = append(args, string(op.read), string(set), pxat(op.expires))
	}
	if w.log != nil {
		entry, err := json.Marshal(w.log)
		if err != nil {
			return 0, fmt.Errorf("store: redis: encode: %w", err)
		}
		keys = append(keys, keyLog, keyLogExp, keyLogSeq)
		args = append(args, string(entry), pxat(w.log.Until), s.now().UnixMilli())
	}
	res, err := casScript.Run(ctx, s.rdb, keys, args...).Int64()
	if err != nil {
		return 0, fmt.Errorf("store: redis: write: %w", err)
	}
	return res, nil
}

// pxat is when, in ms since 1970, Redis may forget a record no longer needed after exp. PXAT
// refuses 0 and below; 1 is long past all the same, so the record goes at once.
func pxat(exp time.Time) int64 { return max(1, exp.Add(redisSlack).UnixMilli()) }

// decodeRecord decodes a record of the named kind.
func decodeRecord(kind string, data []byte, v any) error {
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("store: redis: %s record: %w", kind, err)
	}
	return nil
}

// redisFamily is a family record as read.
type redisFamily struct {
	family
	key string
	raw []byte // as stored; nil when there was none
}

func (f *redisFamily) decode(raw []byte) error {
	f.raw = raw
	if raw == nil {
		return nil
	}
	return decodeRecord("family", raw, &f.family)
}

// op stores the family if write is set, and in any case requires it unchanged: a family killed
// meanwhile must not be written back alive, nor gain a token unnoticed.
func (f *redisFamily) op(write bool) redisOp {
	op := redisOp{key: f.key, read: f.raw, expires: f.forgetAt()}
	if write {
		op.set = f.family
	}
	return op
}

// adopt notes a member token that expires at exp, and returns the op for the family.
func (f *redisFamily) adopt(exp time.Time) redisOp {
	longer := exp.After(f.Expires)
	f.grow(exp)
	return f.op(longer)
}

// redisToken is a refresh token as read, with its family.
type redisToken struct {
	key    string
	raw    []byte // as stored; nil when there was none
	rec    refreshRecord
	fam    redisFamily
	readAt int64
}

// readToken reads the token under hash, its family, and the records under also, whose stored
// values it returns.
func (s *Redis) readToken(ctx context.Context, hash string, also ...string) (redisToken, [][]byte, error) {
	t := redisToken{key: keyRefresh + hash}
	r, err := s.read(ctx, append([]string{t.key}, also...), true)
	if err != nil || r.vals[0] == nil {
		return t, nil, err
	}
	t.raw, t.readAt = r.vals[0], r.at
	if err := decodeRecord("refresh token", t.raw, &t.rec); err != nil {
		return t, nil, err
	}
	t.fam.key = keyFamily + t.rec.FamilyID
	return t, r.vals[1 : len(r.vals)-1], t.fam.decode(r.vals[len(r.vals)-1])
}

// present applies the rules for presenting t. On a reuse the write kills the family and logs it
// (RFC 9700 §4.14.2), unless it is dead already with an entry lasting as long.
func (t *redisToken) present(now time.Time) (redisWrite, error) {
	verdict := presented(t.rec, t.raw != nil, t.fam.family, now)
	if verdict != ErrReused {
		return redisWrite{}, verdict
	}
	r, add := t.fam.killedBy(t.rec)
	if !add {
		return redisWrite{}, verdict
	}
	return redisWrite{ops: []redisOp{t.fam.op(true)}, log: &r, readAt: t.readAt}, verdict
}

// CreateRefreshToken implements RefreshTokens.
func (s *Redis) CreateRefreshToken(ctx context.Context, hash string, rt RefreshToken) error {
	key := keyRefresh + hash
	return s.update(ctx, func() (redisWrite, error) {
		fam := redisFamily{key: keyFamily + rt.FamilyID}
		r, err := s.read(ctx, []string{key, fam.key}, false)
		switch {
		case err != nil:
			return redisWrite{}, err
		case r.vals[0] != nil:
			return redisWrite{}, errHashTaken
		}
		if err := fam.decode(r.vals[1]); err != nil {
			return redisWrite{}, err
		}
		return redisWrite{ops: []redisOp{
			{key: key, set: refreshRecord{RefreshToken: rt}, expires: rt.ExpiresAt},
			fam.adopt(rt.ExpiresAt),
		}, readAt: r.at}, nil
	})
}

// RefreshToken implements RefreshTokens. Only a reuse, which kills the family, writes.
func (s *Redis) RefreshToken(ctx context.Context, hash string) (RefreshToken, error) {
	var rec refreshRecord
	err := s.update(ctx, func() (redisWrite, error) {
		t, _, err := s.readToken(ctx, hash)
		if err != nil {
			return redisWrite{}, err
		}
		rec = t.rec
		return t.present(s.now())
	})
	return answer(rec.RefreshToken, err)
}

// RotateRefreshToken implements RefreshTokens: the mark, the new token and the family commit in
// one casScript, or not at all.
func (s *Redis) RotateRefreshToken(ctx context.Context, oldHash, newHash string, next RefreshToken) error {
	return s.update(ctx, s.rotation(ctx, oldHash, newHash, next))
}

// rotation decides a rotation (see update).
func (s *Redis) rotation(ctx context.Context, oldHash, newHash string, next RefreshToken) func() (redisWrite, error) {
	newKey := keyRefresh + newHash
	return func() (redisWrite, error) {
		t, also, err := s.readToken(ctx, oldHash, newKey)
		if err != nil {
			return redisWrite{}, err
		}
		if repeated(t.rec, t.fam.family, newHash, s.now()) {
			return redisWrite{}, nil
		}
		if w, verdict := t.present(s.now()); verdict != nil {
			return w, verdict
		}
		if err := checkRotation(t.rec, next); err != nil {
			return redisWrite{}, err
		}
		if also[0] != nil {
			return redisWrite{}, errHashTaken
		}
		old := t.rec
		old.Rotated, old.Successor = true, newHash
		return redisWrite{ops: []redisOp{
			{key: t.key, read: t.raw, set: old, expires: old.ExpiresAt},
			{key: newKey, set: refreshRecord{RefreshToken: next}, expires: next.ExpiresAt},
			t.fam.adopt(next.ExpiresAt),
		}, readAt: t.readAt}, nil
	}
}

// Revoke implements Revocations.
func (s *Redis) Revoke(ctx context.Context, r Revocation) error {
	if err := checkRevocation(r); err != nil {
		return err
	}
	return s.update(ctx, func() (redisWrite, error) {
		if r.Kind != RevokedFamily {
			return redisWrite{log: &r}, nil
		}
		fam := redisFamily{key: keyFamily + r.ID}
		read, err := s.read(ctx, []string{fam.key}, false)
		if err == nil {
			err = fam.decode(read.vals[0])
		}
		if err != nil || !fam.revoke(r.Until) {
			return redisWrite{}, err
		}
		return redisWrite{ops: []redisOp{fam.op(true)}, log: &r, readAt: read.at}, nil
	})
}

// RevocationsSince implements Revocations.
func (s *Redis) RevocationsSince(ctx context.Context, cursor uint64) ([]Revocation, uint64, error) {
	res, err := logScript.Run(ctx, s.rdb, []string{keyLog, keyLogSeq},
		strconv.FormatUint(cursor, 10)).StringSlice()
	if err != nil {
		return nil, 0, fmt.Errorf("store: redis: revocations: %w", err)
	}
	next, err := strconv.ParseUint(res[0], 10, 64)
	if err != nil {
		return nil, 0, fmt.Errorf("store: redis: revocations: cursor: %w", err)
	}
	now := s.now()
	var out []Revocation
	for _, m := range res[1:] {
		seq, entry, _ := strings.Cut(m, " ")
		if next, err = strconv.ParseUint(seq, 10, 64); err != nil {
			return nil, 0, fmt.Errorf("store: redis: revocation %q: %w", seq, err)
		}
		var r Revocation
		if err := decodeRecord("revocation", []byte(entry), &r); err != nil {
			return nil, 0, err
		}
		if !expired(r.Until, now) {
			out = append(out, r)
		}
	}
	return out, next, nil
}

// AddSigningKey implements SigningKeys: HSETNX, then HGET of what won, in one MULTI.
func (s *Redis) AddSigningKey(ctx context.Context, slot string, k SigningKey) (SigningKey, error) {
	data, err := json.Marshal(k)
	if err != nil {
		return SigningKey{}, fmt.Errorf("store: redis: encode: %w", err)
	}
	var held *redis.StringCmd
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSetNX(ctx, keySigningKeys, slot, data)
		held = p.HGet(ctx, keySigningKeys, slot)
		return nil
	})
	if err != nil {
		return SigningKey{}, fmt.Errorf("store: redis: add signing key: %w", err)
	}
	var out SigningKey
	return out, decodeRecord("signing key", []byte(held.Val()), &out)
}

// SigningKeys implements SigningKeys.
func (s *Redis) SigningKeys(ctx context.Context) (map[string]SigningKey, error) {
	all, err := s.rdb.HGetAll(ctx, keySigningKeys).Result()
	if err != nil {
		return nil, fmt.Errorf("store: redis: signing keys: %w", err)
	}
	out := make(map[string]SigningKey, len(all))
	for slot, data := range all {
		var k SigningKey
		if err := decodeRecord("signing key", []byte(data), &k); err != nil {
			return nil, err
		}
		out[slot] = k
	}
	return out, nil
}

// DeleteSigningKey implements SigningKeys.
func (s *Redis) DeleteSigningKey(ctx context.Context, slot string) error {
	if err := s.rdb.HDel(ctx, keySigningKeys, slot).Err(); err != nil {
		return fmt.Errorf("store: redis: delete signing key: %w", err)
	}
	return nil
}

// PutOnce implements OneTime: one SET NX for a new key. A key held by a value that has expired by
// our clock but not yet by Redis's must not block (RFC 7523 §3: a jti need only be remembered
// while its assertion could be accepted), so that value is replaced if it is still there.
func (s *Redis) PutOnce(ctx context.Context, key string, value []byte, exp time.Time) (bool, error) {
	k := keyOnce + key
	v := oneTime{Value: value, ExpiresAt: exp}
	data, err := json.Marshal(v)
	if err != nil {
		return false, fmt.Errorf("store: redis: encode: %w", err)
	}
	switch err := s.rdb.Do(ctx, "SET", k, data, "NX", "PXAT", pxat(exp)).Err(); {
	case err == nil:
		return true, nil
	case !errors.Is(err, redis.Nil):
		return false, fmt.Errorf("store: redis: put once: %w", err)
	}
	var stored bool
	err = s.update(ctx, func() (redisWrite, error) {
		stored = false
		r, err := s.read(ctx, []string{k}, false)
		if err != nil {
			return redisWrite{}, err
		}
		if r.vals[0] != nil {
			var held oneTime
			if err := decodeRecord("one-time", r.vals[0], &held); err != nil || !expired(held.ExpiresAt, s.now()) {
				return redisWrite{}, err
			}
		}
		stored = true
		return redisWrite{ops: []redisOp{{key: k, read: r.vals[0], set: v, expires: exp}}, readAt: r.at}, nil
	})
	return stored && err == nil, err
}

// Take implements OneTime with GETDEL.
func (s *Redis) Take(ctx context.Context, key string) ([]byte, error) {
	data, err := s.rdb.GetDel(ctx, keyOnce+key).Bytes()
	switch {
	case errors.Is(err, redis.Nil):
		return nil, ErrNotFound
	case err != nil:
		return nil, fmt.Errorf("store: redis: take: %w", err)
	}
	var v oneTime
	if err := decodeRecord("one-time", data, &v); err != nil {
		return nil, err
	}
	if expired(v.ExpiresAt, s.now()) {
		return nil, ErrNotFound
	}
	return v.Value, nil
}

// Redeem implements Redemptions with redeemScript.
func (s *Redis) Redeem(ctx context.Context, key, markKey string, mark []byte, markExp time.Time) ([]byte, error) {
	record, err := json.Marshal(oneTime{Value: mark, ExpiresAt: markExp})
	if err != nil {
		return nil, fmt.Errorf("store: redis: encode: %w", err)
	}
	data, err := redeemScript.Run(ctx, s.rdb, []string{keyOnce + key, keyOnce + markKey},
		record, pxat(markExp), pxat(s.now())).Text()
	switch {
	case errors.Is(err, redis.Nil):
		return nil, ErrNotFound
	case err != nil:
		return nil, fmt.Errorf("store: redis: redeem: %w", err)
	}
	var v oneTime
	if err := decodeRecord("one-time", []byte(data), &v); err != nil {
		return nil, err
	}
	return v.Value, nil
}

var _ Store = (*Redis)(nil)
