package store

import (
	"context"
	"errors"
	"time"
)

// Observed returns s with every operation but Close reported to observe: how long it took, and
// whether it failed with a technical fault (ErrNotFound and ErrReused are answers about the data,
// not faults).
func Observed(s Store, observe func(took time.Duration, fault bool)) Store {
	return &observed{Store: s, observe: observe}
}

type observed struct {
	Store
	observe func(took time.Duration, fault bool)
}

// done reports an operation begun at start that returned *err.
func (o *observed) done(start time.Time, err *error) {
	fault := *err != nil && !errors.Is(*err, ErrNotFound) && !errors.Is(*err, ErrReused)
	o.observe(time.Since(start), fault)
}

func (o *observed) CreateRefreshToken(ctx context.Context, hash string, t RefreshToken) (err error) {
	defer o.done(time.Now(), &err)
	return o.Store.CreateRefreshToken(ctx, hash, t)
}

func (o *observed) RefreshToken(ctx context.Context, hash string) (_ RefreshToken, err error) {
	defer o.done(time.Now(), &err)
	return o.Store.RefreshToken(ctx, hash)
}

func (o *observed) RotateRefreshToken(ctx context.Context, oldHash, newHash string, next RefreshToken) (err error) {
	defer o.done(time.Now(), &err)
	return o.Store.RotateRefreshToken(ctx, oldHash, newHash, next)
}

func (o *observed) Revoke(ctx context.Context, r Revocation) (err error) {
	defer o.done(time.Now(), &err)
	return o.Store.Revoke(ctx, r)
}

func (o *observed) RevocationsSince(ctx context.Context, cursor uint64) (_ []Revocation, _ uint64, err error) {
	defer o.done(time.Now(), &err)
	return o.Store.RevocationsSince(ctx, cursor)
}

func (o *observed) AddSigningKey(ctx context.Context, slot string, k SigningKey) (_ SigningKey, err error) {
	defer o.done(time.Now(), &err)
	return o.Store.AddSigningKey(ctx, slot, k)
}

func (o *observed) SigningKeys(ctx context.Context) (_ map[string]SigningKey, err error) {
	defer o.done(time.Now(), &err)
	return o.Store.SigningKeys(ctx)
}

func (o *observed) DeleteSigningKey(ctx context.Context, slot string) (err error) {
	defer o.done(time.Now(), &err)
	return o.Store.DeleteSigningKey(ctx, slot)
}

func (o *observed) PutOnce(ctx context.Context, key string, value []byte, exp time.Time) (_ bool, err error) {
	defer o.done(time.Now(), &err)
	return o.Store.PutOnce(ctx, key, value, exp)
}

func (o *observed) Take(ctx context.Context, key string) (_ []byte, err error) {
	defer o.done(time.Now(), &err)
	return o.Store.Take(ctx, key)
}

func (o *observed) CreateDeviceCode(ctx context.Context, hash string, d DeviceCode) (_ bool, err error) {
	defer o.done(time.Now(), &err)
	return o.Store.CreateDeviceCode(ctx, hash, d)
}

func (o *observed) PendingDeviceCode(ctx context.Context, userCode string) (_ DeviceCode, err error) {
	defer o.done(time.Now(), &err)
	return o.Store.PendingDeviceCode(ctx, userCode)
}

func (o *observed) DecideDeviceCode(ctx context.Context, userCode string, decision DeviceStatus, grant []byte) (err error) {
	defer o.done(time.Now(), &err)
	return o.Store.DecideDeviceCode(ctx, userCode, decision, grant)
}

func (o *observed) PollDeviceCode(ctx context.Context, hash, clientID string) (_ DeviceCode, _ DeviceStatus, err error) {
	defer o.done(time.Now(), &err)
	return o.Store.PollDeviceCode(ctx, hash, clientID)
}

func (o *observed) RegisterClient(ctx context.Context, id string, c RegisteredClient, max int) (_ bool, err error) {
	defer o.done(time.Now(), &err)
	return o.Store.RegisterClient(ctx, id, c, max)
}

func (o *observed) RegisteredClient(ctx context.Context, id string) (_ RegisteredClient, err error) {
	defer o.done(time.Now(), &err)
	return o.Store.RegisteredClient(ctx, id)
}

func (o *observed) ExtendClient(ctx context.Context, id string, until time.Time) (err error) {
	defer o.done(time.Now(), &err)
	return o.Store.ExtendClient(ctx, id, until)
}
